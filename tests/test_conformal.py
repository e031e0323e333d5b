"""Tests of cputime.model.conformal: finite-sample quantiles and the Kaplan-Meier version."""

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from cputime.model.conformal import (
    conformal_upper_quantile,
    kaplan_meier_cdf,
    km_conformal_upper_quantile,
    min_calibration_size,
)


@pytest.mark.parametrize("n_calib", [20, 100, 1000])
@pytest.mark.parametrize("level", [0.8, 0.95])
def test_coverage_validity(n_calib, level):
    """Marginal coverage over many calibration draws is in [c, c + 1/(n+1)] (+ MC noise)."""
    rng = np.random.default_rng(42)
    n_rep, n_test = 400, 200
    hits = np.empty(n_rep)
    for r in range(n_rep):
        calib = rng.standard_exponential(n_calib)
        q = conformal_upper_quantile(calib, level)
        hits[r] = np.mean(rng.standard_exponential(n_test) <= q)
    mc_noise = 4 * math.sqrt(level * (1 - level) / n_rep)  # coverage varies across draws
    assert hits.mean() >= level - mc_noise
    assert hits.mean() <= level + 1 / (n_calib + 1) + mc_noise


def test_quantile_is_the_ceil_rank():
    scores = np.arange(1.0, 20.0)  # n = 19: ceil(20 * 0.95) = 19 -> the largest
    assert conformal_upper_quantile(scores, 0.95) == 19.0
    assert conformal_upper_quantile(np.arange(1.0, 11.0), 0.5) == 6.0  # ceil(11 * .5) = 6
    assert conformal_upper_quantile([3.0, np.nan, 1.0, 2.0], 0.5) == 2.0  # NaN ignored, n=3


def test_too_few_scores_raises():
    with pytest.raises(ValueError, match="too few"):
        conformal_upper_quantile(np.arange(18.0), 0.95)
    with pytest.raises(ValueError, match="too few"):
        km_conformal_upper_quantile(np.arange(18.0), np.zeros(18, bool), 0.95)
    with pytest.raises(ValueError, match="NaN"):
        conformal_upper_quantile([np.nan, np.nan], 0.5)
    with pytest.raises(ValueError, match="confidence_level"):
        conformal_upper_quantile([1.0, 2.0], 1.0)


@pytest.mark.parametrize(("level", "n_min"), [(0.5, 1), (0.9, 9), (0.95, 19), (0.99, 99)])
def test_min_calibration_size(level, n_min):
    assert min_calibration_size(level) == n_min


def test_kaplan_meier_hand_computed():
    # scores 1, 2+, 3, 4: S(1) = 3/4, S(3) = 3/4 * 1/2, S(4) = 0
    event, cdf = kaplan_meier_cdf([1.0, 2.0, 3.0, 4.0], [False, True, False, False])
    assert_allclose(event, [1.0, 3.0, 4.0])
    assert_allclose(cdf, [0.25, 0.625, 1.0])
    # tie between an event and a censored score: the censored row is at risk
    event, cdf = kaplan_meier_cdf([1.0, 1.0, 2.0], [False, True, False])
    assert_allclose(cdf, [1 / 3, 1.0])


def test_km_quantile_hand_computed():
    scores = np.arange(1.0, 21.0)
    censored = np.zeros(20, bool)
    censored[-1] = True
    # target 0.9 * 21 / 20 = 0.945; F(19) = 19/20 >= 0.945
    assert km_conformal_upper_quantile(scores, censored, 0.9) == 19.0
    # censoring the 2nd score moves its mass up: F(k) = 1 - (19/20) (20 - k) / 18 for k >= 3
    censored = np.zeros(20, bool)
    censored[1] = True
    # target 0.5 * 21 / 20 = 0.525; F(10) = 0.472, F(11) = 0.525
    assert km_conformal_upper_quantile(scores, censored, 0.5) == 11.0


def test_km_equals_split_conformal_without_censoring():
    rng = np.random.default_rng(0)
    for n in (19, 20, 57, 500):
        scores = rng.normal(size=n)
        for level in (0.5, 0.9, 0.95):
            if n >= min_calibration_size(level):
                assert km_conformal_upper_quantile(
                    scores, np.zeros(n, bool), level
                ) == conformal_upper_quantile(scores, level)


def test_km_falls_back_to_inf_when_curve_stops_short():
    scores = np.arange(1.0, 41.0)
    censored = scores > 30  # the top quarter only known from below
    assert km_conformal_upper_quantile(scores, censored, 0.95) == math.inf
    assert km_conformal_upper_quantile(scores, censored, 0.5) < 30


def test_km_coverage_with_independent_censoring():
    """Scores censored independently of their value: KM quantile still covers (asymptotically)."""
    rng = np.random.default_rng(3)
    n, level, hits = 500, 0.9, []
    for _ in range(200):
        true = rng.normal(size=n)
        censor_at = rng.normal(loc=1.0, size=n)
        observed = np.minimum(true, censor_at)
        q = km_conformal_upper_quantile(observed, true > censor_at, level)
        hits.append(np.mean(rng.normal(size=500) <= q))
    assert np.mean(hits) >= level - 0.01
    assert np.mean(hits) <= level + 0.03
