"""The FastAPI application: routes, lifespan, and the server that runs it.

The app is built from a settings object only (:func:`create_app`); :func:`serve` runs it on
uvicorn, in one process or several (each worker builds its own app from the same settings).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
from functools import partial
from pathlib import Path
from typing import Annotated

import orjson
import pandas as pd
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError

from cputime.errors import InputError
from cputime.frontends.service.batcher import VisitJob, as_part, lane_of, lanes, predict_json
from cputime.frontends.service.bulkworker import BulkWorker
from cputime.frontends.service.errors import (
    UPLOAD,
    ClientGone,
    TooMuchWork,
    TooSlow,
    add_error_handlers,
)
from cputime.frontends.service.hotroute import HotRoute
from cputime.frontends.service.model import (
    ServedModel,
    follow_alias,
    follows_alias,
    load_served,
    predict_table,
    served_model,
)
from cputime.frontends.service.schemas import (
    CatalogQuery,
    PlanOptions,
    PredictRequest,
    PredictResponse,
    plan_options,
)
from cputime.frontends.service.settings import ServiceSettings, get_settings
from cputime.frontends.service.timeouts import BodyDeadline, ServerConfig, timed_protocol
from cputime.frontends.service.uploads import Upload

__all__ = ["create_app", "router", "serve"]

logger = logging.getLogger("cputime.frontends.service")

#: Catalog uploads read at the same time (per server process): reading one of 256 MB takes the
#: server from 0.25 to 0.86 GB (measured), so two at once would pass 1 GB.
CATALOG_SLOTS = 1
#: Bodies larger than this are parsed in a worker thread, not on the event loop [bytes].
_PARSE_IN_THREAD_BYTES = 64 * 1024


def _settings_of(app: FastAPI) -> ServiceSettings:
    return app.dependency_overrides.get(get_settings, get_settings)()


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI):
    """Load the model before serving (unless a test overrides it); run the prediction lanes;
    follow a registry alias while serving."""
    settings = _settings_of(app)
    app.state.load_error = None
    if served_model in app.dependency_overrides:
        app.state.served = app.dependency_overrides[served_model]()
    else:
        app.state.served = await asyncio.to_thread(load_served, settings)
    app.state.catalog_slots = asyncio.Semaphore(CATALOG_SLOTS)
    logger.info("serving %s version %s", app.state.served.loaded.name, app.state.served.version)
    bulk_worker = BulkWorker(predict_json) if settings.bulk_process else None
    app.state.lanes = lanes(bulk_worker)
    tasks = [asyncio.create_task(lane.run()) for lane in app.state.lanes.values()]
    app.state.lane_tasks = list(tasks)
    if follows_alias(settings):
        tasks.append(asyncio.create_task(follow_alias(app, settings)))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if bulk_worker is not None:
            await asyncio.to_thread(bulk_worker.close)


# ------------------------------------------------------------------------------------ routes

router = APIRouter()


@router.get("/healthz", summary="200 when a model is loaded and predictions are being served")
def healthz(request: Request, served: Annotated[ServedModel, Depends(served_model)]):
    if any(task.done() for task in request.app.state.lane_tasks):  # only through a bug
        return JSONResponse({"status": "prediction loop stopped"}, status_code=503)
    return {"status": "ok", "model": served.loaded.name, "version": served.version,
            "last_load_error": request.app.state.load_error}


@router.get("/v1/model", summary="the served model: version, features, calibration, training")
def get_model(served: Annotated[ServedModel, Depends(served_model)]) -> dict:
    return served.info


class _NonFinite(str):
    """``NaN``/``Infinity`` in a JSON body (not JSON): kept as a value that is not a number,
    so that the field holding it is named in the 422."""

    def __float__(self):
        raise ValueError(f"{self} is not a finite number")


def _parse_json(body: bytes) -> object:
    try:  # orjson: a fraction of json's cost; what it refuses, json parses or explains
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body, parse_constant=_NonFinite)
    except (ValueError, RecursionError) as err:
        raise RequestValidationError([{"type": "json_invalid", "loc": ("body",),
                                       "msg": "invalid JSON", "ctx": {"error": str(err)[:200]}}]
                                     ) from None


def _predict_request(data: object) -> PredictRequest:
    try:
        return PredictRequest.model_validate(data)
    except ValidationError as err:
        raise RequestValidationError(err.errors(include_url=False, include_input=False)) from None


@router.post(
    "/v1/predict", response_model=PredictResponse,
    summary="predictions for planned visits (header keywords)",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
        "schema": PredictRequest.model_json_schema(by_alias=False)}}}},
)
async def predict(
    request: Request,
    served: Annotated[ServedModel, Depends(served_model)],
    settings: Annotated[ServiceSettings, Depends(get_settings)],
) -> Response:
    """The body is read and checked here rather than by FastAPI: a light check of its shape
    (:class:`PredictRequest`), the visits themselves checked by the prediction code in one
    vectorised pass, big bodies off the event loop. (The server answers this route through
    :class:`.hotroute.HotRoute`, which reads the body and calls :func:`predict_response`
    without FastAPI's layers; this function documents it and serves it where the router is
    mounted alone.)"""
    return await predict_response(request, await request.body(), served, settings)


async def predict_response(request: Request, body: bytes, served: ServedModel,
                           settings: ServiceSettings) -> Response:
    """The answer of ``POST /v1/predict`` to ``body``."""
    from cputime.inputs.focalplane import parse_sensors

    if len(body) > _PARSE_IN_THREAD_BYTES:
        query = await run_in_threadpool(lambda: _predict_request(_parse_json(body)))
    else:
        query = _predict_request(_parse_json(body))
    sensors = parse_sensors(",".join(query.sensors), field="sensors") if query.sensors else None
    job = VisitJob(served, query.visits, tuple(sensors or ()), plan_options(query))
    _check_rows(job.n_rows, settings)
    lane = request.app.state.lanes[lane_of(job)]
    parts = await _bounded(request, lane.submit(job), settings, on_stop=job.stop)
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
    """Await ``work`` unless the client goes away or ``request_seconds`` pass (then stop it).

    The client is watched only once the work takes longer than one look
    (:data:`_DISCONNECT_POLL_SECONDS`): most requests are done before, and need no watcher.
    """
    task = asyncio.ensure_future(work)
    first = min(_DISCONNECT_POLL_SECONDS, settings.request_seconds)
    done, _ = await asyncio.wait({task}, timeout=first)
    watcher = None
    if not done:
        watcher = asyncio.create_task(_disconnected(request))
        try:
            done, _ = await asyncio.wait({task, watcher},
                                         timeout=settings.request_seconds - first,
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


#: How often a client that waits for its answer is checked for having gone away [s].
_DISCONNECT_POLL_SECONDS = 0.25


async def _disconnected(request: Request) -> None:
    while not await request.is_disconnected():
        await asyncio.sleep(_DISCONNECT_POLL_SECONDS)


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
    options = plan_options(query)
    with tempfile.TemporaryDirectory(prefix="cputime-upload-") as folder:
        path = Path(folder) / "catalog.txt"
        with open(path, "wb") as out:
            upload = Upload(out, settings.max_catalog_bytes, settings.max_catalog_lines)
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


def _predict_catalog(served, path: Path, sensors, options: PlanOptions):
    from cputime.physics.features import catalog_features

    try:
        features = catalog_features(path, sensors, allow_outside=False)
    except InputError as err:
        raise InputError(str(err).replace(str(path), UPLOAD)) from None
    table = _with_filter_letters(predict_table(served, features, options))
    rows = table.to_json(orient="records", double_precision=10)
    return Response(_response_body([as_part(rows)], served), media_type="application/json")


def _with_filter_letters(table: pd.DataFrame) -> pd.DataFrame:
    """``filter`` as its letter (u g r i z y), as ``cputime predict`` writes it."""
    from cputime.inputs.opsim import FILTER_LETTERS

    letters = pd.Series(list(FILTER_LETTERS), dtype=object)
    return table.assign(filter=letters[table["filter"].astype(int)].to_numpy())


def _response_body(parts: list[bytes], served: ServedModel) -> bytes:
    """The predictions (parts as :func:`.batcher.as_part` makes them) and the model, as the
    encoded response body."""
    rows = b"".join(parts)[1:]  # the first record's comma dropped
    return b'{"predictions":[' + rows + b'],"model":' + _model_json(served).encode() + b"}"


async def _streamed_body(parts: list[bytes], served: ServedModel):
    yield b'{"predictions":['
    first = True
    while parts:
        rows = parts.pop(0)  # popped: memory is freed as the answer goes out
        if rows:
            yield rows[1:] if first else rows
            first = False
            # Sending does not wait while the client reads as fast as it comes: without this
            # turn a 49,000-row answer (15 MB) would go out in one step of the event loop,
            # holding single-visit requests for ~30 ms (measured).
            await asyncio.sleep(0)
    yield f'],"model":{_model_json(served)}}}'.encode()


def _model_json(served: ServedModel) -> str:
    return json.dumps({"name": served.loaded.name, "version": served.version,
                       "confidence_level": served.loaded.model.confidence_level})


# -------------------------------------------------------------------------------------- app


class _App(FastAPI):
    """FastAPI with :class:`.hotroute.HotRoute` outermost (built when the app starts, once its
    settings are final)."""

    def build_middleware_stack(self):
        return HotRoute(super().build_middleware_stack(), self, predict_response,
                        _settings_of(self))


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """The FastAPI application.

    Parameters
    ----------
    settings : ServiceSettings, optional
        What to serve and the limits; without them, :func:`get_settings` (``CPUTIME_*``
        environment variables, for ``uvicorn --factory``).

    Notes
    -----
    Tests may override the :func:`get_settings` and
    :func:`cputime.frontends.service.model.served_model` dependencies
    (``app.dependency_overrides``) before the app starts: an overridden served model is served
    as it is, without loading one.
    """
    settings = settings or get_settings()
    app = _App(
        title="cputime",
        summary="PhoSim CPU time per sensor-visit, with a calibrated upper bound and walltime",
        lifespan=lifespan,
        max_body_size=settings.max_body_bytes,  # checks Content-Length and counts bytes streamed
        strict_content_type=False,  # JSON bodies are read as JSON whatever their content type
    )
    app.dependency_overrides[get_settings] = lambda: settings
    app.include_router(router)
    add_error_handlers(app)
    app.add_middleware(BodyDeadline, seconds=settings.client_seconds)
    return app


def serve(settings: ServiceSettings, *, host: str = "127.0.0.1", port: int = 8000,
          workers: int = 1, access_log: bool = True) -> None:
    """Run the service on uvicorn until SIGTERM or Ctrl-C.

    Each of ``workers`` processes builds its app from ``settings`` (given to it as an object,
    not through the environment). Slow headers are cut off after ``client_seconds``; on SIGTERM
    requests in flight get 5 s to finish, then the server exits.
    """
    import uvicorn

    # Requests are small: XGBoost's OpenMP threads would only contend with the server's (one-row
    # DMatrix set-up measured at 0.2 ms on one thread, 24 ms on two on a busy 2-core host).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    config = ServerConfig(
        partial(create_app, settings), factory=True, client_seconds=settings.client_seconds,
        host=host, port=port, workers=workers, access_log=access_log, http=timed_protocol(),
        timeout_graceful_shutdown=5, timeout_keep_alive=5,
    )
    server = uvicorn.Server(config)
    if workers > 1:
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        server.run()
