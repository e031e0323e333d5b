"""CPU time of a prediction: one visit, and visits per second for a 10,000-visit table.

Measured in one run, for this tree and for a baseline revision of ``cputime/`` (by default the
commit before the array core, so the numbers show before/after side by side); both load the
model in ``models/default`` of this tree:

- ``predict_jobs`` on a one-row features table (a Twinkles job), and on a one-visit table made
  by ``visit_features`` from header keywords (what the service did per request);
- ``predict_visits`` on one visit given as a dict (no pandas; this tree only);
- the same on 10,000 visits (Twinkles conditions drawn with replacement, seed 0).

Each for the default walltime policy (the level that loses the least CPU), a fixed level, and a
queue limit that splits jobs into checkpoint segments. Times are CPU seconds of the process
(``time.process_time``, all threads), the median over repeats, so that other work on the host
counts little; the load average is recorded beside them.

Usage (from the repository root)::

    python benchmarks/bench_predict.py                      # writes benchmarks/results/predict.json
    python benchmarks/bench_predict.py --baseline HEAD~3    # another baseline revision
    python benchmarks/bench_predict.py --baseline none      # this tree only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TWINKLES = ROOT / "features" / "twinkles_run1.csv"
MODEL = ROOT / "models" / "default"
HEADER_KEYS = [
    "obshistid", "filter", "vistime", "nsnap", "airmass", "altitude", "moonalt", "moonphase",
    "dist2moon", "sunalt", "seeing",
]  # fmt: skip
#: The last commit before the one-visit fast path (trees as arrays, cost parts once); earlier
#: commits predate the stage layout and the host_slowdown keyword this script calls.
DEFAULT_BASELINE = "5442097"
POLICIES = {
    "default_level": {},
    "fixed_level_0.95": {"confidence_level": 0.95},
    "queue_1h": {"queue_max_seconds": 3600.0},
}


def _cpu_per_call(call, calls: int, repeats: int) -> dict:
    """Median and smallest CPU per call over ``repeats`` runs of ``calls`` calls [ms]."""
    call()  # warm caches (imports, per-level offsets), as a long-running service has
    per_call = []
    for _ in range(repeats):
        start = time.process_time()
        for _ in range(calls):
            call()
        per_call.append((time.process_time() - start) / calls * 1e3)
    return {
        "cpu_ms_median": round(statistics.median(per_call), 3),
        "cpu_ms_min": round(min(per_call), 3),
    }


def measure(n_visits: int, calls: int, repeats: int) -> dict:
    """Every measurement the tree on ``sys.path`` supports."""
    import numpy as np
    import pandas as pd

    import cputime
    from cputime.physics.features import visit_features
    from cputime.planning import predictions

    model = cputime.load_model(str(MODEL))
    table = pd.read_csv(TWINKLES)
    one_job = table.iloc[:1]
    visit = table[HEADER_KEYS].iloc[:1].to_dict("records")
    many = table[HEADER_KEYS].sample(n_visits, replace=True, random_state=0)
    many = many.assign(obshistid=np.arange(n_visits)).reset_index(drop=True)
    start = time.process_time()
    many_features = visit_features(many)
    features_seconds = time.process_time() - start
    many_visits = many.to_dict("records")
    fast = getattr(predictions, "predict_visits", None)

    table_out = {"visits": n_visits, "visit_features_cpu_s": round(features_seconds, 3)}
    out: dict = {"cputime": str(Path(cputime.__file__).parent), "one_visit": {}, "table": table_out}
    for name, options in POLICIES.items():
        one = {
            "predict_jobs_one_job_row": _cpu_per_call(
                lambda o=options: predictions.predict_jobs(model, one_job, **o), calls, repeats
            ),
            "visit_features_and_predict_jobs": _cpu_per_call(
                lambda o=options: predictions.predict_jobs(
                    model, visit_features(pd.DataFrame(visit)), **o
                ),
                calls,
                repeats,
            ),
        }
        if fast is not None:
            one["predict_visits"] = _cpu_per_call(
                lambda o=options: fast(model, visit, **o), calls, repeats
            )
        out["one_visit"][name] = one
        rows = {}
        runs = {
            "predict_jobs": lambda o=options: predictions.predict_jobs(model, many_features, **o)
        }
        if fast is not None:
            runs["predict_visits"] = lambda o=options: fast(model, many_visits, **o)
        for path, call in runs.items():
            seconds = _cpu_per_call(call, 1, max(1, repeats // 2))["cpu_ms_median"] / 1e3
            rows[path] = {"cpu_s": round(seconds, 3), "visits_per_cpu_s": round(n_visits / seconds)}
        out["table"][name] = rows
    return out


def _baseline_tree(revision: str, into: Path) -> Path:
    """``cputime/`` of ``revision``, extracted under ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", revision, "cputime"],
        check=True,
        capture_output=True,
    ).stdout
    path = into / "tree.tar"
    path.write_bytes(archive)
    with tarfile.open(path) as tar:
        tar.extractall(into, filter="data")
    return into


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default=str(ROOT / "benchmarks/results/predict.json"))
    parser.add_argument(
        "--baseline", default=DEFAULT_BASELINE, help="git revision to compare with, or 'none'"
    )
    parser.add_argument("--visits", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=400, help="single-visit calls per repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure_only:  # the baseline's run, in a subprocess with its tree first on the path
        print(json.dumps(measure(args.visits, args.calls, args.repeats)))
        return 0

    load_before = os.getloadavg()
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_before": [round(x, 2) for x in load_before],
        },
        "after": measure(args.visits, args.calls, args.repeats),
    }
    if args.baseline != "none":
        revision = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", args.baseline],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        with tempfile.TemporaryDirectory() as tmp:
            tree = _baseline_tree(revision, Path(tmp))
            run = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--measure-only",
                    "--visits",
                    str(args.visits),
                    "--calls",
                    str(args.calls),
                    "--repeats",
                    str(args.repeats),
                ],
                check=True,
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONPATH": str(tree)},
            )
        result["before"] = {"revision": revision, **json.loads(run.stdout)}
    result["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
