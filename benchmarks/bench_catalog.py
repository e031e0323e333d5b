"""Benchmark catalog reading and per-sensor features against ``zcat FILE | wc -l``.

Usage: ``python benchmarks/bench_catalog.py [CATALOG.gz] [--objects N] [--repeats R]``

Without CATALOG, a synthetic catalog of N objects (default 2,000,000) is written to /tmp by
``make_catalog.py`` (kept for later runs). Each repeat times ``zcat | wc -l`` and then a fresh
Python process that streams every object with :func:`cputime.catalog.iter_object_chunks`
(wall time, CPU time and peak RSS from ``resource.getrusage`` in that process), then a fresh
process that computes the features of all 189 sensors with
:func:`cputime.features.catalog_features` (what ``cputime features FILE`` does). The runs are
interleaved so that both see the same machine load; the best of the repeats is reported.
Results go to benchmarks/results/catalog.json.
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
_REPORT = """
print(json.dumps({"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "n_objects": n_objects, "n_points": n_points}))
"""
READER = """
import json, resource, sys, time
from cputime.catalog import iter_object_chunks
wall, cpu = time.perf_counter(), time.process_time()
n_objects = n_points = 0
for chunk in iter_object_chunks(sys.argv[1]):
    n_objects += len(chunk)
    n_points += int(chunk.is_point.sum())
""" + _REPORT
FEATURES = """
import json, resource, sys, time
from cputime.features import catalog_features
wall, cpu = time.perf_counter(), time.process_time()
table = catalog_features(sys.argv[1], "all")
n_objects, n_points = int(table["n_objects"].sum()), int(table["n_stars"].sum())
""" + _REPORT


def time_zcat(path: Path) -> tuple[float, int]:
    """Wall time [s] of ``zcat path | wc -l`` and the line count it printed."""
    start = time.perf_counter()
    out = subprocess.run(f"zcat '{path}' | wc -l", shell=True, check=True, capture_output=True,
                         text=True).stdout
    return time.perf_counter() - start, int(out.split()[0])


def time_snippet(snippet: str, path: Path) -> dict:
    """Run a snippet in a fresh process; its own timings and peak RSS."""
    out = subprocess.run([sys.executable, "-c", snippet, str(path)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write benchmarks/results/catalog.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("catalog", nargs="?", type=Path)
    parser.add_argument("--objects", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    path = args.catalog or Path(f"/tmp/cputime_bench_{args.objects}.txt.gz")
    if not path.exists():
        subprocess.run([sys.executable, str(HERE / "make_catalog.py"), str(args.objects),
                        str(path)], check=True)
    zcat, reads, features, n_lines = [], [], [], 0
    for _ in range(args.repeats):
        seconds, n_lines = time_zcat(path)
        zcat.append(seconds)
        reads.append(time_snippet(READER, path))
        features.append(time_snippet(FEATURES, path))
    best = min(reads, key=lambda r: r["wall_s"])
    best_features = min(features, key=lambda r: r["wall_s"])
    result = {
        "catalog": str(path),
        "compressed_mb": path.stat().st_size / 2**20,
        "n_lines": n_lines,
        "n_objects": best["n_objects"],
        "n_points": best["n_points"],
        "zcat_wc_l_s": min(zcat),
        "read_wall_s": best["wall_s"],
        "read_cpu_s": best["cpu_s"],
        "read_over_zcat": best["wall_s"] / min(zcat),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in reads),
        "features_189_sensors_wall_s": best_features["wall_s"],
        "features_189_sensors_cpu_s": best_features["cpu_s"],
        "features_over_zcat": best_features["wall_s"] / min(zcat),
        "features_peak_rss_mb": max(r["peak_rss_mb"] for r in features),
        "objects_on_sensors": best_features["n_objects"],
        "all_zcat_s": zcat,
        "all_read_wall_s": [r["wall_s"] for r in reads],
        "all_features_wall_s": [r["wall_s"] for r in features],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_1min": os.getloadavg()[0]},
    }
    out = HERE / "results" / "catalog.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
