"""From features to engine-ready predictions: the one place the CLI, the service and the workflow
helpers turn a model's CPU bounds into walltimes and checkpoint plans."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cputime.checkpoints import SOURCE_TYPE_PHOTON_COLUMNS
from cputime.durations import format_slurm_time
from cputime.model import CPUTimeModel
from cputime.policy import (
    DEFAULT_PARALLEL_FRACTION,
    DEFAULT_SETUP_SECONDS,
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
        Coverage of the upper bound; the model's default when None.
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
        range, by how much) followed by the source and sky terms and the features used.
    """
    level = model.confidence_level if confidence_level is None else confidence_level
    if features.empty:
        return pd.DataFrame(columns=PREDICTION_COLUMNS)
    predicted = model.predict_frame(features, level)
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
    walltime = plans.walltime_seconds
    segment_times = [";".join(times) for times in plans.slurm_times()]
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
            "cpu_seconds_p50": np.round(predicted["cpu_seconds_p50"].to_numpy(), 1),
            "cpu_seconds_upper": np.round(predicted["cpu_seconds_upper"].to_numpy(), 1),
            "walltime_seconds": walltime.astype(int),
            "segments": plans.segments,
            "slurm_time": [format_slurm_time(w) for w in walltime],
            "checkpointtotal": plans.checkpointtotal,
            "segment_slurm_times": segment_times,
            "total_walltime_seconds": plans.total_walltime_seconds.astype(int),
            "slurm_signal": [f"B:USR1@{signal_lead_seconds(w)}" for w in walltime],
            "fits_queue": plans.fits_queue,
            "plan_note": plans.advice,
            "extrapolation": predicted["extrapolation"].to_numpy(),
            "extrapolation_dex": np.round(predicted["extrapolation_dex"].to_numpy(), 3),
            "confidence": level,
            "host_factor": host_factor,
            "threads": threads,
            "model_version": model_version,
            "source_seconds_p50": np.round(predicted["source_seconds"].to_numpy(), 1),
            "sky_seconds_p50": np.round(predicted["sky_seconds"].to_numpy(), 1),
            **{column: features[column].to_numpy() for column in used},
        }
    )
