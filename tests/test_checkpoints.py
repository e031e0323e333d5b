"""PhoSim's checkpoint split, and plans checked against it on the shipped runs and Twinkles."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import cputime
from cputime.physics.checkpoints import (
    MAX_CHECKPOINTTOTAL,
    N_SOURCE_TYPES,
    every_split_seconds,
    segment_first_types,
    segment_of_source_type,
    segment_seconds,
    source_type_of_magnitude,
)
from cputime.planning.policy import plan_walltime, thread_speedup
from cputime.runs.training import load_runs_table

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "features" / "phosim_runs.csv"


def test_source_type_of_magnitude_follows_phosims_bins():
    # Bin s holds 70.5 - s < m <= 71.5 - s; beyond 40.5 -> 30, at or below -0.5 -> 72.
    mags = np.array([17.0, 16.5, 16.4999, 9.5, 41.0, 40.5, -0.5, -3.0])
    assert list(source_type_of_magnitude(mags)) == [54, 55, 55, 62, 30, 31, 72, 72]


@pytest.mark.parametrize("total", [0, 1, 2, 3, 4, 5, 7, 11, 36, 71, 72])
def test_segments_are_phosims_integer_split(total):
    segment = segment_of_source_type(np.arange(N_SOURCE_TYPES), total)
    first = segment_first_types(total)
    for k in range(total + 1):
        assert (segment[first[k] : first[k + 1]] == k).all()
    rng = np.random.default_rng(total)
    costs = rng.uniform(0, 10, (3, N_SOURCE_TYPES))
    expected = np.stack([costs[:, segment == k].sum(axis=1) for k in range(total + 1)], axis=1)
    assert_allclose(segment_seconds(costs, np.full(3, 5.0), total), expected + 5.0)


def test_t1_puts_everything_but_type_72_in_the_first_segment():
    assert list(segment_first_types(1)) == [0, 72, 73]
    assert list(segment_first_types(3)) == [0, 24, 48, 72, 73]  # the K run: sky alone first


def test_checkpointtotal_out_of_range():
    with pytest.raises(ValueError, match="checkpointtotal"):
        segment_of_source_type(np.arange(3), MAX_CHECKPOINTTOTAL + 1)


@pytest.fixture(scope="module")
def model():
    return cputime.load_model()


def test_measured_k_segment_is_within_its_planned_time(model):
    """Group K: segment 0 of F_moondown_v2 with checkpointtotal 3, measured."""
    segments = load_runs_table(RUNS, segments=True)
    k_row = segments.features["run_id"] == "K_moondown_v2_T3_k0"
    assert k_row.sum() == 1
    job = segments.features[k_row].reset_index(drop=True)
    predicted = model.predict_frame(job)
    by_type, every = model.upper_seconds_by_source_type(job, predicted)
    # On the runs' host (its slowdown S) with no extra wall set-up: CPU only.
    planned = segment_seconds(by_type, every, 3)[0] * model.runs_host_slowdown_
    measured = float(segments.cpu_seconds[k_row][0])
    assert planned[0] >= measured
    assert planned[0] < 1.5 * measured  # and not a blanket over-reservation
    # The dark sky is all in segment 0: the other segments are the stars and set-up only.
    assert planned[0] > 5 * planned[1:].max()


def _median_split(model, features):
    """PhoSim's split of the predicted *median* cost, recomputed type by type."""
    predicted = model.predict_frame(features)
    by_type_upper, every_upper = model.upper_seconds_by_source_type(features, predicted)
    unit = predicted.assign(
        source_upper_ratio=1.0, sky_upper_ratio=1.0, cpu_seconds_upper=predicted.cpu_seconds_p50
    )
    by_type, every = model.upper_seconds_by_source_type(features, unit)
    return by_type_upper, every_upper, by_type, every


def test_no_planned_segment_is_shorter_than_phosims_split_of_the_prediction(model):
    runs = load_runs_table(RUNS).features
    twinkles = pd.read_csv(ROOT / "features" / "twinkles_run1.csv")
    features = pd.concat([runs, twinkles], ignore_index=True)
    upper_types, upper_every, types, every = _median_split(model, features)
    for queue_hours in range(1, 49):
        plans = plan_walltime(upper_types, upper_every, queue_max_seconds=queue_hours * 3600.0)
        for total in np.unique(plans.checkpointtotal):
            rows = plans.checkpointtotal == total
            segment = segment_of_source_type(np.arange(N_SOURCE_TYPES), total)
            split = np.stack(
                [types[rows][:, segment == k].sum(axis=1) for k in range(total + 1)], axis=1
            )
            split = split + every[rows][:, None]
            planned = plans.segment_walltime_seconds[rows, : total + 1] / thread_speedup(1)
            assert (planned >= split).all(), (queue_hours, total)
        fits = plans.fits_queue
        assert (plans.walltime_seconds[fits] <= 0.9 * queue_hours * 3600.0).all()


def test_every_split_at_once_equals_each_split():
    rng = np.random.default_rng(0)
    types, setup = rng.exponential(100.0, (20, N_SOURCE_TYPES)), rng.exponential(50.0, 20)
    every = every_split_seconds(types, setup)
    assert every.shape == (20, MAX_CHECKPOINTTOTAL + 1, MAX_CHECKPOINTTOTAL + 1)
    for total in range(MAX_CHECKPOINTTOTAL + 1):
        np.testing.assert_array_equal(
            every[:, total, : total + 1], segment_seconds(types, setup, total)
        )
        assert np.isnan(every[:, total, total + 1 :]).all()
