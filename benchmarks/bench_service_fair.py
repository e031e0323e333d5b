"""Fair share and memory of ``cputime serve`` under a big request (issue 12's targets).

Against a real server on 127.0.0.1 (a subprocess, default settings):

1. single-visit latency, quiet: ``--quiet`` requests one after another;
2. single-visit latency while one client's big request (``--big-visits`` visits x all 189
   sensors) is predicted: requests one after another until the big one is answered;
3. the server's peak resident memory (VmHWM, summed over the server and its child processes:
   the bulk lane's process and multiprocessing's resource tracker) after the big request and
   after uploading the largest catalog the default limits allow (250 MB of object lines,
   gzipped).

Before the quiet phase one 65-visit request starts the bulk lane's process, as any earlier big
request of a running server would have.

Targets: single-visit p99 under load within 2x its quiet value; peak memory under 1 GB.

Usage::

    python benchmarks/bench_service_fair.py -o benchmarks/results/service_fair.json

Results depend on the machine and on what else runs on it: the JSON records the core count and
the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from upload_synth import big_catalog_gzip  # noqa: E402

VISIT = {"obshistid": 230, "filter": 2, "altitude": 66.3, "moonalt": -20.5, "moonphase": 12.0,
         "dist2moon": 120.0, "sunalt": -35.0, "vistime": 33, "nsnap": 2, "seeing": 0.7}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _process_tree(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += (task / "children").read_text().split()
    return [pid] + [p for child in children for p in _process_tree(int(child))]


def _peak_rss_mb(pid: int) -> float:
    """Sum of the VmHWM of ``pid`` and its descendants [MB] (an upper bound of their peak)."""
    total = 0
    for each in _process_tree(pid):
        status = Path(f"/proc/{each}/status").read_text()
        total += int(status.split("VmHWM:")[1].split()[0])
    return total / 1024


def _percentiles(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1000
    return {"n": len(ms), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "max_ms": round(float(ms.max()), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quiet", type=int, default=200, help="quiet single-visit requests")
    parser.add_argument("--big-visits", type=int, default=260, help="visits of the big request")
    parser.add_argument("-o", "--output", type=Path, default=None)
    args = parser.parse_args()

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    load_before = os.getloadavg()
    proc = subprocess.Popen([sys.executable, "-m", "cputime", "serve", "--port", str(port),
                             "--no-access-log"], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(url + "/healthz")
                break
            except httpx.TransportError:
                time.sleep(0.2)
        client = httpx.Client(base_url=url, timeout=300)

        def single() -> float:
            start = time.perf_counter()
            assert client.post("/v1/predict", json={"visits": [VISIT]}).status_code == 200
            return time.perf_counter() - start

        for _ in range(5):
            single()
        assert client.post("/v1/predict", json={"visits": [VISIT] * 65}).status_code == 200
        quiet = [single() for _ in range(args.quiet)]
        big_seconds: list[float] = []

        def big() -> None:
            body = {"visits": [VISIT] * args.big_visits, "sensors": ["all"]}
            with httpx.Client(base_url=url, timeout=600) as other:
                start = time.perf_counter()
                assert other.post("/v1/predict", json=body).status_code == 200
                big_seconds.append(time.perf_counter() - start)

        thread = threading.Thread(target=big)
        thread.start()
        time.sleep(0.3)
        loaded = []
        while thread.is_alive():
            loaded.append(single())
        thread.join()
        rss_fan_out = _peak_rss_mb(proc.pid)
        start = time.perf_counter()
        upload = client.post("/v1/predict/catalog?sensors=R22_S11", content=big_catalog_gzip())
        upload_seconds = time.perf_counter() - start
        result = {
            "cores": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
            "single_visit_quiet": _percentiles(quiet),
            "single_visit_under_big_request": _percentiles(loaded),
            "big_request": {"rows": args.big_visits * 189, "seconds": round(big_seconds[0], 2)},
            "p99_ratio_loaded_to_quiet": round(float(np.percentile(loaded, 99)
                                                     / np.percentile(quiet, 99)), 2),
            "peak_rss_mb_after_fan_out": round(rss_fan_out, 1),
            "upload_250mb_catalog": {"status": upload.status_code,
                                     "seconds": round(upload_seconds, 2),
                                     "peak_rss_mb": round(_peak_rss_mb(proc.pid), 1)},
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        }
    finally:
        proc.terminate()
        proc.wait(30)
    text = json.dumps(result, indent=2)
    print(text)
    if args.output is not None:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
