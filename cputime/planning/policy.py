"""Walltime policy: from a CPU-time upper bound to what a batch system needs.

Pure functions with no I/O, so that the command line, the HTTP service and the workflow helpers
all give the same numbers for the same prediction.

Conventions
-----------
CPU times from the model are on the *reference host* (the slowest Twinkles host class, "fell").
``host_slowdown`` is the CPU time a job takes on the host that will run it divided by its time on
the reference host: 1.0 for the reference host, 0.585 (= 1/1.71) for the Twinkles host class 3.
It is the same number, under the same name, as in the host-slowdowns files of ingestion
(:mod:`cputime.runs.hosts`). The older keyword ``host_factor`` (the same meaning) is accepted with
a DeprecationWarning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cputime.deprecation import renamed_keywords
from cputime.durations import format_slurm_time
from cputime.model.conformal import kaplan_meier_cdf
from cputime.physics.checkpoints import MAX_CHECKPOINTTOTAL, every_split_seconds, segment_seconds
from cputime.physics.columns import distinct

__all__ = [
    "DEFAULT_PARALLEL_FRACTION",
    "DEFAULT_SETUP_SECONDS",
    "WalltimePlans",
    "thread_speedup",
    "walltime_seconds",
    "signal_lead_seconds",
    "format_slurm_times",
    "loss_minimising_level",
    "plan_walltime",
]

#: Parallel fraction of PhoSim's raytrace for Amdahl's law [unitless]. PhoSim 3.x threads the
#: photon loop but not the setup, atmosphere and per-source bookkeeping, and its parallel
#: efficiency is poor at high thread counts: with 0.85 a job runs 2.8x faster on 4 threads,
#: 3.9x on 8 and at most 6.7x on any number of threads.
DEFAULT_PARALLEL_FRACTION = 0.85

#: Wall time every batch job (and every checkpoint segment) pays on top of the CPU it uses:
#: start-up, reading the catalog and SEDs, the atmosphere screens, writing the image [s].
DEFAULT_SETUP_SECONDS = 120.0

#: Cost of a reserved but unused second relative to a CPU second lost to a kill [unitless]:
#: unused reservation is not charged (Slurm charges elapsed time) but delays the queue's
#: backfill; a kill throws away everything the job had used and must be run again.
DEFAULT_OVERRESERVE_COST = 0.1

#: Share of the queue limit kept free in every segment, for the host being slower than expected.
DEFAULT_QUEUE_MARGIN = 0.10

#: Jobs split at once by :func:`plan_walltime` (73 x 73 segments each: ~5 MB a block).
_SPLIT_BLOCK = 128

#: Segments of each split: ``[T, k]`` is True for ``k <= T``.
_SPLIT_USED = np.tri(MAX_CHECKPOINTTOTAL + 1, dtype=bool)


def thread_speedup(threads: int | np.ndarray, parallel_fraction: float = DEFAULT_PARALLEL_FRACTION):
    """Amdahl speed-up of a PhoSim job run with several threads.

    Parameters
    ----------
    threads : int or array_like
        Threads given to PhoSim (``-t``) [unitless], at least 1.
    parallel_fraction : float
        Fraction of the single-thread CPU time that parallelises [unitless], in [0, 1].

    Returns
    -------
    float or numpy.ndarray
        Wall-time speed-up over one thread [unitless]: ``1 / ((1 - p) + p / threads)``.
    """
    threads = np.asarray(threads, dtype=float)
    if np.any(threads < 1):
        raise ValueError(f"threads must be at least 1, got {threads}")
    if not 0.0 <= parallel_fraction <= 1.0:
        raise ValueError(f"parallel_fraction must be in [0, 1], got {parallel_fraction}")
    speedup = 1.0 / ((1.0 - parallel_fraction) + parallel_fraction / threads)
    return float(speedup) if speedup.ndim == 0 else speedup


@renamed_keywords(host_factor="host_slowdown")
def walltime_seconds(
    cpu_seconds_upper,
    *,
    host_slowdown: float = 1.0,
    threads: int = 1,
    setup_seconds: float = DEFAULT_SETUP_SECONDS,
    parallel_fraction: float = DEFAULT_PARALLEL_FRACTION,
):
    """Walltime of one batch job that must not be killed.

    Parameters
    ----------
    cpu_seconds_upper : float or array_like
        Upper bound of the single-thread CPU time on the reference host [s].
    host_slowdown : float
        Host CPU seconds per reference-host CPU second [unitless] (2.0: twice as slow).
    threads : int
        Threads the job runs with [unitless].
    setup_seconds : float
        Fixed wall time per job on top of the CPU [s].
    parallel_fraction : float
        Amdahl parallel fraction [unitless].

    Returns
    -------
    float or numpy.ndarray
        ``upper * host_slowdown / speedup(threads) + setup``, rounded up to the minute [s].
    """
    if not host_slowdown > 0:
        raise ValueError(f"host_slowdown must be positive, got {host_slowdown}")
    work = np.asarray(cpu_seconds_upper, dtype=float) * host_slowdown
    seconds = work / thread_speedup(threads, parallel_fraction) + setup_seconds
    rounded = np.ceil(seconds / 60.0) * 60.0
    return float(rounded) if rounded.ndim == 0 else rounded


def loss_minimising_level(
    scores: np.ndarray,
    censored: np.ndarray,
    *,
    overreserve_cost: float = DEFAULT_OVERRESERVE_COST,
    kill_cost: float = 1.0,
) -> float:
    """Confidence level of the upper bound whose walltime loses the least CPU.

    A walltime ``w = m e^o`` for a job of median prediction ``m`` and calibration score
    ``z = ln(actual / m)`` loses, in units of ``m``:

    - ``kill_cost * e^o`` when ``z > o``: the job is killed and what it used is lost (1 for a
      single job; a checkpointed job loses only the segment that was killed, about ``1/S`` of
      it for S segments);
    - ``overreserve_cost * (e^o - e^z)`` when ``z <= o``: reserved but unused, which costs the
      queue and the scheduler's backfill, not CPU, hence less.

    The offset ``o`` minimising the expected loss under the Kaplan–Meier distribution of the
    scores is found among the scores themselves; the mass beyond the last finished score (jobs
    killed in calibration whose true time is unknown) counts as killed at every offset.

    Parameters
    ----------
    scores, censored : array_like
        Conformity scores ``ln(actual / predicted)`` and whether each is a lower bound.
    overreserve_cost : float
        Cost of an unused reserved second relative to a second lost to a kill [unitless].
    kill_cost : float
        Share of the job's CPU a kill loses [unitless].

    Returns
    -------
    float
        The confidence level whose conformal quantile is that offset, in (0, 1).
    """
    if overreserve_cost <= 0 or kill_cost <= 0:
        raise ValueError("overreserve_cost and kill_cost must be positive")
    events, cdf = kaplan_meier_cdf(scores, censored)
    if events.size == 0:
        raise ValueError("no finished job among the calibration scores")
    mass = np.diff(cdf, prepend=0.0)
    # E[(e^o - e^z) 1(z <= o)] at each offset o = events[j], by cumulative sums.
    unused = np.exp(events) * np.cumsum(mass) - np.cumsum(mass * np.exp(events))
    loss = overreserve_cost * unused + kill_cost * np.exp(events) * (1.0 - cdf)
    best = int(np.argmin(loss))
    n = np.size(scores)
    # The conformal quantile at level c is the first score with F >= c (n + 1) / n.
    return float(min(cdf[best] * n / (n + 1), 1.0 - 1.0 / (n + 1)))


def signal_lead_seconds(walltime: float) -> int:
    """How long before the walltime Slurm should signal the job to checkpoint.

    Parameters
    ----------
    walltime : float
        The job's walltime [s].

    Returns
    -------
    int
        Lead time [s]: 5 % of the walltime, at least 5 minutes (Slurm delivers signals with up to
        a minute of jitter and a checkpoint writes two images) and at most 30 minutes.
    """
    return int(min(max(300.0, 0.05 * walltime), 1800.0))


@dataclass(frozen=True)
class WalltimePlans:
    """How to run each of n jobs: one batch job, or a chain of PhoSim checkpoint segments.

    Attributes
    ----------
    checkpointtotal : numpy.ndarray of int, shape (n,)
        PhoSim's ``checkpointtotal`` T: the job runs as T + 1 segments (``checkpointcount``
        0..T, one after another); 0 is a single job.
    segment_walltime_seconds : numpy.ndarray, shape (n, 73)
        Walltime of segment k of each job in column k, NaN beyond its last segment [s].
        Segments differ, because PhoSim splits by source type (:mod:`cputime.physics.checkpoints`).
    fits_queue : numpy.ndarray of bool, shape (n,)
        False when no split fits the queue limit (one source type alone is longer).
    advice : numpy.ndarray of str, shape (n,)
        What would fit, for jobs that do not ('' otherwise).
    """

    checkpointtotal: np.ndarray
    segment_walltime_seconds: np.ndarray
    fits_queue: np.ndarray
    advice: np.ndarray

    @property
    def segments(self) -> np.ndarray:
        """Batch jobs per job [unitless]."""
        return self.checkpointtotal + 1

    @property
    def walltime_seconds(self) -> np.ndarray:
        """Longest segment of each job [s]."""
        return np.nanmax(self.segment_walltime_seconds, axis=1)

    @property
    def total_walltime_seconds(self) -> np.ndarray:
        """Sum over each job's segments [s]."""
        return np.nansum(self.segment_walltime_seconds, axis=1)

    def replace_rows(self, rows: np.ndarray, other: WalltimePlans) -> WalltimePlans:
        """These plans with ``rows`` taken from ``other`` (plans of those rows only)."""
        columns = {}
        for name in ("checkpointtotal", "segment_walltime_seconds", "fits_queue", "advice"):
            values = getattr(self, name).copy()
            values[rows] = getattr(other, name)
            columns[name] = values
        return WalltimePlans(**columns)

    def slurm_times(self) -> list[list[str]]:
        """``--time`` of each segment of each job, ``D-HH:MM:SS``."""
        walls = self.segment_walltime_seconds
        used = np.arange(walls.shape[1]) <= self.checkpointtotal[:, None]
        text = format_slurm_times(walls[used]).tolist()
        ends = np.cumsum(self.segments).tolist()
        return [text[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]


def format_slurm_times(seconds: np.ndarray) -> np.ndarray:
    """:func:`cputime.durations.format_slurm_time` of each value, as an object array.

    Walltimes are whole minutes, so a table holds few distinct ones: each is formatted once.
    """
    unique, inverse = distinct(np.asarray(seconds, dtype=float), return_inverse=True)
    return np.array([format_slurm_time(w) for w in unique], dtype=object)[inverse]


@renamed_keywords(host_factor="host_slowdown")
def plan_walltime(
    type_seconds_upper: np.ndarray,
    every_segment_seconds_upper: np.ndarray,
    *,
    host_slowdown: float = 1.0,
    threads: int = 1,
    queue_max_seconds: float | None = None,
    setup_seconds: float = DEFAULT_SETUP_SECONDS,
    parallel_fraction: float = DEFAULT_PARALLEL_FRACTION,
    queue_margin: float = DEFAULT_QUEUE_MARGIN,
) -> WalltimePlans:
    """Walltimes and checkpoint plans of jobs, from the upper bound of each source type's CPU.

    Parameters
    ----------
    type_seconds_upper : array_like, shape (n, 73)
        Upper bound of the single-thread CPU of each PhoSim source type on the reference host
        [s] (:meth:`cputime.model.composite.CPUTimeModel.upper_seconds_by_source_type`).
    every_segment_seconds_upper : array_like, shape (n,)
        CPU every segment pays on top (PhoSim's set-up) on the reference host [s].
    host_slowdown, threads, setup_seconds, parallel_fraction
        As in :func:`walltime_seconds`.
    queue_max_seconds : float, optional
        The queue's walltime limit [s]. A job that does not fit is split with the smallest
        ``checkpointtotal`` whose every segment fits; when none does, with the one whose
        longest segment is shortest.
    queue_margin : float
        Share of the queue limit left free in each segment [unitless].

    Returns
    -------
    WalltimePlans
    """
    types = np.atleast_2d(np.asarray(type_seconds_upper, dtype=float))
    n = len(types)
    every = np.broadcast_to(np.asarray(every_segment_seconds_upper, dtype=float), (n,))
    if queue_max_seconds is not None and queue_max_seconds <= 0:
        raise ValueError(f"queue_max_seconds must be positive, got {queue_max_seconds}")
    bad = ~(np.isfinite(types).all(axis=1) & np.isfinite(every))
    if bad.any():
        raise ValueError(
            f"walltime: the CPU upper bound of job {int(np.flatnonzero(bad)[0])} is not finite "
            "(a confidence level the calibration cannot support, or damaged calibration numbers)"
        )

    def walls(cpu_seconds: np.ndarray) -> np.ndarray:
        return walltime_seconds(
            cpu_seconds,
            host_slowdown=host_slowdown,
            threads=threads,
            setup_seconds=setup_seconds,
            parallel_fraction=parallel_fraction,
        )

    limit = np.inf if queue_max_seconds is None else queue_max_seconds * (1.0 - queue_margin)
    plan = np.full((n, MAX_CHECKPOINTTOTAL + 1), np.nan)
    plan[:, :1] = walls(segment_seconds(types, every, 0))
    chosen = np.zeros(n, dtype=int)
    best = plan[:, 0].copy()
    fits = best <= limit
    # Jobs that one batch job does not fit: every split at once, a block of jobs at a time
    # (73 x 73 segments a job). Keep the first split that fits, else the first one with the
    # shortest longest segment.
    split = np.flatnonzero(~fits)
    for block in np.array_split(split, -(-split.size // _SPLIT_BLOCK)) if split.size else ():
        wall = walls(every_split_seconds(types[block], every[block]))
        longest = np.max(np.where(_SPLIT_USED, wall, -np.inf), axis=2)
        ok = longest <= limit
        any_ok = ok.any(axis=1)
        total = np.where(any_ok, np.argmax(ok, axis=1), np.argmin(longest, axis=1))
        plan[block] = wall[np.arange(block.size), total]
        chosen[block] = total
        best[block] = longest.min(axis=1)
        fits[block] = any_ok
    advice = np.full(n, "", dtype=object)
    pending = ~fits
    if pending.any():  # one text per distinct longest segment (whole minutes: few)
        distinct, inverse = np.unique(best[pending], return_inverse=True)
        texts = [
            _advice(
                float(longest),
                limit,
                float(queue_max_seconds),
                threads,
                parallel_fraction,
                setup_seconds,
                queue_margin,
            )
            for longest in distinct
        ]
        advice[pending] = np.array(texts, dtype=object)[inverse.ravel()]
    return WalltimePlans(
        checkpointtotal=chosen, segment_walltime_seconds=plan, fits_queue=fits, advice=advice
    )


def _advice(
    longest: float,
    limit: float,
    queue_max: float,
    threads: int,
    parallel_fraction: float,
    setup_seconds: float,
    queue_margin: float,
) -> str:
    """What would fit a job whose longest source type does not fit the queue."""
    needed_queue = math.ceil(longest / (1.0 - queue_margin) / 60.0) * 60.0
    text = (
        f"no checkpoint split fits the queue limit {format_slurm_time(queue_max)}: one source "
        f"type alone needs {format_slurm_time(longest)} with {threads} thread(s); a queue of "
        f"{format_slurm_time(needed_queue)} fits"
    )
    work = (longest - setup_seconds) * thread_speedup(threads, parallel_fraction)
    needed_speedup = work / max(limit - setup_seconds, 1e-9)
    serial = 1.0 - parallel_fraction
    if 1.0 / needed_speedup > serial:
        needed_threads = math.ceil(parallel_fraction / (1.0 / needed_speedup - serial))
        text += f", or {needed_threads} threads"
    return text
