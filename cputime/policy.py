"""Walltime policy: from a CPU-time upper bound to what a batch system needs.

Pure functions with no I/O, so that the command line, the HTTP service and the workflow helpers
all give the same numbers for the same prediction.

Conventions
-----------
CPU times from the model are on the *reference host* (the slowest Twinkles host class, "fell").
``host_factor`` is the CPU time a job takes on the host that will run it divided by its time on
the reference host: 1.0 for the reference host, 0.585 (= 1/1.71) for the Twinkles host class 3.
A host-factors file used for ingestion stores the inverse (reference seconds per host second),
as the Twinkles data does; :func:`host_factor_from_reference_factor` converts.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from cputime.durations import format_slurm_time

__all__ = [
    "DEFAULT_PARALLEL_FRACTION",
    "DEFAULT_SETUP_SECONDS",
    "WalltimePlan",
    "thread_speedup",
    "host_factor_from_reference_factor",
    "walltime_seconds",
    "signal_lead_seconds",
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

#: Share of the queue limit kept free in every segment, for the host being slower than expected.
DEFAULT_QUEUE_MARGIN = 0.10

#: PhoSim checkpoints split the work by source-brightness bin, not evenly: the heaviest of n
#: segments is taken to hold up to this many times its even share.
DEFAULT_SEGMENT_IMBALANCE = 1.5


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


def host_factor_from_reference_factor(reference_seconds_per_host_second: float) -> float:
    """Convert a host-factors-file value into the ``host_factor`` of this module.

    Parameters
    ----------
    reference_seconds_per_host_second : float
        As in the Twinkles data: CPU on the reference host = CPU on this host x this value.

    Returns
    -------
    float
        Host seconds per reference second [unitless].
    """
    if reference_seconds_per_host_second <= 0:
        raise ValueError("a host factor must be positive")
    return 1.0 / reference_seconds_per_host_second


def walltime_seconds(
    cpu_seconds_upper,
    *,
    host_factor: float = 1.0,
    threads: int = 1,
    setup_seconds: float = DEFAULT_SETUP_SECONDS,
    parallel_fraction: float = DEFAULT_PARALLEL_FRACTION,
):
    """Walltime of one batch job that must not be killed.

    Parameters
    ----------
    cpu_seconds_upper : float or array_like
        Upper bound of the single-thread CPU time on the reference host [s].
    host_factor : float
        Host seconds per reference-host second [unitless].
    threads : int
        Threads the job runs with [unitless].
    setup_seconds : float
        Fixed wall time per job on top of the CPU [s].
    parallel_fraction : float
        Amdahl parallel fraction [unitless].

    Returns
    -------
    float or numpy.ndarray
        ``upper * host_factor / speedup(threads) + setup``, rounded up to the minute [s].
    """
    if host_factor <= 0:
        raise ValueError(f"host_factor must be positive, got {host_factor}")
    work = np.asarray(cpu_seconds_upper, dtype=float) * host_factor
    seconds = work / thread_speedup(threads, parallel_fraction) + setup_seconds
    rounded = np.ceil(seconds / 60.0) * 60.0
    return float(rounded) if rounded.ndim == 0 else rounded


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
class WalltimePlan:
    """How to run one job: a single batch job, or a chain of checkpointed segments.

    Attributes
    ----------
    walltime_seconds : float
        Walltime of each batch job [s] (every segment gets the same).
    segments : int
        Number of batch jobs run one after another (1 = no checkpointing).
    checkpointtotal : int
        Value of PhoSim's ``checkpointtotal`` command that yields ``segments`` pieces
        (PhoSim runs ``checkpointcount`` 0..checkpointtotal).
    total_walltime_seconds : float
        Sum over segments [s].
    slurm_time : str
        ``--time`` value, ``D-HH:MM:SS``.
    signal_seconds : int
        Lead time for ``--signal=B:USR1@SECONDS`` [s].
    fits_queue : bool
        False when even the maximum number of segments cannot fit the queue limit.
    """

    walltime_seconds: float
    segments: int
    checkpointtotal: int
    total_walltime_seconds: float
    slurm_time: str
    signal_seconds: int
    fits_queue: bool

    @property
    def slurm_signal(self) -> str:
        """The ``--signal`` value, ``B:USR1@SECONDS``."""
        return f"B:USR1@{self.signal_seconds}"

    def to_dict(self) -> dict:
        return {**asdict(self), "slurm_signal": self.slurm_signal}


#: PhoSim maps its 73 source-type bins onto checkpoints, so more pieces than that are empty.
MAX_SEGMENTS = 73


def plan_walltime(
    cpu_seconds_upper: float,
    *,
    host_factor: float = 1.0,
    threads: int = 1,
    queue_max_seconds: float | None = None,
    setup_seconds: float = DEFAULT_SETUP_SECONDS,
    parallel_fraction: float = DEFAULT_PARALLEL_FRACTION,
    queue_margin: float = DEFAULT_QUEUE_MARGIN,
    segment_imbalance: float = DEFAULT_SEGMENT_IMBALANCE,
) -> WalltimePlan:
    """Walltime and checkpoint plan of one job.

    Parameters
    ----------
    cpu_seconds_upper : float
        Upper bound of the single-thread CPU time on the reference host [s].
    host_factor, threads, setup_seconds, parallel_fraction
        As in :func:`walltime_seconds`.
    queue_max_seconds : float, optional
        The queue's walltime limit [s]. A job whose walltime exceeds it is split into segments.
    queue_margin : float
        Share of the queue limit left free in each segment [unitless].
    segment_imbalance : float
        Heaviest segment over its even share [unitless]; see :data:`DEFAULT_SEGMENT_IMBALANCE`.

    Returns
    -------
    WalltimePlan
    """
    single = walltime_seconds(
        cpu_seconds_upper,
        host_factor=host_factor,
        threads=threads,
        setup_seconds=setup_seconds,
        parallel_fraction=parallel_fraction,
    )
    if queue_max_seconds is None or single <= queue_max_seconds:
        return _plan(single, 1, fits=True)
    if queue_max_seconds <= 0:
        raise ValueError(f"queue_max_seconds must be positive, got {queue_max_seconds}")
    usable = queue_max_seconds * (1.0 - queue_margin) - setup_seconds
    work = cpu_seconds_upper * host_factor / thread_speedup(threads, parallel_fraction)
    if usable <= 0:
        return _plan(single, 1, fits=False)
    segments = max(2, math.ceil(work * segment_imbalance / usable))
    # With n segments the heaviest holds imbalance x work / n, but never more than all the work.
    fits = segments <= MAX_SEGMENTS
    segments = min(segments, MAX_SEGMENTS)
    heaviest = min(work, segment_imbalance * work / segments)
    per_segment = math.ceil((heaviest + setup_seconds) / 60.0) * 60.0
    per_segment = min(per_segment, math.floor(queue_max_seconds / 60.0) * 60.0)
    return _plan(per_segment, segments, fits=fits)


def _plan(walltime: float, segments: int, *, fits: bool) -> WalltimePlan:
    return WalltimePlan(
        walltime_seconds=float(walltime),
        segments=int(segments),
        checkpointtotal=int(segments - 1),
        total_walltime_seconds=float(walltime * segments),
        slurm_time=format_slurm_time(walltime),
        signal_seconds=signal_lead_seconds(walltime),
        fits_queue=fits,
    )
