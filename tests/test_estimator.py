"""Tests of cputime.model.estimator.CPUTimeRegressor on small synthetic censored problems."""

import numpy as np
import pandas as pd
import pytest

from cputime.model.estimator import CPUTimeRegressor

LIMIT = 3.0e5  # CPU limit of the synthetic batch system [s]


def synthetic(n=300, seed=0):
    """log CPU rises with 'moonalt' when the moon is up; jobs above LIMIT are killed."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "filter": rng.integers(0, 6, n),
        "moonalt": rng.uniform(-60, 60, n),
        "noise": rng.normal(size=n),
    })
    log_seconds = (
        np.log(2e4) + 0.2 * X["filter"] + 0.05 * np.clip(X["moonalt"], 0, None)
        + rng.normal(scale=0.1, size=n)
    )
    true = np.exp(log_seconds.to_numpy())
    censored = true > LIMIT
    return X, np.minimum(true, LIMIT), censored, true


def small(**params):
    settings = {"n_estimators": 40, "learning_rate": 0.15, "max_depth": 3, "cv": 3, **params}
    return CPUTimeRegressor(**settings)


def test_fit_predict_shapes_and_order():
    X, y, censored, _ = synthetic()
    model = small().fit(X, y, censored)
    median = model.predict(X)
    upper = model.predict_upper(X)
    assert median.shape == upper.shape == (len(X),)
    assert np.all(upper >= median)
    np.testing.assert_allclose(model.predict_log10(X), np.log10(median))
    assert model.conformity_scores_.size == len(X)
    assert model.score_censored_.sum() == censored.sum()
    assert set(model.group_log_offsets_) <= {"up", "down"}


def test_upper_monotone_in_confidence():
    X, y, censored, _ = synthetic()
    model = small(calibration_groups=None).fit(X, y, censored)
    uppers = [model.predict_upper(X, c) for c in (0.5, 0.8, 0.9, 0.95)]
    for low, high in zip(uppers, uppers[1:], strict=False):
        assert np.all(high >= low)
    np.testing.assert_array_equal(model.predict_upper(X, 0.95), model.predict_upper(X))


def test_censored_rows_raise_the_prediction():
    """Treating killed jobs as censored predicts more CPU for them than dropping them."""
    X, y, censored, true = synthetic(n=400, seed=1)
    assert 20 < censored.sum() < 200
    with_censored = small().fit(X, y, censored)
    dropped = small().fit(X[~censored], y[~censored])
    killed = X[censored]
    assert np.median(with_censored.predict(killed)) > 1.1 * np.median(dropped.predict(killed))
    assert np.median(with_censored.predict(killed)) > LIMIT


def test_feature_names_must_match():
    X, y, censored, _ = synthetic(n=100)
    model = small().fit(X, y, censored)
    with pytest.raises(ValueError, match="feature names"):
        model.predict(X.rename(columns={"noise": "other"}))
    with pytest.raises(TypeError, match="DataFrame"):
        model.predict(X.to_numpy())
    # column order does not matter
    np.testing.assert_allclose(model.predict(X[X.columns[::-1]]), model.predict(X))


def test_feature_names_param_selects_columns():
    X, y, censored, _ = synthetic(n=100)
    model = small(feature_names=["filter", "moonalt"]).fit(X, y, censored)
    assert model.features_used_ == ["filter", "moonalt"]
    assert model.n_features_in_ == 3
    assert model.booster_.num_features() == 2


def test_not_fitted_errors():
    X, _, _, _ = synthetic(n=50)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        small().predict(X)
    with pytest.raises(ValueError, match=r"conformalize\(\).*fit\(\)"):
        small().conformalize(X, np.ones(len(X)))


def test_split_mode_requires_conformalize():
    X, y, censored, _ = synthetic(n=300)
    model = small(cv="split").fit(X[:200], y[:200], censored[:200])
    model.predict(X)  # the median needs no calibration
    with pytest.raises(ValueError, match=r"predict_upper\(\).*conformalize\(\)"):
        model.predict_upper(X)
    model.conformalize(X[200:], y[200:], censored[200:])
    assert model.conformity_scores_.size == 100
    assert np.all(model.predict_upper(X) >= model.predict(X))


def test_invalid_params_raise_in_fit():
    X, y, _, _ = synthetic(n=50)
    model = CPUTimeRegressor(aft_loss_distribution="cauchy")  # __init__ does not validate
    with pytest.raises(ValueError, match="aft_loss_distribution"):
        model.fit(X, y)
    with pytest.raises(ValueError, match="cv"):
        CPUTimeRegressor(cv=1).fit(X, y)
    with pytest.raises(ValueError, match="y must be"):
        small().fit(X, -np.ones(len(X)))


class LinearPrior:
    """Physical prior for the tests: ln CPU = ln(2e4) + 0.2 filter [ln s]."""

    def predict_log_seconds(self, X):
        return np.log(2e4) + 0.2 * X["filter"].to_numpy(dtype=float)


def test_prior_is_the_base_margin():
    X, y, censored, _ = synthetic(n=200)
    # with no boosting rounds the prediction is the prior itself
    model = CPUTimeRegressor(n_estimators=1, learning_rate=1e-6, cv=3, prior=LinearPrior())
    model.fit(X, y, censored)
    np.testing.assert_allclose(
        np.log(model.predict(X)), LinearPrior().predict_log_seconds(X), atol=1e-4
    )
    with pytest.raises(ValueError, match="predict_log_seconds"):
        CPUTimeRegressor(prior=object()).fit(X, y)


def test_monotone_constraints():
    X, y, censored, _ = synthetic(n=200)
    model = small(monotone_constraints={"moonalt": 1}).fit(X, y, censored)
    grid = pd.DataFrame({"filter": 2, "moonalt": np.linspace(-60, 60, 50), "noise": 0.0})
    assert np.all(np.diff(model.predict(grid)) >= 0)
    with pytest.raises(ValueError, match="unknown features"):
        small(monotone_constraints={"nope": 1}).fit(X, y, censored)


def test_offsets_of_other_levels_are_computed_once_and_follow_new_scores():
    X, y, censored, _ = synthetic(n=300)
    model = small(cv="split").fit(X[:200], y[:200], censored[:200])
    model.conformalize(X[200:250], y[200:250], censored[200:250])
    first = model.predict_upper(X, 0.8)
    assert set(model.level_offsets_) == {0.8}
    assert model.level_offsets_[0.8] == model._offsets(0.8)
    np.testing.assert_array_equal(model.predict_upper(X, 0.8), first)
    # New scores, new offsets: the cached level is not reused.
    model.conformalize(X[250:], y[250:], censored[250:])
    assert model.level_offsets_ == {}
    again = model.predict_upper(X, 0.8)
    assert model.level_offsets_[0.8] == model._offsets(0.8)
    assert not np.array_equal(again, first)
