"""``cputime plan``: a campaign's cost, per visit and by filter and night, with a plot."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cputime.errors import InputError
from cputime.frontends.cli.inputs import finished, input_options
from cputime.frontends.cli.options import add_command, model_options, output_dir, plan_options
from cputime.frontends.cli.output import with_filter_letters, write_table
from cputime.frontends.cli.predict import predictions

if TYPE_CHECKING:  # pandas is imported by the commands that need it, not for --help
    import pandas as pd


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "plan",
        "a campaign's cost: per-visit predictions and CPU-hours by filter and night, with a plot",
        """
        cputime plan minion_1016_sqlite.db --sensors all --where "night <= 365" \\
            --queue-max 2-00:00:00 -o plan/
    """,
        run,
    )
    input_options(parser)
    model_options(parser)
    plan_options(parser)
    parser.add_argument(
        "-o",
        "--output",
        type=output_dir,
        default=Path("plan"),
        help="folder for predictions, summary.json, summary_by_filter.csv, summary_by_night.csv "
        "and plan.png",
    )
    parser.add_argument(
        "--format",
        choices=("csv", "parquet"),
        default="parquet",
        help="format of the per-job predictions file",
    )


def run(args) -> int:
    from cputime.planning.campaign import campaign_summary, plot_campaign, write_campaign

    table, batch = predictions(args)
    if table.empty:
        raise InputError("no visits to plan (check --where / --visits)")
    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    predicted = out / f"predictions.{args.format}"
    summary = campaign_summary(table, _visit_nights(args))
    files = [
        *write_campaign(summary, out, queue_max_seconds=args.queue_max),
        plot_campaign(
            summary, out / "plan.png", title=", ".join(Path(p).name for p in args.inputs)
        ),
    ]
    write_table(with_filter_letters(table), predicted, args.format)
    print(f"cputime plan: wrote {len(table)} rows to {predicted}", file=sys.stderr)
    print(json.dumps({**summary["total"], "files": [str(predicted), *map(str, files)]},
                     indent=2))  # fmt: skip
    return finished(batch)


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
