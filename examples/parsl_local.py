"""Parsl configuration for one machine: a HighThroughputExecutor on local worker processes.

Use it to try ``--executor parsl`` before moving to a cluster::

    cputime features catalogs/*.txt.gz --executor parsl --parsl-config examples/parsl_local.py \
        --resume-dir work/ -o features.parquet

``cputime`` loads this file with ``runpy`` and takes its ``config``. Workers import ``cputime``,
so run from the environment where it is installed. Parsl writes its logs under ``runinfo/`` in the
current folder.
"""

import os

from parsl.config import Config
from parsl.executors import HighThroughputExecutor
from parsl.providers import LocalProvider

#: Worker processes: one per core (catalog reading is single-threaded numpy work per file).
WORKERS = int(os.environ.get("CPUTIME_PARSL_WORKERS", os.cpu_count() or 1))

config = Config(
    executors=[
        HighThroughputExecutor(
            label="local_htex",
            address="127.0.0.1",  # workers on this machine only
            max_workers_per_node=WORKERS,
            cores_per_worker=1,
            provider=LocalProvider(init_blocks=1, min_blocks=1, max_blocks=1),
        )
    ],
    # Quiet and quick to shut down: no usage tracking, no monitoring database.
    usage_tracking=0,
)
