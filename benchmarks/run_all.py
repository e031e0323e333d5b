"""Run every benchmark, one after another, writing benchmarks/results/*.json.

Usage (from the repository root): ``python benchmarks/run_all.py``

Each benchmark is its own script (see its docstring for options) and records the machine's core
count and load; timings are only comparable on a quiet machine.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    ["sky_accuracy.py"],
    ["bench_startup.py"],
    ["bench_catalog.py", "--repeats", "3"],
    ["bench_ingest_retrain.py"],
    ["bench_service.py"],
    ["bench_service_fair.py", "-o", str(HERE / "results" / "service_fair.json")],
    ["bench_predict.py"],
]


def main() -> int:
    failed = []
    for script, *args in BENCHMARKS:
        print(f"== {script}", flush=True)
        if subprocess.run([sys.executable, str(HERE / script), *args]).returncode != 0:
            failed.append(script)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
