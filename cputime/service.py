"""HTTP service: the CLI's predictions over HTTP (FastAPI).

Routes (OpenAPI docs at ``/docs``):

- ``GET /healthz``: 200 once a model is loaded.
- ``GET /v1/model``: name, version, features, calibration and training summary of the model.
- ``POST /v1/predict``: planned visits as JSON (header keywords) -> one prediction per visit, or
  per (visit, sensor) with ``sensors``.
- ``POST /v1/predict/catalog?sensors=R22_S11,...``: an instance catalog as the body (plain or
  gzip) -> one prediction per sensor. ``includeobj`` is refused: an upload cannot name files on
  the server.

Predictions go through :func:`cputime.features.visit_features` /
:func:`cputime.features.catalog_features` and :func:`cputime.predictions.predict_jobs`, as the
command line does, and are serialised the same way as ``cputime predict --format json``, so both
give the same numbers.

The model is loaded in the app's ``lifespan``. When it is a registry alias
(``models:/NAME@champion``) a background task re-resolves the alias every ``poll_seconds`` and,
when it points to another version, swaps the served model: each request reads the model reference
once, so a request in flight finishes with the model it started with.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import tempfile
import zlib
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cputime.errors import InputError

__all__ = ["ServiceSettings", "get_settings", "create_app", "ServedModel"]

logger = logging.getLogger("cputime.service")

MB = 1024 * 1024


# ------------------------------------------------------------------------------------ settings


@dataclass(frozen=True)
class ServiceSettings:
    """What the service serves and its limits.

    Attributes
    ----------
    model : str, optional
        Model folder or ``models:/NAME@ALIAS``; None for the shipped model.
    tracking_uri : str, optional
        MLflow tracking URI for ``models:/`` specs.
    max_body_bytes : int
        Largest request body accepted [bytes]; larger ones get 413.
    max_catalog_bytes : int
        Largest uploaded catalog once decompressed [bytes] (a gzip bomb gets 413).
    poll_seconds : float
        How often a registry alias is re-resolved [s]; 0 disables polling.
    """

    model: str | None = None
    tracking_uri: str | None = None
    max_body_bytes: int = 8 * MB
    max_catalog_bytes: int = 256 * MB
    poll_seconds: float = 30.0

    #: Environment variables read by :meth:`from_env` (for ``uvicorn --factory`` workers).
    ENV = {
        "model": "CPUTIME_MODEL",
        "tracking_uri": "CPUTIME_TRACKING_URI",
        "max_body_bytes": "CPUTIME_MAX_BODY_BYTES",
        "max_catalog_bytes": "CPUTIME_MAX_CATALOG_BYTES",
        "poll_seconds": "CPUTIME_POLL_SECONDS",
    }

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ServiceSettings:
        """Settings from ``CPUTIME_*`` environment variables; defaults where unset."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, variable in cls.ENV.items():
            if environ.get(variable):
                kind = type(getattr(cls, name)) if getattr(cls, name) is not None else str
                values[name] = kind(environ[variable])
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The environment variables that :meth:`from_env` reads back into these settings."""
        values = {variable: getattr(self, name) for name, variable in self.ENV.items()}
        return {variable: str(v) for variable, v in values.items() if v is not None}


@lru_cache
def get_settings() -> ServiceSettings:
    """The service settings (cached); tests replace it through ``app.dependency_overrides``."""
    return ServiceSettings.from_env()


# --------------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class ServedModel:
    """A loaded model and its description, swapped as one immutable reference."""

    loaded: Any  # cputime.registry.LoadedModel
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
    extra = metadata.get("extra") or {}
    calibration = metadata.get("calibration") or {}
    censored = calibration.get("score_censored") or []
    model = loaded.model
    return jsonable_encoder(
        {
            "name": loaded.name,
            "version": str(loaded.version),
            "features": [str(f) for f in getattr(model, "feature_names_in_", [])],
            "features_used": metadata.get("features_used", []),
            "reference_sensor": model.reference_sensor,
            "calibration": {
                "confidence_level": model.confidence_level,
                "scores": len(calibration.get("conformity_scores") or []),
                "censored_scores": int(sum(bool(c) for c in censored)),
                "upper_log_offset": calibration.get("upper_log_offset"),
            },
            "confidence_level": model.confidence_level,
            "training": extra.get("training", metadata.get("training", {})),
            "metrics": extra.get("metrics", metadata.get("metrics", {})),
            "versions": metadata.get("versions", {}),
        }
    )


def _load(settings: ServiceSettings) -> ServedModel:
    from cputime.registry import resolve_model

    return ServedModel.of(resolve_model(settings.model, tracking_uri=settings.tracking_uri))


def _follows_alias(settings: ServiceSettings) -> bool:
    return bool(settings.model and settings.model.startswith("models:/") and "@" in settings.model)


def _alias_target(settings: ServiceSettings) -> str:
    """``NAME/VERSION`` that the alias ``models:/NAME@ALIAS`` points to now (one cheap query)."""
    from mlflow import MlflowClient

    from cputime.registry import tracking_uri_or_default

    name, alias = settings.model.removeprefix("models:/").split("@", 1)
    uri = tracking_uri_or_default(settings.tracking_uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    return f"{name}/{client.get_model_version_by_alias(name, alias).version}"


async def _follow_alias(app: FastAPI, settings: ServiceSettings) -> None:
    """Re-resolve the registry alias forever; swap the served model when its version changes."""
    while True:
        await asyncio.sleep(settings.poll_seconds)
        try:
            target = await asyncio.to_thread(_alias_target, settings)
            if target == app.state.served.version:
                continue
            # Load the version found, not the alias again: it may have moved meanwhile.
            pinned = replace(settings, model=f"models:/{target}")
            served = await asyncio.to_thread(_load, pinned)
        except Exception:  # the registry being down must not stop the service
            logger.exception("could not re-resolve %s; keeping version %s",
                             settings.model, app.state.served.version)
            continue
        logger.info("%s moved: version %s -> %s", settings.model,
                    app.state.served.version, served.version)
        app.state.served = served  # one reference assignment: atomic for readers


def _settings_of(app: FastAPI) -> ServiceSettings:
    return app.dependency_overrides.get(get_settings, get_settings)()


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI):
    """Load the model before serving; follow a registry alias while serving."""
    settings = _settings_of(app)
    app.state.served = await asyncio.to_thread(_load, settings)
    logger.info("serving %s version %s", app.state.served.loaded.name, app.state.served.version)
    app.state.batcher = Batcher(app)
    app.state.batcher_task = asyncio.create_task(app.state.batcher.run())
    tasks = [app.state.batcher_task]
    if _follows_alias(settings) and settings.poll_seconds > 0:
        tasks.append(asyncio.create_task(_follow_alias(app, settings)))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def served_model(request: Request) -> ServedModel:
    """The model for this request, read once so that a swap cannot change it half-way."""
    return request.app.state.served


# ------------------------------------------------------------------------------ request models


class PlanOptions(BaseModel):
    """How the upper bound becomes a walltime (as the CLI's options)."""

    model_config = ConfigDict(extra="forbid")

    confidence: float | None = Field(
        None, gt=0, lt=1, description="coverage of the upper bound (default: the model's)"
    )
    queue_max_seconds: float | None = Field(
        None, gt=0, description="queue walltime limit [s]; longer jobs become checkpointed segments"
    )
    host_factor: float = Field(
        1.0, gt=0, description="CPU seconds on your host per second on the model's reference host"
    )
    threads: int = Field(1, ge=1, le=1024, description="PhoSim threads per job")


class Visit(BaseModel):
    """One planned visit: instance-catalog header keywords (``moonalt`` or ``Opsim_moonalt``).

    Angles in degrees, ``moonphase`` in percent, ``filter`` 0..5 (u g r i z y).
    """

    model_config = ConfigDict(extra="ignore")

    obshistid: int = Field(ge=0)
    filter: int = Field(ge=0, le=5, description="0..5 = u g r i z y")
    vistime: float | None = Field(None, gt=0, description="visit time over all snaps [s]")
    nsnap: int | None = Field(None, ge=1, le=100)
    airmass: float | None = Field(None, ge=1)
    altitude: float | None = Field(None, ge=-90, le=90, description="[degrees]")
    moonalt: float | None = Field(None, ge=-90, le=90, description="[degrees]")
    moonphase: float | None = Field(None, ge=0, le=100, description="[percent]")
    dist2moon: float | None = Field(None, ge=0, le=180, description="[degrees]")
    sunalt: float | None = Field(None, ge=-90, le=90, description="[degrees]")
    seeing: float | None = Field(None, gt=0, description="[arcsec]")

    @model_validator(mode="before")
    @classmethod
    def _canonical_keywords(cls, data: Any) -> Any:
        """Accept header keywords in any style PhoSim does (``Opsim_filter``, ``MoonAlt``...)."""
        if not isinstance(data, dict):
            return data
        from cputime.catalog import canonical_keyword

        out: dict[str, Any] = {}
        for key, value in data.items():
            name = canonical_keyword(str(key)) if key not in cls.model_fields else key
            if name is not None and name not in out:
                out[name] = value
        return out


class CatalogQuery(PlanOptions):
    """Query of ``POST /v1/predict/catalog``."""

    sensors: str = Field("all", description="'all' or R22_S11,R01_S00,...")


class PredictRequest(PlanOptions):
    """Planned visits to predict."""

    visits: list[Visit] = Field(min_length=1, max_length=1_000_000)
    sensors: list[str] | None = Field(
        None, description="one prediction per (visit, sensor) instead of one per visit"
    )


class Prediction(BaseModel):
    """One row of ``cputime predict`` (more feature columns follow these)."""

    model_config = ConfigDict(extra="allow")

    obshistid: int
    sensor: str
    cpu_seconds_p50: float = Field(description="median CPU on the reference host [s]")
    cpu_seconds_upper: float = Field(description="upper bound at `confidence` [s]")
    walltime_seconds: int = Field(description="walltime of the longest segment [s]")
    segments: int
    slurm_time: str
    checkpointtotal: int
    segment_slurm_times: str = Field(description="`--time` of each segment, `;`-separated")
    slurm_signal: str
    fits_queue: bool
    plan_note: str = Field(description="what would fit a job that no checkpoint split fits")
    extrapolation: str = Field(
        description="drivers beyond the range the model was fitted on, by how much [dex]"
    )
    extrapolation_dex: float = Field(description="largest distance beyond the fitted range [dex]")


class PredictResponse(BaseModel):
    predictions: list[Prediction]
    model: dict


# ------------------------------------------------------------------------------------ routes

router = APIRouter()


@router.get("/healthz", summary="200 when a model is loaded and predictions are being served")
def healthz(request: Request, served: Annotated[ServedModel, Depends(served_model)]):
    if request.app.state.batcher_task.done():  # would only happen through a bug
        return JSONResponse({"status": "prediction loop stopped"}, status_code=503)
    return {"status": "ok", "model": served.loaded.name, "version": served.version}


@router.get("/v1/model", summary="the served model: version, features, calibration, training")
def get_model(served: Annotated[ServedModel, Depends(served_model)]) -> dict:
    return served.info


@router.post("/v1/predict", response_model=PredictResponse,
             summary="predictions for planned visits (header keywords)")
async def predict(body: PredictRequest, request: Request) -> Response:
    from cputime.focalplane import parse_sensors

    sensors = parse_sensors(",".join(body.sensors), field="sensors") if body.sensors else None
    options = PlanOptions(**body.model_dump(include=set(PlanOptions.model_fields)))
    job = _VisitJob([v.model_dump() for v in body.visits], tuple(sensors or ()), options)
    rows, served = await request.app.state.batcher.submit(job)
    return _response(rows, served)


@dataclass
class _VisitJob:
    """One /v1/predict request waiting in the :class:`Batcher`."""

    visits: list[dict]
    sensors: tuple[str, ...]
    options: PlanOptions
    future: asyncio.Future | None = None

    @property
    def key(self) -> tuple:
        return (self.sensors, *self.options.model_dump().values())

    @property
    def n_rows(self) -> int:
        return len(self.visits) * max(1, len(self.sensors))


class Batcher:
    """Runs the /v1/predict requests waiting at the same time as one prediction per option set.

    A prediction has a fixed cost (pandas and XGBoost set-up) much larger than its cost per row,
    so while one batch is computed the requests that arrive queue up and go together into the
    next: no waiting window when idle, batches as large as the load under load. Rows do not
    depend on each other, so each request gets exactly the rows it would get alone.
    """

    def __init__(self, app: FastAPI, max_rows: int = 200_000):
        self.app = app
        self.max_rows = max_rows
        self.queue: asyncio.Queue[_VisitJob] = asyncio.Queue()

    async def submit(self, job: _VisitJob) -> tuple[list[str], ServedModel]:
        job.future = asyncio.get_running_loop().create_future()
        await self.queue.put(job)
        return await job.future

    async def run(self) -> None:
        while True:
            jobs = [await self.queue.get()]
            rows = jobs[0].n_rows
            while rows < self.max_rows and not self.queue.empty():
                jobs.append(self.queue.get_nowait())
                rows += jobs[-1].n_rows
            groups: dict[tuple, list[_VisitJob]] = {}
            for job in jobs:
                groups.setdefault(job.key, []).append(job)
            served = self.app.state.served  # one model for the whole batch
            for group in groups.values():
                await self._run_group(served, group)

    async def _run_group(self, served: ServedModel, group: list[_VisitJob]) -> None:
        try:
            parts = await run_in_threadpool(_predict_visit_jobs, served, group)
        except InputError as err:
            if len(group) == 1:
                _settle(group[0].future, error=err)
            else:
                for job in group:  # find whose input it was: each alone
                    await self._run_group(served, [job])
            return
        except Exception as err:  # a bug: every request of the batch gets the 500
            for job in group:
                _settle(job.future, error=err)
            return
        for job, rows in zip(group, parts, strict=True):
            _settle(job.future, result=(rows, served))


def _settle(future: asyncio.Future, *, result=None, error: Exception | None = None) -> None:
    if future.done():  # the client went away and the request was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _predict_visit_jobs(served: ServedModel, group: list[_VisitJob]) -> list[str]:
    """The rows (JSON) of each job of a group sharing sensors and options."""
    from cputime.features import visit_features

    first = group[0]
    visits = pd.DataFrame([visit for job in group for visit in job.visits])
    features = visit_features(visits, list(first.sensors) or None, source="visits")
    table = _predict_table(served, features, first.options)
    bounds = itertools.accumulate((job.n_rows for job in group), initial=0)
    return [table.iloc[a:b].to_json(orient="records") for a, b in itertools.pairwise(bounds)]


@router.post("/v1/predict/catalog", response_model=PredictResponse,
             summary="per-sensor predictions for an instance catalog sent as the body")
async def predict_catalog(
    request: Request,
    query: Annotated[CatalogQuery, Query()],
    served: Annotated[ServedModel, Depends(served_model)],
    settings: Annotated[ServiceSettings, Depends(get_settings)],
) -> Response:
    from cputime.focalplane import parse_sensors

    sensor_list = parse_sensors(query.sensors, field="sensors")
    options = PlanOptions(**query.model_dump(exclude={"sensors"}))
    body = bytearray()
    async for chunk in request.stream():  # the app's body limit counts these bytes
        body.extend(chunk)
    return await run_in_threadpool(
        _predict_catalog, served, bytes(body), sensor_list, options, settings.max_catalog_bytes
    )


def _predict_catalog(served, body: bytes, sensors, options: PlanOptions, max_bytes: int):
    from cputime.features import catalog_features

    text = _upload_text(body, max_bytes)
    with tempfile.TemporaryDirectory(prefix="cputime-upload-") as folder:
        path = Path(folder) / "catalog.txt"
        path.write_bytes(text)
        try:
            features = catalog_features(path, sensors, allow_outside=False)
        except InputError as err:
            raise InputError(str(err).replace(str(path), UPLOAD)) from None
    return _response(_predict_table(served, features, options).to_json(orient="records"), served)


UPLOAD = "<upload>"


class BodyTooLarge(Exception):
    """A decompressed upload over the limit (answered with 413)."""


def _upload_text(body: bytes, max_bytes: int) -> bytes:
    """The catalog's bytes: gunzipped when gzip, checked for size and ``includeobj``."""
    if not body.strip():
        raise InputError(f"{UPLOAD}: empty body (send an instance catalog, plain or gzip)")
    if body[:2] == b"\x1f\x8b":
        body = _gunzip(body, max_bytes)
    elif len(body) > max_bytes:
        raise BodyTooLarge
    for number, line in enumerate(body.splitlines(), start=1):
        first = line.split(None, 1)[:1]
        if first and first[0].lower() == b"includeobj":
            raise InputError(
                f"{UPLOAD}:{number}: includeobj is refused in uploads; put the objects in the body"
            )
    return body


def _gunzip(data: bytes, max_bytes: int) -> bytes:
    out = bytearray()
    while data:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            out.extend(inflater.decompress(data, max_bytes + 1 - len(out)))
        except zlib.error as err:
            raise InputError(f"{UPLOAD}: not a valid gzip stream ({err})") from None
        if len(out) > max_bytes:
            raise BodyTooLarge
        if not inflater.eof:
            raise InputError(f"{UPLOAD}: truncated gzip stream")
        data = inflater.unused_data  # concatenated gzip members
    return bytes(out)


def _predict_table(served: ServedModel, features: pd.DataFrame, options: PlanOptions):
    from cputime.predictions import predict_jobs

    return predict_jobs(
        served.loaded.model,
        features,
        confidence_level=options.confidence,
        host_factor=options.host_factor,
        threads=options.threads,
        queue_max_seconds=options.queue_max_seconds,
        model_version=served.version,
    )


def _response(rows: str, served: ServedModel) -> Response:
    """The predictions (pandas' JSON records, as ``cputime predict --format json``) and model."""
    model = json.dumps({"name": served.loaded.name, "version": served.version,
                        "confidence_level": served.loaded.model.confidence_level})
    return Response(f'{{"predictions":{rows},"model":{model}}}', media_type="application/json")


# -------------------------------------------------------------------------------------- app


async def _input_error(request: Request, err: InputError) -> JSONResponse:
    return JSONResponse({"detail": str(err)}, status_code=422)


async def _too_large(request: Request, err: BodyTooLarge) -> JSONResponse:
    return JSONResponse({"detail": f"{UPLOAD}: decompressed catalog over the limit"},
                        status_code=413)


async def _validation_error(request: Request, err: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 body plus ``message``: one line naming the first bad field."""
    errors = jsonable_encoder(err.errors())
    first = errors[0] if errors else {}
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "body"
    message = f"{where}: {first.get('msg', 'invalid')}"
    if first.get("type") == "json_invalid":
        message = f"body: not valid JSON ({first.get('ctx', {}).get('error', '')})"
    elif first.get("type") == "model_attributes_type" and where == "body":
        message = "body: expected a JSON object (content-type: application/json)"
    return JSONResponse({"detail": errors, "message": message}, status_code=422)


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """The FastAPI application.

    Parameters
    ----------
    settings : ServiceSettings, optional
        Overrides :func:`get_settings` (``CPUTIME_*`` environment variables).
    """
    limit = (settings or get_settings()).max_body_bytes
    app = FastAPI(
        title="cputime",
        summary="PhoSim CPU time per sensor-visit, with a calibrated upper bound and walltime",
        lifespan=lifespan,
        max_body_size=limit,  # checks Content-Length and counts the bytes actually streamed
        strict_content_type=False,  # JSON bodies are read as JSON whatever their content type
    )
    if settings is not None:
        app.dependency_overrides[get_settings] = lambda: settings
    app.include_router(router)
    app.add_exception_handler(InputError, _input_error)
    app.add_exception_handler(BodyTooLarge, _too_large)
    app.add_exception_handler(RequestValidationError, _validation_error)
    return app
