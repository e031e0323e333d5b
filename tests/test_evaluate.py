"""Tests of cputime.model.evaluate: metrics on a hand-made table, baselines and a tiny CV run."""

from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

from cputime.model import evaluate
from cputime.model.estimator import CPUTimeRegressor
from cputime.runs.training import load_training_table

DATA = Path(__file__).resolve().parents[1] / "cputime" / "data"
FEATURES = ["filter", "moonalt", "moonphase", "dist2moon", "sunalt", "airmass",
            "sky_mag_per_arcsec2"]


def twinkles():
    table = load_training_table(
        DATA / "twinkles_run1_train.csv", target="cputime", censored_col="runlimit",
        host_col="hostname", host_slowdowns=DATA / "twinkles_host_factors.csv",
    )
    return table.rename(columns={"cpu_seconds_ref": "cpu_seconds"})


def test_upper_bound_metrics_hand_made():
    hour = 3600.0
    y = np.array([1, 2, 4, 10]) * hour  # last job killed at 10 h (true CPU >= 10 h)
    censored = np.array([False, False, False, True])
    median = np.array([1, 2, 8, 5]) * hour
    upper = np.array([2, 1, 5, 20]) * hour  # job 2 killed (1 h < 2 h); job 4 fate unknown
    m = evaluate.upper_bound_metrics(y, censored, median, upper)
    assert m["n"] == 4 and m["n_censored"] == 1
    assert_allclose(m["mae_dex"], np.log10(2) / 3)
    assert_allclose(m["coverage_finished"], 2 / 3)
    assert_allclose(m["coverage_all_min"], 2 / 4)
    assert_allclose(m["coverage_all_max"], 3 / 4)
    assert_allclose(m["median_upper_ratio"], 1.25)  # ratios 2, 0.5, 1.25
    assert_allclose(m["killed_share_min"], 1 / 4)
    assert_allclose(m["killed_share_max"], 2 / 4)
    assert_allclose(m["killed_cpu_hours"], 1.0)  # job 2 ran 1 h and was killed
    assert_allclose(m["unused_reserved_hours"], 1 + 1)  # jobs 1 and 3
    assert_allclose(m["reserved_overhead"], 2 / 7)
    # a censored job whose walltime is below its kill point is surely killed
    m = evaluate.upper_bound_metrics(y, censored, median, np.array([2, 2, 5, 8]) * hour)
    assert_allclose(m["killed_share_min"], 1 / 4)
    assert_allclose(m["killed_cpu_hours"], 8.0)


def test_censored_abs_error():
    y = np.array([10.0, 100.0, 100.0])
    censored = np.array([False, True, True])
    median = np.array([100.0, 1000.0, 10.0])  # censored: above the bound costs nothing
    assert_allclose(evaluate.censored_abs_error_dex(y, censored, median), (1 + 0 + 1) / 3)


def test_load_twinkles_and_baselines():
    table = twinkles()
    assert len(table) == 934 and table["censored"].sum() == 87
    assert {"cpu_seconds", "seeing", "filter", "expmjd"} <= set(table.columns)
    X, y = table, table["cpu_seconds"].to_numpy()
    fixed = evaluate.FixedWalltime().fit(X, y)
    assert np.unique(fixed.predict_upper(X, 0.95)).size == 1
    per_filter = evaluate.PerFilterWalltime().fit(X, y)
    assert np.unique(per_filter.predict_upper(X, 0.95)).size == 6
    forest = evaluate.Twinkles2016Forest(n_estimators=20).fit(X, y)
    assert np.all(forest.predict_upper(X, 0.9) >= forest.predict(X) * 0.999)


@pytest.fixture(scope="module")
def tiny_cv(tmp_path_factory):
    table = twinkles().sample(300, random_state=0).reset_index(drop=True)
    models = {
        "ours": (lambda: CPUTimeRegressor(n_estimators=30, cv=3), "censored"),
        "ours drop": (lambda: CPUTimeRegressor(n_estimators=30, cv=3), "drop"),
        "fixed walltime": (evaluate.FixedWalltime, "exact"),
    }
    plots = tmp_path_factory.mktemp("plots")
    predictions = evaluate.cross_val_predictions(
        table, models, features=FEATURES, n_splits=3, progress=False, levels=(0.5, 0.9),
    )
    evaluate.plot_predicted_vs_actual(predictions, plots / "predicted_vs_actual.png",
                                      models=("ours", "fixed walltime"))
    evaluate.plot_coverage(predictions, plots / "coverage.png")
    evaluate.plot_tradeoff(predictions, plots / "tradeoff.png")
    return evaluate.summarize_predictions(predictions, 0.9), plots


def test_cross_validation_and_plots(tiny_cv):
    result, plots = tiny_cv
    assert set(result.index.get_level_values("model")) == {"ours", "ours drop", "fixed walltime"}
    assert set(result.index.get_level_values("split")) == {"kfold", "time"}
    assert result.loc[("ours", "kfold"), "n"] == 300
    assert result.loc[("ours", "kfold"), "mae_dex"] < result.loc[("fixed walltime", "kfold"),
                                                                   "mae_dex"]
    for name in ("predicted_vs_actual.png", "coverage.png", "tradeoff.png"):
        assert (plots / name).stat().st_size > 1000
