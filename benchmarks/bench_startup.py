"""Benchmark the command line's start-up and the condition features of a 10,000-visit table.

Usage: ``python benchmarks/bench_startup.py [--repeats R] [--output FILE]``

- ``cputime --help`` and an argument error (``cputime predict``), each in a fresh process, beside
  ``python -c pass`` (the interpreter's own start-up); and which heavy libraries
  ``import cputime.frontends.cli`` loads.
- :func:`cputime.physics.features.visit_features` on 10,000 visits (the Twinkles Run 1 table
repeated).

The processes run in the repository holding this script, so they time its code (to time an
older checkout, copy the script into that checkout's benchmarks/ and run it there).

Best of the repeats. Results go to benchmarks/results/startup.json (or ``--output``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TWINKLES = HERE.parent / "cputime" / "data" / "twinkles_run1_train.csv"
#: Targets of issue 13.
TARGETS = {"help_s": 0.3, "argument_error_s": 0.3}
HEAVY = ("pandas", "sklearn", "scipy", "xgboost", "mlflow", "fastapi", "pyarrow")
N_VISITS = 10_000


def best_wall(argv: list[str], repeats: int) -> float:
    """Best wall time [s] of a fresh process running ``argv``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=False, cwd=HERE.parent)
        times.append(time.perf_counter() - start)
    return min(times)


def heavy_imports() -> list[str]:
    """Heavy libraries in sys.modules after ``import cputime.frontends.cli``."""
    code = ("import json, sys, cputime.frontends.cli; "
            f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=HERE.parent).stdout
    return json.loads(out)


def time_visit_features(repeats: int) -> float:
    """Best wall time [s] of visit_features on N_VISITS visits."""
    import pandas as pd

    from cputime.physics.features import read_visit_table, visit_features

    one = read_visit_table(TWINKLES)
    visits = pd.concat([one] * (N_VISITS // len(one) + 1), ignore_index=True).head(N_VISITS)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        visit_features(visits, source=str(TWINKLES))
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", type=Path, default=HERE / "results" / "startup.json")
    args = parser.parse_args(argv)
    cli = [sys.executable, "-m", "cputime"]
    result = {
        "targets": TARGETS,
        "python_c_pass_s": best_wall([sys.executable, "-c", "pass"], args.repeats),
        "help_s": best_wall([*cli, "--help"], args.repeats),
        "argument_error_s": best_wall([*cli, "predict"], args.repeats),
        "heavy_libraries_imported_by_cli": heavy_imports(),
        "visit_features_10000_visits_s": time_visit_features(args.repeats),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_1min": os.getloadavg()[0]},
    }
    args.output.parent.mkdir(exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
