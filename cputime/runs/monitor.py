"""Monitoring a model on the runs that finished since a date.

For each stored run (finished, or censored at its limit) that ended since ``since`` and has
features of the current feature code version: actual vs predicted CPU, whether the upper bound
covered it, and whether a walltime at the upper bound would have killed it. Then per condition
feature, how far its distribution drifted from the model's training data (the reference stored
in the model's metadata, ``training.feature_summary``), and the share outside the training range:

- a continuous feature: the population stability index (:func:`population_stability_index`)
  over bins cut at the training quantiles;
- a discrete one (:data:`DISCRETE_FEATURES`) with category shares in the reference
  (:func:`feature_reference` writes them): the PSI over categories (:func:`category_psi`);
- a feature constant in training, or a discrete one whose reference has only quantiles (models
  saved before category shares were stored): no PSI, as quantiles cannot tell how often each
  value occurred; ``outside_range_share`` still reports values training never saw.

``coverage`` is the share of finished runs whose CPU is at most the upper bound; the alert fires
when it is below ``min_coverage``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # the store needs the [mlflow] extra; the drift reference does not
    from cputime.runs.store import RunsStore

__all__ = [
    "SUMMARY_LEVELS",
    "PSI_DRIFT",
    "DISCRETE_FEATURES",
    "MonitorReport",
    "population_stability_index",
    "category_psi",
    "feature_reference",
    "feature_drift",
    "monitor",
]

#: Quantile levels of the training summary (``training.feature_summary``) in model metadata.
SUMMARY_LEVELS = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)

#: PSI above which a feature is flagged as drifted (the usual rule of thumb: < 0.1 stable,
#: 0.1-0.25 moderate, > 0.25 a shift).
PSI_DRIFT = 0.25

#: Features whose values are categories (filter, snaps) or a few settings (visit and exposure
#: times): their drift is measured category by category when the reference has the shares.
DISCRETE_FEATURES = ("filter", "nsnap", "vistime", "exposure_seconds")

_EPS = 1e-4


def _category(value: float) -> str:
    """JSON key of a discrete value (``2.0`` and ``2`` are the same category)."""
    return f"{value:g}"


def feature_reference(features: pd.DataFrame, columns) -> dict[str, object]:
    """The drift reference of training features, as stored in model metadata.

    Parameters
    ----------
    features : pandas.DataFrame
        Training features.
    columns : iterable of str
        Features to summarise.

    Returns
    -------
    dict
        Per feature: quantiles at :data:`SUMMARY_LEVELS` (a list) for continuous features,
        ``{"categories": {value: share}}`` for :data:`DISCRETE_FEATURES`. Features without
        finite values are left out.
    """
    reference: dict[str, object] = {}
    for column in columns:
        values = pd.to_numeric(features[column], errors="coerce").to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        if values.size == 0:
            continue
        if column in DISCRETE_FEATURES:
            keys, counts = np.unique(values, return_counts=True)
            reference[column] = {
                "categories": {_category(k): float(c / values.size) for k, c in zip(
                    keys, counts, strict=True)}
            }  # fmt: skip
        else:
            reference[column] = [float(q) for q in np.quantile(values, SUMMARY_LEVELS)]
    return reference


def _psi(actual: np.ndarray, expected: np.ndarray) -> float:
    """``sum((a - e) * ln(a / e))`` over bins, shares clipped to a small epsilon [unitless]."""
    actual = np.clip(actual, _EPS, None)
    expected = np.clip(expected, _EPS, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def category_psi(values: np.ndarray, shares: dict[str, float]) -> float:
    """PSI of discrete ``values`` against reference category shares.

    Values of no reference category are pooled into one bin whose reference share is 0
    (clipped to a small epsilon, so that they count heavily).

    Returns
    -------
    float
        ``sum((a - e) * ln(a / e))`` over categories [unitless]; NaN without values.
    """
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan
    observed = pd.Series([_category(v) for v in values]).value_counts(normalize=True)
    expected = np.array([*shares.values(), 0.0])
    actual = np.array([observed.get(k, 0.0) for k in shares] + [
        float(observed[~observed.index.isin(list(shares))].sum())])  # fmt: skip
    return _psi(actual, expected)


def population_stability_index(
    values: np.ndarray, quantiles: list[float], levels: tuple[float, ...] = SUMMARY_LEVELS
) -> float:
    """PSI of ``values`` against a reference distribution known by its quantiles.

    The bins are cut at the reference's distinct quantile values (minimum and maximum
    included); the expected share of each bin is the difference of the reference CDF at its
    edges. Where quantiles tie (a discrete feature such as ``filter``), the CDF at the tied value
    is the highest tied level (at least that share of the training values is at or below it:
    1.0 at the maximum), so a value that training took often is not counted as drift.

    Parameters
    ----------
    values : array_like
        Recent values (NaN ignored).
    quantiles : list of float
        Reference quantiles at ``levels`` (first and last: minimum and maximum).
    levels : tuple of float
        Their levels.

    Returns
    -------
    float
        ``sum((a - e) * ln(a / e))`` over bins [unitless]; NaN without values.
    """
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan
    cdf: dict[float, float] = {}
    for q, level in zip(quantiles, levels, strict=True):
        cdf[q] = max(cdf.get(q, 0.0), level)
    edges = np.array(sorted(cdf))
    expected = np.diff([0.0, *[cdf[e] for e in edges], 1.0])
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(expected))
    actual = counts / values.size
    return _psi(actual, expected)


def feature_drift(features: pd.DataFrame, summary: dict[str, object]) -> pd.DataFrame:
    """PSI and out-of-range share of each summarised feature.

    Parameters
    ----------
    features : pandas.DataFrame
        Recent runs' features.
    summary : dict
        The model's training reference (:func:`feature_reference`): per feature, quantiles at
        :data:`SUMMARY_LEVELS` or ``{"categories": {value: share}}``.

    Returns
    -------
    pandas.DataFrame
        ``feature``, ``kind`` (``continuous``, ``categories``, or without PSI ``constant``:
        constant in training, and ``discrete, no shares``: a discrete feature whose reference
        has only quantiles), ``psi``, ``outside_range_share`` (share of values outside the training
        range, or of no training category), ``drifted`` (PSI > :data:`PSI_DRIFT`).
    """
    rows = []
    for name, reference in summary.items():
        if name not in features.columns:
            continue
        values = pd.to_numeric(features[name], errors="coerce").to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        if isinstance(reference, dict):
            kind = "categories"
            known = np.isin([_category(v) for v in finite], list(reference["categories"]))
            outside = ~known
            psi = category_psi(finite, reference["categories"])
        else:
            kind = ("constant" if reference[0] == reference[-1]
                    else "discrete, no shares" if name in DISCRETE_FEATURES
                    else "continuous")  # fmt: skip
            outside = (finite < reference[0]) | (finite > reference[-1])
            psi = population_stability_index(finite, reference) if kind == "continuous" \
                else math.nan
        rows.append({"feature": name, "kind": kind, "psi": psi,
                     "outside_range_share": float(np.mean(outside)) if finite.size else math.nan,
                     "drifted": bool(psi > PSI_DRIFT)})  # fmt: skip
    return pd.DataFrame(rows, columns=["feature", "kind", "psi", "outside_range_share", "drifted"])


@dataclass
class MonitorReport:
    """Result of :func:`monitor` (``to_dict`` for printing)."""

    model_version: str
    since: str | None
    n_runs: int
    n_finished: int
    n_censored: int
    coverage: float
    killed_share: float
    mae_dex: float
    min_coverage: float
    alert: bool
    drifted_features: list[str]
    files: list[str] = field(default_factory=list)
    runs: pd.DataFrame | None = None
    drift: pd.DataFrame | None = None

    def to_dict(self) -> dict:
        out = {k: v for k, v in vars(self).items() if k not in ("runs", "drift")}
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in out.items()}


def monitor(
    store: RunsStore,
    loaded,
    *,
    since: datetime | None = None,
    min_coverage: float = 0.9,
    out_dir: str | Path | None = None,
) -> MonitorReport:
    """Compare a model's predictions with the runs that ended since a date.

    Parameters
    ----------
    store : RunsStore
        The runs store.
    loaded : cputime.model.loading.LoadedModel
        The model (its metadata's ``training.feature_summary`` is the drift reference).
    since : datetime, optional
        UTC; all runs when None.
    min_coverage : float
        Alert when the coverage of finished runs is below this.
    out_dir : path, optional
        Write ``monitor_runs.csv``, ``monitor_drift.csv``, ``monitor.png`` and
        ``monitor_summary.json`` there.

    Returns
    -------
    MonitorReport
    """
    from cputime.errors import InputError
    from cputime.physics.features import FEATURE_CODE_VERSION
    from cputime.runs.store import redacted_uri

    if store.count() == 0:
        raise InputError(
            f"store {redacted_uri(store.uri)}: the runs store is empty (add runs with "
            "'cputime ingest')"
        )
    table, _ = store.training_table(FEATURE_CODE_VERSION, ended_since=since)
    y = table["cpu_seconds_ref"].to_numpy(dtype=float)
    censored = table["censored"].to_numpy(dtype=bool)
    if len(table):
        median = loaded.model.predict(table)
        upper = loaded.model.predict_upper(table)
    else:
        median = upper = np.array([])
    killed = upper < y  # for a censored run: the bound is below its CPU at the kill
    done = ~censored
    coverage = float(np.mean(~killed[done])) if done.any() else math.nan
    killed_share = float(np.mean(killed)) if len(table) else math.nan
    mae = float(np.mean(np.abs(np.log10(median[done] / y[done])))) if done.any() else math.nan
    runs = table[["id", "obshistid", "sensor", "ended", "cpu_seconds_ref", "censored"]].copy()
    runs["cpu_seconds_p50"] = np.round(median, 1)
    runs["cpu_seconds_upper"] = np.round(upper, 1)
    runs["killed"] = killed
    summary = loaded.training.get("feature_summary", {})
    drift = feature_drift(table, summary)
    report = MonitorReport(
        model_version=str(loaded.version),
        since=None if since is None else since.isoformat(),
        n_runs=int(len(table)),
        n_finished=int(done.sum()),
        n_censored=int(censored.sum()),
        coverage=coverage,
        killed_share=killed_share,
        mae_dex=mae,
        min_coverage=min_coverage,
        alert=bool(coverage < min_coverage),  # False for NaN: no finished run, nothing to judge
        drifted_features=drift.loc[drift["drifted"], "feature"].tolist(),
        runs=runs,
        drift=drift,
    )
    if out_dir is not None:
        _write(report, Path(out_dir))
    return report


def _write(report: MonitorReport, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "runs": out / "monitor_runs.csv",
        "drift": out / "monitor_drift.csv",
        "plot": out / "monitor.png",
        "summary": out / "monitor_summary.json",
    }
    report.files = [str(p) for p in paths.values()]
    report.runs.to_csv(paths["runs"], index=False)
    report.drift.to_csv(paths["drift"], index=False)
    _plot(report, paths["plot"])
    paths["summary"].write_text(json.dumps(report.to_dict(), indent=2) + "\n")


def _plot(report: MonitorReport, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6))
    runs = report.runs
    if len(runs):
        hours = runs["cpu_seconds_ref"].to_numpy() / 3600.0
        done = ~runs["censored"].to_numpy(dtype=bool)
        killed = runs["killed"].to_numpy(dtype=bool)
        median = runs["cpu_seconds_p50"].to_numpy() / 3600.0
        upper = runs["cpu_seconds_upper"].to_numpy() / 3600.0
        left.scatter(hours[done], median[done], s=8, alpha=0.6, label="median, finished")
        left.scatter(hours[~done], median[~done], s=14, marker=">", color="C3",
                     label="median, killed at limit (lower bound)")
        left.scatter(hours[killed], upper[killed], s=18, marker="x", color="k",
                     label="upper bound below actual")
        lims = [max(min(hours.min(), median.min()) * 0.8, 1e-4),
                max(hours.max(), upper.max()) * 1.2]
        left.plot(lims, lims, "k-", lw=0.8)
        left.set(xscale="log", yscale="log", xlim=lims, ylim=lims)
        left.legend(fontsize=7, loc="upper left")
    left.set(xlabel="actual CPU [h, reference host]", ylabel="predicted CPU [h]",
             title=f"{report.model_version}: coverage {report.coverage:.3f} "
             f"({report.n_finished} finished)")
    drift = report.drift
    if len(drift):
        colors = ["C3" if d else "C0" for d in drift["drifted"]]
        right.barh(drift["feature"], drift["psi"].fillna(0.0), color=colors)
        right.axvline(PSI_DRIFT, color="k", lw=0.8, ls="--")
    right.set(xlabel="population stability index vs training", title="feature drift")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
