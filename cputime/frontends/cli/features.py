"""``cputime features``: per-sensor features of the inputs."""

from __future__ import annotations

from cputime.frontends.cli.inputs import finished, input_options, read_features
from cputime.frontends.cli.options import add_command, output_options
from cputime.frontends.cli.output import write_output


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "features",
        "per-sensor features of instance catalogs or planned visits",
        """
        cputime features visit230.txt.gz --sensors R22_S11,R01_S00 -o features.csv
        cputime features planned_visits.csv -o visits.parquet
    """,
        run,
    )
    input_options(parser)
    output_options(parser)


def run(args) -> int:
    batch = read_features(args)
    write_output(args, batch.table)
    return finished(batch)
