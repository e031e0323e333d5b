"""INPUT arguments: catalogs, visit tables and OpSim databases, read into one features table."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cputime.errors import InputError
from cputime.frontends.cli.options import COUNT, max_included_bytes, max_included_bytes_option
from cputime.frontends.cli.status import ExitStatus

if TYPE_CHECKING:  # pandas is imported by the commands that need it, not for --help
    import pandas as pd

    from cputime.frontends.batch import BatchFeatures


def input_options(parser: argparse.ArgumentParser) -> None:
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
    max_included_bytes_option(parser)
    parser.add_argument(
        "--jobs",
        type=COUNT,
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


#: Files a folder given as INPUT stands for.
INPUT_SUFFIXES = (".txt", ".txt.gz", ".gz", ".csv", ".parquet", ".pq", ".db", ".sqlite",
                  ".sqlite3")  # fmt: skip


def expand_inputs(items: Sequence[str]) -> list[str]:
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


def read_features(args) -> BatchFeatures:
    """Features of the inputs; each input ``--keep-going`` skipped is said on stderr."""
    from cputime.frontends.batch import BatchFeatures, features_of_many
    from cputime.inputs.commands import read_commands

    commands = (
        read_commands(args.commands, allow_unknown=args.allow_unknown_commands)
        if args.commands
        else None
    )
    if args.where is not None or args.visits is not None:
        return BatchFeatures(_selected_visit_features(args, commands), [])
    batch = features_of_many(
        args.inputs,
        _sensor_list(args.sensors),
        commands=commands,
        allow_outside=args.allow_outside,
        max_included_bytes=max_included_bytes(args),
        jobs=args.jobs,
        executor=args.executor,
        parsl_config=args.parsl_config,
        resume_dir=args.resume_dir,
        keep_going=args.keep_going,
    )
    for failure in batch.failures:
        print(f"cputime {args.command}: skipped: {failure.message}", file=sys.stderr)
    return batch


def finished(batch: BatchFeatures) -> ExitStatus:
    """OK, or BAD_INPUT when --keep-going skipped inputs."""
    return ExitStatus.BAD_INPUT if batch.failures else ExitStatus.OK


def _sensor_list(spec: str | None) -> list[str] | None:
    from cputime.inputs.focalplane import parse_sensors

    return None if spec is None else parse_sensors(spec, field="--sensors")


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
