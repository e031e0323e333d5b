"""The ``cputime`` command line.

``main(argv) -> int`` parses, builds the library objects and writes tables; the work lives in the
library modules. Bad input is reported as one line on stderr with exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cputime.errors import InputError
from cputime.frontends.workflow import SLURM_FORMATS

if TYPE_CHECKING:  # pandas is imported by the commands that need it, not for --help
    import pandas as pd

__all__ = ["main", "ExitStatus"]


class ExitStatus(enum.IntEnum):
    """Exit statuses of the ``cputime`` command."""

    OK = 0
    ERROR = 1  # an unexpected failure (a bug, traceback printed), or a missing optional package
    BAD_INPUT = 2  # bad input or options: one line on stderr says what and where
    ALERT = 3  # ``monitor``: coverage fell below the threshold


OUTPUT_FORMATS = ("csv", "parquet", "json", "jsonl")

#: Optional packages and the extra that installs each (pyproject.toml), for a one-line hint.
EXTRAS = {
    "mlflow": "mlflow",
    "sqlalchemy": "mlflow",
    "alembic": "mlflow",
    "fastapi": "service",
    "uvicorn": "service",
    "matplotlib": "plots",
    "parsl": "parsl",
}


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


class _Parser(argparse.ArgumentParser):
    """Reports a bad option as one line (exit status 2), not as usage plus message."""

    def error(self, message: str):
        raise InputError(f"{self.prog}: error: {message} (see {self.prog} --help)")


# ------------------------------------------------------------------------- option value types
# Each checks one option's value where it is read, so that a bad value is reported as one line
# naming the option (argparse prefixes "argument --name:") before any work starts.


def _interval(kind: type, low: float | None, high: float | None, closed: str = "both"):
    """An argparse type: a ``kind`` (int or float) in an interval; ``closed`` is "both",
    "left", "right" or "neither", as in scikit-learn's ``Interval``."""
    left = "[" if closed in ("both", "left") else "("
    right = "]" if closed in ("both", "right") else ")"
    shown = (
        f"{left if low is not None else '('}{'-inf' if low is None else low}, "
        f"{'inf' if high is None else high}{right if high is not None else ')'}"
    )

    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            noun = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        inside = abs(value) < float("inf")  # False for inf and NaN
        if low is not None:
            inside &= value >= low if left == "[" else value > low
        if high is not None:
            inside &= value <= high if right == "]" else value < high
        if not inside:
            raise argparse.ArgumentTypeError(f"{text} is not in {shown}")
        return value

    convert.__name__ = kind.__name__
    return convert


_COUNT = _interval(int, 1, None)
_POSITIVE = _interval(float, 0, None, "neither")
_NON_NEGATIVE = _interval(float, 0, None)
_LEVEL = _interval(float, 0, 1, "neither")


def _queue_max(text: str) -> float:
    """``--queue-max`` as Slurm reads ``--time`` (a bare number is minutes) [s]."""
    from cputime.durations import parse_slurm_time

    try:
        seconds = parse_slurm_time(text, field="--queue-max")
    except InputError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("--queue-max: ")) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a queue limit (it must be > 0)")
    return seconds


def _output_file(text: str) -> str:
    """``-o``: ``-`` or a file whose folder exists."""
    if text == "-":
        return text
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(
            f"{text} is a folder; give a file name such as {path / 'predictions.csv'}"
        )
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: folder {path.parent} does not exist")
    return text


def _output_dir(text: str) -> Path:
    """``-o`` of a report: a folder (created when missing), not a file."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file; give a folder")
    return path


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
        type=_output_file,
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
        help="instance catalogs (plain or gzipped), CSV/Parquet tables of planned visits, or "
        "OpSim databases (.db; OpSim 3 Summary or OpSim 4+ observations) and their CSV exports; "
        "a folder stands for the inputs in it, @FILE for the paths listed in FILE (one a line, "
        "relative to FILE's folder)",
    )
    parser.add_argument(
        "--where",
        default=None,
        metavar="SQL",
        help="visit tables and OpSim only: an SQL condition on the table's own columns, e.g. "
        "\"night <= 30 AND filter = 'r'\"",
    )
    parser.add_argument(
        "--visits",
        default=None,
        metavar="IDS",
        help="visit tables and OpSim only: visit ids to keep, comma-separated or @FILE",
    )
    parser.add_argument(
        "--sensors",
        default=None,
        help="'all' or comma-separated sensors such as R22_S11,R01_S00 (catalogs default to all; "
        "visit tables to one row per visit)",
    )
    parser.add_argument("--commands", type=Path, default=None, help="PhoSim commands file")
    parser.add_argument(
        "--allow-unknown-commands",
        action="store_true",
        help="accept commands-file keys PhoSim does not read (by default a likely typo: error)",
    )
    parser.add_argument(
        "--allow-outside",
        action="store_true",
        help="follow includeobj files outside the catalog's folder",
    )
    parser.add_argument(
        "--jobs",
        type=_COUNT,
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
        type=_LEVEL,
        default=None,
        help="coverage of the upper bound (default: the model's, 0.95)",
    )
    parser.add_argument(
        "--host-factor",
        type=_POSITIVE,
        default=1.0,
        help="CPU seconds on your host per second on the model's reference host",
    )
    parser.add_argument("--threads", type=_COUNT, default=1, help="PhoSim threads per job")
    parser.add_argument(
        "--queue-max",
        type=_queue_max,
        default=None,
        help="queue walltime limit as sbatch --time reads it (a bare number is minutes: 2880, "
        "2-00:00:00, 48:00:00; or 48h): longer jobs are split into checkpointed segments",
    )


def build_parser() -> argparse.ArgumentParser:
    from cputime import __version__

    parser = _Parser(
        prog="cputime",
        description="Predict the CPU time of PhoSim jobs and turn it into walltimes.",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"cputime {__version__}")
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
        "plan",
        "a campaign's cost: per-visit predictions and CPU-hours by filter and night, with a plot",
        """
        cputime plan minion_1016_sqlite.db --sensors all --where "night <= 365" \\
            --queue-max 2-00:00:00 -o plan/
    """,
    )
    _input_options(p)
    _model_options(p)
    _plan_options(p)
    p.add_argument(
        "-o",
        "--output",
        type=_output_dir,
        default=Path("plan"),
        help="folder for predictions, summary.json, summary_by_filter.csv, summary_by_night.csv "
        "and plan.png",
    )
    p.add_argument(
        "--format",
        choices=("csv", "parquet"),
        default="parquet",
        help="format of the per-job predictions file",
    )
    p.set_defaults(handler=_cmd_plan)

    p = _add(
        sub,
        "serve",
        "HTTP service: predictions as JSON (OpenAPI docs at /docs)",
        """
        cputime serve --model models:/cputime@champion --tracking-uri sqlite:///mlflow.db
        curl -s localhost:8000/v1/predict --json '{"visits": [{"obshistid": 230, "filter": 2,
            "altitude": 66.3, "moonalt": -36.1, "moonphase": 3.8, "dist2moon": 124.3,
            "sunalt": -32.7}]}'
    """,
    )
    _model_options(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=_interval(int, 0, 65535), default=8000)
    p.add_argument(
        "--max-body-bytes",
        type=_interval(int, 0, None),
        default=8 * 1024 * 1024,
        help="larger request bodies get 413",
    )
    p.add_argument(
        "--poll-seconds",
        type=_NON_NEGATIVE,
        default=30.0,
        help="how often a models:/NAME@ALIAS is re-resolved (0: never)",
    )
    p.add_argument("--workers", type=_COUNT, default=1, help="server processes")
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
    _runs_option(p)
    p.add_argument("--confidence", type=_LEVEL, default=0.95, help="default coverage")
    p.add_argument("--out", type=_output_dir, default=Path("models/trained"), help="model folder")
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
    p.add_argument(
        "table",
        type=Path,
        nargs="?",
        default=None,
        help="training table (as for train; default: the shipped features/twinkles_run1.csv)",
    )
    p.add_argument("--target", default="cpu_seconds_ref")
    p.add_argument("--censored-col", default="censored")
    p.add_argument("--host-col", default=None)
    p.add_argument("--host-factors", type=Path, default=None)
    _runs_option(p)
    p.add_argument("--folds", type=_interval(int, 2, None), default=5)
    p.add_argument("--confidence", type=_LEVEL, default=0.95)
    p.add_argument(
        "-o", "--output", type=_output_dir, default=Path("report"), help="report folder"
    )
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
    _runs_option(p)
    p.add_argument(
        "--holdout",
        type=_LEVEL,
        default=0.2,
        help="share of the most recent runs held out for the comparison",
    )
    p.add_argument("--confidence", type=_LEVEL, default=0.95, help="default coverage")
    p.add_argument(
        "--out", type=_output_dir, default=None, help="also keep the model folder here"
    )
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
        type=_interval(float, 0, 1, "right"),
        default=0.9,
        help="exit status 3 when the coverage of finished runs is below this",
    )
    p.add_argument(
        "-o",
        "--output",
        type=_output_dir,
        default=None,
        help="folder for monitor_runs.csv, monitor_drift.csv, monitor.png",
    )
    p.set_defaults(handler=_cmd_monitor)
    return parser


def _runs_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runs",
        type=Path,
        default=None,
        help="features + CPU of PhoSim runs that vary catalog content (default: the shipped "
        "features/phosim_runs.csv)",
    )


def _runs_path(args) -> Path:
    from cputime.shipped import shipped_path

    return args.runs if args.runs is not None else shipped_path("phosim_runs")


def _runs_db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runs-db", default="sqlite:///runs.db", help="runs store, an SQLAlchemy URL"
    )


# ------------------------------------------------------------------------------------ commands


#: Files a folder given as INPUT stands for.
INPUT_SUFFIXES = (".txt", ".txt.gz", ".gz", ".csv", ".parquet", ".pq", ".db", ".sqlite",
                  ".sqlite3")  # fmt: skip


def _expand_inputs(items: Sequence[str]) -> list[str]:
    """INPUT arguments as paths: a folder -> its input files (sorted), ``@FILE`` -> its lines."""
    paths: list[str] = []
    for item in items:
        if item.startswith("@"):
            listing = Path(item[1:])
            if not listing.is_file():
                raise InputError(f"INPUT {item}: no such list file")
            lines = (line.strip() for line in listing.read_text().splitlines())
            paths += [str(listing.parent / line) for line in lines
                      if line and not line.startswith("#")]  # fmt: skip
        elif Path(item).is_dir():
            found = sorted(str(p) for p in Path(item).iterdir()
                           if p.is_file() and p.name.lower().endswith(INPUT_SUFFIXES))  # fmt: skip
            if not found:
                raise InputError(f"INPUT {item}: a folder without catalogs or visit tables")
            paths += found
        else:
            paths.append(item)
    return paths


def _sensor_list(spec: str | None) -> list[str] | None:
    from cputime.inputs.focalplane import parse_sensors

    return None if spec is None else parse_sensors(spec, field="--sensors")


def _features(args) -> pd.DataFrame:
    from cputime.frontends.batch import features_of_many
    from cputime.inputs.commands import read_commands

    commands = (read_commands(args.commands, allow_unknown=args.allow_unknown_commands)
                if args.commands else None)
    if args.where is not None or args.visits is not None:
        return _selected_visit_features(args, commands)
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


def _selected_visit_features(args, commands) -> pd.DataFrame:
    """Features of the visits ``--where``/``--visits`` select from visit tables or OpSim."""
    import pandas as pd

    from cputime.inputs.opsim import parse_visit_ids
    from cputime.physics.features import is_visit_table, read_visit_table, visit_features

    option = "--where" if args.where is not None else "--visits"
    catalogs = [p for p in args.inputs if not is_visit_table(Path(p))]
    if catalogs:
        raise InputError(f"{option}: selects visits of tables, not of catalogs ({catalogs[0]})")
    visits = parse_visit_ids(args.visits) if args.visits is not None else None
    sensors = _sensor_list(args.sensors)
    frames = [
        visit_features(
            read_visit_table(Path(p), where=args.where, visits=visits),
            sensors,
            commands=commands,
            source=str(p),
        )
        for p in args.inputs
    ]
    return pd.concat(frames, ignore_index=True)


def _finished(args) -> int:
    """OK, or BAD_INPUT when --keep-going skipped inputs."""
    return ExitStatus.BAD_INPUT if getattr(args, "inputs_failed", False) else ExitStatus.OK


def _cmd_features(args) -> int:
    _write_output(args, _features(args))
    return _finished(args)


def _cmd_predict(args) -> int:
    _write_output(args, _predictions(args))
    return _finished(args)


def _cmd_slurm(args) -> int:
    from cputime.frontends.workflow import format_slurm

    sys.stdout.write(format_slurm(_predictions(args), args.format, job_name=args.job_name))
    return _finished(args)


def _cmd_plan(args) -> int:
    from cputime.planning.campaign import campaign_summary, plot_campaign, write_campaign

    table = _predictions(args)
    if table.empty:
        raise InputError("no visits to plan (check --where / --visits)")
    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    predictions = out / f"predictions.{args.format}"
    summary = campaign_summary(table, _visit_nights(args))
    files = [
        *write_campaign(summary, out, queue_max_seconds=args.queue_max),
        plot_campaign(
            summary, out / "plan.png", title=", ".join(Path(p).name for p in args.inputs)
        ),
    ]
    write_table(_with_filter_letters(table), predictions, args.format)
    print(f"cputime plan: wrote {len(table)} rows to {predictions}", file=sys.stderr)
    print(json.dumps({**summary["total"], "files": [str(predictions), *map(str, files)]},
                     indent=2))  # fmt: skip
    return _finished(args)


def _visit_nights(args) -> pd.Series | None:
    """OpSim night of each visit in the visit-table inputs that have one, by obshistid."""
    import pandas as pd

    from cputime.inputs.opsim import parse_visit_ids
    from cputime.physics.features import is_visit_table, read_visit_table

    visits = parse_visit_ids(args.visits) if args.visits is not None else None
    nights = []
    for path in map(Path, args.inputs):
        if is_visit_table(path):
            table = read_visit_table(path, where=args.where, visits=visits)
            if "night" in table.columns:
                nights.append(table.set_index("obshistid")["night"])
    if not nights:
        return None
    nights = pd.concat(nights)
    return nights[~nights.index.duplicated()]


def _cmd_serve(args) -> int:
    from cputime.frontends.service import ServiceSettings, serve
    from cputime.runs.registry import resolve_model

    settings = dataclasses.replace(
        ServiceSettings.from_env(),  # CPUTIME_* variables set what the options do not
        model=args.model,
        tracking_uri=args.tracking_uri,
        max_body_bytes=args.max_body_bytes,
        poll_seconds=args.poll_seconds,
    )
    # Load the model once here, so that a wrong --model is one line and exit 2 before the server
    # starts, rather than a traceback from every worker.
    resolve_model(settings.model, tracking_uri=settings.tracking_uri)
    serve(settings, host=args.host, port=args.port, workers=args.workers,
          access_log=args.access_log)
    return ExitStatus.OK


def _predictions(args) -> pd.DataFrame:
    from cputime.planning.predictions import predict_jobs
    from cputime.runs.registry import resolve_model

    loaded = resolve_model(args.model, tracking_uri=args.tracking_uri)
    features = _features(args)
    if args.confidence is not None and len(features):
        _check_confidence(loaded.model, features, args.confidence)
    table = predict_jobs(
        loaded.model,
        features,
        confidence_level=args.confidence,
        host_factor=args.host_factor,
        threads=args.threads,
        queue_max_seconds=args.queue_max,
        model_version=loaded.version,
    )
    _warn_unfit(args, table)
    return table


def _check_confidence(model, features: pd.DataFrame, level: float) -> None:
    """Refuse a ``--confidence`` the model's calibration cannot back with a finite bound."""
    import numpy as np

    try:
        upper = model.predict_upper(features, level)
    except ValueError as err:  # too few calibration jobs for this level
        raise InputError(f"--confidence: {level}: {err}") from None
    unbounded = int((~np.isfinite(upper)).sum())
    if unbounded:
        raise InputError(
            f"--confidence: {level} is beyond the model's calibration: no finite upper bound for "
            f"{unbounded} of {len(upper)} jobs (too many calibration jobs were killed at their "
            "limit); use a lower level such as 0.95"
        )


def _warn_unfit(args, table: pd.DataFrame) -> None:
    """Say on stderr which jobs cannot fit ``--queue-max`` even in checkpoint segments."""
    from cputime.durations import format_slurm_time

    if args.queue_max is None or "fits_queue" not in table.columns:
        return
    unfit = table[~table["fits_queue"].astype(bool)]
    if unfit.empty:
        return
    jobs = ", ".join(f"{r.obshistid}/{r.sensor}" for r in unfit.head(5).itertuples())
    more = f" and {len(unfit) - 5} more" if len(unfit) > 5 else ""
    print(
        f"cputime {args.command}: warning: {len(unfit)} of {len(table)} jobs cannot fit "
        f"--queue-max {format_slurm_time(args.queue_max)} even in checkpoint segments "
        f"(fits_queue false): {jobs}{more}",
        file=sys.stderr,
    )


def _training_data(args):
    """The training table and catalog runs named by ``train``/``evaluate`` options."""
    from cputime.runs.training import load_runs_table, load_training_table
    from cputime.shipped import shipped_path

    if args.table is None:
        args.table = shipped_path("twinkles_run1")
    table = load_training_table(
        args.table,
        target=args.target,
        censored_col=args.censored_col,
        host_col=args.host_col,
        host_factors=args.host_factors,
    )
    return table, load_runs_table(_runs_path(args))


def _cmd_train(args) -> int:
    from cputime.runs.training import train_model

    table, runs = _training_data(args)
    summary = train_model(
        table, runs, out=args.out, confidence_level=args.confidence, source=str(args.table)
    )
    print(json.dumps(summary, indent=2))
    return ExitStatus.OK


def _cmd_build_default(args) -> int:
    from cputime.runs.training import build_default

    summary = build_default(args.data, features_dir=args.features_dir, out=args.out)
    print(json.dumps(summary, indent=2, default=str))
    return ExitStatus.OK


def _cmd_evaluate(args) -> int:
    from cputime.runs.registry import resolve_model
    from cputime.runs.report import write_report

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
    from cputime.runs.hosts import read_host_factors
    from cputime.runs.ingest import FeatureSource, ingest
    from cputime.runs.logs import DEFAULT_JOB_NAME_REGEX
    from cputime.runs.store import RunsStore

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
    # The rest is stored; the status says some rows were not.
    return ExitStatus.BAD_INPUT if any(r.problems for r in reports) else ExitStatus.OK


def _cmd_runs(args) -> int:
    from cputime.runs.store import RunsStore

    _existing_store(args.runs_db)
    _write_output(args, RunsStore(args.runs_db).table())
    return ExitStatus.OK


def _cmd_retrain(args) -> int:
    from cputime.runs.retrain import check_model_name, check_regressor_params, retrain
    from cputime.runs.store import RunsStore
    from cputime.runs.training import load_runs_table

    check_model_name(args.name)  # before anything is opened or written
    try:
        regressor_params = json.loads(args.regressor_params) if args.regressor_params else None
    except json.JSONDecodeError as exc:
        raise InputError(f"--regressor-params: not JSON ({exc.msg})") from None
    check_regressor_params(regressor_params)
    _existing_store(args.runs_db)
    runs_path = _runs_path(args)
    result = retrain(
        RunsStore(args.runs_db),
        name=args.name,
        runs=load_runs_table(runs_path),
        tracking_uri=args.tracking_uri,
        promote=args.promote,
        holdout_fraction=args.holdout,
        confidence_level=args.confidence,
        regressor_params=regressor_params,
        out=args.out,
        runs_source=str(runs_path),
    )
    print(f"cputime retrain: {result.message()}", file=sys.stderr)
    print(json.dumps(result.to_dict(), indent=2, default=str))
    return ExitStatus.OK


def _cmd_monitor(args) -> int:
    from datetime import UTC, datetime

    from cputime.runs.monitor import monitor
    from cputime.runs.registry import resolve_model
    from cputime.runs.store import RunsStore

    since = None
    if args.since is not None:
        try:
            since = datetime.fromisoformat(args.since)
        except ValueError:
            raise InputError(f"--since: {args.since!r} is not an ISO date (2024-05-01)") from None
        if since.tzinfo is not None:
            since = since.astimezone(UTC).replace(tzinfo=None)
    _existing_store(args.runs_db)
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


def _existing_store(uri: str) -> None:
    """Refuse a ``--runs-db`` SQLite file that does not exist, rather than create an empty one."""
    from cputime.runs.registry import sqlite_database

    path = sqlite_database(uri)
    if path is not None and not path.is_file():
        raise InputError(
            f"--runs-db {uri}: no such runs store ({path} does not exist; "
            "'cputime ingest' creates it)"
        )


# ------------------------------------------------------------------------------------- output


def _write_output(args, table: pd.DataFrame) -> None:
    """Write a command's table to ``-o`` (``filter`` as its letter); say what was written."""
    table = _with_filter_letters(table)
    if args.output == "-" and args.format is None and sys.stdout.isatty():
        sys.stdout.write(_terminal_table(table))
        return
    write_table(table, args.output, args.format)
    if args.output != "-":
        print(f"cputime {args.command}: wrote {len(table)} rows to {args.output}", file=sys.stderr)


#: Columns a terminal shows (when the table has them), and at most this many rows.
TERMINAL_COLUMNS = ("obshistid", "sensor", "filter", "cpu_seconds_p50", "cpu_seconds_upper",
                    "slurm_time", "segments", "fits_queue", "moonalt", "sky_mag_per_arcsec2",
                    "n_objects", "brightest_star_mag")  # fmt: skip
TERMINAL_ROWS = 40


def _terminal_table(table: pd.DataFrame) -> str:
    """A short aligned table for a person at a terminal; CPU in hours."""
    shown = table[[c for c in TERMINAL_COLUMNS if c in table.columns]].head(TERMINAL_ROWS)
    hours = {c: c.replace("seconds", "hours") for c in shown.columns if c.startswith("cpu_")}
    shown = shown.assign(**{c: shown[c] / 3600.0 for c in hours}).rename(columns=hours)
    text = shown.to_string(index=False, float_format=lambda x: f"{x:.2f}") + "\n"
    if len(table) > TERMINAL_ROWS:
        text += f"... {len(table) - TERMINAL_ROWS} more rows\n"
    return text + "(a terminal gets this summary; -o FILE or --format csv for every column)\n"


def _with_filter_letters(table: pd.DataFrame) -> pd.DataFrame:
    """``filter`` as its letter (u g r i z y) rather than PhoSim's number."""
    import pandas as pd

    from cputime.inputs.opsim import FILTER_LETTERS

    if "filter" not in table.columns or not pd.api.types.is_numeric_dtype(table["filter"]):
        return table
    return table.assign(
        filter=table["filter"].map(lambda f: FILTER_LETTERS[int(f)] if f == f else f)
    )


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
    try:
        args = parser.parse_args(argv)
    except InputError as err:  # from _Parser.error: already says "cputime COMMAND: error:"
        print(err, file=sys.stderr)
        return ExitStatus.BAD_INPUT
    try:
        if getattr(args, "inputs", None):
            args.inputs = _expand_inputs(args.inputs)
        return int(args.handler(args))
    except InputError as err:
        print(f"cputime {args.command}: error: {err}", file=sys.stderr)
        return ExitStatus.BAD_INPUT
    except BrokenPipeError:
        return ExitStatus.OK
    except ModuleNotFoundError as err:
        extra = EXTRAS.get((err.name or "").partition(".")[0])
        if extra is None:
            raise
        print(
            f"cputime {args.command}: error: this needs the optional package {err.name}: "
            f"pip install 'cputime[{extra}]'",
            file=sys.stderr,
        )
        return ExitStatus.ERROR


if __name__ == "__main__":
    sys.exit(main())
