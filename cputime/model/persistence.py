"""Save and load a :class:`~cputime.model.estimator.CPUTimeRegressor` without pickle.

A model directory holds two files:

``booster.json``
    XGBoost's own JSON model format (``Booster.save_model``).
``metadata.json``
    Everything else, as plain JSON: format version, estimator parameters, feature names,
    conformal calibration (scores, censoring flags, groups, offsets), base margin, optional
    prior (cost model), training-data hash, metrics and library versions.

Loading never imports a class named in a file: a prior is rebuilt only if its ``kind`` is in
:data:`PRIOR_KINDS`, which the package fills via :func:`register_prior_kind`.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
import xgboost as xgb

from cputime.errors import InputError
from cputime.model.estimator import CPUTimeRegressor

__all__ = [
    "FORMAT_VERSION",
    "PRIOR_KINDS",
    "load_metadata",
    "load_cputime_model",
    "load_model",
    "register_prior_kind",
    "save_cputime_model",
    "save_model",
    "training_data_hash",
]

#: Version of the model-directory layout; :func:`load_model` refuses other major versions.
FORMAT_VERSION = "1.0"
BOOSTER_FILE = "booster.json"
METADATA_FILE = "metadata.json"

#: Prior (cost-model) kinds that :func:`load_model` may rebuild: kind -> ``from_dict``.
PRIOR_KINDS: dict[str, Callable[[dict[str, Any]], Any]] = {}


def register_prior_kind(kind: str, from_dict: Callable[[dict[str, Any]], Any]) -> None:
    """Allow :func:`load_model` to rebuild priors saved with ``kind`` using ``from_dict``.

    ``kind`` is the prior's ``kind`` attribute if it has one, else its class name; e.g.
    ``register_prior_kind("PhoSimCostModel", PhoSimCostModel.from_dict)`` in cost.py.
    """
    PRIOR_KINDS[kind] = from_dict


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
    return value if math.isfinite(value) else ("inf" if value > 0 else "-inf")


def _from_json_float(value: float | str) -> float:
    return float(value)


def _params_to_json(model: CPUTimeRegressor) -> dict[str, Any]:
    params = model.get_params(deep=False)
    params.pop("prior")
    if callable(params["calibration_groups"]):
        raise ValueError(
            "cannot save a model whose calibration_groups is a function; use a grouping name "
            "or a column name"
        )
    return params


def save_model(
    model: CPUTimeRegressor,
    directory: str | Path,
    *,
    extra_metadata: dict[str, Any] | None = None,
) -> Path:
    """Write a fitted model to ``directory`` (created if needed).

    Parameters
    ----------
    model : CPUTimeRegressor
        Fitted and calibrated model.
    directory : str or Path
        Output directory; ``booster.json`` and ``metadata.json`` are (over)written.
    extra_metadata : dict, default=None
        JSON-serialisable additions stored under ``metadata["extra"]``: e.g.
        ``{"training_data_sha256": training_data_hash(table), "metrics": {...}}``.

    Returns
    -------
    Path
        The directory.

    Raises
    ------
    ValueError
        If the model is not fitted or calibrated, its prior has no ``to_dict()`` or its
        calibration grouping is a function.
    """
    if not hasattr(model, "booster_") or not hasattr(model, "conformity_scores_"):
        raise ValueError("save_model: the model must be fitted and calibrated first")
    prior = None
    if model.prior is not None:
        # kind: the prior's own ``kind`` attribute, else its class name
        kind = str(getattr(model.prior, "kind", type(model.prior).__name__))
        to_dict = getattr(model.prior, "to_dict", None)
        if not callable(to_dict):
            raise ValueError("save_model: the prior has no to_dict() method")
        prior = {**to_dict(), "kind": kind}
    metadata = {
        "format_version": FORMAT_VERSION,
        "estimator": type(model).__name__,
        "params": _params_to_json(model),
        "prior": prior,
        "feature_names_in": [str(c) for c in model.feature_names_in_],
        "features_used": list(model.features_used_),
        "base_log_seconds": model.base_log_seconds_,
        "calibration": {
            "conformity_scores": model.conformity_scores_.tolist(),
            "score_censored": model.score_censored_.tolist(),
            "score_groups": model.score_groups_.tolist(),
            "upper_log_offset": _json_float(model.upper_log_offset_),
            "group_log_offsets": {k: _json_float(v) for k, v in model.group_log_offsets_.items()},
        },
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "scikit-learn": sklearn.__version__,
            "xgboost": xgb.__version__,
        },
        "extra": extra_metadata or {},
    }
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.booster_.save_model(str(directory / BOOSTER_FILE))
    text = json.dumps(metadata, indent=1, allow_nan=False)
    (directory / METADATA_FILE).write_text(text + "\n", encoding="utf-8")
    return directory


def load_metadata(directory: str | Path) -> dict[str, Any]:
    """Read and check ``metadata.json`` of a model directory.

    Raises
    ------
    InputError
        Naming the file, if it is missing, not JSON, or of another format version.
    """
    path = Path(directory) / METADATA_FILE
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file (not a cputime model directory?)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(metadata, dict):
        raise InputError(f"{path}: expected a JSON object")
    version = str(metadata.get("format_version", ""))
    if version.split(".")[0] != FORMAT_VERSION.split(".")[0]:
        raise InputError(
            f"{path}: format_version {version!r} is not supported (expected {FORMAT_VERSION})"
        )
    return metadata


def load_model(directory: str | Path) -> CPUTimeRegressor:
    """Rebuild a :class:`CPUTimeRegressor` saved by :func:`save_model`.

    Parameters
    ----------
    directory : str or Path
        Model directory.

    Returns
    -------
    CPUTimeRegressor
        Fitted and calibrated; predictions equal those of the saved model.

    Raises
    ------
    InputError
        Naming the file, if a file is missing, corrupt, of another format version, or names a
        prior kind not in :data:`PRIOR_KINDS`.
    """
    directory = Path(directory)
    metadata = load_metadata(directory)
    meta_path = directory / METADATA_FILE
    booster_path = directory / BOOSTER_FILE
    try:
        prior = None
        if metadata.get("prior") is not None:
            prior_dict = dict(metadata["prior"])
            kind = prior_dict.pop("kind", None)
            if kind not in PRIOR_KINDS:
                raise InputError(
                    f"{meta_path}: prior kind {kind!r} is not one of {sorted(PRIOR_KINDS)}"
                )
            prior = PRIOR_KINDS[kind](prior_dict)
        model = CPUTimeRegressor(**metadata["params"], prior=prior)
        calibration = metadata["calibration"]
        model.feature_names_in_ = np.asarray(metadata["feature_names_in"], dtype=object)
        model.n_features_in_ = len(model.feature_names_in_)
        model.features_used_ = list(metadata["features_used"])
        model.base_log_seconds_ = float(metadata["base_log_seconds"])
        model.conformity_scores_ = np.asarray(calibration["conformity_scores"], dtype=float)
        model.score_censored_ = np.asarray(calibration["score_censored"], dtype=bool)
        model.score_groups_ = np.asarray(calibration["score_groups"], dtype=str)
        model.upper_log_offset_ = _from_json_float(calibration["upper_log_offset"])
        model.group_log_offsets_ = {
            str(k): _from_json_float(v) for k, v in calibration["group_log_offsets"].items()
        }
    except InputError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(
            f"{meta_path}: malformed model metadata ({type(exc).__name__}: {exc})"
        ) from None
    sizes = {model.conformity_scores_.size, model.score_censored_.size, model.score_groups_.size}
    if len(sizes) != 1:
        raise InputError(f"{meta_path}: calibration arrays differ in length")
    if not booster_path.is_file():
        raise InputError(f"{booster_path}: no such file")
    booster = xgb.Booster()
    try:
        booster.load_model(str(booster_path))
    except xgb.core.XGBoostError as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
        raise InputError(f"{booster_path}: not a valid XGBoost model ({message})") from None
    if booster.num_features() != len(model.features_used_):
        raise InputError(
            f"{booster_path}: booster has {booster.num_features()} features, metadata lists "
            f"{len(model.features_used_)}"
        )
    model.booster_ = booster
    return model


# ---------------------------------------------------------------------------- CPUTimeModel
def save_cputime_model(
    model: Any, directory: str | Path, *, extra_metadata: dict[str, Any] | None = None
) -> Path:
    """Write a fitted :class:`cputime.model.composite.CPUTimeModel` to ``directory``.

    Its sky correction is saved by :func:`save_model` (with the cost model inside its prior);
    the cost model's out-of-group scores go under ``metadata["extra"]["cputime_model"]``.
    """
    composite = {
        "confidence_level": model.confidence_level,
        "regressor_params": model.regressor_params,
        "random_state": model.random_state,
        "source_scores": model.source_scores_.tolist(),
        "source_censored": model.source_censored_.tolist(),
        "source_extrapolation_dex": model.source_extrapolation_dex_.tolist(),
        "fitted_ranges": model.fitted_ranges_,
    }
    extra = {**(extra_metadata or {}), "cputime_model": composite}
    return save_model(model.sky_regressor_, directory, extra_metadata=extra)


def load_cputime_model(directory: str | Path) -> tuple[Any, dict[str, Any]]:
    """Rebuild a :class:`cputime.model.composite.CPUTimeModel` saved by :func:`save_cputime_model`.

    Returns
    -------
    model : CPUTimeModel
    metadata : dict
        The model folder's ``metadata.json``.
    """
    from cputime.model.composite import CPUTimeModel, SkyPrior

    metadata = load_metadata(directory)
    meta_path = Path(directory) / METADATA_FILE
    composite = metadata.get("extra", {}).get("cputime_model")
    if composite is None:
        raise InputError(f"{meta_path}: not a CPUTimeModel folder (no extra.cputime_model)")
    regressor = load_model(directory)
    if not isinstance(regressor.prior, SkyPrior):
        raise InputError(f"{meta_path}: the model's prior is not a sky prior")
    try:
        model = CPUTimeModel(
            confidence_level=float(composite["confidence_level"]),
            regressor_params=composite["regressor_params"],
            random_state=int(composite["random_state"]),
        )
        model.sky_regressor_ = regressor
        model.cost_model_ = regressor.prior.cost_model
        model.runs_host_slowdown_ = regressor.prior.runs_host_slowdown
        model.sky_filter_log_scale_ = regressor.prior.filter_log_scale
        model.source_scores_ = np.asarray(composite["source_scores"], dtype=float)
        model.source_censored_ = np.asarray(composite["source_censored"], dtype=bool)
        model.source_extrapolation_dex_ = np.asarray(
            composite["source_extrapolation_dex"], dtype=float
        )
        model.fitted_ranges_ = {str(k): float(v) for k, v in composite["fitted_ranges"].items()}
        model.feature_names_in_ = np.asarray(regressor.feature_names_in_)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(
            f"{meta_path}: malformed model metadata ({type(exc).__name__}: {exc})"
        ) from None
    _check_numbers(model, meta_path)
    return model, metadata


def _check_numbers(model: Any, meta_path: Path) -> None:
    """Refuse a model whose numbers no fit could give (a damaged or edited metadata file): one
    line naming the field, instead of a traceback or nonsense walltimes later."""

    def bad(field: str, value: Any, why: str) -> InputError:
        return InputError(f"{meta_path}: {field}: {value!r} {why}")

    level = model.confidence_level
    if not 0.0 < level < 1.0:
        raise bad("extra.cputime_model.confidence_level", level, "is not in (0, 1)")
    host = model.runs_host_slowdown_
    if not (isinstance(host, float) and np.isfinite(host) and host > 0):
        raise bad("prior.runs_host_slowdown", host, "is not a positive number")
    for name, value in model.cost_model_.parameters_.items():
        if not isinstance(value, int | float) or not np.isfinite(value):
            raise bad(f"prior.cost_model.parameters.{name}", value, "is not a finite number")
        if not name.startswith("log_") and value <= 0:
            raise bad(f"prior.cost_model.parameters.{name}", value, "is not positive")
    scale = model.sky_filter_log_scale_
    if scale is not None and (len(scale) != 6 or not np.isfinite(np.asarray(scale, float)).all()):
        raise bad("prior.filter_log_scale", scale, "is not 6 finite numbers (one per filter)")
    n = len(model.source_scores_)
    if len(model.source_censored_) != n or len(model.source_extrapolation_dex_) != n:
        raise bad("extra.cputime_model.source_scores", n, "scores, not one per run")
    if not np.isfinite(model.source_scores_).all():
        raise bad("extra.cputime_model.source_scores", "...", "holds a non-finite score")
    regressor = model.sky_regressor_
    offsets = [regressor.upper_log_offset_, *regressor.group_log_offsets_.values()]
    with np.errstate(over="ignore"):
        usable = np.isfinite(np.exp(np.asarray(offsets, dtype=float))).all()
    if not usable:
        raise bad("calibration.upper_log_offset", offsets, "is not a usable offset")
    if len(regressor.score_censored_) != len(regressor.conformity_scores_):
        raise bad("calibration.conformity_scores", "...", "do not match the censored flags")
