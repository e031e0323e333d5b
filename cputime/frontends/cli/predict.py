"""``cputime predict`` and ``cputime slurm``: predictions of the inputs' jobs, as a table or as
sbatch options."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from cputime.errors import InputError
from cputime.frontends.cli.inputs import finished, input_options, read_features
from cputime.frontends.cli.options import add_command, model_options, output_options, plan_options
from cputime.frontends.cli.output import write_output
from cputime.frontends.workflow import SLURM_FORMATS

if TYPE_CHECKING:  # pandas is imported by the commands that need it, not for --help
    import pandas as pd

    from cputime.frontends.batch import BatchFeatures


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "predict",
        "CPU-time prediction, upper bound, walltime and checkpoint plan",
        """
        cputime predict visit230.txt.gz --sensors R22_S11 --queue-max 48h -o predictions.csv
        cputime predict planned_visits.csv --threads 4 --host-slowdown 0.6 -o - --format jsonl
    """,
        run_predict,
    )
    input_options(parser)
    model_options(parser)
    plan_options(parser)
    output_options(parser)

    parser = add_command(
        subparsers,
        "slurm",
        "sbatch options (--time, --signal, --cpus-per-task) per job segment",
        """
        cputime slurm visit230.txt.gz --sensors R22_S11 --queue-max 12h
        cputime slurm planned_visits.csv --sensors R22_S11 --threads 4 --format args
    """,
        run_slurm,
    )
    input_options(parser)
    model_options(parser)
    plan_options(parser)
    parser.add_argument(
        "--format",
        choices=SLURM_FORMATS,
        default="sbatch",
        help="#SBATCH lines, or one line of sbatch arguments per job segment",
    )
    parser.add_argument("--job-name", default="phosim", help="prefix of --job-name")


def run_predict(args) -> int:
    table, batch = predictions(args)
    write_output(args, table)
    return finished(batch)


def run_slurm(args) -> int:
    from cputime.frontends.workflow import format_slurm

    table, batch = predictions(args)
    sys.stdout.write(format_slurm(table, args.format, job_name=args.job_name))
    return finished(batch)


def predictions(args) -> tuple[pd.DataFrame, BatchFeatures]:
    """Predictions and walltime plans of the inputs' jobs, and the features they came from."""
    from cputime.model.loading import resolve_model
    from cputime.planning.predictions import predict_jobs

    loaded = resolve_model(args.model, tracking_uri=args.tracking_uri)
    batch = read_features(args)
    features = batch.table
    if args.confidence_level is not None and len(features):
        _check_confidence(loaded.model, features, args.confidence_level)
    table = predict_jobs(
        loaded.model,
        features,
        confidence_level=args.confidence_level,
        host_slowdown=args.host_slowdown,
        threads=args.threads,
        queue_max_seconds=args.queue_max,
        model_version=loaded.version,
    )
    _warn_unfit(args, table)
    return table, batch


def _check_confidence(model, features: pd.DataFrame, level: float) -> None:
    """Refuse a confidence level the model's calibration cannot back with a finite bound."""
    import numpy as np

    try:
        upper = model.predict_upper(features, level)
    except ValueError as err:  # too few calibration jobs for this level
        raise InputError(f"confidence_level: {level}: {err}") from None
    unbounded = int((~np.isfinite(upper)).sum())
    if unbounded:
        raise InputError(
            f"confidence_level: {level} is beyond the model's calibration: no finite upper bound "
            f"for {unbounded} of {len(upper)} jobs (too many calibration jobs were killed at "
            "their limit); use a lower level such as 0.95"
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
