"""The ``cputime`` command line.

``main(argv) -> int`` parses, builds the library objects and writes tables; the work lives in the
library modules. Each subcommand is defined beside its handler (:mod:`.features`, :mod:`.predict`
with ``slurm``, :mod:`.plan`, :mod:`.serve`, :mod:`.train` with ``evaluate`` and
``build-default``, :mod:`.ingest` with ``runs``, :mod:`.retrain`, :mod:`.monitor`); the options
they share are in :mod:`.options`. Bad input is reported as one line on stderr with exit status 2,
naming the option the user typed.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from cputime.errors import InputError
from cputime.frontends.cli import (
    features,
    ingest,
    monitor,
    plan,
    predict,
    retrain,
    serve,
    train,
)
from cputime.frontends.cli.inputs import expand_inputs
from cputime.frontends.cli.options import Formatter, Parser
from cputime.frontends.cli.status import ExitStatus

__all__ = ["main", "ExitStatus", "build_parser"]

#: The modules that add the subcommands, in the order ``--help`` lists them.
COMMANDS = (features, predict, plan, serve, train, ingest, retrain, monitor)

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


def build_parser() -> Parser:
    """The ``cputime`` parser; ``parser.commands`` holds each subcommand's parser by name."""
    from cputime import __version__

    parser = Parser(
        prog="cputime",
        description="Predict the CPU time of PhoSim jobs and turn it into walltimes.",
        formatter_class=Formatter,
    )
    parser.add_argument("--version", action="version", version=f"cputime {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(subparsers)
    parser.commands = subparsers.choices
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``cputime`` command; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except InputError as err:  # from Parser.error: already says "cputime COMMAND: error:"
        print(err, file=sys.stderr)
        return ExitStatus.BAD_INPUT
    try:
        if getattr(args, "inputs", None):
            args.inputs = expand_inputs(args.inputs)
        return int(args.handler(args))
    except InputError as err:
        message = parser.commands[args.command].name_flags(str(err), args)
        print(f"cputime {args.command}: error: {message}", file=sys.stderr)
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
