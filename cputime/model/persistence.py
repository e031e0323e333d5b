"""Save and load a :class:`~cputime.model.composite.CPUTimeModel` without pickle.

A model folder holds two files:

``booster.json``
    The sky correction's booster, in XGBoost's own JSON format (``Booster.save_model``).
``metadata.json``
    Everything else, as one JSON document::

        format_version   "2.0"
        model            "CPUTimeModel" (the only class this module builds)
        params           the composite's constructor parameters
        learned          its learned state (``source_scores_`` -> ``source_scores``, ...)
        cost_model       params and learned state of its PhosimCostModel
        sky_regressor    params and learned state of its CPUTimeRegressor (the booster aside)
        training         how it was trained: data, hashes, feature summary (drift reference)
        metrics          evaluation numbers, when the trainer gave some
        versions         library versions at save time

Each learned attribute is stored under its name without the trailing underscore. The
regressor's prior is not stored: it is the composite's sky prior, rebuilt from ``learned`` and
``cost_model``. Loading builds only the classes named here, never one named in a file, and
refuses numbers no fit could give (:func:`_check_numbers`), with one line naming the file and
the field.

Folders of the previous release (format ``"1.0"``: the sky correction's metadata, with the cost
model in its ``prior`` and the composite under ``extra``) still load: their document is moved
into this layout on reading (:func:`_metadata_from_format_1`) and read by the same code, errors
naming the fields where the 1.0 file has them. Saving always writes this format.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
from collections.abc import Callable
from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
import xgboost as xgb

from cputime.errors import InputError
from cputime.model.composite import CPUTimeModel, SkyPrior
from cputime.model.estimator import CPUTimeRegressor
from cputime.physics.cost import DEFAULT_PARAMETERS, PhosimCostModel

__all__ = [
    "BOOSTER_FILE",
    "FORMAT_VERSION",
    "METADATA_FILE",
    "load_cputime_model",
    "read_metadata",
    "save_cputime_model",
    "training_data_hash",
]

#: Version of the model-folder layout; loading refuses other major versions.
FORMAT_VERSION = "2.0"
BOOSTER_FILE = "booster.json"
METADATA_FILE = "metadata.json"

#: The one model class a folder may hold.
MODEL_CLASS = "CPUTimeModel"

#: Where each field of this layout is in a format 1.0 document (this path -> 1.0 path).
_FORMAT_1_PATHS = {
    "params.confidence_level": "extra.cputime_model.confidence_level",
    "params.regressor_params": "extra.cputime_model.regressor_params",
    "params.random_state": "extra.cputime_model.random_state",
    "learned.runs_host_slowdown": "prior.reference_host_factor",  # inverted on reading
    "learned.sky_filter_log_scale": "prior.filter_log_scale",
    "learned.source_scores": "extra.cputime_model.source_scores",
    "learned.source_censored": "extra.cputime_model.source_censored",
    "learned.source_extrapolation_dex": "extra.cputime_model.source_extrapolation_dex",
    "learned.fitted_ranges": "extra.cputime_model.fitted_ranges",
    "cost_model.params.fixed": "prior.cost_model.fixed",
    "cost_model.learned.parameters": "prior.cost_model.parameters",
    "cost_model.learned.measured_filters": "prior.cost_model.measured_filters",
    "cost_model.learned.n_fit_runs": "prior.cost_model.n_fit_runs",
    "sky_regressor.params": "params",
    "sky_regressor.learned.feature_names_in": "feature_names_in",
    "sky_regressor.learned.features_used": "features_used",
    "sky_regressor.learned.base_log_seconds": "base_log_seconds",
    "sky_regressor.learned.conformity_scores": "calibration.conformity_scores",
    "sky_regressor.learned.score_censored": "calibration.score_censored",
    "sky_regressor.learned.score_groups": "calibration.score_groups",
    "sky_regressor.learned.upper_log_offset": "calibration.upper_log_offset",
    "sky_regressor.learned.group_log_offsets": "calibration.group_log_offsets",
    "training": "extra.training",
    "metrics": "extra.metrics",
    "versions": "versions",
}


def training_data_hash(table: pd.DataFrame) -> str:
    """SHA-256 of a training table (columns, index and values) as hex.

    Uses :func:`pandas.util.hash_pandas_object` on each column plus the column names, so it
    does not depend on a file format.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps([str(c) for c in table.columns]).encode())
    digest.update(pd.util.hash_pandas_object(table, index=True).to_numpy().tobytes())
    return digest.hexdigest()


def _json_float(value: float) -> float | str:
    """A float JSON can hold: infinities as ``"inf"`` / ``"-inf"`` (a bound with too few
    calibration scores is infinite)."""
    return value if math.isfinite(value) else ("inf" if value > 0 else "-inf")


# ------------------------------------------------------------------------------------- save
def _cost_model_state(model: PhosimCostModel) -> dict[str, Any]:
    return {
        "params": {"parameters": model.parameters, "fixed": list(model.fixed)},
        "learned": {
            "parameters": dict(model.parameters_),
            "measured_filters": [int(f) for f in model.measured_filters_],
            "n_fit_runs": int(model.n_fit_runs_),
        },
    }


def _regressor_state(model: CPUTimeRegressor) -> dict[str, Any]:
    params = model.get_params(deep=False)
    params.pop("prior")  # the composite's sky prior, rebuilt on loading
    if callable(params["calibration_groups"]):
        raise ValueError(
            "cannot save a model whose calibration_groups is a function; use a grouping name "
            "or a column name"
        )
    return {
        "params": params,
        "learned": {
            "feature_names_in": [str(c) for c in model.feature_names_in_],
            "features_used": list(model.features_used_),
            "base_log_seconds": model.base_log_seconds_,
            "conformity_scores": model.conformity_scores_.tolist(),
            "score_censored": model.score_censored_.tolist(),
            "score_groups": model.score_groups_.tolist(),
            "upper_log_offset": _json_float(model.upper_log_offset_),
            "group_log_offsets": {k: _json_float(v) for k, v in model.group_log_offsets_.items()},
        },
    }


def save_cputime_model(
    model: CPUTimeModel,
    directory: str | Path,
    *,
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
) -> Path:
    """Write a fitted model to ``directory`` (created if needed).

    Parameters
    ----------
    model : CPUTimeModel
        Fitted model.
    directory : str or Path
        Output folder; ``booster.json`` and ``metadata.json`` are (over)written.
    training : dict, optional
        JSON-ready training provenance (sources, row counts, data hashes, the drift reference
        ``feature_summary``), stored as ``training``.
    metrics : dict, optional
        JSON-ready evaluation numbers, stored as ``metrics``.

    Returns
    -------
    Path
        The folder.

    Raises
    ------
    ValueError
        If the model is not fitted, or its sky correction groups calibration by a function.
    """
    if not hasattr(model, "sky_regressor_"):
        raise ValueError("save_cputime_model: the model must be fitted first")
    metadata = {
        "format_version": FORMAT_VERSION,
        "model": MODEL_CLASS,
        "params": model.get_params(),
        "learned": {
            "runs_host_slowdown": model.runs_host_slowdown_,
            "sky_filter_log_scale": model.sky_filter_log_scale_,
            "source_scores": model.source_scores_.tolist(),
            "source_censored": model.source_censored_.tolist(),
            "source_extrapolation_dex": model.source_extrapolation_dex_.tolist(),
            "fitted_ranges": model.fitted_ranges_,
        },
        "cost_model": _cost_model_state(model.cost_model_),
        "sky_regressor": _regressor_state(model.sky_regressor_),
        "training": training or {},
        "metrics": metrics or {},
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "scikit-learn": sklearn.__version__,
            "xgboost": xgb.__version__,
        },
    }
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.sky_regressor_.booster_.save_model(str(directory / BOOSTER_FILE))
    text = json.dumps(metadata, indent=1, allow_nan=False)
    (directory / METADATA_FILE).write_text(text + "\n", encoding="utf-8")
    return directory


# ------------------------------------------------------------------------------------- load
def read_metadata(directory: str | Path) -> dict[str, Any]:
    """Read ``metadata.json`` of a model folder and check its format version.

    A format 1.0 document comes back in this format's layout (``training`` and ``metrics`` where
    a 2.0 document has them), with ``converted_from: "1.0"``.

    Raises
    ------
    InputError
        Naming the file, if it is missing, not JSON, or of another format version.
    """
    return _read_document(Path(directory) / METADATA_FILE)[0]


def _read_document(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The metadata in this format's layout, and where its fields are in the file (this path ->
    the file's path; empty for a 2.0 file)."""
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file (not a cputime model folder?)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(metadata, dict):
        raise InputError(f"{path}: expected a JSON object")
    version = str(metadata.get("format_version", ""))
    if version.split(".")[0] == "1":
        return _metadata_from_format_1(metadata, path), _FORMAT_1_PATHS
    if version.split(".")[0] != FORMAT_VERSION.split(".")[0]:
        raise InputError(
            f"{path}: format_version {version!r} is not supported "
            f"(expected 1.0 or {FORMAT_VERSION})"
        )
    if metadata.get("model") != MODEL_CLASS:
        raise InputError(f"{path}: model: {metadata.get('model')!r} is not {MODEL_CLASS!r}")
    return metadata, {}


_MISSING = object()


def _find(document: dict[str, Any], field: str) -> Any:
    """The value at a dotted path, or ``_MISSING``."""
    node: Any = document
    for key in field.split("."):
        if not isinstance(node, dict) or key not in node:
            return _MISSING
        node = node[key]
    return node


class _Fields:
    """The fields of one metadata document, each read by a converter; a missing or wrong field
    is an :class:`InputError` naming the file and the field's dotted path in that file (``paths``:
    where a converted document's fields were, this path -> the file's path)."""

    def __init__(self, metadata: dict[str, Any], path: Path, paths: dict[str, str] | None = None):
        self.metadata = metadata
        self.path = path
        self.paths = paths or {}

    def name(self, field: str) -> str:
        """The field's dotted path in the file."""
        for here, there in self.paths.items():
            if field == here or field.startswith(here + "."):
                return there + field[len(here) :]
        return field

    def __call__(self, field: str, convert: Callable[[Any], Any]) -> Any:
        node = _find(self.metadata, field)
        if node is _MISSING:
            raise InputError(f"{self.path}: {self.name(field)}: missing (malformed model metadata)")
        try:
            return convert(node)
        except (KeyError, TypeError, ValueError) as exc:
            shown = repr(node) if len(repr(node)) <= 60 else repr(node)[:57] + "..."
            raise InputError(
                f"{self.path}: {self.name(field)}: {shown} is malformed "
                f"({type(exc).__name__}: {exc})"
            ) from None


def _array(dtype: type) -> Callable[[Any], np.ndarray]:
    def convert(value: Any) -> np.ndarray:
        if not isinstance(value, list) or not all(isinstance(v, dtype) for v in value):
            raise TypeError(f"expected a list of {dtype.__name__}")
        return np.asarray(value, dtype=float if dtype is float else dtype)

    return convert


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError("expected a number")
    return float(value)


def _numbers(value: Any) -> list[float]:
    if not isinstance(value, list):
        raise TypeError("expected a list of numbers")
    return [_number(v) for v in value]


def _names(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError("expected a list of names")
    return tuple(value)


def _number_map(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        raise TypeError("expected an object of numbers")
    return {str(k): _number(v) for k, v in value.items()}


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError("expected an object")
    return value


def _reciprocal(value: Any) -> float:
    number = _number(value)
    if not (0.0 < number < math.inf and math.isfinite(1.0 / number)):
        raise ValueError("expected a positive number")
    return 1.0 / number


def _exactly(expected: str) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        if value != expected:
            raise ValueError(f"expected {expected!r}")
        return value

    return convert


def _metadata_from_format_1(metadata: dict[str, Any], path: Path) -> dict[str, Any]:
    """A format 1.0 document (``path``) moved into this format's layout (:data:`_FORMAT_1_PATHS`).

    Some values are derived rather than moved: ``learned.runs_host_slowdown`` is 1/H of the 1.0
    ``prior.reference_host_factor`` H (reference-host s per runs-host s), and so is
    ``training.runs_host_slowdown``, in the place of ``extra.training.reference_host_factor``
    (as the current training summary writes it); the cost model's constructor ``parameters``,
    which 1.0 did not keep, are the fitted values of its ``fixed`` parameters (the only ones a
    refit does not re-estimate), None when none is fixed. A field missing here is named by its
    1.0 path when the reader asks for it.
    """
    old = _Fields(metadata, path)
    old("estimator", _exactly("CPUTimeRegressor"))
    old("prior.kind", _exactly("sky_prior"))
    old("extra.cputime_model", _object)
    fitted = old("prior.cost_model.parameters", _number_map)
    fixed = old("prior.cost_model.fixed", _names)
    derived = {
        "learned.runs_host_slowdown": old("prior.reference_host_factor", _reciprocal),
        "cost_model.params.parameters": {n: fitted[n] for n in fixed if n in fitted} or None,
    }
    training = _find(metadata, "extra.training")
    if isinstance(training, dict) and "reference_host_factor" in training:
        slowdown = old("extra.training.reference_host_factor", _reciprocal)
        kept = {k: v for k, v in training.items() if k != "reference_host_factor"}
        derived["training"] = {**kept, "runs_host_slowdown": slowdown}
    converted: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "converted_from": "1.0",
        "model": MODEL_CLASS,
        "params": {},
        "training": {},
        "metrics": {},
    }
    moved = {here: _find(metadata, there) for here, there in _FORMAT_1_PATHS.items()}
    for here, value in {**moved, **derived}.items():
        if value is not _MISSING:
            *parents, key = here.split(".")
            node = converted
            for parent in parents:
                node = node.setdefault(parent, {})
            node[key] = value
    return converted


def _build(cls: type, field: _Fields, params: str, **given: Any) -> Any:
    """``cls(**parameters)`` from the ``params`` field, plus the ``given`` ones: an unknown
    parameter name is refused here (the values are checked as the class checks them)."""
    kwargs = field(params, _object)
    try:
        return cls(**kwargs, **given)
    except TypeError as exc:
        raise InputError(f"{field.path}: {field.name(params)}: malformed ({exc})") from None


def _cost_model_from(field: _Fields) -> PhosimCostModel:
    model = _build(PhosimCostModel, field, "cost_model.params")
    model.fixed = field("cost_model.params.fixed", _names)
    model.parameters_ = field("cost_model.learned.parameters", _number_map)
    model.measured_filters_ = [int(f) for f in field("cost_model.learned.measured_filters", list)]
    model.n_fit_runs_ = field("cost_model.learned.n_fit_runs", int)
    return model


def _regressor_from(field: _Fields, prior: SkyPrior) -> CPUTimeRegressor:
    model = _build(CPUTimeRegressor, field, "sky_regressor.params", prior=prior)
    learned = "sky_regressor.learned."
    model.feature_names_in_ = np.asarray(field(learned + "feature_names_in", list), dtype=object)
    model.n_features_in_ = len(model.feature_names_in_)
    model.features_used_ = [str(c) for c in field(learned + "features_used", list)]
    model.base_log_seconds_ = field(learned + "base_log_seconds", _number)
    model.conformity_scores_ = field(learned + "conformity_scores", _array(float))
    model.score_censored_ = field(learned + "score_censored", _array(bool))
    model.score_groups_ = field(learned + "score_groups", _array(str))
    model.upper_log_offset_ = field(learned + "upper_log_offset", _number)
    model.group_log_offsets_ = field(learned + "group_log_offsets", _number_map)
    return model


def _load_booster(path: Path, n_features: int) -> xgb.Booster:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    booster = xgb.Booster()
    try:
        booster.load_model(str(path))
    except xgb.core.XGBoostError as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
        raise InputError(f"{path}: not a valid XGBoost model ({message})") from None
    if booster.num_features() != n_features:
        raise InputError(
            f"{path}: booster has {booster.num_features()} features, metadata lists {n_features}"
        )
    return booster


def load_cputime_model(directory: str | Path) -> tuple[CPUTimeModel, dict[str, Any]]:
    """Rebuild a model saved by :func:`save_cputime_model`.

    Parameters
    ----------
    directory : str or Path
        Model folder.

    Returns
    -------
    model : CPUTimeModel
        Fitted; its predictions equal those of the saved model.
    metadata : dict
        The folder's ``metadata.json`` (``training``, ``metrics``, ``versions``, ...).

    Raises
    ------
    InputError
        One line naming the file (and the field), if a file is missing, corrupt, of another
        format version, or holds numbers no fit could give.
    """
    directory = Path(directory)
    meta_path = directory / METADATA_FILE
    metadata, paths = _read_document(meta_path)
    field = _Fields(metadata, meta_path, paths)
    model = _build(CPUTimeModel, field, "params")
    model.cost_model_ = _cost_model_from(field)
    model.runs_host_slowdown_ = field("learned.runs_host_slowdown", _number)
    scale = field("learned.sky_filter_log_scale", lambda v: None if v is None else _numbers(v))
    model.sky_filter_log_scale_ = scale
    model.source_scores_ = field("learned.source_scores", _array(float))
    model.source_censored_ = field("learned.source_censored", _array(bool))
    model.source_extrapolation_dex_ = field("learned.source_extrapolation_dex", _array(float))
    model.fitted_ranges_ = field("learned.fitted_ranges", _number_map)
    prior = SkyPrior(model.cost_model_, model.runs_host_slowdown_, scale)
    model.sky_regressor_ = _regressor_from(field, prior)
    model.feature_names_in_ = np.asarray(model.sky_regressor_.feature_names_in_)
    _check_numbers(model, field)
    model.sky_regressor_.booster_ = _load_booster(
        directory / BOOSTER_FILE, len(model.sky_regressor_.features_used_)
    )
    return model, metadata


def _check_numbers(model: CPUTimeModel, fields: _Fields) -> None:
    """Refuse a model whose numbers no fit could give (a damaged or edited metadata file): one
    line naming the field, instead of a traceback or nonsense walltimes later."""
    meta_path = fields.path

    def bad(field: str, value: Any, why: str) -> InputError:
        return InputError(f"{meta_path}: {fields.name(field)}: {value!r} {why}")

    level = model.confidence_level
    if not (isinstance(level, Real) and 0.0 < level < 1.0):
        raise bad("params.confidence_level", level, "is not in (0, 1)")
    host = model.runs_host_slowdown_
    if not (np.isfinite(host) and host > 0):
        raise bad("learned.runs_host_slowdown", host, "is not a positive number")
    names, known = set(model.cost_model_.parameters_), set(DEFAULT_PARAMETERS)
    if names != known:
        raise InputError(
            f"{meta_path}: {fields.name('cost_model.learned.parameters')}: "
            f"unknown {sorted(names - known)}, missing {sorted(known - names)}"
        )
    for name, value in model.cost_model_.parameters_.items():
        if not np.isfinite(value):
            raise bad(f"cost_model.learned.parameters.{name}", value, "is not a finite number")
        if not name.startswith("log_") and value <= 0:
            raise bad(f"cost_model.learned.parameters.{name}", value, "is not positive")
    scale = model.sky_filter_log_scale_
    if scale is not None and (len(scale) != 6 or not np.isfinite(np.asarray(scale, float)).all()):
        raise bad("learned.sky_filter_log_scale", scale, "is not 6 finite numbers (one per filter)")
    n = len(model.source_scores_)
    if len(model.source_censored_) != n or len(model.source_extrapolation_dex_) != n:
        raise bad("learned.source_scores", n, "scores, not one per run")
    if not np.isfinite(model.source_scores_).all():
        raise bad("learned.source_scores", "...", "holds a non-finite score")
    regressor = model.sky_regressor_
    offsets = [regressor.upper_log_offset_, *regressor.group_log_offsets_.values()]
    with np.errstate(over="ignore"):
        usable = np.isfinite(np.exp(np.asarray(offsets, dtype=float))).all()
    if not usable:
        raise bad("sky_regressor.learned.upper_log_offset", offsets, "is not a usable offset")
    sizes = {
        regressor.conformity_scores_.size,
        regressor.score_censored_.size,
        regressor.score_groups_.size,
    }
    if len(sizes) != 1:
        raise bad("sky_regressor.learned.conformity_scores", "...",
                  "do not match the censored flags and groups in length")  # fmt: skip
