"""PhoSim jobs through Parsl, with the walltime (and checkpoint segments) that cputime predicts.

Each (visit, sensor) becomes a Parsl ``bash_app`` call whose ``walltime=`` (Parsl kills the task
when it runs longer) comes from :func:`cputime.frontends.workflow.parsl_kwargs_of_row`. A job too
long for
the queue limit runs as a chain of checkpoint segments: segment ``k`` waits for segment ``k - 1``
(``inputs=[previous]``) and gets ``checkpointcount k`` in its commands.

The PhoSim command here is a stand-in that echoes what it would run and sleeps briefly, so the
example runs anywhere; pass ``--command`` with your PhoSim wrapper (it is formatted with
``{catalog} {sensor} {threads} {checkpointcount} {checkpointtotal}``)::

    python examples/parsl_phosim_workflow.py visit230.txt.gz --sensors R22_S11,R22_S12 \
        --queue-max 1:00:00 --parsl-config examples/parsl_local.py

Without ``--parsl-config`` a ThreadPoolExecutor runs the tasks in this process. For WorkQueue or
TaskVine executors add ``--resource-specification``: those read ``running_time_min``, ``cores``
and ``memory``; the HighThroughput and ThreadPool executors refuse these keys.
"""

from __future__ import annotations

import argparse
import sys

from parsl import bash_app
from parsl.config import Config
from parsl.dataflow.dflow import DataFlowKernel
from parsl.executors import ThreadPoolExecutor

from cputime.durations import parse_slurm_time
from cputime.frontends.batch import features_of_many, load_parsl_config
from cputime.frontends.workflow import parsl_kwargs_of_row
from cputime.inputs.focalplane import parse_sensors
from cputime.model.loading import resolve_model
from cputime.planning.predictions import predict_jobs

STAND_IN = (
    "echo phosim {catalog} -s {sensor} -t {threads} "
    "checkpointcount {checkpointcount} of {checkpointtotal}; sleep 0.2"
)


def phosim(command, inputs=(), stdout=None, stderr=None, walltime=None,
           parsl_resource_specification=None):
    """One PhoSim run (or checkpoint segment): returns the command line for Parsl to run."""
    return command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", help="instance catalogs or visit tables")
    parser.add_argument("--sensors", default="R22_S11", help="'all' or R22_S11,R01_S00,...")
    parser.add_argument("--model", default=None, help="model folder or models:/NAME@ALIAS")
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--threads", type=int, default=1, help="PhoSim threads (task cores)")
    parser.add_argument("--queue-max", default=None,
                        help="queue limit as sbatch --time reads it (48h, 2-00:00:00; a bare "
                        "number is minutes)")
    parser.add_argument("--memory-mb", type=float, default=None, help="task memory [MB]")
    parser.add_argument("--command", default=STAND_IN, help="PhoSim command template")
    parser.add_argument("--parsl-config", default=None,
                        help="Python file defining `config` (default: threads in this process)")
    parser.add_argument("--resource-specification", action="store_true",
                        help="pass parsl_resource_specification (WorkQueue / TaskVine executors)")
    parser.add_argument("--logs", default="phosim_logs", help="folder for tasks' stdout/stderr")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    loaded = resolve_model(args.model, tracking_uri=args.tracking_uri)
    queue_max = parse_slurm_time(args.queue_max, field="--queue-max") if args.queue_max else None
    plans = []  # (input, prediction row)
    for path in args.inputs:
        features = features_of_many([path], parse_sensors(args.sensors), progress=False).table
        table = predict_jobs(loaded.model, features, threads=args.threads,
                             queue_max_seconds=queue_max, model_version=loaded.version)
        plans.extend((path, row) for row in table.to_dict("records"))
    config = (load_parsl_config(args.parsl_config) if args.parsl_config
              else Config(executors=[ThreadPoolExecutor(max_threads=4)], usage_tracking=0))
    with DataFlowKernel(config) as dfk:
        app = bash_app(phosim, data_flow_kernel=dfk)
        chains = []
        for path, row in plans:
            previous = None
            for k in range(int(row["segments"])):
                # Each segment its own walltime: PhoSim splits a job by source type, unevenly.
                kwargs = parsl_kwargs_of_row(row, memory_mb=args.memory_mb, segment=k)
                if not args.resource_specification:
                    kwargs.pop("parsl_resource_specification")
                command = args.command.format(
                    catalog=path, sensor=row["sensor"], threads=row["threads"],
                    checkpointcount=k, checkpointtotal=row["checkpointtotal"],
                )
                stem = f"{args.logs}/{row['obshistid']}_{row['sensor']}_seg{k}"
                previous = app(command, inputs=[previous] if previous is not None else [],
                               stdout=f"{stem}.out", stderr=f"{stem}.err", **kwargs)
            chains.append((row, int(row["walltime_seconds"]), previous))
        failed = 0
        for row, walltime, last in chains:
            try:
                last.result()
                status = "ok"
            except Exception as err:  # a task over its walltime, or PhoSim failing
                failed += 1
                status = f"FAILED ({type(err).__name__}: {err})"
            print(f"{row['obshistid']} {row['sensor']}: {int(row['segments'])} segment(s), "
                  f"longest walltime {walltime} s, {status}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
