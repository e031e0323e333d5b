"""Engine-ready predictions: the default walltime level and PhoSim-shaped checkpoint plans."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cputime
from cputime.predictions import PREDICTION_COLUMNS, predict_jobs

TWINKLES = Path(__file__).resolve().parents[1] / "features" / "twinkles_run1.csv"


@pytest.fixture(scope="module")
def model():
    return cputime.load_model()


@pytest.fixture(scope="module")
def visits():
    return pd.read_csv(TWINKLES).iloc[::40].reset_index(drop=True)


def test_default_level_loses_the_least_cpu_and_a_fixed_level_stays_fixed(model, visits):
    fixed = predict_jobs(model, visits, confidence_level=0.95)
    default = predict_jobs(model, visits)
    assert list(default.columns[: len(PREDICTION_COLUMNS)]) == PREDICTION_COLUMNS
    assert (fixed["confidence"] == 0.95).all()
    single = default["segments"] == 1
    groups = model.calibration_group_of(visits)  # moon up / down: each its own scores
    for group in np.unique(groups):
        level = default.loc[single & (groups == group), "confidence"].unique()
        assert len(level) == 1 and 0.95 < level[0] < 1.0  # a kill costs more than unused time
    assert (
        default.loc[single, "cpu_seconds_upper"] >= fixed.loc[single, "cpu_seconds_upper"]
    ).all()
    # Unused reservation that costs more than a kill's share gives a lower level.
    frugal = predict_jobs(model, visits, overreserve_cost=5.0)
    assert (frugal["confidence"] < default["confidence"]).all()


def test_a_checkpointed_job_risks_one_segment_so_its_level_is_lower(model, visits):
    plans = predict_jobs(model, visits, queue_max_seconds=12 * 3600.0)
    split = plans["segments"] > 1
    assert split.any() and (~split).any()
    assert plans.loc[split, "confidence"].max() <= plans.loc[~split, "confidence"].min()
    times = plans.loc[split, "segment_slurm_times"].str.split(";")
    assert (times.str.len() == plans.loc[split, "segments"]).all()
    fits = plans["fits_queue"]
    assert (plans.loc[fits, "walltime_seconds"] <= 0.9 * 12 * 3600.0).all()
    assert (plans.loc[~fits, "plan_note"].str.contains("a queue of")).all()
    assert np.all(plans["total_walltime_seconds"] >= plans["walltime_seconds"])
