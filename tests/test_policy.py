"""Walltime policy: pure arithmetic, checked by hand."""

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from cputime.model.conformal import km_conformal_upper_quantile
from cputime.physics.checkpoints import N_SOURCE_TYPES
from cputime.planning.policy import (
    loss_minimising_level,
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
    assert walltime_seconds(3600.0, host_slowdown=2.0, setup_seconds=120.0) == 7320.0
    # 100 s + 30 s -> 130 s -> 180 s.
    assert walltime_seconds(100.0, setup_seconds=30.0) == 180.0
    four = walltime_seconds(36000.0, threads=4, setup_seconds=0.0, parallel_fraction=0.85)
    assert four == math.ceil(36000.0 / thread_speedup(4, 0.85) / 60) * 60


def test_host_slowdown_must_be_positive_and_the_old_keyword_still_works():
    for bad in (0.0, -1.0, math.nan):
        with pytest.raises(ValueError, match="host_slowdown must be positive"):
            walltime_seconds(3600.0, host_slowdown=bad)
    # host_factor meant the same (host seconds per reference second) here: renamed, not inverted.
    with pytest.warns(DeprecationWarning, match=r"host_factor= is deprecated; use host_slowdown="):
        assert walltime_seconds(3600.0, host_factor=2.0, setup_seconds=120.0) == 7320.0
    with pytest.raises(TypeError, match="got both host_factor= and its new name host_slowdown="):
        walltime_seconds(3600.0, host_factor=2.0, host_slowdown=2.0)


def _types(**seconds_by_type) -> np.ndarray:
    """A one-job (1, 73) array of CPU by PhoSim source type, e.g. ``_types(t54=600.0)``."""
    row = np.zeros((1, N_SOURCE_TYPES))
    for name, value in seconds_by_type.items():
        row[0, int(name[1:])] = value
    return row


def test_plan_single_job_when_it_fits():
    plan = plan_walltime(_types(t15=10 * 3600.0), 0.0, queue_max_seconds=48 * 3600.0)
    assert plan.checkpointtotal[0] == 0 and plan.segments[0] == 1
    # 36000 s of CPU + 120 s set-up: 601 minutes.
    assert plan.walltime_seconds[0] == 36120.0
    assert plan.slurm_times() == [["0-10:02:00"]]
    assert plan.fits_queue[0] and plan.advice[0] == ""


def test_plan_follows_phosims_split_not_an_even_one():
    # Everything but type 72 is in segment 0 when T = 1, so T = 1 cannot help; T = 2 puts the
    # dark sky (types 10-19) in segment 0 and a 16.5-17.5 mag bin (type 54) in segment 1.
    types = _types(t10=2000.0, t15=2000.0, t54=3000.0)
    plan = plan_walltime(types, 60.0, queue_max_seconds=5000.0, setup_seconds=0.0, queue_margin=0.0)
    assert plan.checkpointtotal[0] == 2
    segments = plan.segment_walltime_seconds[0, :3]
    assert_allclose(segments, [4080.0, 3060.0, 60.0])  # set-up paid by every segment
    assert np.isnan(plan.segment_walltime_seconds[0, 3:]).all()
    assert_allclose(plan.total_walltime_seconds[0], segments.sum())


def test_plan_with_two_jobs_chooses_per_job():
    types = np.vstack([_types(t15=100.0), _types(t12=50000.0, t40=50000.0)])
    plan = plan_walltime(types, [0.0, 0.0], queue_max_seconds=20 * 3600.0)
    assert list(plan.checkpointtotal) == [0, 2]  # 40 - 35.5 mag split from the sky at T = 2
    assert (plan.walltime_seconds <= 0.9 * 20 * 3600.0).all()


def test_plan_says_when_one_source_type_is_longer_than_the_queue():
    plan = plan_walltime(_types(t62=200 * 3600.0), 60.0, queue_max_seconds=48 * 3600.0)
    assert not plan.fits_queue[0]
    # The longest segment is the bin of the bright star: no split can make it shorter.
    assert plan.walltime_seconds[0] >= 200 * 3600.0
    assert "one source type alone needs" in plan.advice[0]
    assert "a queue of" in plan.advice[0] and "threads" in plan.advice[0]


def test_plan_rejects_a_queue_limit_of_zero():
    with pytest.raises(ValueError, match="queue_max_seconds"):
        plan_walltime(_types(t15=1.0), 0.0, queue_max_seconds=0.0)


def test_signal_lead_is_bounded():
    assert signal_lead_seconds(60.0) == 300
    assert signal_lead_seconds(20 * 3600.0) == 1800
    assert signal_lead_seconds(10000.0) == 500


def test_loss_minimising_level_weighs_kills_against_unused_reservation():
    rng = np.random.default_rng(0)
    scores = rng.normal(0.0, 0.1, 400)
    censored = np.zeros(400, bool)
    cheap = loss_minimising_level(scores, censored, overreserve_cost=0.02)
    dear = loss_minimising_level(scores, censored, overreserve_cost=0.5)
    # Unused reservation that costs little buys a higher level; a kill that loses only a
    # segment buys a lower one.
    assert 0.5 < dear < cheap < 1.0
    segment = loss_minimising_level(scores, censored, overreserve_cost=0.1, kill_cost=0.2)
    assert segment < loss_minimising_level(scores, censored, overreserve_cost=0.1)
    # The level's conformal quantile is the minimising offset: check it against a brute force.
    offsets = np.sort(scores)
    z = scores[None, :]
    loss = 0.1 * np.where(z <= offsets[:, None], np.exp(offsets[:, None]) - np.exp(z), 0).mean(1)
    loss += np.exp(offsets) * (z > offsets[:, None]).mean(1)
    level = loss_minimising_level(scores, censored, overreserve_cost=0.1)
    assert_allclose(km_conformal_upper_quantile(scores, censored, level), offsets[np.argmin(loss)])


def test_loss_minimising_level_counts_killed_calibration_jobs_as_killed():
    scores = np.linspace(-0.2, 0.2, 100)
    censored = scores > 0.1  # the slowest jobs were killed: their true scores are unknown
    level = loss_minimising_level(scores, censored, overreserve_cost=0.1)
    assert km_conformal_upper_quantile(scores, censored, level) <= 0.1
    with pytest.raises(ValueError, match="positive"):
        loss_minimising_level(scores, censored, overreserve_cost=0.0)
