"""What the service serves and its limits: one frozen settings object, from which the app is
built (:func:`cputime.frontends.service.app.create_app`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cputime.errors import InputError

__all__ = ["ServiceSettings", "get_settings"]

MB = 1024 * 1024


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
    bulk_process : bool
        Predict big requests (over 64 rows) in a child process of the server, so that they do
        not slow single visits down (see :mod:`.bulkworker`); False predicts them in a thread.
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
    bulk_process: bool = True

    #: Environment variables read by :meth:`from_env` (``uvicorn --factory`` and ``cputime
    #: serve`` read them for what their options do not set).
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
        "bulk_process": "CPUTIME_BULK_PROCESS",
    }

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ServiceSettings:
        """Settings from ``CPUTIME_*`` environment variables; defaults where unset."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, variable in cls.ENV.items():
            if environ.get(variable):
                kind = type(getattr(cls, name)) if getattr(cls, name) is not None else str
                values[name] = _value(kind, variable, environ[variable])
        return cls(**values)


_FLAGS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def _value(kind: type, variable: str, text: str):
    """The value of environment variable ``variable`` as a ``kind``."""
    if kind is bool:
        if text.strip().lower() not in _FLAGS:
            raise InputError(f"{variable}: {text!r} is not one of {', '.join(_FLAGS)}")
        return _FLAGS[text.strip().lower()]
    try:
        return kind(text)
    except ValueError:
        raise InputError(f"{variable}: {text!r} is not a {kind.__name__}") from None


@lru_cache
def get_settings() -> ServiceSettings:
    """The settings of an app built without any (``CPUTIME_*`` environment variables, cached);
    an app built from a settings object overrides it through ``app.dependency_overrides``."""
    return ServiceSettings.from_env()
