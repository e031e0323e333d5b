"""What the commands share: the parser, option value types and option groups.

A bad option value is reported as one line naming the option the user typed, before any work
starts. Library errors name fields (``jobs: ...``); :meth:`Parser.name_flags` names the flag.
"""

from __future__ import annotations

import argparse
import re
import textwrap
from collections.abc import Callable
from pathlib import Path

from cputime.errors import InputError

OUTPUT_FORMATS = ("csv", "parquet", "json", "jsonl")

#: Library keywords that a command's option stores under another name (keyword -> dest).
LIBRARY_FIELDS = {"holdout_fraction": "holdout", "queue_max_seconds": "queue_max"}


class Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


class Parser(argparse.ArgumentParser):
    """Reports a bad option as one line (exit status 2), not as usage plus message, and knows
    which flag sets each field, so that a library error naming a field can name the flag."""

    def __init__(self, *args, **kwargs):
        self.commands: dict[str, Parser] = {}  # the subcommands' parsers, by name
        self._dests: dict[str, str] = dict(LIBRARY_FIELDS)  # field -> dest
        self._flags: dict[str, str] = {}  # dest -> flag shown when the user typed none
        super().__init__(*args, **kwargs)  # adds --help

    def error(self, message: str):
        raise InputError(f"{self.prog}: error: {message} (see {self.prog} --help)")

    def add_argument(self, *args, **kwargs) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        if action.option_strings:
            flag = max(action.option_strings, key=len)  # "--output", not "-o"
            self._flags.setdefault(action.dest, flag)
            for field in (action.dest, flag.lstrip("-").replace("-", "_")):
                self._dests.setdefault(field, action.dest)
        return action

    def name_flags(self, message: str, args: argparse.Namespace) -> str:
        """``message`` with its leading field (``jobs: ...``, ``model SPEC: ...``) replaced by
        the flag that sets it, in the spelling the user typed."""
        match = re.match(r"(\w+)(?=[: ])", message)
        dest = self._dests.get(match[1]) if match else None
        if dest not in self._flags:
            return message
        flag = getattr(args, "typed_flags", {}).get(dest, self._flags[dest])
        return flag + message[match.end() :]


class _Spelled(argparse.Action):
    """Stores the value like ``store`` and remembers which spelling of the option was typed."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace.typed_flags = {**getattr(namespace, "typed_flags", {}), self.dest: option_string}


def add_renamed(parser: argparse.ArgumentParser, flag: str, old: str, **kwargs) -> None:
    """An option ``flag`` that still accepts its old spelling ``old`` (named in ``flag``'s help,
    not listed on its own); errors name the spelling the user typed."""
    kwargs["help"] = f"{kwargs['help']}; old spelling {old}"
    action = parser.add_argument(flag, action=_Spelled, **kwargs)
    parser.add_argument(old, action=_Spelled, dest=action.dest, type=action.type,
                        metavar=action.metavar, help=argparse.SUPPRESS,
                        default=argparse.SUPPRESS)  # fmt: skip


def add_command(
    subparsers, name: str, help: str, example: str, handler: Callable[[argparse.Namespace], int]
) -> Parser:
    """A subcommand's parser, its help with an example, and the function that runs it."""
    epilog = "example:\n" + textwrap.indent(textwrap.dedent(example).strip(), "  ")
    parser = subparsers.add_parser(
        name, help=help, description=help, epilog=epilog, formatter_class=Formatter
    )
    parser.set_defaults(handler=handler)
    return parser


# ------------------------------------------------------------------------- option value types
# Each checks one option's value where it is read, so that a bad value is reported as one line
# naming the option (argparse prefixes "argument --name:") before any work starts.


def interval(kind: type, low: float | None, high: float | None, closed: str = "both"):
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


COUNT = interval(int, 1, None)
POSITIVE = interval(float, 0, None, "neither")
NON_NEGATIVE = interval(float, 0, None)
LEVEL = interval(float, 0, 1, "neither")
BYTES = interval(int, 0, None)


def queue_max(text: str) -> float:
    """``--queue-max`` as Slurm reads ``--time`` (a bare number is minutes) [s]."""
    from cputime.durations import parse_slurm_time

    try:
        seconds = parse_slurm_time(text, field="--queue-max")
    except InputError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("--queue-max: ")) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a queue limit (it must be > 0)")
    return seconds


def output_file(text: str) -> str:
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


def output_dir(text: str) -> Path:
    """``-o`` of a report: a folder (created when missing), not a file."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file; give a folder")
    return path


# ------------------------------------------------------------------------------ option groups


def output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o",
        "--output",
        default="-",
        type=output_file,
        help="output file (.csv, .parquet, .json, .jsonl) or - for standard output",
    )
    parser.add_argument(
        "--format",
        choices=OUTPUT_FORMATS,
        default=None,
        help="output format (default: from the output file's suffix; csv on standard output)",
    )


def model_options(parser: argparse.ArgumentParser, default_help: str = "the shipped model") -> None:
    parser.add_argument(
        "--model",
        default=None,
        help=f"model folder, or models:/NAME@ALIAS from an MLflow registry ({default_help})",
    )
    parser.add_argument("--tracking-uri", default=None, help="MLflow tracking URI for models:/")


def confidence_option(parser: argparse.ArgumentParser, default: float | None, help: str) -> None:
    add_renamed(parser, "--confidence-level", "--confidence", type=LEVEL, default=default,
                metavar="LEVEL", help=help)  # fmt: skip


def host_slowdowns_option(parser: argparse.ArgumentParser) -> None:
    """The CSV that brings jobs of mixed hosts to the reference host."""
    add_renamed(parser, "--host-slowdowns", "--host-factors", type=Path, default=None,
                metavar="CSV", help="CSV host,host_slowdown (glob patterns): host CPU s per "
                "reference-host CPU s [s/s]; older host,factor files (reference s per host s) "
                "are inverted on reading")  # fmt: skip


def plan_options(parser: argparse.ArgumentParser) -> None:
    """How predictions become walltimes: level, host speed, threads, queue limit."""
    confidence_option(
        parser,
        None,
        "coverage of the upper bound, a probability in (0, 1) (default: the model's, 0.95)",
    )
    add_renamed(
        parser,
        "--host-slowdown",
        "--host-factor",
        type=POSITIVE,
        default=1.0,
        help="host CPU seconds per reference-host CPU second [s/s]: how much slower your host "
        "is than the model's reference host (1: as fast; 0.585: 1.71 times faster)",
    )
    add_renamed(parser, "--threads", "--cores", type=COUNT, default=1,
                help="PhoSim threads per job (its -t)")  # fmt: skip
    parser.add_argument(
        "--queue-max",
        type=queue_max,
        default=None,
        help="queue walltime limit as sbatch --time reads it (a bare number is minutes: 2880, "
        "2-00:00:00, 48:00:00; or 48h): longer jobs are split into checkpointed segments",
    )


def max_included_bytes_option(parser: argparse.ArgumentParser) -> None:
    """The cap on the text a catalog's ``includeobj`` files may hold."""
    parser.add_argument(
        "--max-included-bytes",
        type=BYTES,
        # Unset unless typed: the default is the reader's, which --help must not import.
        default=argparse.SUPPRESS,
        metavar="BYTES",
        help="most decompressed text of one catalog's includeobj files in all, a file included "
        "twice counting twice [bytes] (default: 16 GiB, the reader's MAX_INCLUDED_BYTES)",
    )


def max_included_bytes(args: argparse.Namespace) -> int:
    """``--max-included-bytes``, or the reader's own cap [bytes]."""
    from cputime.inputs.catalog import MAX_INCLUDED_BYTES

    return getattr(args, "max_included_bytes", MAX_INCLUDED_BYTES)


def runs_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runs",
        type=Path,
        default=None,
        help="features + CPU of PhoSim runs that vary catalog content (default: the shipped "
        "features/phosim_runs.csv)",
    )


def runs_path(args: argparse.Namespace) -> Path:
    """``--runs``, or the shipped table of PhoSim runs."""
    from cputime.shipped import shipped_path

    return args.runs if args.runs is not None else shipped_path("phosim_runs")


def runs_db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runs-db", default="sqlite:///runs.db", help="runs store, an SQLAlchemy URL"
    )


def existing_store(uri: str) -> None:
    """Refuse a ``--runs-db`` SQLite file that does not exist, rather than create an empty one."""
    from cputime.model.loading import sqlite_database

    path = sqlite_database(uri)
    if path is not None and not path.is_file():
        raise InputError(
            f"--runs-db {uri}: no such runs store ({path} does not exist; "
            "'cputime ingest' creates it)"
        )
