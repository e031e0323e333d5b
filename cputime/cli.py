"""The ``cputime`` command line.

``main(argv) -> int`` parses, builds the library objects and writes tables; the work lives in the
library modules. Bad input is reported as one line on stderr with exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import os
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cputime.errors import InputError
from cputime.workflow import SLURM_FORMATS

if TYPE_CHECKING:  # pandas is imported by the commands that need it, not for --help
    import pandas as pd

__all__ = ["main", "ExitStatus"]


class ExitStatus(enum.IntEnum):
    """Exit statuses of the ``cputime`` command."""

    OK = 0
    ERROR = 1  # an unexpected failure (a bug): the traceback is printed
    BAD_INPUT = 2  # bad input or options: one line on stderr says what and where
    ALERT = 3  # ``monitor``: coverage fell below the threshold


OUTPUT_FORMATS = ("csv", "parquet", "json", "jsonl")


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


def _add(sub, name: str, help: str, example: str) -> argparse.ArgumentParser:
    epilog = "example:\n" + textwrap.indent(textwrap.dedent(example).strip(), "  ")
    return sub.add_parser(
        name, help=help, description=help, epilog=epilog, formatter_class=_Formatter
    )


def _output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o",
        "--output",
        default="-",
        help="output file (.csv, .parquet, .json, .jsonl) or - for standard output",
    )
    parser.add_argument(
        "--format",
        choices=OUTPUT_FORMATS,
        default=None,
        help="output format (default: from the output file's suffix; csv on standard output)",
    )


def _input_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="instance catalogs (plain or gzipped) or CSV/Parquet tables of planned visits",
    )
    parser.add_argument(
        "--sensors",
        default=None,
        help="'all' or comma-separated sensors such as R22_S11,R01_S00 (catalogs default to all; "
        "visit tables to one row per visit)",
    )
    parser.add_argument("--commands", type=Path, default=None, help="PhoSim commands file")
    parser.add_argument(
        "--allow-outside",
        action="store_true",
        help="follow includeobj files outside the catalog's folder",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="catalogs read in parallel (local processes)",
    )
    parser.add_argument(
        "--executor",
        choices=("local", "parsl"),
        default="local",
        help="where catalogs are read: local processes (--jobs) or a Parsl configuration",
    )
    parser.add_argument(
        "--parsl-config",
        type=Path,
        default=None,
        metavar="FILE",
        help="with --executor parsl: Python file defining `config` (examples/parsl_*.py)",
    )
    parser.add_argument(
        "--resume-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep one part file per finished input here; a rerun skips inputs already done",
    )
    parser.add_argument(
        "--keep-going",
        action="store_true",
        help="skip bad inputs (listed on stderr, exit status 2) instead of stopping at the first",
    )


def _model_options(
    parser: argparse.ArgumentParser, default_help: str = "the shipped model"
) -> None:
    parser.add_argument(
        "--model",
        default=None,
        help=f"model folder, or models:/NAME@ALIAS from an MLflow registry ({default_help})",
    )
    parser.add_argument("--tracking-uri", default=None, help="MLflow tracking URI for models:/")


def _plan_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--confidence",
        type=float,
        default=None,
        help="coverage of the upper bound (default: the model's, 0.95)",
    )
    parser.add_argument(
        "--host-factor",
        type=float,
        default=1.0,
        help="CPU seconds on your host per second on the model's reference host",
    )
    parser.add_argument("--threads", type=int, default=1, help="PhoSim threads per job")
    parser.add_argument(
        "--queue-max",
        default=None,
        help="queue walltime limit (48h, 2-00:00:00, seconds): longer jobs are "
        "split into checkpointed segments",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cputime",
        description="Predict the CPU time of PhoSim jobs and turn it into walltimes.",
        formatter_class=_Formatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _add(
        sub,
        "features",
        "per-sensor features of instance catalogs or planned visits",
        """
        cputime features visit230.txt.gz --sensors R22_S11,R01_S00 -o features.csv
        cputime features planned_visits.csv -o visits.parquet
    """,
    )
    _input_options(p)
    _output_options(p)
    p.set_defaults(handler=_cmd_features)

    p = _add(
        sub,
        "predict",
        "CPU-time prediction, upper bound, walltime and checkpoint plan",
        """
        cputime predict visit230.txt.gz --sensors R22_S11 --queue-max 48h -o predictions.csv
        cputime predict planned_visits.csv --threads 4 --host-factor 0.6 -o - --format jsonl
    """,
    )
    _input_options(p)
    _model_options(p)
    _plan_options(p)
    _output_options(p)
    p.set_defaults(handler=_cmd_predict)

    p = _add(
        sub,
        "slurm",
        "sbatch options (--time, --signal, --cpus-per-task) per job segment",
        """
        cputime slurm visit230.txt.gz --sensors R22_S11 --queue-max 12h
        cputime slurm planned_visits.csv --sensors R22_S11 --threads 4 --format args
    """,
    )
    _input_options(p)
    _model_options(p)
    _plan_options(p)
    p.add_argument(
        "--format",
        choices=SLURM_FORMATS,
        default="sbatch",
        help="#SBATCH lines, or one line of sbatch arguments per job segment",
    )
    p.add_argument("--job-name", default="phosim", help="prefix of --job-name")
    p.set_defaults(handler=_cmd_slurm)

    p = _add(
        sub,
        "serve",
        "HTTP service: predictions as JSON (OpenAPI docs at /docs)",
        """
        cputime serve --model models:/cputime@champion --tracking-uri sqlite:///mlflow.db
        curl -s localhost:8000/v1/predict --json '{"visits": [{"obshistid": 1, "filter": 2}]}'
    """,
    )
    _model_options(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--max-body-bytes", type=int, default=8 * 1024 * 1024, help="larger request bodies get 413"
    )
    p.add_argument(
        "--poll-seconds",
        type=float,
        default=30.0,
        help="how often a models:/NAME@ALIAS is re-resolved (0: never)",
    )
    p.add_argument("--workers", type=int, default=1, help="server processes")
    p.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="log every request",
    )
    p.set_defaults(handler=_cmd_serve)

    p = _add(
        sub,
        "train",
        "train a model from a table of features and CPU times",
        """
        cputime train cputime/data/twinkles_run1_train.csv --target cputime \\
            --censored-col runlimit --host-col hostname \\
            --host-factors cputime/data/twinkles_host_factors.csv --out models/mine
    """,
    )
    p.add_argument(
        "table", type=Path, help="CSV/Parquet: header-keyword or feature columns + outcome"
    )
    p.add_argument("--target", required=True, help="column of CPU seconds")
    p.add_argument("--censored-col", default=None, help="column, 1/true where the job was killed")
    p.add_argument("--host-col", default=None, help="column naming each job's host")
    p.add_argument(
        "--host-factors",
        type=Path,
        default=None,
        help="CSV host,factor (glob patterns): reference seconds per host second",
    )
    p.add_argument(
        "--runs",
        type=Path,
        default=Path("features/phosim_runs.csv"),
        help="features + CPU of PhoSim runs that vary catalog content",
    )
    p.add_argument("--confidence", type=float, default=0.95, help="default coverage")
    p.add_argument("--out", type=Path, default=Path("models/trained"), help="model folder")
    p.set_defaults(handler=_cmd_train)

    p = _add(
        sub,
        "evaluate",
        "cross-validated metrics and plots next to baselines; with --model, that model too",
        """
        cputime evaluate features/twinkles_run1.csv -o report/
        cputime evaluate new_jobs.csv --target cputime --censored-col killed \\
            --model models:/phosim@champion --tracking-uri sqlite:///mlruns.db -o report/
    """,
    )
    _model_options(p, default_help="none: only the cross-validated models")
    p.add_argument("table", type=Path, help="training table (as for train)")
    p.add_argument("--target", default="cpu_seconds_ref")
    p.add_argument("--censored-col", default="censored")
    p.add_argument("--host-col", default=None)
    p.add_argument("--host-factors", type=Path, default=None)
    p.add_argument("--runs", type=Path, default=Path("features/phosim_runs.csv"))
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("-o", "--output", type=Path, default=Path("report"), help="report folder")
    p.set_defaults(handler=_cmd_evaluate)
    p = _add(
        sub,
        "build-default",
        "rebuild the shipped feature tables and default model",
        """
        cputime build-default --data ../shared/data
    """,
    )
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="raw data folder (twinkles_run1/, phosim_runs/); without it the tables "
        "already in --features-dir are used",
    )
    p.add_argument("--features-dir", type=Path, default=Path("features"))
    p.add_argument("--out", type=Path, default=Path("models/default"))
    p.set_defaults(handler=_cmd_build_default)

    p = _add(
        sub,
        "ingest",
        "store finished jobs' CPU times and features in the runs store",
        """
        cputime ingest sacct_may.txt --format sacct --visits planned_visits.csv \\
            --host-factors hosts.csv --runs-db sqlite:///runs.db
        cputime ingest runs/base runs/A_bright07 --format phosim --runs-db sqlite:///runs.db
    """,
    )
    p.add_argument(
        "logs",
        nargs="+",
        metavar="LOG",
        help="sacct/time/csv files, or PhoSim run folders for --format phosim",
    )
    p.add_argument(
        "--format",
        dest="log_format",
        required=True,
        choices=("sacct", "phosim", "time", "csv"),
        help="what the logs are",
    )
    p.add_argument(
        "--visits",
        type=Path,
        default=None,
        help="CSV/Parquet of visits (header-keyword columns) for the runs' features",
    )
    p.add_argument(
        "--catalog-root",
        type=Path,
        default=None,
        help="folder of instance catalogs (phosim_cat_<obshistid>.txt[.gz], "
        "<obshistid>/instcat.txt, ...) for the runs' features",
    )
    p.add_argument(
        "--host-factors",
        type=Path,
        default=None,
        help="CSV host,factor (glob patterns): reference seconds per host second",
    )
    p.add_argument(
        "--name-regex",
        default=None,
        help="job-name pattern with groups obshistid and sensor "
        "(default matches phosim_230_R22_S11)",
    )
    _runs_db_option(p)
    p.set_defaults(handler=_cmd_ingest)

    p = _add(
        sub,
        "runs",
        "list the runs in the runs store",
        """
        cputime runs --runs-db sqlite:///runs.db -o runs.csv
    """,
    )
    _runs_db_option(p)
    _output_options(p)
    p.set_defaults(handler=_cmd_runs)

    p = _add(
        sub,
        "retrain",
        "train a challenger on stored runs, compare it with the champion, register it in MLflow",
        """
        cputime retrain --runs-db sqlite:///runs.db --tracking-uri sqlite:///mlruns.db \\
            --name phosim-cputime --promote
    """,
    )
    _runs_db_option(p)
    p.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow tracking and registry store (default: MLFLOW_TRACKING_URI, "
        "else sqlite:///mlruns.db)",
    )
    p.add_argument("--name", required=True, help="registered model name")
    p.add_argument(
        "--promote",
        action="store_true",
        help="move the champion alias to the challenger if it passes the gate",
    )
    p.add_argument(
        "--runs",
        type=Path,
        default=Path("features/phosim_runs.csv"),
        help="features + CPU of PhoSim runs that vary catalog content",
    )
    p.add_argument(
        "--holdout",
        type=float,
        default=0.2,
        help="share of the most recent runs held out for the comparison",
    )
    p.add_argument("--confidence", type=float, default=0.95, help="default coverage")
    p.add_argument("--out", type=Path, default=None, help="also keep the model folder here")
    p.add_argument(
        "--regressor-params",
        default=None,
        help="JSON parameters of the sky-correction regressor, e.g. '{\"n_estimators\": 100}'",
    )
    p.set_defaults(handler=_cmd_retrain)

    p = _add(
        sub,
        "monitor",
        "coverage, killed share and feature drift on recent runs",
        """
        cputime monitor --runs-db sqlite:///runs.db --model models:/phosim-cputime@champion \\
            --since 2024-05-01 --min-coverage 0.9 -o monitor/
    """,
    )
    _runs_db_option(p)
    _model_options(p)
    p.add_argument(
        "--since",
        default=None,
        help="only runs that ended at or after this UTC date/time (ISO 8601)",
    )
    p.add_argument(
        "--min-coverage",
        type=float,
        default=0.9,
        help="exit status 3 when the coverage of finished runs is below this",
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="folder for monitor_runs.csv, monitor_drift.csv, monitor.png",
    )
    p.set_defaults(handler=_cmd_monitor)
    return parser


def _runs_db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runs-db", default="sqlite:///runs.db", help="runs store, an SQLAlchemy URL"
    )


# ------------------------------------------------------------------------------------ commands


def _sensor_list(spec: str | None) -> list[str] | None:
    from cputime.focalplane import parse_sensors

    return None if spec is None else parse_sensors(spec, field="--sensors")


def _features(args) -> pd.DataFrame:
    from cputime.batch import features_of_many
    from cputime.commands import read_commands

    commands = read_commands(args.commands) if args.commands else None
    table = features_of_many(
        args.inputs,
        _sensor_list(args.sensors),
        commands=commands,
        allow_outside=args.allow_outside,
        jobs=args.jobs,
        executor=args.executor,
        parsl_config=args.parsl_config,
        resume_dir=args.resume_dir,
        keep_going=args.keep_going,
    )
    for failure in table.attrs.get("failed", []):
        print(f"cputime {args.command}: skipped: {failure.message}", file=sys.stderr)
    args.inputs_failed = bool(table.attrs.get("failed"))
    return table


def _finished(args) -> int:
    """OK, or BAD_INPUT when --keep-going skipped inputs."""
    return ExitStatus.BAD_INPUT if getattr(args, "inputs_failed", False) else ExitStatus.OK


def _cmd_features(args) -> int:
    write_table(_features(args), args.output, args.format)
    return _finished(args)


def _cmd_predict(args) -> int:
    write_table(_predictions(args), args.output, args.format)
    return _finished(args)


def _cmd_slurm(args) -> int:
    from cputime.workflow import format_slurm

    sys.stdout.write(format_slurm(_predictions(args), args.format, job_name=args.job_name))
    return _finished(args)


def _cmd_serve(args) -> int:
    import uvicorn

    from cputime.service import ServiceSettings

    if args.max_body_bytes < 0:
        raise InputError(f"--max-body-bytes: {args.max_body_bytes} must be 0 or more")
    settings = dataclasses.replace(
        ServiceSettings.from_env(),  # CPUTIME_* variables set what the options do not
        model=args.model,
        tracking_uri=args.tracking_uri,
        max_body_bytes=args.max_body_bytes,
        poll_seconds=args.poll_seconds,
    )
    # Workers are separate processes: they build the app from these environment variables.
    # Requests are small: XGBoost's OpenMP threads would only contend with the server's (one-row
    # DMatrix set-up measured at 0.2 ms on one thread, 24 ms on two on a busy 2-core host).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    for variable in ServiceSettings.ENV.values():
        os.environ.pop(variable, None)
    os.environ.update(settings.to_env())
    uvicorn.run(
        "cputime.service:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=args.access_log,
    )
    return ExitStatus.OK


def _predictions(args) -> pd.DataFrame:
    from cputime.durations import parse_duration

    queue_max = parse_duration(args.queue_max, field="--queue-max") if args.queue_max else None
    if args.threads < 1:
        raise InputError(f"--threads: {args.threads} is not a thread count (use 1 or more)")
    if args.host_factor <= 0:
        raise InputError(f"--host-factor: {args.host_factor} must be positive")
    # The model's libraries load only once the options are known to be good.
    from cputime.predictions import predict_jobs
    from cputime.registry import resolve_model

    loaded = resolve_model(args.model, tracking_uri=args.tracking_uri)
    return predict_jobs(
        loaded.model,
        _features(args),
        confidence_level=args.confidence,
        host_factor=args.host_factor,
        threads=args.threads,
        queue_max_seconds=queue_max,
        model_version=loaded.version,
    )


def _training_data(args):
    """The training table and catalog runs named by ``train``/``evaluate`` options."""
    from cputime.training import load_runs_table, load_training_table

    table = load_training_table(
        args.table,
        target=args.target,
        censored_col=args.censored_col,
        host_col=args.host_col,
        host_factors=args.host_factors,
    )
    return table, load_runs_table(args.runs)


def _cmd_train(args) -> int:
    from cputime.training import train_model

    table, runs = _training_data(args)
    summary = train_model(
        table, runs, out=args.out, confidence_level=args.confidence, source=str(args.table)
    )
    print(json.dumps(summary, indent=2))
    return ExitStatus.OK


def _cmd_build_default(args) -> int:
    from cputime.training import build_default

    summary = build_default(args.data, features_dir=args.features_dir, out=args.out)
    print(json.dumps(summary, indent=2, default=str))
    return ExitStatus.OK


def _cmd_evaluate(args) -> int:
    from cputime.registry import resolve_model
    from cputime.report import write_report

    table, runs = _training_data(args)
    given = None
    if args.model is not None:
        loaded = resolve_model(args.model, tracking_uri=args.tracking_uri)
        given = (f"{loaded.name} v{loaded.version}", loaded.model)
    summary = write_report(
        table,
        runs,
        args.output,
        folds=args.folds,
        confidence_level=args.confidence,
        given_model=given,
    )
    print(json.dumps(summary, indent=2))
    return ExitStatus.OK


def _cmd_ingest(args) -> int:
    from cputime.hosts import read_host_factors
    from cputime.ingest import FeatureSource, ingest
    from cputime.logs import DEFAULT_JOB_NAME_REGEX
    from cputime.runs import RunsStore

    features = None
    if args.visits is not None or args.catalog_root is not None:
        features = FeatureSource(catalog_root=args.catalog_root, visits=args.visits)
    factors = read_host_factors(args.host_factors) if args.host_factors else None
    store = RunsStore(args.runs_db)
    reports = ingest(
        args.logs,
        args.log_format,
        store,
        name_regex=args.name_regex or DEFAULT_JOB_NAME_REGEX,
        host_factors=factors,
        features=features,
    )
    for report in reports:
        for problem in report.problems:
            print(f"cputime ingest: skipped {problem}", file=sys.stderr)
    print(json.dumps([r.to_dict() for r in reports], indent=2))
    return ExitStatus.OK


def _cmd_runs(args) -> int:
    from cputime.runs import RunsStore

    write_table(RunsStore(args.runs_db).table(), args.output, args.format)
    return ExitStatus.OK


def _cmd_retrain(args) -> int:
    from cputime.retrain import retrain
    from cputime.runs import RunsStore
    from cputime.training import load_runs_table

    try:
        regressor_params = json.loads(args.regressor_params) if args.regressor_params else None
    except json.JSONDecodeError as exc:
        raise InputError(f"--regressor-params: not JSON ({exc.msg})") from None
    result = retrain(
        RunsStore(args.runs_db),
        name=args.name,
        runs=load_runs_table(args.runs),
        tracking_uri=args.tracking_uri,
        promote=args.promote,
        holdout_fraction=args.holdout,
        confidence_level=args.confidence,
        regressor_params=regressor_params,
        out=args.out,
        runs_source=str(args.runs),
    )
    print(f"cputime retrain: {result.message()}", file=sys.stderr)
    print(json.dumps(result.to_dict(), indent=2, default=str))
    return ExitStatus.OK


def _cmd_monitor(args) -> int:
    from datetime import UTC, datetime

    from cputime.monitor import monitor
    from cputime.registry import resolve_model
    from cputime.runs import RunsStore

    since = None
    if args.since is not None:
        try:
            since = datetime.fromisoformat(args.since)
        except ValueError:
            raise InputError(f"--since: {args.since!r} is not an ISO date (2024-05-01)") from None
        if since.tzinfo is not None:
            since = since.astimezone(UTC).replace(tzinfo=None)
    if not 0 < args.min_coverage <= 1:
        raise InputError(f"--min-coverage: {args.min_coverage} is not in (0, 1]")
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


# ------------------------------------------------------------------------------------- output


def write_table(table: pd.DataFrame, output: str | Path, fmt: str | None = None) -> None:
    """Write a table to a file or standard output in the format its suffix (or ``fmt``) says."""
    output = str(output)
    if fmt is None:
        suffix = Path(output).suffix.lower().lstrip(".")
        fmt = suffix if suffix in OUTPUT_FORMATS else "csv"
        if output != "-" and suffix not in OUTPUT_FORMATS:
            raise InputError(
                f"-o {output}: unknown output suffix (use .csv, .parquet, .json or .jsonl, "
                "or --format)"
            )
    if fmt == "parquet" and output == "-":
        raise InputError("-o -: Parquet cannot go to standard output; give a .parquet file")
    target = sys.stdout if output == "-" else output
    if fmt == "csv":
        table.to_csv(target, index=False)
    elif fmt == "parquet":
        table.to_parquet(output, index=False)
    elif fmt == "json":
        text = table.to_json(orient="records", indent=1)
        _write_text(target, text + "\n")
    else:
        text = table.to_json(orient="records", lines=True)
        _write_text(target, text if text.endswith("\n") else text + "\n")


def _write_text(target, text: str) -> None:
    if target is sys.stdout:
        sys.stdout.write(text)
    else:
        Path(target).write_text(text)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``cputime`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except InputError as err:
        print(f"cputime {args.command}: error: {err}", file=sys.stderr)
        return ExitStatus.BAD_INPUT
    except BrokenPipeError:
        return ExitStatus.OK


if __name__ == "__main__":
    sys.exit(main())
