"""``cputime retrain``: a challenger from the runs store, compared with the champion."""

from __future__ import annotations

import json
import sys

from cputime.errors import InputError
from cputime.frontends.cli.options import (
    LEVEL,
    add_command,
    confidence_option,
    existing_store,
    output_dir,
    runs_db_option,
    runs_option,
    runs_path,
)
from cputime.frontends.cli.status import ExitStatus


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "retrain",
        "train a challenger on stored runs, compare it with the champion, register it in MLflow",
        """
        cputime retrain --runs-db sqlite:///runs.db --tracking-uri sqlite:///mlruns.db \\
            --name phosim-cputime --promote
    """,
        run,
    )
    runs_db_option(parser)
    parser.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow tracking and registry store (default: MLFLOW_TRACKING_URI, "
        "else sqlite:///mlruns.db)",
    )
    parser.add_argument("--name", required=True, help="registered model name")
    parser.add_argument(
        "--promote",
        action="store_true",
        help="move the champion alias to the challenger if it passes the gate",
    )
    runs_option(parser)
    parser.add_argument(
        "--holdout",
        type=LEVEL,
        default=0.2,
        help="share of the most recent runs held out for the comparison",
    )
    confidence_option(parser, 0.95, "default coverage of the upper bound, a probability")
    parser.add_argument(
        "--out", type=output_dir, default=None, help="also keep the model folder here"
    )
    parser.add_argument(
        "--regressor-params",
        default=None,
        help="JSON parameters of the sky-correction regressor, e.g. '{\"n_estimators\": 100}'",
    )


def run(args) -> int:
    from cputime.runs.retrain import check_model_name, check_regressor_params, retrain
    from cputime.runs.store import RunsStore
    from cputime.runs.training import load_runs_table

    check_model_name(args.name)  # before anything is opened or written
    try:
        regressor_params = json.loads(args.regressor_params) if args.regressor_params else None
    except json.JSONDecodeError as exc:
        raise InputError(f"--regressor-params: not JSON ({exc.msg})") from None
    check_regressor_params(regressor_params)
    existing_store(args.runs_db)
    runs = runs_path(args)
    result = retrain(
        RunsStore(args.runs_db),
        name=args.name,
        runs=load_runs_table(runs),
        tracking_uri=args.tracking_uri,
        promote=args.promote,
        holdout_fraction=args.holdout,
        confidence_level=args.confidence_level,
        regressor_params=regressor_params,
        out=args.out,
        runs_source=str(runs),
    )
    print(f"cputime retrain: {result.message()}", file=sys.stderr)
    print(json.dumps(result.to_dict(), indent=2, default=str))
    return ExitStatus.OK
