"""HTTP service: the CLI's predictions over HTTP (FastAPI).

Routes (OpenAPI docs at ``/docs``):

- ``GET /healthz``: 200 once a model is loaded: the version serving and the last version refused.
- ``GET /v1/model``: name, version, features, calibration and training summary of the model.
- ``POST /v1/predict``: planned visits as JSON (header keywords) -> one prediction per visit, or
  per (visit, sensor) with ``sensors``.
- ``POST /v1/predict/catalog?sensors=R22_S11,...``: an instance catalog as the body (plain or
  gzip) -> one prediction per sensor. ``includeobj`` is refused: an upload cannot name files on
  the server.

Predictions go through :func:`cputime.physics.features.visit_features` /
:func:`cputime.physics.features.catalog_features` and
:func:`cputime.planning.predictions.predict_jobs`, as the
command line does, and are serialised the same way as ``cputime predict --format json``, so both
give the same numbers.

The model is loaded in the app's ``lifespan``. When it is a registry alias
(``models:/NAME@champion``) a background task re-resolves the alias every ``poll_seconds`` and,
when it points to another version, swaps the served model: each request reads the model reference
once, so a request in flight finishes with the model it started with. A version is served only
after a trial prediction of stored probe visits; one that fails is not fetched again.

Work per request is bounded (see :class:`ServiceSettings`): uploads are gunzipped as they arrive
with byte and line limits, a request may produce at most ``max_rows`` rows and compute for at most
``request_seconds``, a client that disconnects stops its work, slow clients are cut off, and big
requests are predicted in slices taken in turn with the others. Every error body is
``{"detail": "<one line>"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import re
import tempfile
import zlib
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from uvicorn.protocols.http.h11_impl import H11Protocol

from cputime.errors import InputError
from cputime.inputs.validation import range_problem
from cputime.shipped import shipped_path

__all__ = ["ServiceSettings", "get_settings", "create_app", "ServedModel"]

logger = logging.getLogger("cputime.frontends.service")

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
    max_catalog_lines : int
        Most lines other than object lines (comments, blank, header) an uploaded catalog may
        have (413 beyond): the reader handles those one by one, object lines in bulk, so this
        bounds its memory for files of tiny lines (a catalog has a few dozen).
    max_rows : int
        Most prediction rows one request may produce (visits x sensors); 413 beyond.
    request_seconds : float
        Longest a request may compute [s]; 503 after it (the work is dropped).
    client_seconds : float
        Longest a client may take to send its headers, or between two pieces of its body [s];
        the connection is closed (headers) or answered 408 (body) after it.
    poll_seconds : float
        How often a registry alias is re-resolved [s]; 0 disables polling.
    """

    model: str | None = None
    tracking_uri: str | None = None
    max_body_bytes: int = 8 * MB
    max_catalog_bytes: int = 256 * MB
    max_catalog_lines: int = 100_000
    max_rows: int = 50_000
    request_seconds: float = 120.0
    client_seconds: float = 20.0
    poll_seconds: float = 30.0

    #: Environment variables read by :meth:`from_env` (for ``uvicorn --factory`` workers).
    ENV = {
        "model": "CPUTIME_MODEL",
        "tracking_uri": "CPUTIME_TRACKING_URI",
        "max_body_bytes": "CPUTIME_MAX_BODY_BYTES",
        "max_catalog_bytes": "CPUTIME_MAX_CATALOG_BYTES",
        "max_catalog_lines": "CPUTIME_MAX_CATALOG_LINES",
        "max_rows": "CPUTIME_MAX_ROWS",
        "request_seconds": "CPUTIME_REQUEST_SECONDS",
        "client_seconds": "CPUTIME_CLIENT_SECONDS",
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
        table = _predict_table(served, features, PlanOptions(confidence=level))
        numbers = table[["cpu_seconds_p50", "cpu_seconds_upper", "walltime_seconds"]]
        numbers = numbers.to_numpy(float)
        if len(table) != len(features) or not (np.isfinite(numbers).all() and (numbers > 0).all()):
            raise ValueError(f"trial prediction of {served.version} gave non-finite or "
                             "non-positive times")


def _load(settings: ServiceSettings) -> ServedModel:
    from cputime.model.loading import resolve_model

    served = ServedModel.of(resolve_model(settings.model, tracking_uri=settings.tracking_uri))
    trial_prediction(served)
    return served


def _follows_alias(settings: ServiceSettings) -> bool:
    return bool(settings.model and settings.model.startswith("models:/") and "@" in settings.model)


def _alias_target(settings: ServiceSettings) -> str:
    """``NAME/VERSION`` that the alias ``models:/NAME@ALIAS`` points to now (one cheap query)."""
    from mlflow import MlflowClient

    from cputime.model.loading import tracking_uri_or_default

    name, alias = settings.model.removeprefix("models:/").split("@", 1)
    uri = tracking_uri_or_default(settings.tracking_uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    return f"{name}/{client.get_model_version_by_alias(name, alias).version}"


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:500]


async def _follow_alias(app: FastAPI, settings: ServiceSettings) -> None:
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
                           settings.model, _one_line(err), app.state.served.version)
            continue
        failed = app.state.load_error
        if target == app.state.served.version or (failed and failed["version"] == target):
            continue
        try:
            # Load the version found, not the alias again: it may have moved meanwhile.
            pinned = replace(settings, model=f"models:/{target}")
            served = await asyncio.to_thread(_load, pinned)
        except Exception as err:
            app.state.load_error = {"version": target, "error": _one_line(err)}
            logger.error("%s -> %s refused, keeping version %s: %s", settings.model, target,
                         app.state.served.version, _one_line(err))
            continue
        logger.info("%s moved: version %s -> %s", settings.model,
                    app.state.served.version, served.version)
        app.state.load_error = None
        app.state.served = served  # one reference assignment: atomic for readers


def _settings_of(app: FastAPI) -> ServiceSettings:
    return app.dependency_overrides.get(get_settings, get_settings)()


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI):
    """Load the model before serving; follow a registry alias while serving."""
    settings = _settings_of(app)
    app.state.served = await asyncio.to_thread(_load, settings)
    app.state.load_error = None
    app.state.catalog_slots = asyncio.Semaphore(CATALOG_SLOTS)
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

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    confidence: float | None = Field(
        None, gt=0, lt=1,
        description="fixed coverage of the upper bound (default: the least-CPU-lost level)",
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

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    obshistid: int
    filter: int = Field(description="0..5 = u g r i z y")
    vistime: float | None = Field(None, description="visit time over all snaps [s]")
    nsnap: int | None = None
    airmass: float | None = None
    altitude: float | None = Field(None, description="[degrees]")
    moonalt: float | None = Field(None, description="[degrees]")
    moonphase: float | None = Field(None, description="[percent]")
    dist2moon: float | None = Field(None, description="[degrees]")
    sunalt: float | None = Field(None, description="[degrees]")
    seeing: float | None = Field(None, description="[arcsec]")

    @field_validator("*")
    @classmethod
    def _in_range(cls, value: Any, info: ValidationInfo) -> Any:
        """The ranges of :data:`cputime.inputs.validation.RANGES`, as for catalogs and tables."""
        problem = None if value is None else range_problem(info.field_name, value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @model_validator(mode="before")
    @classmethod
    def _canonical_keywords(cls, data: Any) -> Any:
        """Accept header keywords in any style PhoSim does (``Opsim_filter``, ``MoonAlt``...)."""
        if not isinstance(data, dict):
            return data
        from cputime.inputs.catalog import canonical_keyword

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
        None, max_length=1000,
        description="one prediction per (visit, sensor) instead of one per visit",
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
    return {"status": "ok", "model": served.loaded.name, "version": served.version,
            "last_load_error": request.app.state.load_error}


@router.get("/v1/model", summary="the served model: version, features, calibration, training")
def get_model(served: Annotated[ServedModel, Depends(served_model)]) -> dict:
    return served.info


@router.post("/v1/predict", response_model=PredictResponse,
             summary="predictions for planned visits (header keywords)")
async def predict(
    body: PredictRequest,
    request: Request,
    settings: Annotated[ServiceSettings, Depends(get_settings)],
) -> Response:
    from cputime.inputs.focalplane import parse_sensors

    sensors = parse_sensors(",".join(body.sensors), field="sensors") if body.sensors else None
    options = PlanOptions(**body.model_dump(include=set(PlanOptions.model_fields)))
    job = _VisitJob([v.model_dump() for v in body.visits], tuple(sensors or ()), options)
    _check_rows(job.n_rows, settings)
    parts, served = await _bounded(request, request.app.state.batcher.submit(job), settings,
                                   on_stop=job.stop)
    if len(parts) == 1:
        return Response(_response_body(parts, served), media_type="application/json")
    # Sent slice by slice: no copy of the whole answer, and other requests are served between.
    return StreamingResponse(_streamed_body(parts, served), media_type="application/json")


def _check_rows(n_rows: int, settings: ServiceSettings) -> None:
    if n_rows > settings.max_rows:
        raise TooMuchWork(
            f"request: {n_rows} prediction rows (visits x sensors) is over the limit of "
            f"{settings.max_rows} rows per request (max_rows); split it"
        )


async def _bounded(request: Request, work, settings: ServiceSettings, on_stop=None):
    """Await ``work`` unless the client goes away or ``request_seconds`` pass (then stop it)."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.create_task(_disconnected(request))
    try:
        done, _ = await asyncio.wait({task, watcher}, timeout=settings.request_seconds,
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if task in done:
        return task.result()
    task.cancel()
    if on_stop is not None:
        on_stop()
    if watcher in done:
        raise ClientGone
    raise TooSlow(f"request: not done within the limit of {settings.request_seconds:g} s "
                  "(request_seconds); send fewer visits or sensors per request")


async def _disconnected(request: Request) -> None:
    while not await request.is_disconnected():
        await asyncio.sleep(0.25)


@dataclass
class _VisitJob:
    """One /v1/predict request waiting in the :class:`Batcher`, predicted slice by slice."""

    visits: list[dict]
    sensors: tuple[str, ...]
    options: PlanOptions
    future: asyncio.Future | None = None
    parts: list[str] = field(default_factory=list)
    taken: int = 0  # visits handed to the batcher so far

    @property
    def key(self) -> tuple:
        return (self.sensors, *self.options.model_dump().values())

    @property
    def n_rows(self) -> int:
        return len(self.visits) * max(1, len(self.sensors))

    @property
    def finished(self) -> bool:
        return self.future.done() or self.taken >= len(self.visits)

    def take(self, max_rows: int) -> list[dict]:
        """The next visits, at most ``max_rows`` rows of them (at least one visit)."""
        count = max(1, max_rows // max(1, len(self.sensors)))
        piece = self.visits[self.taken:self.taken + count]
        self.taken += len(piece)
        return piece

    def stop(self) -> None:
        """Drop the rest of the work (client gone or time limit)."""
        self.taken = len(self.visits)
        self.parts.clear()


class Batcher:
    """Runs the /v1/predict requests waiting at the same time as one prediction per option set.

    A prediction has a fixed cost (pandas and XGBoost set-up) much larger than its cost per row,
    so while one batch is computed the requests that arrive queue up and go together into the
    next: no waiting window when idle, batches as large as the load under load. Rows do not
    depend on each other, so each request gets exactly the rows it would get alone.

    Fair share: each batch takes at most ``slice_rows`` rows of every waiting request, in turn,
    so a request of many visits is predicted over several batches and a one-visit request that
    arrives meanwhile waits for one slice of each, not for the whole of them.
    """

    def __init__(self, app: FastAPI, max_rows: int = 20_000, slice_rows: int = 100):
        self.app = app
        self.max_rows = max_rows
        self.slice_rows = slice_rows
        self.queue: asyncio.Queue[_VisitJob] = asyncio.Queue()

    async def submit(self, job: _VisitJob) -> tuple[list[str], ServedModel]:
        job.future = asyncio.get_running_loop().create_future()
        await self.queue.put(job)
        return await job.future

    async def run(self) -> None:
        active: list[_VisitJob] = []
        while True:
            if not active:
                active.append(await self.queue.get())
            while not self.queue.empty():
                active.append(self.queue.get_nowait())
            pieces: list[tuple[_VisitJob, list[dict]]] = []
            rows = 0
            for job in active:
                if rows >= self.max_rows:
                    break
                if not job.finished:
                    piece = job.take(self.slice_rows)
                    pieces.append((job, piece))
                    rows += len(piece) * max(1, len(job.sensors))
            groups: dict[tuple, list[tuple[_VisitJob, list[dict]]]] = {}
            for job, piece in pieces:
                groups.setdefault(job.key, []).append((job, piece))
            served = self.app.state.served  # one model for the whole batch
            # Smallest groups first: a one-visit request waits for at most the slice running
            # when it arrived.
            for group in sorted(groups.values(), key=lambda g: sum(len(p) for _, p in g)):
                await self._run_group(served, group)
            for job, _ in pieces:
                if job.taken >= len(job.visits) and not job.future.done():
                    _settle(job.future, result=(job.parts, served))
            # Jobs served in this batch go behind those that were not (round robin).
            served_jobs = {id(job) for job, _ in pieces}
            active = ([j for j in active if id(j) not in served_jobs and not j.future.done()]
                      + [j for j, _ in pieces if not j.future.done()])

    async def _run_group(self, served: ServedModel, group: list) -> None:
        try:
            parts = await run_in_threadpool(_predict_visit_jobs, served, group)
        except InputError as err:
            if len(group) == 1:
                _settle(group[0][0].future, error=err)
            else:
                for item in group:  # find whose input it was: each alone
                    await self._run_group(served, [item])
            return
        except Exception as err:  # a bug: every request of the batch gets the 500
            logger.exception("prediction failed")
            for job, _ in group:
                _settle(job.future, error=err)
            return
        for (job, _), rows in zip(group, parts, strict=True):
            if not job.future.done():
                job.parts.append(rows)


def _settle(future: asyncio.Future, *, result=None, error: Exception | None = None) -> None:
    if future.done():  # the client went away and the request was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _predict_visit_jobs(served: ServedModel, group: list) -> list[str]:
    """The rows (JSON) of each (job, visits) piece of a group sharing sensors and options.

    Through :func:`cputime.planning.predictions.predict_visits`, the path that builds no pandas
    object
    (the same numbers as the table path, serialised as pandas' JSON records are).
    """
    from pandas.io.json import ujson_dumps

    from cputime.planning.predictions import predict_visits

    first = group[0][0]
    options = first.options
    rows = predict_visits(
        served.loaded.model,
        [visit for _, piece in group for visit in piece],
        list(first.sensors) or None,
        confidence_level=options.confidence,
        host_slowdown=options.host_factor,
        threads=options.threads,
        queue_max_seconds=options.queue_max_seconds,
        model_version=served.version,
    )
    sizes = (len(piece) * max(1, len(first.sensors)) for _, piece in group)
    bounds = itertools.accumulate(sizes, initial=0)
    return [ujson_dumps(rows[a:b], double_precision=10) for a, b in itertools.pairwise(bounds)]


@router.post("/v1/predict/catalog", response_model=PredictResponse,
             summary="per-sensor predictions for an instance catalog sent as the body")
async def predict_catalog(
    request: Request,
    query: Annotated[CatalogQuery, Query()],
    served: Annotated[ServedModel, Depends(served_model)],
    settings: Annotated[ServiceSettings, Depends(get_settings)],
) -> Response:
    from cputime.inputs.focalplane import parse_sensors

    sensor_list = parse_sensors(query.sensors, field="sensors")
    _check_rows(len(sensor_list), settings)
    options = PlanOptions(**query.model_dump(exclude={"sensors"}))
    with tempfile.TemporaryDirectory(prefix="cputime-upload-") as folder:
        path = Path(folder) / "catalog.txt"
        with open(path, "wb") as out:
            upload = _Upload(out, settings.max_catalog_bytes, settings.max_catalog_lines)
            async for chunk in request.stream():  # the app's body limit counts these bytes
                await run_in_threadpool(upload.feed, chunk)
            upload.close()
        # At most CATALOG_SLOTS catalogs are read at once: each uses several threads and a few
        # chunks of memory; the others wait (within their time limit).
        async def read_and_predict():
            async with request.app.state.catalog_slots:
                return await run_in_threadpool(_predict_catalog, served, path, sensor_list,
                                               options)
        # On a time limit or a gone client the file is emptied: the reader, which has it
        # open, then meets its end at the next read instead of finishing unseen work.
        return await _bounded(request, read_and_predict(), settings,
                              on_stop=lambda: os.truncate(path, 0))


#: Catalog uploads read at the same time (per server process): reading one of 256 MB takes the
#: server from 0.25 to 0.86 GB (measured), so two at once would pass 1 GB.
CATALOG_SLOTS = 1


def _predict_catalog(served, path: Path, sensors, options: PlanOptions):
    from cputime.physics.features import catalog_features

    try:
        features = catalog_features(path, sensors, allow_outside=False)
    except InputError as err:
        raise InputError(str(err).replace(str(path), UPLOAD)) from None
    return _response(_predict_table(served, features, options).to_json(orient="records"), served)


UPLOAD = "<upload>"
_GZIP_MAGIC = b"\x1f\x8b"


class BodyTooLarge(Exception):
    """An upload over a limit (answered with 413); the message names the limit."""


class TooMuchWork(BodyTooLarge):
    """A request that would produce more rows than allowed (413)."""


class TooSlow(Exception):
    """A request over its time limit (503)."""


class ClientGone(Exception):
    """The client disconnected; nobody reads the answer."""


_INCLUDE_RE = re.compile(rb"(?mi)^(?:\xef\xbb\xbf)?[ \t]*includeobj(?=[ \t\r\n])")
_MAX_LINE = 1 << 20  # no line of a catalog comes near 1 MiB


class _Upload:
    """Writes an uploaded catalog to a file as it arrives, gunzipped when gzip.

    Every layer is bounded: the decompressed bytes and lines are counted as they are produced
    (a gzip bomb stops at the limit, never unpacked whole), gzip inside gzip is refused, lines
    are scanned for ``includeobj`` piece by piece (never split into a list).
    """

    def __init__(self, out, max_bytes: int, max_lines: int):
        self.out = out
        self.max_bytes = max_bytes
        self.max_lines = max_lines
        self.head = b""  # first bytes, until the format is known
        self.inflater = None
        self.gzip: bool | None = None
        self.size = 0
        self.lines = 0
        self.other_lines = 0  # comments, blank, header lines: each costs the reader far more
        self.tail = b""  # the unfinished last line
        self.text_seen = False  # anything but white space

    def feed(self, data: bytes) -> None:
        if self.gzip is None:
            self.head += data
            if len(self.head) < 2:
                return
            self.gzip, data, self.head = self.head[:2] == _GZIP_MAGIC, self.head, b""
        if not self.gzip:
            self._text(data)
            return
        while data:
            if self.inflater is None:
                if not data.strip(b"\0"):
                    return  # zero padding after the last member, as gzip(1) tolerates
                self.inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            try:
                self._text(self.inflater.decompress(data, _MAX_LINE))
            except zlib.error as err:
                raise InputError(f"{UPLOAD}: not a valid gzip stream ({err})") from None
            if self.inflater.eof:  # concatenated gzip members
                data, self.inflater = self.inflater.unused_data, None
            else:
                data = self.inflater.unconsumed_tail

    def _text(self, data: bytes) -> None:
        if not data:
            return
        if self.size == 0 and self.gzip and data[:2] == _GZIP_MAGIC:
            raise InputError(f"{UPLOAD}: gzip data inside gzip data is refused; gzip the text once")
        self.size += len(data)
        self.text_seen = self.text_seen or bool(data.strip())
        if self.size > self.max_bytes:
            raise BodyTooLarge(f"{UPLOAD}: decompressed catalog over the limit of "
                               f"{self.max_bytes} bytes (max_catalog_bytes)")
        text = self.tail + data
        cut = text.rfind(b"\n") + 1
        self._scan(text[:cut])
        self.tail = text[cut:]
        if len(self.tail) > _MAX_LINE:
            raise InputError(f"{UPLOAD}:{self.lines + 1}: line longer than {_MAX_LINE} bytes: "
                             "not an instance catalog")
        self.out.write(data)

    def _scan(self, text: bytes) -> None:
        match = _INCLUDE_RE.search(text)
        if match:
            number = self.lines + text.count(b"\n", 0, match.start()) + 1
            raise InputError(
                f"{UPLOAD}:{number}: includeobj is refused in uploads; put the objects in the body"
            )
        lines = text.count(b"\n")
        self.lines += lines
        objects = text.count(b"\nobject ") + text.count(b"\nobject\t") + text.startswith(
            (b"object ", b"object\t"))
        self.other_lines += lines - objects
        if self.other_lines > self.max_lines:
            raise BodyTooLarge(f"{UPLOAD}: over the limit of {self.max_lines} lines other than "
                               "object lines (max_catalog_lines)")

    def close(self) -> None:
        """Check the end of the upload: something was sent, the gzip stream is complete."""
        if self.gzip is None:  # fewer than 2 bytes came
            self.gzip = False
            self._text(self.head)
        if self.inflater is not None:
            raise InputError(f"{UPLOAD}: truncated gzip stream")
        self._scan(self.tail + b"\n")
        if not self.text_seen:
            raise InputError(f"{UPLOAD}: empty body (send an instance catalog, plain or gzip)")


def _predict_table(served: ServedModel, features: pd.DataFrame, options: PlanOptions):
    from cputime.planning.predictions import predict_jobs

    return predict_jobs(
        served.loaded.model,
        features,
        confidence_level=options.confidence,
        host_slowdown=options.host_factor,
        threads=options.threads,
        queue_max_seconds=options.queue_max_seconds,
        model_version=served.version,
    )


def _response_body(parts: list[str], served: ServedModel) -> bytes:
    """The predictions (pandas' JSON records, as ``cputime predict --format json``, given as
    pieces of one array) and the model, as the encoded response body."""
    rows = ",".join(p[1:-1] for p in parts if p != "[]")
    return f'{{"predictions":[{rows}],"model":{_model_json(served)}}}'.encode()


async def _streamed_body(parts: list[str], served: ServedModel):
    yield b'{"predictions":['
    first = True
    while parts:
        rows = parts.pop(0)[1:-1]  # popped: memory is freed as the answer goes out
        if rows:
            yield (rows if first else "," + rows).encode()
            first = False
    yield f'],"model":{_model_json(served)}}}'.encode()


def _model_json(served: ServedModel) -> str:
    return json.dumps({"name": served.loaded.name, "version": served.version,
                       "confidence_level": served.loaded.model.confidence_level})


def _response(rows: str, served: ServedModel) -> Response:
    return Response(_response_body([rows], served), media_type="application/json")


# -------------------------------------------------------------------------------------- app


# Every error body has one shape: {"detail": "<one line naming the field or limit>"}, with no
# server path and no echo of the values sent (they may not be JSON: NaN, Infinity).


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


async def _input_error(request: Request, err: InputError) -> JSONResponse:
    return _error(422, str(err).splitlines()[0] if str(err) else "bad input")


async def _too_large(request: Request, err: BodyTooLarge) -> JSONResponse:
    return _error(413, str(err) or f"{UPLOAD}: over the limit")


async def _too_slow(request: Request, err: TooSlow) -> JSONResponse:
    return _error(503, str(err))


async def _client_gone(request: Request, err: Exception) -> Response:
    return Response(status_code=499)  # nobody reads it; the connection is gone


async def _http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
    return JSONResponse({"detail": str(err.detail)}, status_code=err.status_code,
                        headers=getattr(err, "headers", None))


async def _server_error(request: Request, err: Exception) -> JSONResponse:
    logger.error("%s %s failed: %s", request.method, request.url.path, _one_line(err))
    return _error(500, "internal error (logged on the server)")


async def _validation_error(request: Request, err: RequestValidationError) -> JSONResponse:
    """422 with one line naming the first bad field (the value is not echoed)."""
    errors = err.errors()
    first = errors[0] if errors else {}
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "body"
    message = f"{where}: {first.get('msg', 'invalid')}"
    if first.get("type") == "json_invalid":
        message = f"body: not valid JSON ({first.get('ctx', {}).get('error', '')})"
    elif first.get("type") == "model_attributes_type" and where == "body":
        message = "body: expected a JSON object (content-type: application/json)"
    return _error(422, message.splitlines()[0])


class _ClientTimeout:
    """ASGI middleware: a body that stalls for ``seconds`` between pieces gets 408.

    The app is told the client went away (``http.disconnect``), which stops its reading; the
    408 is sent if no response started.
    """

    def __init__(self, app, seconds: float):
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        state = {"body_done": False, "timed_out": False, "started": False}

        async def timed_receive():
            if state["body_done"]:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.seconds)
            except TimeoutError:
                state["timed_out"] = True
                return {"type": "http.disconnect"}
            if message["type"] != "http.request" or not message.get("more_body", False):
                state["body_done"] = True
            return message

        async def tracked_send(message):
            if message["type"] == "http.response.start":
                if state["timed_out"]:
                    return  # the 408 below is the answer
                state["started"] = True
            if not state["timed_out"]:
                await send(message)

        try:
            await self.app(scope, timed_receive, tracked_send)
        except Exception:
            if not state["timed_out"]:
                raise
        if state["timed_out"] and not state["started"]:
            body = json.dumps({"detail": f"request: no body data for {self.seconds:g} s "
                                         "(client_seconds)"}).encode()
            await send({"type": "http.response.start", "status": 408,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": body})


class TimedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, closing connections that do not finish their request
    headers within ``client_seconds`` (slow-header clients would otherwise hold a socket and
    a slot forever)."""

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        seconds = get_settings().client_seconds
        self._header_timer = self.loop.call_later(seconds, self._headers_too_slow)

    def _headers_too_slow(self) -> None:
        if self.cycle is None or self.cycle.response_complete:
            self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._header_timer.cancel()
        if not self.transport.is_closing():
            self._arm_header_timer()

    def connection_lost(self, exc) -> None:
        self._header_timer.cancel()
        super().connection_lost(exc)


def server_options() -> dict:
    """Options for ``uvicorn.run``: the slow-header timeout, and a bounded SIGTERM shutdown
    (in-flight requests get 5 s to finish, then the server exits)."""
    return {"http": TimedH11Protocol, "timeout_graceful_shutdown": 5,
            "timeout_keep_alive": 5}


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
    app.add_exception_handler(TooSlow, _too_slow)
    app.add_exception_handler(ClientGone, _client_gone)
    app.add_exception_handler(ClientDisconnect, _client_gone)  # gone during the upload
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _server_error)
    app.add_middleware(_ClientTimeout, seconds=(settings or get_settings()).client_seconds)
    return app
