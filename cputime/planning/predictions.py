"""From features to engine-ready predictions: the one place the CLI, the service and the workflow
helpers turn a model's CPU bounds into walltimes and checkpoint plans.

Two entry points share one array core (:func:`_predict_columns`): :func:`predict_jobs` for a
features table (converted to numpy columns once), and :func:`predict_visits` for a few planned
visits given as plain dicts, which builds no pandas object at all (a walltime asked for at every
``sbatch``). Both give the same numbers for the same visit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from cputime.deprecation import renamed_keywords
from cputime.errors import InputError
from cputime.inputs.commands import PhosimCommands
from cputime.model.composite import CPUTimeModel
from cputime.model.conformal import min_calibration_size
from cputime.physics.checkpoints import SOURCE_TYPE_PHOTON_COLUMNS
from cputime.physics.columns import FeatureColumns, distinct
from cputime.physics.features import CATALOG_COLUMNS, CONDITION_COLUMNS, VISIT_DEFAULTS
from cputime.planning.policy import (
    DEFAULT_OVERRESERVE_COST,
    DEFAULT_PARALLEL_FRACTION,
    DEFAULT_SETUP_SECONDS,
    format_slurm_times,
    loss_minimising_level,
    plan_walltime,
    signal_lead_seconds,
)

__all__ = ["PREDICTION_COLUMNS", "predict_jobs", "predict_visits", "walltime_levels"]

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
    "confidence_level",
    "host_slowdown",
    "threads",
    "model_version",
]


def walltime_levels(
    model: CPUTimeModel,
    features: pd.DataFrame | FeatureColumns,
    *,
    overreserve_cost: float = DEFAULT_OVERRESERVE_COST,
    kill_cost: float | np.ndarray = 1.0,
) -> np.ndarray:
    """Level of each job's upper bound under the policy that loses the least CPU.

    Parameters
    ----------
    model : CPUTimeModel
    features : pandas.DataFrame or FeatureColumns
    overreserve_cost : float
        Cost of a reserved but unused second relative to a second lost to a kill [unitless].
    kill_cost : float or array_like
        Share of each job's CPU a kill loses [unitless]: 1 for a single job.

    Returns
    -------
    numpy.ndarray
        :func:`cputime.planning.policy.loss_minimising_level` on the calibration scores of each
        job's
        calibration group (moon up or down), or on all scores for a group too small to have
        its own offsets. Kill costs are rounded to 0.01, so that few distinct levels result.
    """
    groups = model.calibration_group_of(features)
    costs = np.round(np.broadcast_to(np.asarray(kill_cost, dtype=float), (len(features),)), 2)
    levels = np.empty(len(features))
    for group in distinct(groups):
        in_group = groups == group
        for cost in distinct(costs[in_group]):
            rows = in_group & (costs == cost)
            levels[rows] = _policy_level(model, str(group), overreserve_cost, float(cost))
    return levels


def _policy_level(model: CPUTimeModel, group: str, overreserve_cost: float, cost: float) -> float:
    """The loss-minimising level of one calibration group at one kill cost.

    A Kaplan-Meier pass over the group's scores: ``policy_levels_`` on the model (filled
    lazily, one entry per group and costs) keeps each, since every request asks for the same
    few; an entry counts only for the scores it was computed from (a recalibrated model's
    new scores are new arrays).
    """
    scores, censored, score_groups = model.calibration_scores()
    cache = model.__dict__.setdefault("policy_levels_", {})
    key = (group, overreserve_cost, cost)
    if key not in cache or cache[key][0] is not scores:
        own = score_groups == group
        if own.sum() < min_calibration_size(0.95):
            own = np.ones_like(own)
        level = loss_minimising_level(
            scores[own],
            censored[own],
            overreserve_cost=overreserve_cost,
            kill_cost=max(cost, 0.01),
        )
        cache[key] = (scores, level)
    return cache[key][1]


def _predict_columns(
    model: CPUTimeModel,
    X: FeatureColumns,
    *,
    confidence_level: float | None,
    overreserve_cost: float,
    host_slowdown: float,
    threads: int,
    queue_max_seconds: float | None,
    parallel_fraction: float,
    setup_seconds: float,
) -> tuple[dict[str, np.ndarray | list], dict[str, np.ndarray]]:
    """The computed columns of :data:`PREDICTION_COLUMNS` (``cpu_seconds_p50`` to
    ``confidence_level``), and the medians of the two terms (``source_seconds_p50``,
    ``sky_seconds_p50``), one value per
    row of ``X``; see :func:`predict_jobs` for the parameters."""

    predict_at = model.source_type_predictor(X)  # what does not depend on the level, once

    def plan(levels: np.ndarray, rows: np.ndarray | None = None):
        predicted, by_type, every_segment = predict_at(levels, rows)
        plans = plan_walltime(
            by_type,
            every_segment,
            host_slowdown=host_slowdown,
            threads=threads,
            queue_max_seconds=queue_max_seconds,
            setup_seconds=setup_seconds,
            parallel_fraction=parallel_fraction,
        )
        return predicted, plans

    if confidence_level is not None:
        levels = np.full(len(X), float(confidence_level))
        predicted, plans = plan(levels)
    else:
        levels = walltime_levels(model, X, overreserve_cost=overreserve_cost)
        predicted, plans = plan(levels)
        if (plans.segments > 1).any():
            # A checkpointed job's kill loses one segment, not the whole job: the heaviest
            # segment's share of the job is what a kill can cost, and a lower level pays off.
            walls = plans.segment_walltime_seconds
            share = np.nanmax(walls, axis=1) / np.nansum(walls, axis=1)
            again = walltime_levels(
                model,
                X,
                overreserve_cost=overreserve_cost,
                kill_cost=np.where(plans.segments > 1, share, 1.0),
            )
            # Only the jobs whose level changed are planned again.
            changed = np.flatnonzero(again != levels)
            if changed.size:
                replanned_columns, replanned = plan(again[changed], changed)
                for name, values in replanned_columns.items():
                    predicted[name] = np.array(predicted[name], copy=True)
                    predicted[name][changed] = values
                plans = plans.replace_rows(changed, replanned)
                levels = again
    walltime = plans.walltime_seconds
    return {
        "cpu_seconds_p50": np.round(predicted["cpu_seconds_p50"], 1),
        "cpu_seconds_upper": np.round(predicted["cpu_seconds_upper"], 1),
        "walltime_seconds": walltime.astype(int),
        "segments": plans.segments,
        "slurm_time": format_slurm_times(walltime),
        "checkpointtotal": plans.checkpointtotal,
        "segment_slurm_times": [";".join(times) for times in plans.slurm_times()],
        "total_walltime_seconds": plans.total_walltime_seconds.astype(int),
        "slurm_signal": _slurm_signals(walltime),
        "fits_queue": plans.fits_queue,
        "plan_note": plans.advice,
        "extrapolation": predicted["extrapolation"],
        "extrapolation_dex": np.round(predicted["extrapolation_dex"], 3),
        "confidence_level": np.round(levels, 4),
    }, {
        "source_seconds_p50": np.round(predicted["source_seconds"], 1),
        "sky_seconds_p50": np.round(predicted["sky_seconds"], 1),
    }  # fmt: skip


def _slurm_signals(walltime: np.ndarray) -> np.ndarray:
    """``--signal`` of each job, made once per distinct walltime (whole minutes: few)."""
    unique, inverse = distinct(walltime, return_inverse=True)
    text = [f"B:USR1@{signal_lead_seconds(w)}" for w in unique]
    return np.array(text, dtype=object)[inverse]


@renamed_keywords(host_factor="host_slowdown")
def predict_jobs(
    model: CPUTimeModel,
    features: pd.DataFrame,
    *,
    confidence_level: float | None = None,
    overreserve_cost: float = DEFAULT_OVERRESERVE_COST,
    host_slowdown: float = 1.0,
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
        Output of :func:`cputime.physics.features.catalog_features` or
        :func:`cputime.physics.features.visit_features`.
    confidence_level : float, optional
        A fixed coverage of the upper bound that sets the walltime. None (the default): the level
        that loses the least CPU (:func:`walltime_levels`), for a kill that loses the whole
        job, or the heaviest segment of a checkpointed one.
    overreserve_cost : float
        With the default policy: cost of a reserved but unused second relative to a second lost
        to a kill [unitless].
    host_slowdown : float
        CPU seconds on the host that runs the job per reference-host CPU second [unitless]
        (2.0: the host is twice as slow; recorded in the ``host_slowdown`` column).
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
        range, by how much; ``confidence_level`` is the level used) followed by the source and sky
        terms and the features used.
    """
    if features.empty:
        return pd.DataFrame(columns=PREDICTION_COLUMNS)
    computed, terms = _predict_columns(
        model,
        model.feature_columns(features),
        confidence_level=confidence_level,
        overreserve_cost=overreserve_cost,
        host_slowdown=host_slowdown,
        threads=threads,
        queue_max_seconds=queue_max_seconds,
        parallel_fraction=parallel_fraction,
        setup_seconds=setup_seconds,
    )
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
            **computed,
            "host_slowdown": host_slowdown,
            "threads": threads,
            "model_version": model_version,
            **terms,
            **{column: features[column].to_numpy() for column in used},
        }
    )


#: Header keywords a planned visit may give (the service's visit schema; others are ignored).
VISIT_KEYS = (
    "obshistid", "filter", "vistime", "nsnap", "airmass", "altitude", "moonalt", "moonphase",
    "dist2moon", "sunalt", "seeing",
)  # fmt: skip
_INTEGER_KEYS = ("obshistid", "filter", "nsnap")


@renamed_keywords(host_factor="host_slowdown")
def predict_visits(
    model: CPUTimeModel,
    visits: Sequence[Mapping[str, object]],
    sensors: Sequence[str] | None = None,
    *,
    commands: PhosimCommands | None = None,
    confidence_level: float | None = None,
    overreserve_cost: float = DEFAULT_OVERRESERVE_COST,
    host_slowdown: float = 1.0,
    threads: int = 1,
    queue_max_seconds: float | None = None,
    parallel_fraction: float = DEFAULT_PARALLEL_FRACTION,
    setup_seconds: float = DEFAULT_SETUP_SECONDS,
    model_version: str = "",
    source: str = "visits",
) -> list[dict]:
    """Predictions for planned visits given as plain dicts, without building a pandas object.

    The fast path for a walltime asked at every submission: one visit costs well under a
    millisecond of CPU (``benchmarks/bench_predict.py``), against tens for a one-row table.

    Parameters
    ----------
    model : CPUTimeModel
        A fitted model.
    visits : sequence of mapping
        One dict per visit, header keywords as keys (:data:`VISIT_KEYS`, or their aliases such
        as ``Opsim_moonalt``; others are ignored): angles in degrees, ``moonphase`` in percent,
        ``filter`` 0..5. ``obshistid`` and ``filter`` are required; ``vistime`` and ``nsnap``
        default to :data:`cputime.physics.features.VISIT_DEFAULTS`.
    sensors : sequence of str, optional
        One prediction per (visit, sensor) instead of one per visit.
    commands : PhosimCommands, optional
        Overrides applied to every visit.
    source : str
        Names the visits in error messages (``visits[3]: moonalt: ...``).
    confidence_level, overreserve_cost, host_slowdown, threads, queue_max_seconds, \
parallel_fraction, setup_seconds, model_version
        As for :func:`predict_jobs`.

    Returns
    -------
    list of dict
        One dict per prediction, with the keys, order and values (as Python numbers and
        strings) of the rows of :func:`predict_jobs` on
        ``visit_features(pandas.DataFrame(visits), sensors)``.

    Raises
    ------
    cputime.errors.InputError
        Naming the visit and the field of a bad value.
    """
    if not visits:
        return []
    conditions = _visit_conditions(_visit_values(visits, source), commands, source)
    n = len(visits)
    nothing = np.full(n, np.nan)
    X = FeatureColumns(
        {
            **{name: np.asarray(values, dtype=float) for name, values in conditions.items()},
            **dict.fromkeys(CATALOG_COLUMNS, nothing),
        },
        n,
    )
    computed, terms = _predict_columns(
        model,
        model.feature_columns(X),
        confidence_level=confidence_level,
        overreserve_cost=overreserve_cost,
        host_slowdown=host_slowdown,
        threads=threads,
        queue_max_seconds=queue_max_seconds,
        parallel_fraction=parallel_fraction,
        setup_seconds=setup_seconds,
    )
    per_visit = {
        **computed,
        "host_slowdown": [host_slowdown] * n,
        "threads": [threads] * n,
        "model_version": [model_version] * n,
        **terms,
        **{name: conditions[name] for name in CONDITION_COLUMNS},
        **{name: nothing for name in CATALOG_COLUMNS if name not in SOURCE_TYPE_PHOTON_COLUMNS},
    }
    # Python numbers, as a table's records give them; the conditions, and so the predictions,
    # do not depend on the sensor.
    names = list(sensors or [model.reference_sensor])
    columns = [
        _repeated(conditions["obshistid"].tolist(), len(names)),
        names * n,
        *(_repeated(np.asarray(values).tolist(), len(names)) for values in per_visit.values()),
    ]
    keys = ["obshistid", "sensor", *per_visit]
    return [dict(zip(keys, row, strict=True)) for row in zip(*columns, strict=True)]


def _repeated(values: list, times: int) -> list:
    """Each value ``times`` times in a row."""
    return values if times == 1 else [v for v in values for _ in range(times)]


def _visit_values(visits: Sequence[Mapping[str, object]], source: str) -> dict[str, np.ndarray]:
    """Each keyword of :data:`VISIT_KEYS` as one float per visit (NaN: not given), defaults
    filled in; an :class:`InputError` names the first bad visit and field."""
    values = _visit_columns(visits)
    if values is None:  # something is not a plain number: find what, visit by visit
        values = _visit_values_one_by_one(visits, source)
    for key, default in VISIT_DEFAULTS.items():
        values[key] = np.where(np.isnan(values[key]), default, values[key])
    missing = np.flatnonzero(np.isnan(values["obshistid"]))
    if missing.size:
        raise InputError(f"{source}[{missing[0]}]: obshistid: missing (every visit needs one)")
    bad = np.flatnonzero(~np.isin(values["filter"], np.arange(6)))
    if bad.size:
        given = values["filter"][bad[0]]
        shown = "missing" if np.isnan(given) else f"{given:g} is not 0..5"
        raise InputError(f"{source}[{bad[0]}]: filter: {shown} (u g r i z y)")
    return values


def _visit_columns(visits: Sequence[Mapping[str, object]]) -> dict[str, np.ndarray] | None:
    """:func:`_visit_values` one keyword at a time, not one visit at a time: each keyword spelt
    one way at most in every visit, and every value a number or None; otherwise None."""
    from cputime.inputs.catalog import canonical_keyword

    spellings: dict[str, str] = {}
    for key in set().union(*visits):
        name = key if key in VISIT_KEYS else canonical_keyword(str(key))
        if name in VISIT_KEYS:
            if name in spellings:
                return None  # two spellings of one keyword: the first in each visit counts
            spellings[name] = key
    values = {key: np.full(len(visits), np.nan) for key in VISIT_KEYS}
    for name, key in spellings.items():
        column = [visit.get(key) for visit in visits]
        if not set(map(type, column)) <= _PLAIN_NUMBERS:
            return None
        values[name] = np.array(column, dtype=float)
        if name in _INTEGER_KEYS:
            given = values[name]
            with np.errstate(invalid="ignore"):
                if (np.isfinite(given) & (given != np.trunc(given))).any():
                    return None
    return values


#: Values :func:`_visit_columns` takes as they are (None: not given).
_PLAIN_NUMBERS = frozenset({int, float, type(None)})


def _visit_values_one_by_one(visits: Sequence[Mapping[str, object]], source: str
                             ) -> dict[str, np.ndarray]:
    from cputime.inputs.catalog import canonical_keyword

    values = {key: np.full(len(visits), np.nan) for key in VISIT_KEYS}
    for i, visit in enumerate(visits):
        seen = set()
        for key, value in visit.items():
            name = key if key in values else canonical_keyword(str(key))
            if name not in values or name in seen:
                continue
            seen.add(name)
            if value is None:
                continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise InputError(f"{source}[{i}]: {name}: {value!r} is not a number") from None
            if name in _INTEGER_KEYS and not np.isnan(number) and not number.is_integer():
                raise InputError(f"{source}[{i}]: {name}: {value!r} is not an integer")
            values[name][i] = number
    return values


def _visit_conditions(
    values: dict[str, np.ndarray], commands: PhosimCommands | None, source: str
) -> dict[str, np.ndarray]:
    """``obshistid`` and the condition features (:data:`CONDITION_COLUMNS`) of all visits at
    once, by :func:`cputime.physics.features._conditions`, the code
    :func:`cputime.physics.features.visit_features` runs."""
    from cputime.physics.features import _conditions

    return {
        "obshistid": values["obshistid"].astype(np.int64),
        **_conditions(values, commands, lambda i: f"{source}[{i}]"),
    }
