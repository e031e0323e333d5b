"""The service's errors and their answers: every error body has one shape,
``{"detail": "<one line naming the field or limit>"}``, with no server path and no echo of the
values sent (they may not be JSON: NaN, Infinity)."""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from cputime.errors import InputError
from cputime.inputs.compressed import DecompressedTooLarge

__all__ = ["BodyTooLarge", "ClientGone", "TooMuchWork", "TooSlow", "add_error_handlers",
           "field_path", "one_line"]

logger = logging.getLogger("cputime.frontends.service")

#: How an uploaded catalog is named in messages (never its temporary path on the server).
UPLOAD = "<upload>"


class BodyTooLarge(Exception):
    """An upload over a limit (answered with 413); the message names the limit."""


class TooMuchWork(BodyTooLarge):
    """A request that would produce more rows than allowed (413)."""


class TooSlow(Exception):
    """A request over its time limit (503)."""


class ClientGone(Exception):
    """The client disconnected; nobody reads the answer."""


def shutting_down() -> JSONResponse:
    """503 for a request the server stopped before answering it (SIGTERM, then uvicorn's grace
    period over): the client may send it again, to this server once back or another."""
    return JSONResponse({"detail": "server: shutting down before this request was done; "
                                   "send it again"},
                        status_code=503, headers={"Retry-After": "5"})


def one_line(err: BaseException) -> str:
    """``Type: first line of the message``, at most 500 characters (for logs and health)."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:500]


_VISIT_FIELD = re.compile(r"^visits\[(\d+)\]: (\w+): ")


def field_path(message: str, offset: int = 0) -> str:
    """A library message about visit ``i`` of a piece (``visits[3]: moonalt: ...``) as the
    field path of the request (``visits.<offset+3>.moonalt: ...``), as the schema's errors."""
    return _VISIT_FIELD.sub(lambda m: f"visits.{int(m[1]) + offset}.{m[2]}: ", message, count=1)


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


async def _input_error(request: Request, err: InputError) -> JSONResponse:
    return _error(422, str(err).splitlines()[0] if str(err) else "bad input")


async def _too_large(request: Request, err: Exception) -> JSONResponse:
    return _error(413, str(err) or f"{UPLOAD}: over the limit")


async def _too_slow(request: Request, err: TooSlow) -> JSONResponse:
    return _error(503, str(err))


async def _client_gone(request: Request, err: Exception) -> Response:
    return Response(status_code=499)  # nobody reads it; the connection is gone


async def _http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
    return JSONResponse({"detail": str(err.detail)}, status_code=err.status_code,
                        headers=getattr(err, "headers", None))


async def _server_error(request: Request, err: Exception) -> JSONResponse:
    logger.error("%s %s failed: %s", request.method, request.url.path, one_line(err))
    return _error(500, "internal error (logged on the server)")


async def _validation_error(request: Request, err: RequestValidationError) -> JSONResponse:
    """422 with one line naming the first bad field (the value is not echoed)."""
    errors = err.errors()
    first = errors[0] if errors else {}
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "body"
    message = f"{where}: {first.get('msg', 'invalid')}"
    if first.get("type") in ("json_invalid", "json_type"):
        message = f"body: not valid JSON ({first.get('ctx', {}).get('error', '')})"
    elif first.get("type") in ("model_attributes_type", "model_type") and where == "body":
        message = "body: expected a JSON object (content-type: application/json)"
    return _error(422, message.splitlines()[0])


def add_error_handlers(app: FastAPI) -> None:
    """Answer every error of the service in the one shape."""
    app.add_exception_handler(InputError, _input_error)
    app.add_exception_handler(DecompressedTooLarge, _too_large)  # before InputError's 422
    app.add_exception_handler(BodyTooLarge, _too_large)
    app.add_exception_handler(TooSlow, _too_slow)
    app.add_exception_handler(ClientGone, _client_gone)
    app.add_exception_handler(ClientDisconnect, _client_gone)  # gone during the upload
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _server_error)
