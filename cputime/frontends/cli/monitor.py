"""``cputime monitor``: coverage, killed share and drift of a model on recent runs."""

from __future__ import annotations

import json
import sys

from cputime.errors import InputError
from cputime.frontends.cli.options import (
    add_command,
    existing_store,
    interval,
    model_options,
    output_dir,
    runs_db_option,
)
from cputime.frontends.cli.status import ExitStatus


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "monitor",
        "coverage, killed share and feature drift on recent runs",
        """
        cputime monitor --runs-db sqlite:///runs.db --model models:/phosim-cputime@champion \\
            --since 2024-05-01 --min-coverage 0.9 -o monitor/
    """,
        run,
    )
    runs_db_option(parser)
    model_options(parser)
    parser.add_argument(
        "--since",
        default=None,
        help="only runs that ended at or after this UTC date/time (ISO 8601)",
    )
    parser.add_argument(
        "--min-coverage",
        type=interval(float, 0, 1, "right"),
        default=0.9,
        help="exit status 3 when the coverage of finished runs is below this",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=output_dir,
        default=None,
        help="folder for monitor_runs.csv, monitor_drift.csv, monitor.png",
    )


def run(args) -> int:
    from datetime import UTC, datetime

    from cputime.model.loading import resolve_model
    from cputime.runs.monitor import monitor
    from cputime.runs.store import RunsStore

    since = None
    if args.since is not None:
        try:
            since = datetime.fromisoformat(args.since)
        except ValueError:
            raise InputError(f"--since: {args.since!r} is not an ISO date (2024-05-01)") from None
        if since.tzinfo is not None:
            since = since.astimezone(UTC).replace(tzinfo=None)
    existing_store(args.runs_db)
    loaded = resolve_model(args.model, tracking_uri=args.tracking_uri)
    report = monitor(
        RunsStore(args.runs_db),
        loaded,
        since=since,
        min_coverage=args.min_coverage,
        out_dir=args.output,
    )
    print(json.dumps(report.to_dict(), indent=2, default=str))
    if report.alert:
        print(
            f"cputime monitor: alert: coverage {report.coverage:.3f} is below {args.min_coverage}",
            file=sys.stderr,
        )
        return ExitStatus.ALERT
    return ExitStatus.OK
