"""Slow clients: a connection that does not finish its request headers within
``client_seconds`` is closed (:class:`HeaderDeadline`, in uvicorn's HTTP protocols), and a body
that stalls that long between two pieces gets 408 (:class:`BodyDeadline`, ASGI middleware).
Without them a slow client holds a socket and a slot forever."""

from __future__ import annotations

import asyncio

import uvicorn
from starlette.responses import JSONResponse
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["BodyDeadline", "HeaderDeadline", "ServerConfig", "TimedH11Protocol",
           "stalled_body_response", "timed_protocol"]


class ServerConfig(uvicorn.Config):
    """uvicorn's configuration and the header deadline ``client_seconds`` [s] the protocols
    read (a plain attribute: the configuration goes to worker processes as it is)."""

    def __init__(self, app, *, client_seconds: float, **options):
        super().__init__(app, **options)
        self.client_seconds = client_seconds


class HeaderDeadline:
    """Mixin for a uvicorn HTTP protocol: close a connection whose request headers are not
    complete ``config.client_seconds`` after it opened or after its last response."""

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        seconds = getattr(self.config, "client_seconds", 20.0)
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


class TimedH11Protocol(HeaderDeadline, H11Protocol):
    """uvicorn's pure-Python HTTP/1.1 protocol with the header deadline."""


def timed_protocol() -> type:
    """The fastest HTTP protocol available (httptools' C parser when installed: a fraction of
    h11's cost per request), with the header deadline."""
    try:
        from cputime.frontends.service.timeouts_httptools import TimedHttpToolsProtocol
    except ImportError:
        return TimedH11Protocol
    return TimedHttpToolsProtocol


class BodyDeadline:
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
            await stalled_body_response(self.seconds)(scope, receive, send)


def stalled_body_response(seconds: float) -> JSONResponse:
    """The 408 of a body that stalled for ``seconds``; the connection is closed after it."""
    return JSONResponse({"detail": f"request: no body data for {seconds:g} s (client_seconds)"},
                        status_code=408, headers={"connection": "close"})
