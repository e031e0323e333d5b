"""Parsl configuration for NERSC Perlmutter CPU nodes (Slurm), for ``cputime --executor parsl``.

Features of ~12,000 visits x 189 sensors: each catalog is read by one worker process (one core,
a few hundred MB for a full-focal-plane catalog), so a Perlmutter CPU node (2 x 64 cores, 512 GB)
runs 128 catalogs at a time. With ``--resume-dir`` on $SCRATCH an interrupted run restarts where
it stopped::

    export NERSC_ACCOUNT=m1234            # your project
    cputime features /global/cfs/.../instcat_*.txt.gz --sensors all \
        --executor parsl --parsl-config examples/parsl_slurm_nersc.py \
        --resume-dir $SCRATCH/cputime_parts -o $SCRATCH/features.parquet

Run the command on a login node (or in a workflow QOS job): Parsl submits pilot jobs with
``sbatch`` through ``SlurmProvider``; each pilot starts one HighThroughputExecutor manager per node
(``SrunLauncher``) that pulls tasks from the interchange on the submitting host.

Settings to check (Perlmutter documentation: docs.nersc.gov/jobs/workflow/parsl/):

- ``account``: ``NERSC_ACCOUNT``; ``qos``: ``regular`` (``debug`` for a 30-minute test);
  ``constraint="cpu"`` selects CPU nodes.
- ``walltime`` of a pilot and ``max_blocks`` x ``nodes_per_block``: how much of the machine the
  run may hold. Tasks that do not finish within a pilot are retried in the next one (``retries``).
- ``worker_init``: what makes ``cputime`` importable on the compute nodes (module and conda env).
- ``address``: the login node's high-speed interface, so compute nodes can reach the interchange.
"""

import os

from parsl.addresses import address_by_hostname, address_by_interface
from parsl.config import Config
from parsl.executors import HighThroughputExecutor
from parsl.launchers import SrunLauncher
from parsl.providers import SlurmProvider

ACCOUNT = os.environ.get("NERSC_ACCOUNT", "m0000")
CONDA_ENV = os.environ.get("CPUTIME_CONDA_ENV", "cputime")


def _interchange_address() -> str:
    """The login node's Slingshot (hsn0) address; the hostname's elsewhere (e.g. to try it)."""
    try:
        return address_by_interface("hsn0")
    except OSError:
        return address_by_hostname()


config = Config(
    executors=[
        HighThroughputExecutor(
            label="perlmutter_cpu",
            address=_interchange_address(),
            cores_per_worker=1,
            max_workers_per_node=128,  # one per physical core (2 x 64)
            provider=SlurmProvider(
                account=ACCOUNT,
                qos="regular",
                constraint="cpu",
                nodes_per_block=1,
                init_blocks=1,
                min_blocks=0,
                max_blocks=8,  # up to 8 nodes = 1024 catalogs at a time
                walltime="02:00:00",
                # One manager per node; it forks the workers.
                launcher=SrunLauncher(overrides="-c 256"),
                worker_init=f"module load python; conda activate {CONDA_ENV}",
                scheduler_options="#SBATCH --licenses=scratch,cfs",
                cmd_timeout=120,
            ),
        )
    ],
    retries=2,
    usage_tracking=0,
)
