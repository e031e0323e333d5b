"""``cputime train``, ``evaluate`` and ``build-default``: models from tables of finished jobs."""

from __future__ import annotations

import json
from pathlib import Path

from cputime.frontends.cli.options import (
    add_command,
    confidence_option,
    host_slowdowns_option,
    interval,
    model_options,
    output_dir,
    runs_option,
    runs_path,
)
from cputime.frontends.cli.status import ExitStatus


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "train",
        "train a model from a table of features and CPU times",
        """
        cputime train cputime/data/twinkles_run1_train.csv --target cputime \\
            --censored-col runlimit --host-col hostname \\
            --host-slowdowns cputime/data/twinkles_host_factors.csv --out models/mine
    """,
        run_train,
    )
    parser.add_argument(
        "table", type=Path, help="CSV/Parquet: header-keyword or feature columns + outcome"
    )
    parser.add_argument("--target", required=True, help="column of CPU seconds")
    parser.add_argument(
        "--censored-col", default=None, help="column, 1/true where the job was killed"
    )
    parser.add_argument("--host-col", default=None, help="column naming each job's host")
    host_slowdowns_option(parser)
    runs_option(parser)
    confidence_option(parser, 0.95, "default coverage of the upper bound, a probability")
    parser.add_argument(
        "--out", type=output_dir, default=Path("models/trained"), help="model folder"
    )

    parser = add_command(
        subparsers,
        "evaluate",
        "cross-validated metrics and plots next to baselines; with --model, that model too",
        """
        cputime evaluate features/twinkles_run1.csv -o report/
        cputime evaluate new_jobs.csv --target cputime --censored-col killed \\
            --model models:/phosim@champion --tracking-uri sqlite:///mlruns.db -o report/
    """,
        run_evaluate,
    )
    model_options(parser, default_help="none: only the cross-validated models")
    parser.add_argument(
        "table",
        type=Path,
        nargs="?",
        default=None,
        help="training table (as for train; default: the shipped features/twinkles_run1.csv)",
    )
    parser.add_argument("--target", default="cpu_seconds_ref")
    parser.add_argument("--censored-col", default="censored")
    parser.add_argument("--host-col", default=None)
    host_slowdowns_option(parser)
    runs_option(parser)
    parser.add_argument("--folds", type=interval(int, 2, None), default=5)
    confidence_option(parser, 0.95, "coverage of the upper bound, a probability")
    parser.add_argument(
        "-o", "--output", type=output_dir, default=Path("report"), help="report folder"
    )

    parser = add_command(
        subparsers,
        "build-default",
        "rebuild the shipped feature tables and default model",
        """
        cputime build-default --data ../shared/data
    """,
        run_build_default,
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="raw data folder (twinkles_run1/, phosim_runs/); without it the tables "
        "already in --features-dir are used",
    )
    parser.add_argument("--features-dir", type=Path, default=Path("features"))
    parser.add_argument("--out", type=Path, default=Path("models/default"))


def run_train(args) -> int:
    from cputime.runs.training import train_model

    table, runs, source = _training_data(args)
    summary = train_model(
        table, runs, out=args.out, confidence_level=args.confidence_level, source=source
    )
    print(json.dumps(summary, indent=2))
    return ExitStatus.OK


def run_evaluate(args) -> int:
    from cputime.model.loading import resolve_model
    from cputime.runs.report import write_report

    table, runs, _ = _training_data(args)
    given = None
    if args.model is not None:
        loaded = resolve_model(args.model, tracking_uri=args.tracking_uri)
        given = (f"{loaded.name} v{loaded.version}", loaded.model)
    summary = write_report(
        table,
        runs,
        args.output,
        folds=args.folds,
        confidence_level=args.confidence_level,
        given_model=given,
    )
    print(json.dumps(summary, indent=2))
    return ExitStatus.OK


def run_build_default(args) -> int:
    from cputime.runs.training import build_default

    summary = build_default(args.data, features_dir=args.features_dir, out=args.out)
    print(json.dumps(summary, indent=2, default=str))
    return ExitStatus.OK


def _training_data(args):
    """The training table, the catalog runs, and the table's source named by the options."""
    from cputime.runs.training import load_runs_table, load_training_table
    from cputime.shipped import shipped_path

    source = args.table if args.table is not None else shipped_path("twinkles_run1")
    table = load_training_table(
        source,
        target=args.target,
        censored_col=args.censored_col,
        host_col=args.host_col,
        host_slowdowns=args.host_slowdowns,
    )
    return table, load_runs_table(runs_path(args)), str(source)
