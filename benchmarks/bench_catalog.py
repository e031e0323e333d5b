"""Benchmark catalog reading and per-sensor features against ``zcat FILES | wc -l``.

Usage: ``python benchmarks/bench_catalog.py [CATALOG] [--objects N] [--repeats R]``

Without CATALOG, two synthetic catalogs of N objects (default 2,000,000) are written to /tmp by
``make_catalog.py`` (kept for later runs): ``dc2`` (one gzip file, 70 % sersic2d) and ``points``
(85 % point sources with long SED paths, in two ``gzip -1`` object files pulled in with
``includeobj``). For each, every repeat times ``zcat | wc -l`` over all its files, then a fresh
Python process that streams every object with :func:`cputime.inputs.catalog.iter_object_chunks`
(wall
time, CPU time and peak RSS from ``resource.getrusage`` in that process), then a fresh process
that computes the features of all 189 sensors with :func:`cputime.physics.features.catalog_features`
(what ``cputime features FILE`` does). The runs are interleaved so that they see the same machine
load; the best of the repeats is reported. A profile of one 8 MiB chunk of each catalog gives
the CPU cost of each step per MB of text. Results go to benchmarks/results/catalog.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: Targets of issue 13: features of all sensors within 1.5x ``zcat | wc -l``, in 0.5 GB.
TARGETS = {"features_over_zcat": 1.5, "features_peak_rss_mb": 512}
_REPORT = """
print(json.dumps({"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "n_objects": n_objects, "n_points": n_points}))
"""
READER = """
import json, resource, sys, time
from cputime.inputs.catalog import iter_object_chunks
wall, cpu = time.perf_counter(), time.process_time()
n_objects = n_points = 0
for chunk in iter_object_chunks(sys.argv[1]):
    n_objects += len(chunk)
    n_points += int(chunk.is_point.sum())
""" + _REPORT
FEATURES = """
import json, resource, sys, time
from cputime.physics.features import catalog_features
wall, cpu = time.perf_counter(), time.process_time()
table = catalog_features(sys.argv[1], "all")
n_objects, n_points = int(table["n_objects"].sum()), int(table["n_stars"].sum())
""" + _REPORT
# CPU per MB of text of each step on one chunk (best of 5): what the wall time is made of.
PROFILE = """
import json, sys, time, zlib
import numpy as np
import pyarrow as pa
from cputime.inputs import catalog, focalplane, objects
from cputime.physics.features import _SensorAccumulator
raw = open(sys.argv[1], "rb").read(8 << 20)
unzip = lambda: zlib.decompressobj(wbits=31).decompress(raw, catalog.DEFAULT_CHUNK_BYTES)
text = unzip()
text = text[text.index(b"object"):text.rfind(b"\\n") + 1]
mb = len(text) / 1e6
buf = np.frombuffer(text, dtype=np.uint8)
blanks = np.flatnonzero(buf <= 32)
starts = np.concatenate([[0], blanks[buf[blanks] == 10][:-1] + 1])
lines = pa.array(text.decode().splitlines(keepends=True))
whole = pa.array([text.decode()], pa.large_string())
parsed = objects.parse_chunk(text)
xy = lambda: focalplane.focal_plane_xy_mm(parsed.ra, parsed.dec, 53.0, -27.4, 256.8)
x, y, front = xy()
sums = lambda: _SensorAccumulator(189).add(x, y, front, parsed.magnorm,
                                           parsed.model_code == 0, 30.0)
steps = {
    "gunzip (zlib, in a thread)": unzip,
    "parse: all of it": lambda: objects.parse_chunk(text),
    "parse: find blanks and newlines": lambda: np.flatnonzero(buf <= 32),
    "parse: check every line (regex)": lambda: objects._check_object_lines(lines, whole),
    "parse: locate and cast the fields": lambda: objects._located_fields(text, blanks, starts),
    "features: focal-plane position": xy,
    "features: per-sensor sums": sums,
}
out = {}
for name, step in steps.items():
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        step()
        best = min(best, time.process_time() - start)
    out[name] = round(best / mb * 1e3, 3)
print(json.dumps(out))
"""


def catalog_files(path: Path) -> list[Path]:
    """The catalog and the ``includeobj`` files its header names."""
    from cputime.inputs.catalog import read_header

    return [path, *read_header(path).includes]


def time_zcat(files: list[Path]) -> tuple[float, float, int, int]:
    """Wall and CPU time [s] of ``zcat -f FILES | wc -lc``, and the line and byte counts."""
    start, cpu = time.perf_counter(), _children_cpu()
    names = " ".join(shlex.quote(str(f)) for f in files)
    out = subprocess.run(f"zcat -f {names} | wc -lc", shell=True, check=True,
                         capture_output=True, text=True).stdout
    lines, chars = out.split()
    return time.perf_counter() - start, _children_cpu() - cpu, int(lines), int(chars)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_snippet(snippet: str, path: Path) -> dict:
    """Run a snippet in a fresh process; its own timings and peak RSS."""
    out = subprocess.run([sys.executable, "-c", snippet, str(path)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def bench(path: Path, repeats: int) -> dict:
    """Read and features timings of one catalog beside ``zcat | wc -l``."""
    files = catalog_files(path)
    zcat, zcat_cpu, reads, features = [], [], [], []
    for _ in range(repeats):
        seconds, cpu, n_lines, n_bytes = time_zcat(files)
        zcat.append(seconds)
        zcat_cpu.append(cpu)
        reads.append(time_snippet(READER, path))
        features.append(time_snippet(FEATURES, path))
    best = min(reads, key=lambda r: r["wall_s"])
    best_features = min(features, key=lambda r: r["wall_s"])
    floor = min(zcat)
    return {
        "catalog": str(path),
        "files": len(files),
        "compressed_mb": sum(f.stat().st_size for f in files) / 2**20,
        "text_mb": n_bytes / 2**20,
        "n_lines": n_lines,
        "n_objects": best["n_objects"],
        "n_points": best["n_points"],
        "zcat_wc_l_s": floor,
        "read_wall_s": best["wall_s"],
        "read_cpu_s": best["cpu_s"],
        "read_over_zcat": best["wall_s"] / floor,
        "peak_rss_mb": max(r["peak_rss_mb"] for r in reads),
        "features_189_sensors_wall_s": best_features["wall_s"],
        "features_189_sensors_cpu_s": best_features["cpu_s"],
        "features_over_zcat": best_features["wall_s"] / floor,
        "features_peak_rss_mb": max(r["peak_rss_mb"] for r in features),
        # CPU against CPU does not depend on what else runs on the machine, unlike wall times.
        "zcat_wc_l_cpu_s": min(zcat_cpu),
        "features_cpu_over_zcat_cpu": best_features["cpu_s"] / min(zcat_cpu),
        "objects_on_sensors": best_features["n_objects"],
        "meets_targets": (best_features["wall_s"] / floor <= TARGETS["features_over_zcat"]
                          and max(r["peak_rss_mb"] for r in features)
                          <= TARGETS["features_peak_rss_mb"]),
        "profile_cpu_ms_per_text_mb": time_snippet(PROFILE, max(files, key=_size)),
        "all_zcat_s": zcat,
        "all_read_wall_s": [r["wall_s"] for r in reads],
        "all_features_wall_s": [r["wall_s"] for r in features],
    }


def _size(path: Path) -> int:
    return path.stat().st_size


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write benchmarks/results/catalog.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("catalog", nargs="?", type=Path)
    parser.add_argument("--objects", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.catalog:
        catalogs = {"given": args.catalog}
    else:
        catalogs = {"dc2": Path(f"/tmp/cputime_bench_{args.objects}.txt.gz"),
                    "points": Path(f"/tmp/cputime_bench_points_{args.objects}/visit.txt.gz")}
    for mix, path in catalogs.items():
        if mix != "given" and not path.exists():
            subprocess.run([sys.executable, str(HERE / "make_catalog.py"), str(args.objects),
                            str(path), mix], check=True)
    # Other jobs on the machine change the wall times (not the CPU times): say how busy it was.
    load_before = [round(x, 2) for x in os.getloadavg()]
    result = {
        "targets": TARGETS,
        "catalogs": {mix: bench(path, args.repeats) for mix, path in catalogs.items()},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_before": load_before,
                    "load_average_after": [round(x, 2) for x in os.getloadavg()]},
    }
    out = HERE / "results" / "catalog.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
