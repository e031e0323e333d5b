"""The header deadline on uvicorn's httptools protocol (a module of its own: importing it
fails when httptools is not installed, and :func:`timeouts.timed_protocol` falls back to h11)."""

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from cputime.frontends.service.timeouts import HeaderDeadline


class TimedHttpToolsProtocol(HeaderDeadline, HttpToolsProtocol):
    """uvicorn's httptools (C parser) HTTP/1.1 protocol with the header deadline."""
