"""Evaluation of CPU-time models on data with right-censoring (jobs killed at the CPU limit).

Everything is on the reference host ("fell") scale, in seconds; the walltime of a job is taken
to be the model's upper bound. A censored job's true CPU time is unknown above its kill point
``y`` (a lower bound), so some metrics come as a conservative / optimistic pair.

Metrics (:func:`upper_bound_metrics`)
-------------------------------------
``mae_dex``
    Mean ``|log10(median / actual)|`` over finished jobs.
``coverage_finished``
    Share of finished jobs with ``upper >= actual``.
``coverage_all_min`` / ``coverage_all_max``
    Coverage over all jobs, counting censored jobs as not covered (min) or as covered whenever
    ``upper >= lower bound`` (max; the truth is unknown for them).
``median_upper_ratio``
    Median of ``upper / actual`` over finished jobs.
``killed_share_min`` / ``killed_share_max``
    Share of all jobs the walltime would kill: surely killed are finished jobs with
    ``upper < actual`` and censored jobs with ``upper < lower bound`` (min); max also counts
    the censored jobs whose fate is unknown. ``killed_share_max = 1 - coverage_all_min``.
``killed_cpu_hours``
    CPU hours [h] thrown away by surely-killed jobs: each ran until its walltime, ``upper``.
``unused_reserved_hours``
    Over-reservation [h] of finished jobs that were not killed: ``sum(upper - actual)``.
``reserved_overhead``
    ``unused_reserved_hours / sum(actual)`` over finished jobs.

Baselines
---------
:class:`FixedWalltime` (one walltime for every job), :class:`PerFilterWalltime`, and
:class:`Twinkles2016Forest` (the 2016 random forest on filter, moonalt, moonphase).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.ensemble import RandomForestRegressor
from sklearn.model_selection import KFold
from tqdm.auto import tqdm

from cputime.model.conformal import conformal_upper_quantile, min_calibration_size
from cputime.model.estimator import CPUTimeRegressor

__all__ = [
    "CENSORING_MODES",
    "CV_LEVELS",
    "FixedWalltime",
    "PerFilterWalltime",
    "Twinkles2016Forest",
    "censored_abs_error_dex",
    "cross_val_predictions",
    "plot_coverage",
    "plot_predicted_vs_actual",
    "plot_prediction_panels",
    "plot_tradeoff",
    "PARAM_GRID",
    "select_params",
    "summarize_predictions",
    "upper_bound_metrics",
    "recorded_levels",
    "POLICY",
]

#: How a training set treats jobs killed at the limit: as censored (the model's way), as exact
#: values at the kill point, or dropped.
CENSORING_MODES = ("censored", "exact", "drop")

#: Name of the upper bound a model's own walltime policy sets (the level that loses the least
#: CPU, :func:`cputime.planning.policy.loss_minimising_level`), recorded as ``upper_policy``.
POLICY = "policy"

#: Confidence levels at which cross-validated upper bounds are recorded.
CV_LEVELS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.925, 0.95, 0.975, 0.99)

# ---------------------------------------------------------------------------- metrics
def upper_bound_metrics(
    cpu_seconds: np.ndarray, censored: np.ndarray, median: np.ndarray, upper: np.ndarray
) -> dict[str, float]:
    """Point and upper-bound metrics on jobs some of which were killed (censored).

    Parameters
    ----------
    cpu_seconds : array-like of shape (n,)
        Actual CPU time [s]; a lower bound where ``censored``.
    censored : array-like of bool, shape (n,)
        True for jobs killed at the CPU limit.
    median : array-like of shape (n,)
        Predicted median CPU time [s].
    upper : array-like of shape (n,)
        Predicted upper bound, used as the walltime [s].

    Returns
    -------
    dict
        The metrics listed in the module docstring, plus ``n`` and ``n_censored``.
    """
    y = np.asarray(cpu_seconds, dtype=float)
    cens = np.asarray(censored, dtype=bool)
    med = np.asarray(median, dtype=float)
    up = np.asarray(upper, dtype=float)
    done = ~cens
    n = y.size
    covered = up >= y
    surely_killed = ~covered  # for censored rows: upper below the kill point
    with np.errstate(invalid="ignore", over="ignore"):
        unused = np.where(done & covered, up - y, 0.0).sum() / 3600.0
        actual_hours = y[done].sum() / 3600.0
        return {
            "n": float(n),
            "n_censored": float(cens.sum()),
            "mae_dex": float(np.mean(np.abs(np.log10(med[done] / y[done])))),
            "coverage_finished": float(np.mean(covered[done])),
            "coverage_all_min": float(np.sum(covered & done) / n),
            "coverage_all_max": float(np.mean(covered)),
            "median_upper_ratio": float(np.median(up[done] / y[done])),
            "killed_share_min": float(np.mean(surely_killed)),
            "killed_share_max": float(np.mean(surely_killed | cens)),
            "killed_cpu_hours": float(up[surely_killed].sum() / 3600.0),
            "unused_reserved_hours": float(unused),
            "reserved_overhead": float(unused / actual_hours),
        }


def censored_abs_error_dex(
    cpu_seconds: np.ndarray, censored: np.ndarray, median: np.ndarray
) -> float:
    """Mean absolute log10 error where a censored row only counts if predicted below its bound.

    Used to choose hyperparameters: ``|log10(median / y)|`` for finished rows,
    ``max(0, log10(y / median))`` for censored ones [dex].
    """
    error = np.log10(np.asarray(median, float) / np.asarray(cpu_seconds, float))
    cens = np.asarray(censored, bool)
    return float(np.mean(np.where(cens, np.maximum(0.0, -error), np.abs(error))))


# ---------------------------------------------------------------------------- baselines
class _ScoreQuantileBaseline:
    """Baseline whose upper bound is its median times a conformal quantile of its log ratios."""

    scores_: np.ndarray

    def predict_upper(self, X: pd.DataFrame, confidence_level: float = 0.95) -> np.ndarray:
        # As for our estimator: too few scores for the level support no finite bound.
        if self.scores_.size < min_calibration_size(confidence_level):
            return np.full(len(X), np.inf)
        return self.predict(X) * math.exp(conformal_upper_quantile(self.scores_, confidence_level))


class FixedWalltime(_ScoreQuantileBaseline):
    """One walltime for every job: the conformal quantile of the training CPU times.

    Killed jobs enter at their kill point (the most generous reading a fixed-walltime user
    could take from the data; treating them as +inf would put every level above ~0.9 at +inf).
    """

    def fit(self, X: pd.DataFrame, y: np.ndarray, censored: np.ndarray | None = None):
        log_y = np.log(np.asarray(y, dtype=float))
        self.log_median_ = float(np.median(log_y))
        self.scores_ = log_y - self.log_median_
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.full(len(X), math.exp(self.log_median_))


class PerFilterWalltime:
    """One walltime per filter: :class:`FixedWalltime` fitted on each filter's jobs."""

    def fit(self, X: pd.DataFrame, y: np.ndarray, censored: np.ndarray | None = None):
        y = np.asarray(y, dtype=float)
        filters = X["filter"].to_numpy()
        self.per_filter_ = {int(f): FixedWalltime().fit(None, y[filters == f])
                            for f in np.unique(filters)}
        self.pooled_ = FixedWalltime().fit(None, y)
        return self

    def _apply(self, X: pd.DataFrame, method: str, *args: Any) -> np.ndarray:
        filters = X["filter"].to_numpy()
        out = getattr(self.pooled_, method)(X, *args)
        # A filter with too few jobs for the asked level keeps the pooled walltime.
        need = min_calibration_size(args[0]) if args else 0
        for f, model in self.per_filter_.items():
            rows = filters == f
            if rows.any() and model.scores_.size >= need:
                out[rows] = getattr(model, method)(X[rows], *args)
        return out

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self._apply(X, "predict")

    def predict_upper(self, X: pd.DataFrame, confidence_level: float = 0.95) -> np.ndarray:
        return self._apply(X, "predict_upper", confidence_level)


class Twinkles2016Forest(_ScoreQuantileBaseline):
    """The 2016 Twinkles predictor: a random forest on (filter, moonalt, moonphase).

    It predicts log10 CPU time. The 2016 team used the point prediction (with a safety margin
    chosen by hand); for a like-for-like comparison its upper bound here is the prediction times
    the conformal quantile of the forest's out-of-bag ratios actual / predicted. Killed jobs
    enter at their kill point, as the 2016 team had no censored-data handling (and their
    ``cputime_fell`` extrapolation is not a measurement).

    Parameters
    ----------
    n_estimators : int, default=200
    random_state : int, default=0
    """

    features = ("filter", "moonalt", "moonphase")

    def __init__(self, n_estimators: int = 200, random_state: int = 0):
        self.n_estimators = n_estimators
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y: np.ndarray, censored: np.ndarray | None = None):
        log10_y = np.log10(np.asarray(y, dtype=float))
        self.forest_ = RandomForestRegressor(
            n_estimators=self.n_estimators, oob_score=True, random_state=self.random_state,
            n_jobs=1,
        ).fit(X[list(self.features)].to_numpy(dtype=float), log10_y)
        self.scores_ = (log10_y - self.forest_.oob_prediction_) * math.log(10.0)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return 10.0 ** self.forest_.predict(X[list(self.features)].to_numpy(dtype=float))


# ---------------------------------------------------------------------------- model selection
def select_params(
    estimator: CPUTimeRegressor,
    X: pd.DataFrame,
    cpu_seconds: np.ndarray,
    censored: np.ndarray,
    param_grid: list[Mapping[str, Any]],
    *,
    n_splits: int = 3,
    random_state: int = 0,
) -> dict[str, Any]:
    """Pick the booster parameters with the best inner-CV :func:`censored_abs_error_dex`.

    Only the medians are compared (``cv="split"``, no calibration), which keeps the search
    cheap; the coverage is then guaranteed by the conformal step whatever is chosen.

    Returns
    -------
    dict
        The best entry of ``param_grid``.
    """
    y = np.asarray(cpu_seconds, dtype=float)
    cens = np.asarray(censored, dtype=bool)
    folds = list(KFold(n_splits, shuffle=True, random_state=random_state).split(X))
    errors = []
    for params in param_grid:
        median = np.empty(y.size)
        for train, test in folds:
            model = clone(estimator).set_params(cv="split", **params)
            model.fit(X.iloc[train], y[train], cens[train])
            median[test] = model.predict(X.iloc[test])
        errors.append(censored_abs_error_dex(y, cens, median))
    return dict(param_grid[int(np.argmin(errors))])


#: Small grid for nested CV (``cross_val_predictions(..., param_grid=PARAM_GRID)``).
PARAM_GRID: tuple[dict[str, Any], ...] = tuple(
    {"max_depth": depth, "aft_loss_distribution_scale": scale}
    for depth in (4, 6)
    for scale in (0.2, 0.3)
)


# ---------------------------------------------------------------------------- cross-validation
def _splits(
    table: pd.DataFrame, n_splits: int, random_state: int, time_split: bool
) -> list[tuple[str, int, np.ndarray, np.ndarray]]:
    splits = [
        ("kfold", k, train, test)
        for k, (train, test) in enumerate(
            KFold(n_splits, shuffle=True, random_state=random_state).split(table)
        )
    ]
    if time_split:
        order = np.argsort(table["expmjd"].to_numpy(), kind="stable")
        cut = int(round(0.8 * order.size))
        splits.append(("time", 0, np.sort(order[:cut]), np.sort(order[cut:])))
    return splits


def cross_val_predictions(
    table: pd.DataFrame,
    models: Mapping[str, tuple[Callable[[], Any], str]],
    *,
    features: list[str],
    n_splits: int = 5,
    time_split: bool = True,
    levels: tuple[float, ...] = CV_LEVELS,
    param_grid: list[Mapping[str, Any]] | None = None,
    random_state: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """Out-of-fold medians and upper bounds of each model.

    Parameters
    ----------
    table : DataFrame
        ``cpu_seconds`` (reference host [s]), ``censored``, ``expmjd`` (for the time split) and
        the feature columns.
    models : mapping
        name -> (factory returning an unfitted model, censoring mode in
        :data:`CENSORING_MODES`).
    features : list of str
        Feature columns given to every model.
    n_splits : int, default=5
        Folds of the shuffled K-fold split ("kfold").
    time_split : bool, default=True
        Also train on the earliest 80% of visits by ``expmjd`` and test on the rest ("time").
    levels : tuple of float
        Confidence levels at which upper bounds are recorded.
    param_grid : list of dict, default=None
        If given, every :class:`CPUTimeRegressor` gets its parameters chosen from this grid by
        :func:`select_params` on each outer training set (nested CV).

    Returns
    -------
    DataFrame
        One row per (model, split, test row): ``model``, ``split``, ``fold``, ``row``,
        ``cpu_seconds``, ``censored``, ``median`` [s] and ``upper_<level>`` [s]; and
        ``upper_policy`` [s] for models with a walltime policy (``predict_policy_upper``).
    """
    X = table[features]
    y = table["cpu_seconds"].to_numpy(dtype=float)
    cens = table["censored"].to_numpy(dtype=bool)
    splits = _splits(table, n_splits, random_state, time_split)
    frames = []
    jobs = [(name, spec, split) for name, spec in models.items() for split in splits]
    for name, (factory, mode), (split, fold, train, test) in tqdm(
        jobs, desc="cross-validation", disable=not progress
    ):
        if mode not in CENSORING_MODES:
            raise ValueError(f"censoring mode must be one of {CENSORING_MODES}, got {mode!r}")
        if mode == "drop":
            train = train[~cens[train]]
        train_cens = cens[train] if mode == "censored" else np.zeros(train.size, dtype=bool)
        model = factory()
        if param_grid is not None and isinstance(model, CPUTimeRegressor):
            model.set_params(**select_params(
                model, X.iloc[train], y[train], train_cens, param_grid,
                random_state=random_state,
            ))
        model.fit(X.iloc[train], y[train], train_cens)
        frame = pd.DataFrame({
            "model": name, "split": split, "fold": fold, "row": test,
            "cpu_seconds": y[test], "censored": cens[test],
            "median": model.predict(X.iloc[test]),
        })
        for level in levels:
            frame[f"upper_{level}"] = model.predict_upper(X.iloc[test], level)
        if hasattr(model, "predict_policy_upper"):
            frame[f"upper_{POLICY}"] = model.predict_policy_upper(X.iloc[test])
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def summarize_predictions(
    predictions: pd.DataFrame, confidence_level: float | str = 0.95
) -> pd.DataFrame:
    """:func:`upper_bound_metrics` per (model, split) over all out-of-fold rows.

    ``confidence_level`` picks the upper bound used as the walltime: a recorded level, or
    :data:`POLICY` (models without a policy are left out then).

    Returns
    -------
    DataFrame
        Indexed by (model, split); one column per metric.
    """
    rows = {}
    for (name, split), group in predictions.groupby(["model", "split"], sort=False):
        if group[f"upper_{confidence_level}"].isna().all():
            continue
        rows[(name, split)] = upper_bound_metrics(
            group["cpu_seconds"], group["censored"], group["median"],
            group[f"upper_{confidence_level}"],
        )
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.names = ["model", "split"]
    return out


# ---------------------------------------------------------------------------- plots
def _kfold(predictions: pd.DataFrame) -> pd.DataFrame:
    return predictions[predictions["split"] == "kfold"]


def plot_predicted_vs_actual(
    predictions: pd.DataFrame, path: str | Path, models: tuple[str, ...] | None = None
) -> None:
    """Scatter of predicted median vs actual CPU hours, censored jobs marked, per model.

    ``models=None`` shows "aft+km" and "twinkles 2016 forest" if present, else the first model.
    """
    data = _kfold(predictions)
    if models is None:
        present = list(dict.fromkeys(data["model"]))
        models = tuple(m for m in ("aft+km", "twinkles 2016 forest") if m in present)
        models = models or (present[0],)
    plot_prediction_panels({name: data[data["model"] == name] for name in models}, path)


def plot_prediction_panels(panels: Mapping[str, pd.DataFrame], path: str | Path) -> None:
    """One log-log panel per entry: predicted median (and upper bound where given) against the
    actual CPU hours, killed jobs marked.

    Parameters
    ----------
    panels : mapping of str to DataFrame
        Title -> rows with ``cpu_seconds`` [s], ``censored``, ``median`` [s] and optionally
        ``upper`` [s]; an infinite upper bound is not drawn.
    path : str or Path
        PNG file.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.6), squeeze=False)
    for ax, (name, rows) in zip(axes[0], panels.items(), strict=True):
        done = ~rows["censored"].to_numpy(dtype=bool)
        hours = rows["cpu_seconds"].to_numpy(dtype=float) / 3600.0
        pred = rows["median"].to_numpy(dtype=float) / 3600.0
        ax.scatter(hours[done], pred[done], s=6, alpha=0.6, label="median, finished")
        ax.scatter(hours[~done], pred[~done], s=14, marker=">", color="C3",
                   label="median, killed at limit (actual is a lower bound)")
        top = max(hours.max(), pred.max())
        if "upper" in rows:
            upper = rows["upper"].to_numpy(dtype=float) / 3600.0
            finite = np.isfinite(upper)
            ax.scatter(hours[finite], upper[finite], s=4, alpha=0.4, color="C2",
                       label="upper bound")
            top = max(top, upper[finite].max()) if finite.any() else top
        lims = [max(min(hours.min(), pred.min()) * 0.8, 1e-4), top * 1.2]
        ax.plot(lims, lims, "k-", lw=0.8)
        ax.set(xscale="log", yscale="log", xlim=lims, ylim=lims, title=name,
               xlabel="actual CPU [h, reference host]", ylabel="predicted CPU [h]")
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_coverage(predictions: pd.DataFrame, path: str | Path) -> None:
    """Empirical coverage of finished jobs vs nominal confidence level, per model."""
    import matplotlib.pyplot as plt

    data = _kfold(predictions)
    levels = recorded_levels(data)
    fig, ax = plt.subplots(figsize=(5.5, 4.6))
    for name, rows in data.groupby("model", sort=False):
        done = rows[~rows["censored"]]
        coverage = [np.mean(done[f"upper_{c}"] >= done["cpu_seconds"]) for c in levels]
        ax.plot(levels, coverage, marker="o", ms=3, label=name)
    ax.plot([0.5, 1], [0.5, 1], "k--", lw=0.8, label="nominal")
    ax.set(xlabel="nominal confidence level", ylabel="coverage of finished jobs (5-fold CV)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def recorded_levels(predictions: pd.DataFrame) -> list[float]:
    """Confidence levels whose upper bounds a predictions table records, increasing."""
    return sorted(
        float(c.removeprefix("upper_"))
        for c in predictions
        if c.startswith("upper_") and c != f"upper_{POLICY}"
    )


def plot_tradeoff(predictions: pd.DataFrame, path: str | Path) -> None:
    """Killed share vs reserved overhead: ours across confidence levels, fixed walltime across
    limits. Finished jobs only (their outcome under any walltime is known)."""
    import matplotlib.pyplot as plt

    data = _kfold(predictions)
    levels = recorded_levels(data)
    fig, ax = plt.subplots(figsize=(5.5, 4.6))

    def point(y: np.ndarray, upper: np.ndarray) -> tuple[float, float]:
        covered = upper >= y
        return (np.where(covered, upper - y, 0.0).sum() / y.sum(), 1.0 - covered.mean())

    for name, rows in data.groupby("model", sort=False):
        if name == "fixed walltime":
            continue
        done = rows[~rows["censored"]]
        y = done["cpu_seconds"].to_numpy()
        pts = np.array([point(y, done[f"upper_{c}"].to_numpy()) for c in levels])
        line = ax.plot(pts[:, 0], pts[:, 1], marker="o", ms=3, label=f"{name} (vary confidence)")
        if f"upper_{POLICY}" in done and done[f"upper_{POLICY}"].notna().all():
            x, share = point(y, done[f"upper_{POLICY}"].to_numpy())
            ax.plot(x, share, "*", ms=13, color=line[0].get_color(), mec="k",
                    label=f"{name}: least-CPU-lost level")
    done = data[(data["model"] == data["model"].iloc[0]) & ~data["censored"]]
    y = done["cpu_seconds"].to_numpy()
    limits = np.quantile(y, np.linspace(0.3, 1.0, 40))
    pts = np.array([point(y, np.full(y.size, limit)) for limit in limits])
    ax.plot(pts[:, 0], pts[:, 1], "k-", label="fixed walltime (vary limit)")
    # The region that matters, a few per cent killed, stays readable on a symlog axis.
    ax.set_yscale("symlog", linthresh=0.01, linscale=0.5)
    ax.set(xscale="log", xlabel="reserved but unused / used CPU hours (finished jobs)",
           ylabel="share of finished jobs killed")
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
