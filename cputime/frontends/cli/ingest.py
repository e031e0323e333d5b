"""``cputime ingest`` and ``cputime runs``: finished jobs into the runs store, and back out."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cputime.frontends.cli.options import (
    add_command,
    existing_store,
    host_slowdowns_option,
    max_included_bytes,
    max_included_bytes_option,
    output_options,
    runs_db_option,
)
from cputime.frontends.cli.output import write_output
from cputime.frontends.cli.status import ExitStatus


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "ingest",
        "store finished jobs' CPU times and features in the runs store",
        """
        cputime ingest sacct_may.txt --format sacct --visits planned_visits.csv \\
            --host-slowdowns hosts.csv --runs-db sqlite:///runs.db
        cputime ingest runs/base runs/A_bright07 --format phosim --runs-db sqlite:///runs.db
    """,
        run_ingest,
    )
    parser.add_argument(
        "logs",
        nargs="+",
        metavar="LOG",
        help="sacct/time/csv files, or PhoSim run folders for --format phosim",
    )
    parser.add_argument(
        "--format",
        dest="log_format",
        required=True,
        choices=("sacct", "phosim", "time", "csv"),
        help="what the logs are",
    )
    parser.add_argument(
        "--visits",
        type=Path,
        default=None,
        help="CSV/Parquet of visits (header-keyword columns) for the runs' features",
    )
    parser.add_argument(
        "--catalog-root",
        type=Path,
        default=None,
        help="folder of instance catalogs (phosim_cat_<obshistid>.txt[.gz], "
        "<obshistid>/instcat.txt, ...) for the runs' features",
    )
    max_included_bytes_option(parser)
    host_slowdowns_option(parser)
    parser.add_argument(
        "--name-regex",
        default=None,
        help="job-name pattern with groups obshistid and sensor "
        "(default matches phosim_230_R22_S11)",
    )
    runs_db_option(parser)

    parser = add_command(
        subparsers,
        "runs",
        "list the runs in the runs store",
        """
        cputime runs --runs-db sqlite:///runs.db -o runs.csv
    """,
        run_runs,
    )
    runs_db_option(parser)
    output_options(parser)


def run_ingest(args) -> int:
    from cputime.runs.hosts import read_host_slowdowns
    from cputime.runs.ingest import FeatureSource, ingest
    from cputime.runs.logs import DEFAULT_JOB_NAME_REGEX
    from cputime.runs.store import RunsStore

    features = None
    if args.visits is not None or args.catalog_root is not None:
        features = FeatureSource(catalog_root=args.catalog_root, visits=args.visits)
    slowdowns = read_host_slowdowns(args.host_slowdowns) if args.host_slowdowns else None
    store = RunsStore(args.runs_db)
    reports = ingest(
        args.logs,
        args.log_format,
        store,
        name_regex=args.name_regex or DEFAULT_JOB_NAME_REGEX,
        host_slowdowns=slowdowns,
        features=features,
        max_included_bytes=max_included_bytes(args),
    )
    for report in reports:
        for problem in report.problems:
            print(f"cputime ingest: skipped {problem}", file=sys.stderr)
    print(json.dumps([r.to_dict() for r in reports], indent=2))
    # The rest is stored; the status says some rows were not.
    return ExitStatus.BAD_INPUT if any(r.problems for r in reports) else ExitStatus.OK


def run_runs(args) -> int:
    from cputime.runs.store import RunsStore

    existing_store(args.runs_db)
    write_output(args, RunsStore(args.runs_db).table())
    return ExitStatus.OK
