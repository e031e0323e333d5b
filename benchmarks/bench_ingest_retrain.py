"""Benchmark: ingest 100,000 Slurm jobs from sacct text, then retrain on them.

Generates ``sacct --parsable2`` text of 100,000 PhoSim jobs (job + .batch + .extern lines, with
TIMEOUT, FAILED, CANCELLED, OUT_OF_MEMORY and NODE_FAIL jobs; see ``tests/sacct_synth.py``) over
the Twinkles Run 1 training visits and 107 sensors, then times

1. ``ingest`` into a fresh SQLite runs store (parse, host factors, visit-table features, insert),
2. the same ingest again (idempotent: nothing new is stored),
3. ``retrain`` on the stored runs (time-ordered 20 % hold-out, fit, evaluation, MLflow logging
   and registration in a fresh SQLite tracking store, champion alias),

and writes ``benchmarks/results/ingest_retrain.json``.

Run: ``python benchmarks/bench_ingest_retrain.py [--jobs 100000]`` from the repository root
(needs ``features/phosim_runs.csv``, made by ``cputime build-default``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from sacct_synth import host_factors_csv, synthetic_sacct  # noqa: E402

from cputime.inputs.focalplane import SENSOR_NAMES  # noqa: E402
from cputime.runs.hosts import read_host_slowdowns  # noqa: E402
from cputime.runs.ingest import FeatureSource, ingest  # noqa: E402
from cputime.runs.retrain import retrain  # noqa: E402
from cputime.runs.store import RunsStore  # noqa: E402
from cputime.runs.training import load_runs_table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--runs", type=Path, default=REPO / "features" / "phosim_runs.csv")
    parser.add_argument("--out", type=Path,
                        default=REPO / "benchmarks" / "results" / "ingest_retrain.json")
    args = parser.parse_args()
    visits_path = REPO / "cputime" / "data" / "twinkles_run1_train.csv"
    visits = pd.read_csv(visits_path, skipinitialspace=True)
    results: dict = {"jobs": args.jobs, "visits": len(visits), "python": platform.python_version(),
                     "machine": platform.machine(), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="cputime-bench-") as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        text = synthetic_sacct(visits, args.jobs, sensors=list(SENSOR_NAMES[::2])[:107], seed=0)
        sacct = tmp / "sacct.txt"
        sacct.write_text(text)
        results["generate_seconds"] = round(time.perf_counter() - start, 2)
        results["sacct_lines"] = text.count("\n")
        results["sacct_megabytes"] = round(sacct.stat().st_size / 1e6, 1)
        hosts = tmp / "hosts.csv"
        hosts.write_text(host_factors_csv())
        store = RunsStore(f"sqlite:///{tmp / 'runs.db'}")

        for label in ("ingest_first", "ingest_again"):
            start = time.perf_counter()
            report = ingest([sacct], "sacct", store, host_slowdowns=read_host_slowdowns(hosts),
                            features=FeatureSource(visits=visits_path))[0]
            seconds = time.perf_counter() - start
            results[label] = {"seconds": round(seconds, 2), **report.to_dict(),
                              "jobs_per_second": round(report.read / seconds)}
        results["runs_db_megabytes"] = round((tmp / "runs.db").stat().st_size / 1e6, 1)

        tracking = f"sqlite:///{tmp / 'mlflow.db'}"
        start = time.perf_counter()
        result = retrain(store, name="bench", runs=load_runs_table(args.runs),
                         tracking_uri=tracking, promote=True)
        results["retrain"] = {
            "seconds": round(time.perf_counter() - start, 2),
            "split": result.split,
            "counts": result.counts,
            "challenger": result.challenger,
            "decision": result.decision.reason,
            "registered": result.registered.uri,
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
