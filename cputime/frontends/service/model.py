"""The served model: loading it, a trial prediction before it serves, and following a registry
alias (``models:/NAME@champion``) to the versions it is moved to.

Each request reads the model reference once (:func:`served_model`), and a new version replaces
it by one reference assignment, so a request in flight finishes with the model it started with.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder

from cputime.frontends.service.errors import one_line
from cputime.frontends.service.schemas import PlanOptions
from cputime.frontends.service.settings import ServiceSettings
from cputime.shipped import shipped_path

__all__ = ["ServedModel", "follow_alias", "follows_alias", "load_served", "model_info",
           "predict_table", "served_model", "trial_prediction"]

logger = logging.getLogger("cputime.frontends.service")


@dataclass(frozen=True)
class ServedModel:
    """A loaded model and its description, swapped as one immutable reference."""

    loaded: Any  # cputime.model.loading.LoadedModel
    info: dict = field(default_factory=dict)

    @classmethod
    def of(cls, loaded) -> ServedModel:
        return cls(loaded, model_info(loaded))

    @property
    def version(self) -> str:
        return str(self.loaded.version)


def model_info(loaded) -> dict:
    """What ``GET /v1/model`` reports, from the model and its saved metadata."""
    metadata = dict(getattr(loaded, "metadata", None) or {})
    model = loaded.model
    regressor = model.sky_regressor_
    return jsonable_encoder(
        {
            "name": loaded.name,
            "version": str(loaded.version),
            "features": [str(f) for f in getattr(model, "feature_names_in_", [])],
            "features_used": list(regressor.features_used_),
            "reference_sensor": model.reference_sensor,
            "calibration": {
                "confidence_level": model.confidence_level,
                "scores": len(regressor.conformity_scores_),
                "censored_scores": int(regressor.score_censored_.sum()),
                "upper_log_offset": regressor.upper_log_offset_,
            },
            "confidence_level": model.confidence_level,
            "training": loaded.training,
            "metrics": loaded.metrics,
            "versions": metadata.get("versions", {}),
        }
    )


def predict_table(served: ServedModel, features: pd.DataFrame, options: PlanOptions):
    """:func:`cputime.planning.predictions.predict_jobs` of a features table with the
    request's options."""
    from cputime.planning.predictions import predict_jobs

    return predict_jobs(
        served.loaded.model,
        features,
        confidence_level=options.confidence_level,
        host_slowdown=options.host_slowdown,
        threads=options.threads,
        queue_max_seconds=options.queue_max_seconds,
        model_version=served.version,
    )


PROBE_VISITS = shipped_path("probe_visits")


def trial_prediction(served: ServedModel) -> None:
    """Predict the stored probe visits; raise unless every walltime is finite and positive.

    A model can load and still fail on every request (a damaged booster, nonsense calibration
    numbers): it is served only after it has predicted these visits.
    """
    from cputime.physics.features import read_visit_table, visit_features

    features = visit_features(read_visit_table(PROBE_VISITS), source="probe")
    # The default walltime level and the model's own fixed level: each reads other numbers.
    for level in (None, served.loaded.model.confidence_level):
        table = predict_table(served, features, PlanOptions(confidence_level=level))
        numbers = table[["cpu_seconds_p50", "cpu_seconds_upper", "walltime_seconds"]]
        numbers = numbers.to_numpy(float)
        if len(table) != len(features) or not (np.isfinite(numbers).all() and (numbers > 0).all()):
            raise ValueError(f"trial prediction of {served.version} gave non-finite or "
                             "non-positive times")


def load_served(settings: ServiceSettings) -> ServedModel:
    """The model the settings name, loaded and tried (:func:`trial_prediction`)."""
    from cputime.model.loading import resolve_model

    served = ServedModel.of(resolve_model(settings.model, tracking_uri=settings.tracking_uri))
    trial_prediction(served)
    return served


def follows_alias(settings: ServiceSettings) -> bool:
    """Whether the served model is a registry alias to re-resolve while serving."""
    return bool(settings.model and settings.model.startswith("models:/") and "@" in settings.model
                and settings.poll_seconds > 0)


def _alias_target(settings: ServiceSettings) -> str:
    """``NAME/VERSION`` (as :attr:`ServedModel.version`) that the alias ``models:/NAME@ALIAS``
    points to now: the loader's :func:`~cputime.model.loading.pin_spec`, one cheap query."""
    from cputime.model.loading import pin_spec

    return pin_spec(settings.model, settings.tracking_uri).removeprefix("models:/")


async def follow_alias(app: FastAPI, settings: ServiceSettings) -> None:
    """Re-resolve the registry alias forever; swap the served model when its version changes.

    A version that fails to load or to predict the probe visits is remembered in
    ``app.state.load_error`` and not fetched again until the alias points elsewhere.
    """
    while True:
        await asyncio.sleep(settings.poll_seconds)
        try:
            target = await asyncio.to_thread(_alias_target, settings)
        except Exception as err:  # the registry being down must not stop the service
            logger.warning("could not re-resolve %s (%s); keeping version %s",
                           settings.model, one_line(err), app.state.served.version)
            continue
        failed = app.state.load_error
        if target == app.state.served.version or (failed and failed["version"] == target):
            continue
        try:
            # Load the version found, not the alias again: it may have moved meanwhile.
            pinned = replace(settings, model=f"models:/{target}")
            served = await asyncio.to_thread(load_served, pinned)
        except Exception as err:
            app.state.load_error = {"version": target, "error": one_line(err)}
            logger.error("%s -> %s refused, keeping version %s: %s", settings.model, target,
                         app.state.served.version, one_line(err))
            continue
        logger.info("%s moved: version %s -> %s", settings.model,
                    app.state.served.version, served.version)
        app.state.load_error = None
        app.state.served = served  # one reference assignment: atomic for readers


def served_model(request: Request) -> ServedModel:
    """The model for this request, read once so that a swap cannot change it half-way
    (a dependency: tests may override it)."""
    return request.app.state.served
