"""From features to engine-ready predictions: the one place the CLI, the service and the workflow
helpers turn a model's CPU bounds into walltimes and checkpoint plans."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cputime.model import CPUTimeModel
from cputime.policy import DEFAULT_PARALLEL_FRACTION, plan_walltime

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
    "slurm_signal",
    "fits_queue",
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
    model_version : str
        Recorded in every row.

    Returns
    -------
    pandas.DataFrame
        :data:`PREDICTION_COLUMNS` (CPU on the reference host [s], walltimes on the job's host
        [s]) followed by the source and sky terms and the features used.
    """
    level = model.confidence_level if confidence_level is None else confidence_level
    if features.empty:
        return pd.DataFrame(columns=PREDICTION_COLUMNS)
    predicted = model.predict_frame(features, level)
    upper = predicted["cpu_seconds_upper"].to_numpy()
    setup = predicted["setup_seconds"].to_numpy() * host_factor
    plans = [
        plan_walltime(
            float(u),
            host_factor=host_factor,
            threads=threads,
            queue_max_seconds=queue_max_seconds,
            setup_seconds=float(s),
            parallel_fraction=parallel_fraction,
        ).to_dict()
        for u, s in zip(upper, setup, strict=True)
    ]
    plan = pd.DataFrame(plans)
    used = [c for c in features.columns if c not in ("obshistid", "sensor")]
    # One dict of arrays: cheaper than concatenating two frames for one-row requests.
    return pd.DataFrame(
        {
            "obshistid": features["obshistid"].to_numpy(),
            "sensor": features["sensor"].fillna("").replace("", model.reference_sensor).to_numpy(),
            "cpu_seconds_p50": np.round(predicted["cpu_seconds_p50"].to_numpy(), 1),
            "cpu_seconds_upper": np.round(upper, 1),
            "walltime_seconds": plan["walltime_seconds"].astype(int),
            "segments": plan["segments"],
            "slurm_time": plan["slurm_time"],
            "checkpointtotal": plan["checkpointtotal"],
            "slurm_signal": plan["slurm_signal"],
            "fits_queue": plan["fits_queue"],
            "confidence": level,
            "host_factor": host_factor,
            "threads": threads,
            "model_version": model_version,
            "source_seconds_p50": np.round(predicted["source_seconds"].to_numpy(), 1),
            "sky_seconds_p50": np.round(predicted["sky_seconds"].to_numpy(), 1),
            **{column: features[column].to_numpy() for column in used},
        }
    )
