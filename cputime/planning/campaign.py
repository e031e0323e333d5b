"""What a simulation campaign will cost: per-visit predictions summed by filter and by night.

A production manager planning the PhoSim runs of an OpSim survey wants totals, not rows: the
CPU-hours expected (sum of medians), a conservative ceiling (sum of the per-job upper bounds:
each job's bound holds with the model's confidence, so their sum bounds the total at least as
well), the walltime to reserve, and how many jobs need checkpoint segments at the queue limit or
cannot fit it at all.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["SUMMARY_COLUMNS", "summarize", "campaign_summary", "write_campaign", "plot_campaign"]

#: Columns of every summary table, after the grouping column.
SUMMARY_COLUMNS = [
    "visits",
    "jobs",
    "cpu_hours_p50",
    "cpu_hours_upper",
    "walltime_hours",
    "jobs_segmented",
    "jobs_not_fitting",
]


def summarize(predictions: pd.DataFrame) -> dict[str, float]:
    """Totals of a prediction table (:func:`cputime.planning.predictions.predict_jobs` columns).

    Returns
    -------
    dict
        ``visits``, ``jobs``; ``cpu_hours_p50`` and ``cpu_hours_upper`` on the model's reference
        host [h]; ``walltime_hours`` to reserve on the job's host, all segments [h];
        ``jobs_segmented`` (more than one segment) and ``jobs_not_fitting`` (too long for the
        queue even when segmented).
    """
    segments = predictions["segments"].to_numpy(dtype=float)
    return {
        "visits": int(predictions["obshistid"].nunique()),
        "jobs": int(len(predictions)),
        "cpu_hours_p50": float(predictions["cpu_seconds_p50"].sum() / 3600.0),
        "cpu_hours_upper": float(predictions["cpu_seconds_upper"].sum() / 3600.0),
        "walltime_hours": float((predictions["walltime_seconds"] * segments).sum() / 3600.0),
        "jobs_segmented": int((segments > 1).sum()),
        "jobs_not_fitting": int((~predictions["fits_queue"].astype(bool)).sum()),
    }


def _by(predictions: pd.DataFrame, column: str) -> pd.DataFrame:
    rows = [
        {column: key, **summarize(group)}
        for key, group in predictions.groupby(column, sort=True)
    ]
    return pd.DataFrame(rows, columns=[column, *SUMMARY_COLUMNS])


def campaign_summary(
    predictions: pd.DataFrame, nights: pd.Series | None = None
) -> dict[str, object]:
    """Totals, and the same by filter and (when ``nights`` is given) by night.

    Parameters
    ----------
    predictions : pandas.DataFrame
        From :func:`cputime.planning.predictions.predict_jobs` (``filter`` 0..5 or a letter).
    nights : pandas.Series, optional
        OpSim night of each visit, indexed by ``obshistid``.

    Returns
    -------
    dict
        ``total`` (dict, :func:`summarize`), ``by_filter`` and ``by_night`` (DataFrames with
        :data:`SUMMARY_COLUMNS`; ``by_night`` is None without ``nights``).
    """
    from cputime.inputs.opsim import FILTER_LETTERS

    table = predictions.copy()
    if pd.api.types.is_numeric_dtype(table["filter"]):
        table["filter"] = [FILTER_LETTERS[int(f)] for f in table["filter"]]
    by_filter = _by(table, "filter")
    # u g r i z y order, not alphabetical
    by_filter = by_filter.sort_values("filter", key=lambda f: f.map(FILTER_LETTERS.find))
    by_night = None
    if nights is not None:
        table["night"] = table["obshistid"].map(nights)
        by_night = _by(table.dropna(subset=["night"]).astype({"night": np.int64}), "night")
    return {
        "total": summarize(table),
        "by_filter": by_filter.reset_index(drop=True),
        "by_night": by_night,
    }


def write_campaign(summary: dict, out: Path, *, queue_max_seconds: float | None) -> list[Path]:
    """Write ``summary.json``, ``summary_by_filter.csv`` and ``summary_by_night.csv`` to ``out``.

    Returns
    -------
    list of Path
        The files written.
    """
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "summary.json"]
    document = {
        "queue_max_seconds": queue_max_seconds,
        "total": summary["total"],
        "by_filter": summary["by_filter"].to_dict(orient="records"),
    }
    written[0].write_text(json.dumps(document, indent=2) + "\n")
    for name in ("by_filter", "by_night"):
        if summary[name] is not None:
            path = out / f"summary_{name}.csv"
            summary[name].round(3).to_csv(path, index=False)
            written.append(path)
    return written


def plot_campaign(summary: dict, path: Path, *, title: str = "") -> Path:
    """CPU-hours by filter, and cumulative CPU-hours by night, median and upper bound."""
    import matplotlib.pyplot as plt

    by_night = summary["by_night"]
    fig, axes = plt.subplots(1, 2 if by_night is not None else 1, figsize=(11, 4.2),
                             squeeze=False)  # fmt: skip
    left = axes[0, 0]
    by_filter = summary["by_filter"]
    x = np.arange(len(by_filter))
    left.bar(x - 0.2, by_filter["cpu_hours_p50"], width=0.4, label="median (sum)")
    left.bar(x + 0.2, by_filter["cpu_hours_upper"], width=0.4, label="upper bound (sum)")
    left.set_xticks(x, by_filter["filter"])
    left.set(xlabel="filter", ylabel="CPU hours [reference host]", title="by filter")
    left.legend(fontsize=8)
    if by_night is not None:
        right = axes[0, 1]
        right.plot(by_night["night"], by_night["cpu_hours_p50"].cumsum(), label="median")
        right.plot(by_night["night"], by_night["cpu_hours_upper"].cumsum(), label="upper bound")
        right.set(xlabel="OpSim night", ylabel="cumulative CPU hours", title="by night")
        right.legend(fontsize=8)
    total = summary["total"]
    fig.suptitle(
        f"{title}{' — ' if title else ''}{total['jobs']} jobs: {total['cpu_hours_p50']:,.0f} CPU h "
        f"(upper {total['cpu_hours_upper']:,.0f}); {total['jobs_segmented']} need segments, "
        f"{total['jobs_not_fitting']} do not fit",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
