"""Evaluation report of the CPU-time model: ``cputime evaluate``.

Two data sets, two questions:

- *production jobs* (Twinkles Run 1): K-fold and time-ordered cross-validation of the whole model
  next to the baselines (one fixed walltime, a per-filter quantile, the 2016 Twinkles random
  forest) and two censoring ablations (killed jobs taken as exact, or dropped);
- *catalog runs* (PhoSim runs that vary catalog content): leave-one-group-out predictions of the
  cost model, ranking and scale errors, the seed-repeat noise floor, and the response to a bright
  star's magnitude and distance.

Everything is written to one folder: ``metrics.json``, CSV tables and PNG plots.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from cputime.inputs.focalplane import MM_PER_ARCMIN, PIXEL_SIZE_MM, trim_margin_pixels
from cputime.model.composite import (
    CPUTimeModel,
    MeasuredRuns,
    extrapolation_log_slope,
    leave_one_group_out_predictions,
    source_log_offset,
)
from cputime.model.evaluate import (
    POLICY,
    FixedWalltime,
    PerFilterWalltime,
    Twinkles2016Forest,
    cross_val_predictions,
    plot_coverage,
    plot_predicted_vs_actual,
    plot_tradeoff,
    recorded_levels,
    summarize_predictions,
)
from cputime.model.extrapolation import extrapolation_dex, range_limits
from cputime.physics.cost import PhosimCostModel
from cputime.physics.features import FEATURE_COLUMNS
from cputime.planning.predictions import walltime_levels
from cputime.runs.training import CENSORED_COLUMN, TARGET_COLUMN

__all__ = ["ModelWithRuns", "twinkles_cross_validation", "evaluate_runs", "write_report"]

#: Name of our model in the tables and plots.
OURS = "cputime"


class ModelWithRuns:
    """A :class:`CPUTimeModel` whose catalog runs are fixed, with the ``fit(X, y, censored)``
    signature cross-validation expects."""

    def __init__(self, runs: MeasuredRuns, **params):
        self.runs = runs
        self.params = params

    def fit(self, X: pd.DataFrame, y: np.ndarray, censored: np.ndarray | None = None):
        self.model_ = CPUTimeModel(**self.params).fit(X, y, censored, runs=self.runs)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.model_.predict(X)

    def predict_upper(self, X: pd.DataFrame, confidence_level: float = 0.95) -> np.ndarray:
        return self.model_.predict_upper(X, confidence_level)

    def predict_policy_upper(self, X: pd.DataFrame) -> np.ndarray:
        """Upper bound at the level that loses the least CPU (the default walltime)."""
        return self.model_.predict_upper(X, walltime_levels(self.model_, X))


def twinkles_cross_validation(
    table: pd.DataFrame,
    runs: MeasuredRuns,
    *,
    folds: int = 5,
    confidence_level: float = 0.95,
    regressor_params: dict | None = None,
    progress: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Out-of-fold predictions and metrics of our model, its ablations and the baselines.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`cputime.runs.training.load_training_table`.
    runs : MeasuredRuns
        Catalog runs for the cost parts (the same in every fold).
    folds : int
        K of the shuffled K-fold split; a time-ordered split (last 20 % by ``expmjd``) is added
        when the table has ``expmjd``.

    Returns
    -------
    predictions, metrics : pandas.DataFrame
        As :func:`cputime.model.evaluate.cross_val_predictions` and
        :func:`cputime.model.evaluate.summarize_predictions`.
    """

    def ours() -> ModelWithRuns:
        return ModelWithRuns(
            runs, confidence_level=confidence_level, regressor_params=regressor_params
        )

    models = {
        OURS: (ours, "censored"),
        f"{OURS} (killed taken as exact)": (ours, "exact"),
        f"{OURS} (killed dropped)": (ours, "drop"),
        "fixed walltime": (FixedWalltime, "exact"),
        "per-filter walltime": (PerFilterWalltime, "exact"),
        "twinkles 2016 forest": (Twinkles2016Forest, "exact"),
    }
    frame = table.rename(columns={TARGET_COLUMN: "cpu_seconds", CENSORED_COLUMN: "censored"})
    predictions = cross_val_predictions(
        frame,
        models,
        features=list(FEATURE_COLUMNS),
        n_splits=folds,
        time_split="expmjd" in frame.columns,
        progress=progress,
    )
    return predictions, summarize_predictions(predictions, confidence_level)


# ------------------------------------------------------------------------------- catalog runs


def evaluate_runs(runs: MeasuredRuns, confidence_level: float = 0.95) -> tuple[pd.DataFrame, dict]:
    """Out-of-sample evaluation of the cost model on catalog runs.

    Two schemes: leave-one-group-out (each kind of change predicted from runs that never made
    it: a filter group left out leaves no filter measured at all) and leave-one-run-out (each
    run predicted from all the others, as a new run of a kind already measured would be).

    The upper bound of a held-out run is its prediction widened by the offset and the
    extrapolation slope that the leave-one-group-out scores of all runs give
    (:func:`cputime.model.composite.source_log_offset`,
    :func:`cputime.model.composite.extrapolation_log_slope`) at
    its distance beyond the range of the runs its prediction was fitted on.

    Returns
    -------
    table : pandas.DataFrame
        Per run: group, measured CPU, censored, the two predictions, their upper bounds,
        distances beyond the fitted range [dex] and ``log10(predicted/measured)``.
    metrics : dict
        Per scheme (``logo``, ``loro``): ``spearman`` (finished runs), ``median_abs_dex``,
        ``max_abs_dex`` (and ``max_abs_dex_inside_range``, over the runs inside the range of
        the others; ``n_beyond_range`` counts the rest), ``n_over_0p15_dex``,
        ``finished_below_upper`` (share of finished runs whose upper bound covers them),
        ``killed_predicted_above`` (share of killed runs
        predicted above their CPU at the kill), ``bright_star_monotone`` (where PhoSim took
        longer for a brighter star, so does the model); and ``seed_noise_dex``, the standard
        deviation of log10 CPU over the seed repeats.
    """
    table = runs.features[
        [
            "obshistid",
            "sensor",
            "filter",
            "bright_star_mag_1",
            "brightest_near_star_distance_arcmin",
        ]
    ].copy()
    table["group"] = runs.groups
    table["cpu_seconds"] = runs.cpu_seconds
    table["censored"] = runs.censored
    done = ~runs.censored
    seeds = np.isin(runs.groups, ["base", "G"]) & done & (runs.features["n_objects"] == 50)
    metrics: dict = {
        "n_runs": int(len(table)),
        "n_killed": int((~done).sum()),
        "seed_noise_dex": float(np.std(np.log10(runs.cpu_seconds[seeds]), ddof=1))
        if seeds.sum() >= 2
        else float("nan"),
    }
    schemes = {"logo": None, "loro": np.arange(len(runs.cpu_seconds)).astype(str)}
    logo_scores = None
    for scheme, groups in schemes.items():
        predicted, distance = leave_one_group_out_predictions(runs, groups, with_extrapolation=True)
        if logo_scores is None:
            logo_scores = (np.log(runs.cpu_seconds / predicted), runs.censored, distance)
        offset = source_log_offset(*logo_scores, confidence_level)
        slope = extrapolation_log_slope(*logo_scores, confidence_level)
        upper = predicted * np.exp(offset + slope * distance)
        table[f"predicted_seconds_{scheme}"] = predicted
        table[f"upper_seconds_{scheme}"] = upper
        table[f"extrapolation_dex_{scheme}"] = distance
        table[f"error_dex_{scheme}"] = np.log10(predicted / runs.cpu_seconds)
        errors = np.abs(table[f"error_dex_{scheme}"].to_numpy()[done])
        inside = distance[done] == 0
        metrics[scheme] = {
            "spearman": float(spearmanr(predicted[done], runs.cpu_seconds[done])[0]),
            "median_abs_dex": float(np.median(errors)),
            "max_abs_dex": float(errors.max()),
            "max_abs_dex_inside_range": float(errors[inside].max()),
            "n_beyond_range": int((distance[done] > 0).sum()),
            "n_over_0p15_dex": int((errors > 0.15).sum()),
            "finished_below_upper": float(np.mean(upper[done] >= runs.cpu_seconds[done])),
            "median_upper_ratio": float(np.median(upper[done] / runs.cpu_seconds[done])),
            "killed_cpu_seconds": float(upper[done][upper[done] < runs.cpu_seconds[done]].sum()),
            "killed_predicted_above": float(np.mean(predicted[~done] > runs.cpu_seconds[~done]))
            if (~done).any()
            else float("nan"),
            "bright_star_monotone": _bright_star_monotone(table, predicted),
        }
    metrics["bound"] = {
        "confidence_level": confidence_level,
        "source_log_offset": offset,
        "extrapolation_log_slope_per_dex": slope,
    }
    return table, metrics


#: Groups whose runs add one star to the base catalog (or hold only that star).
BRIGHT_STAR_GROUPS = ("A", "A2", "check")


def _bright_star_monotone(table: pd.DataFrame, predicted: np.ndarray) -> bool:
    """Whether every pair of single-bright-star runs that PhoSim orders by CPU the model orders
    the same way (finished runs, and killed runs as at least their CPU)."""
    rows = table.assign(predicted=predicted)
    rows = rows[rows["group"].isin(BRIGHT_STAR_GROUPS) & rows["bright_star_mag_1"].lt(16)]
    rows = rows.sort_values("bright_star_mag_1")
    measured = rows["cpu_seconds"].to_numpy()
    predicted = rows["predicted"].to_numpy()
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            if measured[i] > measured[j] and not predicted[i] > predicted[j]:
                return False
    return True


def bright_star_curve(cost_model: PhosimCostModel, base: pd.Series, mags: np.ndarray) -> np.ndarray:
    """Cost-model CPU of ``base`` plus one star of each magnitude on the sensor [s]."""
    rows = pd.DataFrame([base] * len(mags))
    rows["bright_star_mag_1"] = mags
    return cost_model.predict(rows)


def off_sensor_curve(
    cost_model: PhosimCostModel, base: pd.Series, mag: float, arcmin: np.ndarray
) -> np.ndarray:
    """Cost-model CPU of ``base`` plus one star of ``mag`` at each distance beyond the sensor's
    edge [s]: PhoSim keeps it while it is within the trim margin."""
    margin_arcmin = trim_margin_pixels(mag) * PIXEL_SIZE_MM / MM_PER_ARCMIN
    rows = pd.DataFrame([base] * len(arcmin))
    rows["bright_star_mag_1"] = np.where(arcmin <= margin_arcmin, mag, np.nan)
    return cost_model.predict(rows)


def _scatter_measured(ax, x: pd.Series, rows: pd.DataFrame) -> None:
    """Measured CPU of runs: dots for finished runs, triangles for killed ones (lower bounds)."""
    killed = rows["censored"].to_numpy(dtype=bool)
    ax.scatter(x[~killed], rows["cpu_seconds"][~killed], color="C0", label="measured")
    ax.scatter(
        x[killed], rows["cpu_seconds"][killed], color="C3", marker=">", label="killed (lower bound)"
    )


def _plot_bright_star_sequence(ax, table, runs: MeasuredRuns, model, base: pd.Series) -> None:
    """The bright-star sequence: measured CPU per magnitude, the fitted curve, and each run's
    leave-one-run-out prediction with its upper bound."""
    mags = np.linspace(5.0, 16.5, 80)
    curve = bright_star_curve(model, base, mags)
    ax.plot(mags, curve, "k-", lw=1, label="model (all runs)")
    limits = range_limits(runs.features, ~runs.censored)
    rows = base.to_frame().T.loc[[base.name] * len(mags)].reset_index(drop=True)
    rows["bright_star_mag_1"] = mags
    beyond = extrapolation_dex(rows, limits, model.measured_filters_).max(axis=1) > 0
    ax.axvspan(mags[beyond].min(), mags[beyond].max(), color="0.9", label="beyond fitted range")
    star = table[table["group"].isin(BRIGHT_STAR_GROUPS) & table["bright_star_mag_1"].lt(16)]
    star_mags = star["bright_star_mag_1"]
    ax.errorbar(
        star_mags,
        star["predicted_seconds_loro"],
        yerr=[np.zeros(len(star)), star["upper_seconds_loro"] - star["predicted_seconds_loro"]],
        fmt="s",
        mfc="none",
        color="C2",
        capsize=3,
        label="leave-one-run-out, to upper bound",
    )
    _scatter_measured(ax, star_mags, star)
    ax.set(
        yscale="log",
        xlabel="magnorm of the one bright star on R22_S11",
        ylabel="CPU [s] on the runs' host",
        title="bright-star sequence",
    )
    ax.axvline(10.0, color="0.5", ls=":", lw=1)
    ax.text(10.05, ax.get_ylim()[1] * 0.6, "straylightcut", fontsize=7, color="0.4")
    ax.legend(fontsize=7)


def plot_runs(table: pd.DataFrame, runs: MeasuredRuns, out: Path) -> None:
    """Predicted vs measured coloured by group; CPU vs bright-star magnitude and distance."""
    import matplotlib.pyplot as plt

    model = PhosimCostModel().fit(runs.features, runs.cpu_seconds, runs.censored)
    fig, ax = plt.subplots(figsize=(5.8, 5))
    for k, (group, rows) in enumerate(table.groupby("group")):
        done = ~rows["censored"]
        ax.scatter(
            rows["cpu_seconds"][done],
            rows["predicted_seconds_loro"][done],
            color=f"C{k % 10}",
            label=group,
            s=22,
        )
        ax.scatter(
            rows["cpu_seconds"][~done],
            rows["predicted_seconds_loro"][~done],
            color=f"C{k % 10}",
            marker=">",
            s=40,
        )
    lims = [50, max(table["predicted_seconds_loro"].max(), table["cpu_seconds"].max()) * 1.3]
    ax.plot(lims, lims, "k-", lw=0.8)
    ax.set(
        xscale="log",
        yscale="log",
        xlim=lims,
        ylim=lims,
        xlabel="measured CPU [s] (> : killed, lower bound)",
        ylabel="predicted CPU [s], leave-one-run-out",
        title="PhoSim runs: cost model",
    )
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "runs_predicted_vs_measured.png", dpi=120)
    plt.close(fig)

    base_rows = table["group"] == "base"
    base = runs.features[base_rows & (runs.features["n_objects"] == 50)].iloc[0]
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.3))
    _plot_bright_star_sequence(axes[0], table, runs, model, base)
    arcmin = np.linspace(0.0, 70.0, 300)
    axes[1].plot(arcmin, off_sensor_curve(model, base, 9.0, arcmin), "k-", label="model")
    off = table[table["group"] == "B"]
    _scatter_measured(axes[1], off["brightest_near_star_distance_arcmin"], off)
    axes[1].set(
        yscale="log",
        xlabel="distance of a 9 mag star beyond the sensor edge [arcmin]",
        ylabel="CPU [s]",
        title="one bright star off the sensor",
    )
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(out / "runs_bright_star.png", dpi=120)
    plt.close(fig)


# ------------------------------------------------------------------------------------- report


def _given_model_predictions(
    table: pd.DataFrame, name: str, model: CPUTimeModel, *, levels: list[float]
) -> pd.DataFrame:
    """Medians and upper bounds of a fitted model on every row, in the CV predictions' layout."""
    X = table[["obshistid", "sensor", *FEATURE_COLUMNS]]
    frame = pd.DataFrame(
        {
            "model": name,
            "split": "as given",
            "fold": 0,
            "row": np.arange(len(table)),
            "cpu_seconds": table[TARGET_COLUMN].to_numpy(),
            "censored": table[CENSORED_COLUMN].to_numpy(),
            "median": model.predict(X),
        }
    )
    for level in levels:
        frame[f"upper_{level}"] = model.predict_upper(X, level)
    frame[f"upper_{POLICY}"] = model.predict_upper(X, walltime_levels(model, X))
    return frame


def _metrics_dict(metrics: pd.DataFrame) -> dict:
    return {
        f"{model} [{split}]": {k: round(float(v), 4) for k, v in row.items()}
        for (model, split), row in metrics.iterrows()
    }


def _rounded(value):
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return round(value, 4) if isinstance(value, float) else value


def write_report(
    table: pd.DataFrame,
    runs: MeasuredRuns,
    out: str | Path,
    *,
    folds: int = 5,
    confidence_level: float = 0.95,
    regressor_params: dict | None = None,
    progress: bool = True,
    given_model: tuple[str, CPUTimeModel] | None = None,
) -> dict:
    """Run both evaluations and write metrics, tables and plots to ``out``.

    Parameters
    ----------
    given_model : (str, CPUTimeModel), optional
        A fitted model (name, model) scored as it is on every row of ``table`` (split
        ``"as given"``), next to the cross-validated ones: e.g. the registry's champion on jobs
        it has not seen.

    Returns
    -------
    dict
        The contents of ``metrics.json``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    predictions, metrics = twinkles_cross_validation(
        table,
        runs,
        folds=folds,
        confidence_level=confidence_level,
        regressor_params=regressor_params,
        progress=progress,
    )
    if given_model is not None:
        given = _given_model_predictions(table, *given_model, levels=recorded_levels(predictions))
        predictions = pd.concat([predictions, given], ignore_index=True)
        metrics = summarize_predictions(predictions, confidence_level)
    policy_metrics = summarize_predictions(predictions, POLICY)
    predictions.to_csv(out / "twinkles_cv_predictions.csv", index=False)
    metrics.to_csv(out / "twinkles_cv_metrics.csv")
    plot_predicted_vs_actual(
        predictions, out / "predicted_vs_actual.png", models=(OURS, "twinkles 2016 forest")
    )
    plot_coverage(predictions, out / "coverage.png")
    plot_tradeoff(predictions, out / "tradeoff.png")

    runs_table, runs_metrics = evaluate_runs(runs, confidence_level)
    runs_table.to_csv(out / "runs_predictions.csv", index=False)
    plot_runs(runs_table, runs, out)
    # The runs under the default walltime policy: its level (moon down: every run's sky is
    # dark or off) on a model fitted on every job.
    full = CPUTimeModel(regressor_params=regressor_params).fit(
        table[["obshistid", "sensor", *FEATURE_COLUMNS]],
        table[TARGET_COLUMN].to_numpy(),
        table[CENSORED_COLUMN].to_numpy(),
        runs=runs,
    )
    _, runs_policy = evaluate_runs(runs, float(walltime_levels(full, runs.features).max()))
    summary = {
        "confidence_level": confidence_level,
        "twinkles_cv": _metrics_dict(metrics),
        "twinkles_cv_policy": _metrics_dict(policy_metrics),
        "phosim_runs": _rounded(runs_metrics),
        "phosim_runs_policy": _rounded(runs_policy),
    }
    (out / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
