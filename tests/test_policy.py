"""Walltime policy: pure arithmetic, checked by hand."""

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from cputime.policy import (
    MAX_SEGMENTS,
    host_factor_from_reference_factor,
    plan_walltime,
    signal_lead_seconds,
    thread_speedup,
    walltime_seconds,
)


def test_thread_speedup_amdahl():
    assert thread_speedup(1) == 1.0
    assert_allclose(thread_speedup(4, 0.85), 1 / (0.15 + 0.85 / 4))
    # Poor efficiency at high thread counts: never above 1 / (1 - p).
    assert thread_speedup(1024, 0.85) < 1 / 0.15
    assert_allclose(thread_speedup(np.array([1, 2]), 1.0), [1.0, 2.0])


@pytest.mark.parametrize("threads", [0, -1])
def test_thread_speedup_rejects_no_threads(threads):
    with pytest.raises(ValueError, match="threads"):
        thread_speedup(threads)


def test_walltime_formula_rounds_up_to_the_minute():
    # 3600 s x 2 (slower host) / 1 thread + 120 s setup = 7320 s = 122 min exactly.
    assert walltime_seconds(3600.0, host_factor=2.0, setup_seconds=120.0) == 7320.0
    # 100 s + 30 s -> 130 s -> 180 s.
    assert walltime_seconds(100.0, setup_seconds=30.0) == 180.0
    four = walltime_seconds(36000.0, threads=4, setup_seconds=0.0, parallel_fraction=0.85)
    assert four == math.ceil(36000.0 / thread_speedup(4, 0.85) / 60) * 60


def test_host_factor_conversion():
    assert_allclose(host_factor_from_reference_factor(1.71), 1 / 1.71)
    with pytest.raises(ValueError):
        host_factor_from_reference_factor(0.0)


def test_plan_single_job_when_it_fits():
    plan = plan_walltime(10 * 3600.0, queue_max_seconds=48 * 3600.0, setup_seconds=120.0)
    assert plan.segments == 1
    assert plan.checkpointtotal == 0
    assert plan.walltime_seconds == 10 * 3600.0 + 120.0
    assert plan.slurm_time == "0-10:02:00"
    assert plan.slurm_signal == f"B:USR1@{signal_lead_seconds(plan.walltime_seconds)}"


def test_plan_segments_fit_the_queue_with_margin():
    queue = 48 * 3600.0
    plan = plan_walltime(500 * 3600.0, queue_max_seconds=queue, setup_seconds=120.0)
    assert plan.segments > 1
    assert plan.checkpointtotal == plan.segments - 1
    assert plan.walltime_seconds <= queue
    # The heaviest segment (1.5x its share) plus the setup fits within 90 % of the queue + 1 min.
    assert 1.5 * 500 * 3600.0 / plan.segments + 120.0 <= 0.9 * queue + 60.0
    # One fewer segment would not.
    assert 1.5 * 500 * 3600.0 / (plan.segments - 1) + 120.0 > 0.9 * queue - 120.0
    assert plan.fits_queue


def test_plan_more_segments_than_phosim_can_make_is_flagged():
    plan = plan_walltime(1e9, queue_max_seconds=3600.0, setup_seconds=60.0)
    assert plan.segments == MAX_SEGMENTS
    assert not plan.fits_queue


def test_signal_lead_is_bounded():
    assert signal_lead_seconds(60.0) == 300
    assert signal_lead_seconds(20 * 3600.0) == 1800
    assert signal_lead_seconds(10000.0) == 500
