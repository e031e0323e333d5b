"""From features to engine-ready predictions: the one place the CLI, the service and the workflow
helpers turn a model's CPU bounds into walltimes and checkpoint plans."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cputime.checkpoints import SOURCE_TYPE_PHOTON_COLUMNS
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

__all__ = ["PREDICTION_COLUMNS", "predict_jobs"]

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
        that loses the least CPU (:func:`cputime.policy.loss_minimising_level` on the model's
        calibration scores), for a kill that loses the whole job, or the heaviest segment of a
        checkpointed one.
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

    def plan(rows: pd.DataFrame, level: float):
        predicted = model.predict_frame(rows, level)
        by_type, every_segment = model.upper_seconds_by_source_type(rows, predicted)
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

    if confidence_level is None:
        scores, censored = model.calibration_scores()
        level = loss_minimising_level(scores, censored, overreserve_cost=overreserve_cost)
    else:
        level = confidence_level
    predicted, plans = plan(features, level)
    levels = np.full(len(features), level)
    if confidence_level is None:
        # A checkpointed job's kill loses one segment, not the whole job: the heaviest
        # segment's share of the job is what a kill can cost, and a lower level pays off.
        segment_walls = plans.segment_walltime_seconds
        share = np.nanmax(segment_walls, axis=1) / np.nansum(segment_walls, axis=1)
        split = np.flatnonzero(plans.segments > 1)
        kill_costs = np.round(share[split], 2)
        by_cost = {
            cost: loss_minimising_level(
                scores, censored, overreserve_cost=overreserve_cost, kill_cost=float(cost)
            )
            for cost in np.unique(kill_costs)
        }
        again = np.array([by_cost[cost] for cost in kill_costs])
        for new_level in np.unique(again[again != level]):
            rows = split[again == new_level]
            frame, replanned = plan(features.iloc[rows], new_level)
            predicted.iloc[rows] = frame.to_numpy()
            plans = plans.replace_rows(rows, replanned)
            levels[rows] = new_level
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
