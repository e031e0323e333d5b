"""Tables out: a file in the format its suffix says, standard output, or a short terminal view."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cputime.errors import InputError
from cputime.frontends.cli.options import OUTPUT_FORMATS

if TYPE_CHECKING:  # pandas is imported by the commands that need it, not for --help
    import pandas as pd


def write_output(args, table: pd.DataFrame) -> None:
    """Write a command's table to ``-o`` (``filter`` as its letter); say what was written."""
    table = with_filter_letters(table)
    if args.output == "-" and args.format is None and sys.stdout.isatty():
        sys.stdout.write(terminal_table(table))
        return
    write_table(table, args.output, args.format)
    if args.output != "-":
        print(f"cputime {args.command}: wrote {len(table)} rows to {args.output}", file=sys.stderr)


#: Columns a terminal shows (when the table has them), and at most this many rows.
TERMINAL_COLUMNS = ("obshistid", "sensor", "filter", "cpu_seconds_p50", "cpu_seconds_upper",
                    "slurm_time", "segments", "fits_queue", "moonalt", "sky_mag_per_arcsec2",
                    "n_objects", "brightest_star_mag")  # fmt: skip
TERMINAL_ROWS = 40


def terminal_table(table: pd.DataFrame) -> str:
    """A short aligned table for a person at a terminal; CPU in hours."""
    shown = table[[c for c in TERMINAL_COLUMNS if c in table.columns]].head(TERMINAL_ROWS)
    hours = {c: c.replace("seconds", "hours") for c in shown.columns if c.startswith("cpu_")}
    shown = shown.assign(**{c: shown[c] / 3600.0 for c in hours}).rename(columns=hours)
    text = shown.to_string(index=False, float_format=lambda x: f"{x:.2f}") + "\n"
    if len(table) > TERMINAL_ROWS:
        text += f"... {len(table) - TERMINAL_ROWS} more rows\n"
    return text + "(a terminal gets this summary; -o FILE or --format csv for every column)\n"


def with_filter_letters(table: pd.DataFrame) -> pd.DataFrame:
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
