"""The composite model on small synthetic data drawn from the cost model itself."""

import numpy as np
import pandas as pd
import pytest

from cputime.model.composite import CPUTimeModel, MeasuredRuns
from cputime.physics.cost import PhosimCostModel
from cputime.physics.features import CATALOG_COLUMNS, FEATURE_COLUMNS
from cputime.physics.photons import sky_photons_per_sensor

SMALL = {"n_estimators": 40, "learning_rate": 0.2, "cv": 3}


def _rows(n: int, rng, *, sky: bool, **fixed) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "obshistid": np.arange(n),
            "sensor": "R22_S11",
            "filter": rng.integers(0, 6, n),
            "vistime": 30.0,
            "nsnap": 1,
            "exposure_seconds": 30.0,
            "airmass": rng.uniform(1.0, 1.5, n),
            "altitude": 60.0,
            "moonalt": rng.uniform(-40, 60, n),
            "moonphase": rng.uniform(0, 100, n),
            "dist2moon": rng.uniform(20, 150, n),
            "sunalt": rng.uniform(-60, -20, n),
            "seeing": 0.7,
            "straylight_cut_mag": 10.0,
        }
    )
    frame["sky_mag_per_arcsec2"] = 21.0 - 2.0 * (frame["moonalt"] > 0) * frame["moonphase"] / 100
    frame["sky_photons"] = (
        sky_photons_per_sensor(frame["sky_mag_per_arcsec2"], 30.0) if sky else 0.0
    )
    for column in CATALOG_COLUMNS:
        frame[column] = np.nan
    for column, value in fixed.items():
        frame[column] = value
    return frame[["obshistid", "sensor", *FEATURE_COLUMNS]]


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(1)
    truth = PhosimCostModel.from_parameters()
    production = _rows(200, rng, sky=True)
    host = 4.0
    y = host * truth.predict(production) * np.exp(rng.normal(0, 0.05, 200))
    censored = y > np.quantile(y, 0.95)
    y = np.where(censored, np.quantile(y, 0.95), y)
    runs = _rows(24, rng, sky=False, faint_star_photons=rng.uniform(5e7, 5e8, 24))
    runs["bright_star_mag_1"] = np.where(np.arange(24) % 3 == 0, rng.uniform(9, 15, 24), np.nan)
    runs_cpu = truth.predict(runs) * np.exp(rng.normal(0, 0.02, 24))
    measured = MeasuredRuns(runs, runs_cpu, np.zeros(24, bool), (np.arange(24) % 6).astype(str))
    model = CPUTimeModel(regressor_params=SMALL).fit(production, y, censored, runs=measured)
    return model, production, runs


def test_runs_host_slowdown_and_bounds(fitted):
    model, production, _ = fitted
    assert 1 / 5.0 < model.runs_host_slowdown_ < 1 / 3.0  # the runs' host is 3 to 5 times faster
    median = model.predict(production)
    upper = model.predict_upper(production)
    assert np.all(np.isfinite(upper))
    assert np.all(upper >= median)
    assert np.all(model.predict_upper(production, 0.99) >= model.predict_upper(production, 0.8))


def test_a_bright_star_raises_the_prediction_monotonically(fitted):
    model, production, _ = fitted
    visit = production.iloc[[0]].copy()
    visit["faint_star_photons"] = 1e8
    without = model.predict(visit)[0]
    with_stars = []
    for mag in (15.0, 13.0, 11.0, 9.0, 7.0):
        star = visit.copy()
        star["bright_star_mag_1"] = mag
        with_stars.append(model.predict(star)[0])
    assert with_stars[0] > without
    assert np.all(np.diff(with_stars) > 0)


def test_sky_off_costs_only_the_sources(fitted):
    model, _, runs = fitted
    parts = model.predict_parts(runs)
    assert np.all(parts["sky_seconds"] == 0)
    expected = model.cost_model_.predict(runs) / model.runs_host_slowdown_
    np.testing.assert_allclose(parts["source_seconds"], expected)


def test_missing_feature_is_an_error(fitted):
    model, production, _ = fitted
    with pytest.raises(ValueError, match="missing"):
        model.predict(production.drop(columns=["moonalt"]))
