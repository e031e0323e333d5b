"""The hot route: ``POST /v1/predict`` answered straight from ASGI, before FastAPI's layers.

A single-visit request costs about 2.4 ms of server CPU through FastAPI, half of it in the ~10
ASGI layers (error middleware, body limit, routing, dependency resolution, exception middleware)
around a handler that needs none of them: it reads its body itself and checks it with the same
schema. :class:`HotRoute` sits outermost and sends ``POST /v1/predict`` to that handler directly,
with the same limits (body size, body deadline, rows, time) and the same answers (the app's own
exception handlers); everything else, and the OpenAPI document of the route, stay FastAPI's.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request

from cputime.frontends.service.errors import BodyTooLarge, ClientGone, shutting_down
from cputime.frontends.service.timeouts import stalled_body_response

__all__ = ["HotRoute", "read_body"]

PATH = "/v1/predict"


class BodyStalled(Exception):
    """No body data for ``client_seconds`` (answered with 408 by :class:`HotRoute`)."""


async def read_body(receive, scope, limit: int, seconds: float) -> bytes:
    """The request body: at most ``limit`` bytes (its Content-Length is checked first), each
    piece within ``seconds`` of the last.

    Raises :class:`BodyTooLarge` naming the limit, :class:`BodyStalled`, or :class:`ClientGone`.
    """
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise _too_large(limit)
    chunks = []
    size = 0
    while True:
        try:
            async with asyncio.timeout(seconds):
                message = await receive()
        except TimeoutError:
            raise BodyStalled from None
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(limit: int) -> BodyTooLarge:
    return BodyTooLarge(f"request: body over the limit of {limit} bytes (max_body_bytes)")


class HotRoute:
    """ASGI: ``POST /v1/predict`` to ``answer(request, body, served, settings)`` (the
    route's own code, :func:`cputime.frontends.service.app.predict_response`), anything else
    to ``app`` (FastAPI's stack); ``fastapi_app`` holds the state, settings and handlers."""

    def __init__(self, app, fastapi_app, answer, settings):
        self.app = app
        self.fastapi_app = fastapi_app
        self.answer = answer
        self.settings = settings

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["path"] != PATH or scope["method"] != "POST":
            return await _answered_when_stopped(self.app, scope, receive, send)
        app = self.fastapi_app
        settings = self.settings
        request = Request(scope, receive)
        try:
            body = await read_body(receive, scope, settings.max_body_bytes,
                                   settings.client_seconds)
            response = await self.answer(request, body, app.state.served, settings)
        except BodyStalled:
            response = stalled_body_response(settings.client_seconds)
        except asyncio.CancelledError:  # see _answered_when_stopped
            response = shutting_down()
        except Exception as err:  # answered as FastAPI's stack answers it
            response = await _handler_of(app, err)(request, err)
        await response(scope, receive, send)


async def _answered_when_stopped(app, scope, receive, send) -> None:
    """``app``, answering 503 (:func:`.errors.shutting_down`) rather than uvicorn's plain-text
    500 when the server stops it before it has started its answer.

    Uvicorn cancels a request only when it stops and its grace period is over, so a cancelled
    request is answered and not cancelled further.
    """
    started = False

    async def watched(message):
        nonlocal started
        started = started or message["type"] == "http.response.start"
        await send(message)

    try:
        await app(scope, receive, watched)
    except asyncio.CancelledError:
        if started:
            raise
        await shutting_down()(scope, receive, send)


def _handler_of(app, err: Exception):
    """The app's exception handler for ``err`` (the most specific class registered)."""
    handlers = app.exception_handlers
    return next(handlers[kind] for kind in type(err).__mro__ if kind in handlers)
