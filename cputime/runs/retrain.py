"""Retraining from the runs store: challenger vs champion on recent held-out runs.

1. Training examples are the stored runs that finished or were censored at their time limit and
   have features of the current feature code version (:meth:`RunsStore.training_table`).
2. Time-ordered split: the most recent ``holdout_fraction`` of them (by start time) are held out.
3. The challenger is a :class:`~cputime.model.composite.CPUTimeModel` fitted on the rest (censored
rows as
   censored) with the measured catalog runs for the cost parts.
4. Challenger and the current champion are evaluated on the same held-out runs
   (:func:`holdout_metrics`).
5. The challenger is logged to MLflow (parameters, metrics, a plot, the predictions and the model
   folder) and registered as a new version; with ``promote`` the champion alias moves to it when
   the gate (:func:`cputime.runs.promotion.promotion_decision`) lets it.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cputime.errors import InputError
from cputime.model.composite import MeasuredRuns
from cputime.model.loading import resolve_model, tracking_uri_or_default
from cputime.runs.promotion import Decision, promotion_decision
from cputime.runs.registry import (
    CHAMPION,
    RegisteredVersion,
    champion_version,
    log_and_register,
    set_champion,
)
from cputime.runs.store import RunsStore, redacted_uri

__all__ = [
    "RetrainResult",
    "time_split",
    "holdout_metrics",
    "retrain",
    "check_model_name",
    "check_regressor_params",
    "MIN_TRAINING_ROWS",
]

#: Fewer training examples than this cannot fit and calibrate a model.
MIN_TRAINING_ROWS = 20

#: A registered model name: letters, digits, ``_ . -``, starting with a letter or digit. MLflow
#: uses the name in paths and URIs; ``../../x`` would write outside the artifact folder.
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")

#: Sky-correction regressor parameters a user may set: (low, high, type).
REGRESSOR_PARAM_RANGES: dict[str, tuple[float, float, type]] = {
    "n_estimators": (1, 10_000, int),
    "learning_rate": (1e-6, 1.0, float),
    "max_depth": (1, 20, int),
    "min_child_weight": (0.0, 1e6, float),
    "subsample": (1e-3, 1.0, float),
    "colsample_bytree": (1e-3, 1.0, float),
    "reg_lambda": (0.0, 1e6, float),
    "aft_loss_distribution_scale": (1e-3, 100.0, float),
    "cv": (2, 50, int),
    "nthread": (1, 256, int),
}
_REGRESSOR_PARAM_CHOICES = {"aft_loss_distribution": ("normal", "logistic", "extreme")}


def check_model_name(name: str) -> str:
    """Return ``name`` when it is a valid registered-model name; raise InputError otherwise."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or ".." in name:
        raise InputError(
            f"name: {name!r} is not a model name (letters, digits, '_', '.', '-'; starting "
            "with a letter or digit; no '..'; at most 100 characters)"
        )
    return name


def check_regressor_params(params: object) -> dict | None:
    """Return ``params`` when every key is a known regressor parameter with a sane value."""
    if params is None:
        return None
    if not isinstance(params, dict):
        raise InputError("regressor_params: expected a JSON object such as "
                         '{"n_estimators": 300, "max_depth": 6}')
    known = sorted([*REGRESSOR_PARAM_RANGES, *_REGRESSOR_PARAM_CHOICES])
    for key, value in params.items():
        where = f"regressor_params: {key}"
        if key in _REGRESSOR_PARAM_CHOICES:
            if value not in _REGRESSOR_PARAM_CHOICES[key]:
                choices = ", ".join(_REGRESSOR_PARAM_CHOICES[key])
                raise InputError(f"{where}: {value!r} is not one of {choices}")
            continue
        if key not in REGRESSOR_PARAM_RANGES:
            raise InputError(f"{where}: not a parameter (known: {', '.join(known)})")
        low, high, kind = REGRESSOR_PARAM_RANGES[key]
        number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        if (number is None or not math.isfinite(number) or not low <= number <= high
                or (kind is int and number != int(number))):
            word = "a whole number" if kind is int else "a number"
            raise InputError(f"{where}: {value!r} is not {word} in [{low:g}, {high:g}]")
    return params


def time_split(table: pd.DataFrame, holdout_fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split runs (oldest first) into older training rows and the most recent held-out rows.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows in time order (as :meth:`RunsStore.training_table` returns them).
    holdout_fraction : float
        Share of rows held out, in (0, 1); at least one row is held out.
    """
    if not 0 < holdout_fraction < 1:
        raise InputError(f"holdout_fraction: {holdout_fraction} is not a fraction in (0, 1)")
    n_holdout = max(1, math.ceil(holdout_fraction * len(table)))
    cut = len(table) - n_holdout
    return table.iloc[:cut].reset_index(drop=True), table.iloc[cut:].reset_index(drop=True)


def holdout_metrics(model, table: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    """Gate metrics of a model on held-out runs, with a walltime at its upper bound.

    ``killed_share``: share of the runs whose CPU exceeds the upper bound (a censored run counts
    when the bound is below its CPU at the kill, a lower bound of its need). ``mae_dex``: mean
    ``|log10(median / actual)|`` over finished runs. Plus ``coverage_finished``, ``n`` and
    ``n_censored`` (see :func:`cputime.model.evaluate.upper_bound_metrics`).

    Returns
    -------
    metrics : dict
    predictions : pandas.DataFrame
        ``median`` and ``upper`` [s, reference host] per run.
    """
    from cputime.model.evaluate import upper_bound_metrics

    median = model.predict(table)
    upper = model.predict_upper(table)
    y = table["cpu_seconds_ref"].to_numpy(dtype=float)
    censored = table["censored"].to_numpy(dtype=bool)
    full = upper_bound_metrics(y, censored, median, upper)
    metrics = {
        "killed_share": full["killed_share_min"],
        "mae_dex": full["mae_dex"],
        "coverage_finished": full["coverage_finished"],
        "n": int(full["n"]),
        "n_censored": int(full["n_censored"]),
    }
    return metrics, pd.DataFrame({"median": median, "upper": upper})


@dataclass
class RetrainResult:
    """What :func:`retrain` did."""

    registered: RegisteredVersion
    challenger: dict
    champion: dict | None
    champion_version: str | None
    decision: Decision
    promoted: bool
    counts: dict
    split: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["registered"]["uri"] = self.registered.uri
        return out

    def message(self) -> str:
        """One line: the decision and why."""
        new = f"{self.registered.name} version {self.registered.version}"
        if self.promoted:
            return f"promoted {new} to @{CHAMPION}: {self.decision.reason}"
        if self.decision.promote:
            return f"registered {new}; the gate would promote it (promote was not asked): " \
                f"{self.decision.reason}"
        return f"registered {new}; @{CHAMPION} stays at version {self.champion_version}: " \
            f"{self.decision.reason}"


def _plot(path: Path, holdout: pd.DataFrame, predictions: dict[str, pd.DataFrame]) -> None:
    from cputime.model.evaluate import plot_prediction_panels

    actual = {"cpu_seconds": holdout["cpu_seconds_ref"].to_numpy(),
              "censored": holdout["censored"].to_numpy(dtype=bool)}
    panels = {label: pred.reset_index(drop=True).assign(**actual)
              for label, pred in predictions.items()}
    plot_prediction_panels(panels, path)


def retrain(
    store: RunsStore,
    *,
    name: str,
    runs: MeasuredRuns,
    tracking_uri: str | None = None,
    promote: bool = False,
    holdout_fraction: float = 0.2,
    confidence_level: float = 0.95,
    regressor_params: dict | None = None,
    out: str | Path | None = None,
    runs_source: str = "",
) -> RetrainResult:
    """Train a challenger on the stored runs, compare it with the champion, register it.

    Parameters
    ----------
    store : RunsStore
        The runs store.
    name : str
        Registered model name.
    runs : MeasuredRuns
        Catalog runs for the cost parts (:func:`cputime.runs.training.load_runs_table`).
    tracking_uri : str, optional
        MLflow tracking and registry store (default: local SQLite ``mlruns.db``).
    promote : bool
        Move the champion alias to the challenger when the gate lets it.
    holdout_fraction : float
        Share of the most recent runs held out for the comparison.
    confidence_level : float
        Default coverage of the challenger's upper bound.
    regressor_params : dict, optional
        Parameters of the sky-correction regressor (e.g. ``{"n_estimators": 30, "cv": 3}``).
    out : path, optional
        Also keep the challenger's model folder here.
    runs_source : str
        Name of the catalog-runs table, logged as a parameter.

    Returns
    -------
    RetrainResult

    Raises
    ------
    InputError
        When the store holds too few training examples.
    """
    from cputime.model.persistence import load_cputime_model, save_cputime_model
    from cputime.physics.features import FEATURE_CODE_VERSION
    from cputime.runs.training import train_model

    check_model_name(name)  # before any work: the name ends up in paths
    check_regressor_params(regressor_params)
    uri = tracking_uri_or_default(tracking_uri)
    table, counts = store.training_table(FEATURE_CODE_VERSION)
    train, holdout = time_split(table, holdout_fraction)
    where = f"store {redacted_uri(store.uri)}"
    if len(train) < MIN_TRAINING_ROWS:
        raise InputError(
            f"{where}: {len(train)} training runs after holding out "
            f"{len(holdout)}, need at least {MIN_TRAINING_ROWS} ({json.dumps(counts)})"
        )
    if train["censored"].all():
        raise InputError(
            f"{where}: all {len(train)} training runs were killed at their time limit "
            "(censored): a model needs finished runs to learn the CPU time from; ingest "
            "finished jobs too"
        )
    split = {
        "n_train": len(train),
        "n_holdout": len(holdout),
        "holdout_fraction": holdout_fraction,
        "holdout_from": str(holdout["ended"].iloc[0]),
    }
    with tempfile.TemporaryDirectory(prefix="cputime-retrain-") as tmp:
        trained_dir = Path(tmp) / "trained"
        summary = train_model(
            train, runs, out=trained_dir, confidence_level=confidence_level,
            regressor_params=regressor_params, source=f"runs store {redacted_uri(store.uri)}",
        )
        challenger_model, _ = load_cputime_model(trained_dir)
        challenger, challenger_pred = holdout_metrics(challenger_model, holdout)

        previous = champion_version(name, uri)
        champion, predictions = None, {"challenger": challenger_pred}
        decision = None
        if previous is not None:
            loaded = resolve_model(f"models:/{name}/{previous}", tracking_uri=uri)
            try:
                champion, predictions[f"champion v{previous}"] = holdout_metrics(
                    loaded.model, holdout
                )
            except (ValueError, KeyError) as exc:
                decision = Decision(
                    True, f"champion version {previous} cannot predict the held-out runs ({exc})"
                )
        decision = decision or promotion_decision(challenger, champion)

        model_dir = Path(out) if out is not None else Path(tmp) / "model"
        save_cputime_model(
            challenger_model, model_dir,
            training=summary, metrics={"holdout": challenger, **split},
        )
        plot = Path(tmp) / "holdout.png"
        _plot(plot, holdout, predictions)
        table_path = Path(tmp) / "holdout_predictions.csv"
        _holdout_table(holdout, predictions).to_csv(table_path, index=False)

        metrics = {f"challenger_{k}": float(v) for k, v in challenger.items()}
        if champion is not None:
            metrics.update({f"champion_{k}": float(v) for k, v in champion.items()})
        params = {
            **split,
            "confidence_level": confidence_level,
            "regressor_params": json.dumps(regressor_params or {}, sort_keys=True),
            "feature_code_version": FEATURE_CODE_VERSION,
            "runs_db": redacted_uri(store.uri),
            "catalog_runs": runs_source,
            "champion_version": previous or "",
            **{f"store_{k}": v for k, v in counts.items()},
        }
        tags = {"gate_promote": str(decision.promote), "gate_reason": decision.reason}
        registered = log_and_register(
            model_dir, name=name, tracking_uri=uri, params=params, metrics=metrics,
            artifacts={"plots": plot, "tables": table_path}, tags=tags,
        )
    promoted = promote and decision.promote
    if promoted:
        set_champion(name, registered.version, uri)
    return RetrainResult(
        registered=registered,
        challenger=challenger,
        champion=champion,
        champion_version=previous,
        decision=decision,
        promoted=promoted,
        counts=counts,
        split=split,
    )


def _holdout_table(holdout: pd.DataFrame, predictions: dict[str, pd.DataFrame]) -> pd.DataFrame:
    out = holdout[["id", "obshistid", "sensor", "ended", "cpu_seconds_ref", "censored"]].copy()
    for label, pred in predictions.items():
        key = label.replace(" ", "_")
        out[f"{key}_median"] = np.round(pred["median"].to_numpy(), 1)
        out[f"{key}_upper"] = np.round(pred["upper"].to_numpy(), 1)
    return out
