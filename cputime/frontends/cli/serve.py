"""``cputime serve``: the HTTP service."""

from __future__ import annotations

import argparse
import dataclasses

from cputime.frontends.cli.options import (
    BYTES,
    COUNT,
    NON_NEGATIVE,
    add_command,
    interval,
    model_options,
)
from cputime.frontends.cli.status import ExitStatus


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "serve",
        "HTTP service: predictions as JSON (OpenAPI docs at /docs)",
        """
        cputime serve --model models:/cputime@champion --tracking-uri sqlite:///mlflow.db
        curl -s localhost:8000/v1/predict --json '{"visits": [{"obshistid": 230, "filter": 2,
            "altitude": 66.3, "moonalt": -36.1, "moonphase": 3.8, "dist2moon": 124.3,
            "sunalt": -32.7}]}'
    """,
        run,
    )
    model_options(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=interval(int, 0, 65535), default=8000)
    parser.add_argument(
        "--max-body-bytes",
        type=BYTES,
        default=8 * 1024 * 1024,
        help="larger request bodies get 413",
    )
    parser.add_argument(
        "--poll-seconds",
        type=NON_NEGATIVE,
        default=30.0,
        help="how often a models:/NAME@ALIAS is re-resolved (0: never)",
    )
    parser.add_argument("--workers", type=COUNT, default=1, help="server processes")
    parser.add_argument(
        "--bulk-process",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="predict requests of over 64 rows in a child process of each server process, so "
        "that they do not slow single visits down (default: on, or CPUTIME_BULK_PROCESS)",
    )
    parser.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="log every request",
    )


def run(args) -> int:
    from cputime.frontends.service import ServiceSettings, serve
    from cputime.model.loading import resolve_model

    settings = dataclasses.replace(
        ServiceSettings.from_env(),  # CPUTIME_* variables set what the options do not
        model=args.model,
        tracking_uri=args.tracking_uri,
        max_body_bytes=args.max_body_bytes,
        poll_seconds=args.poll_seconds,
    )
    if args.bulk_process is not None:
        settings = dataclasses.replace(settings, bulk_process=args.bulk_process)
    # Load the model once here, so that a wrong --model is one line and exit 2 before the server
    # starts, rather than a traceback from every worker.
    resolve_model(settings.model, tracking_uri=settings.tracking_uri)
    serve(settings, host=args.host, port=args.port, workers=args.workers,
          access_log=args.access_log)  # fmt: skip
    return ExitStatus.OK
