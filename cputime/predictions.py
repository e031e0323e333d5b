"""From features to engine-ready predictions: the one place the CLI, the service and the workflow
helpers turn a model's CPU bounds into walltimes and checkpoint plans."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cputime.checkpoints import SOURCE_TYPE_PHOTON_COLUMNS
from cputime.conformal import min_calibration_size
from cputime.durations import format_slurm_time
from cputime.model import CPUTimeModel
from cputime.policy import (
    DEFAULT_OVERRESERVE_COST,
    DEFAULT_PARALLEL_FRACTION,
    DEFAULT_SETUP_SECONDS,
    loss_minimising_level,
    plan_walltime,
    signal_lead_seconds,
)

__all__ = ["PREDICTION_COLUMNS", "predict_jobs", "walltime_levels"]

#: Columns every prediction table starts with, in this order.
PREDICTION_COLUMNS = [
    "obshistid",
    "sensor",
    "cpu_seconds_p50",
    "cpu_seconds_upper",
    "walltime_seconds",
    "segments",
    "slurm_time",
    "checkpointtotal",
    "segment_slurm_times",
    "total_walltime_seconds",
    "slurm_signal",
    "fits_queue",
    "plan_note",
    "extrapolation",
    "extrapolation_dex",
    "confidence",
    "host_factor",
    "threads",
    "model_version",
]


def walltime_levels(
    model: CPUTimeModel,
    features: pd.DataFrame,
    *,
    overreserve_cost: float = DEFAULT_OVERRESERVE_COST,
    kill_cost: float | np.ndarray = 1.0,
) -> np.ndarray:
    """Level of each job's upper bound under the policy that loses the least CPU.

    Parameters
    ----------
    model : CPUTimeModel
    features : pandas.DataFrame
    overreserve_cost : float
        Cost of a reserved but unused second relative to a second lost to a kill [unitless].
    kill_cost : float or array_like
        Share of each job's CPU a kill loses [unitless]: 1 for a single job.

    Returns
    -------
    numpy.ndarray
        :func:`cputime.policy.loss_minimising_level` on the calibration scores of each job's
        calibration group (moon up or down), or on all scores for a group too small to have
        its own offsets. Kill costs are rounded to 0.01, so that few distinct levels result.
    """
    scores, censored, score_groups = model.calibration_scores()
    groups = model.calibration_group_of(features)
    costs = np.round(np.broadcast_to(np.asarray(kill_cost, dtype=float), (len(features),)), 2)
    levels = np.empty(len(features))
    for group in np.unique(groups):
        own = score_groups == group
        if own.sum() < min_calibration_size(0.95):
            own = np.ones_like(own)
        for cost in np.unique(costs[groups == group]):
            rows = (groups == group) & (costs == cost)
            levels[rows] = loss_minimising_level(
                scores[own],
                censored[own],
                overreserve_cost=overreserve_cost,
                kill_cost=max(float(cost), 0.01),
            )
    return levels


def predict_jobs(
    model: CPUTimeModel,
    features: pd.DataFrame,
    *,
    confidence_level: float | None = None,
    overreserve_cost: float = DEFAULT_OVERRESERVE_COST,
    host_factor: float = 1.0,
    threads: int = 1,
    queue_max_seconds: float | None = None,
    parallel_fraction: float = DEFAULT_PARALLEL_FRACTION,
    setup_seconds: float = DEFAULT_SETUP_SECONDS,
    model_version: str = "",
) -> pd.DataFrame:
    """Predictions, walltimes and checkpoint plans for a features table.

    Parameters
    ----------
    model : CPUTimeModel
        A fitted model.
    features : pandas.DataFrame
        Output of :func:`cputime.features.catalog_features` or
        :func:`cputime.features.visit_features`.
    confidence_level : float, optional
        A fixed coverage of the upper bound that sets the walltime. None (the default): the level
        that loses the least CPU (:func:`walltime_levels`), for a kill that loses the whole
        job, or the heaviest segment of a checkpointed one.
    overreserve_cost : float
        With the default policy: cost of a reserved but unused second relative to a second lost
        to a kill [unitless].
    host_factor : float
        CPU seconds on the host that runs the job per reference-host second [unitless].
    threads : int
        PhoSim threads.
    queue_max_seconds : float, optional
        Queue walltime limit [s]; longer jobs are split into checkpointed segments.
    parallel_fraction : float
        Amdahl parallel fraction for ``threads``.
    setup_seconds : float
        Wall time every batch job pays on top of its CPU [s].
    model_version : str
        Recorded in every row.

    Returns
    -------
    pandas.DataFrame
        :data:`PREDICTION_COLUMNS` (CPU on the reference host [s], walltimes on the job's host
        [s]; ``walltime_seconds`` and ``slurm_time`` are the longest segment's,
        ``segment_slurm_times`` each segment's, ``;``-separated; ``plan_note`` says what would
        fit a job that no split fits; ``extrapolation`` names the drivers beyond the fitted
        range, by how much; ``confidence`` is the level used) followed by the source and sky
        terms and the features used.
    """
    if features.empty:
        return pd.DataFrame(columns=PREDICTION_COLUMNS)

    def plan(levels: np.ndarray):
        predicted = model.predict_frame(features, levels)
        by_type, every_segment = model.upper_seconds_by_source_type(features, predicted)
        plans = plan_walltime(
            by_type,
            every_segment,
            host_factor=host_factor,
            threads=threads,
            queue_max_seconds=queue_max_seconds,
            setup_seconds=setup_seconds,
            parallel_fraction=parallel_fraction,
        )
        return predicted, plans

    if confidence_level is not None:
        levels = np.full(len(features), float(confidence_level))
        predicted, plans = plan(levels)
    else:
        levels = walltime_levels(model, features, overreserve_cost=overreserve_cost)
        predicted, plans = plan(levels)
        if (plans.segments > 1).any():
            # A checkpointed job's kill loses one segment, not the whole job: the heaviest
            # segment's share of the job is what a kill can cost, and a lower level pays off.
            walls = plans.segment_walltime_seconds
            share = np.nanmax(walls, axis=1) / np.nansum(walls, axis=1)
            levels = walltime_levels(
                model,
                features,
                overreserve_cost=overreserve_cost,
                kill_cost=np.where(plans.segments > 1, share, 1.0),
            )
            predicted, plans = plan(levels)
    walltime = plans.walltime_seconds
    used = [
        c
        for c in features.columns
        if c not in ("obshistid", "sensor") and c not in SOURCE_TYPE_PHOTON_COLUMNS
    ]
    # One dict of arrays: cheaper than concatenating two frames for one-row requests.
    return pd.DataFrame(
        {
            "obshistid": features["obshistid"].to_numpy(),
            "sensor": features["sensor"].fillna("").replace("", model.reference_sensor).to_numpy(),
            "cpu_seconds_p50": np.round(predicted["cpu_seconds_p50"].to_numpy(dtype=float), 1),
            "cpu_seconds_upper": np.round(predicted["cpu_seconds_upper"].to_numpy(dtype=float), 1),
            "walltime_seconds": walltime.astype(int),
            "segments": plans.segments,
            "slurm_time": [format_slurm_time(w) for w in walltime],
            "checkpointtotal": plans.checkpointtotal,
            "segment_slurm_times": [";".join(times) for times in plans.slurm_times()],
            "total_walltime_seconds": plans.total_walltime_seconds.astype(int),
            "slurm_signal": [f"B:USR1@{signal_lead_seconds(w)}" for w in walltime],
            "fits_queue": plans.fits_queue,
            "plan_note": plans.advice,
            "extrapolation": predicted["extrapolation"].to_numpy(),
            "extrapolation_dex": np.round(predicted["extrapolation_dex"].to_numpy(dtype=float), 3),
            "confidence": np.round(levels, 4),
            "host_factor": host_factor,
            "threads": threads,
            "model_version": model_version,
            "source_seconds_p50": np.round(predicted["source_seconds"].to_numpy(dtype=float), 1),
            "sky_seconds_p50": np.round(predicted["sky_seconds"].to_numpy(dtype=float), 1),
            **{column: features[column].to_numpy() for column in used},
        }
    )
