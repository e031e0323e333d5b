"""Fair share and memory of ``cputime serve`` under a big request (issue 12's targets).

Against a real server on 127.0.0.1 (a subprocess, default settings):

1. single-visit latency, quiet: ``--quiet`` requests one after another;
2. single-visit latency while another client sends big requests (``--big-visits`` visits x all
   189 sensors) one after another for ``--loaded-seconds``: requests one after another until
   the last big one is answered;
3. the latency of a 10,000-visit request, alone (median of 7);
4. the server's peak resident memory (VmHWM, summed over the server and its child processes:
   the bulk lane's process and multiprocessing's resource tracker) after the big request and
   after uploading the largest catalog the default limits allow (250 MB of object lines,
   gzipped).

Before the quiet phase one 65-visit request starts the bulk lane's process, as any earlier big
request of a running server would have.

Targets: single-visit p99 under load within 2x its quiet value; peak memory under 1 GB.

Each configuration (the bulk lane in its own process, the default; and in a thread of the
server, ``CPUTIME_BULK_PROCESS=0``, as before) is measured on ``--repeats`` fresh servers, taken
in turn; the result reports the run with the median p99 ratio and all runs' ratios.

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

from process_tree import peak_rss  # noqa: E402
from upload_synth import big_catalog_gzip  # noqa: E402

VISIT = {"obshistid": 230, "filter": 2, "altitude": 66.3, "moonalt": -20.5, "moonphase": 12.0,
         "dist2moon": 120.0, "sunalt": -35.0, "vistime": 33, "nsnap": 2, "seeing": 0.7}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _peak_rss_mb(pid: int) -> float:
    return peak_rss(pid) / 2**20


def _percentiles(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1000
    return {"n": len(ms), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "max_ms": round(float(ms.max()), 1)}


def measure(big_visits: int, quiet_requests: int, loaded_seconds: float,
            environ: dict[str, str]) -> dict:
    """One fresh server with ``environ`` added: the three measurements."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "cputime", "serve", "--port", str(port),
                             "--no-access-log"], stderr=subprocess.DEVNULL,
                            env={**os.environ, **environ})
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
        quiet = [single() for _ in range(quiet_requests)]
        big_seconds: list[float] = []

        body = json.dumps({"visits": [VISIT] * big_visits, "sensors": ["all"]})

        def big() -> None:  # big requests one after another for loaded_seconds
            # by curl: the load generator should use little of the machine's two cores itself
            # (reading 15 MB answers with httpx took as much CPU as the server's small lane)
            end = time.perf_counter() + loaded_seconds
            while time.perf_counter() < end:
                done = subprocess.run(
                    ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}",
                     "-H", "content-type: application/json", "--data-binary", "@-",
                     url + "/v1/predict"], input=body, capture_output=True, text=True,
                    check=True)
                status, seconds = done.stdout.split()
                assert status == "200", status
                big_seconds.append(float(seconds))

        thread = threading.Thread(target=big)
        thread.start()
        time.sleep(0.3)
        loaded = []
        while thread.is_alive():
            loaded.append(single())
        thread.join()
        rss_fan_out = _peak_rss_mb(proc.pid)
        batch = {"visits": [{**VISIT, "obshistid": k} for k in range(10_000)]}
        batch_seconds = []
        for _ in range(7):
            start = time.perf_counter()
            assert client.post("/v1/predict", json=batch).status_code == 200
            batch_seconds.append(time.perf_counter() - start)
        start = time.perf_counter()
        upload = client.post("/v1/predict/catalog?sensors=R22_S11", content=big_catalog_gzip())
        upload_seconds = time.perf_counter() - start
        return {
            "single_visit_quiet": _percentiles(quiet),
            "single_visit_under_big_request": _percentiles(loaded),
            "big_request": {"rows": big_visits * 189, "requests": len(big_seconds),
                            "seconds": round(float(np.median(big_seconds)), 2)},
            "p99_ratio_loaded_to_quiet": round(float(np.percentile(loaded, 99)
                                                     / np.percentile(quiet, 99)), 2),
            "peak_rss_mb_after_fan_out": round(rss_fan_out, 1),
            "batch_10000_visits_seconds_median_of_7": round(float(np.median(batch_seconds)), 3),
            "upload_250mb_catalog": {"status": upload.status_code,
                                     "seconds": round(upload_seconds, 2),
                                     "peak_rss_mb": round(_peak_rss_mb(proc.pid), 1)},
        }
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quiet", type=int, default=1000, help="quiet single-visit requests")
    parser.add_argument("--loaded-seconds", type=float, default=6.0,
                        help="how long big requests are sent, one after another")
    parser.add_argument("--big-visits", type=int, default=260, help="visits of the big request")
    parser.add_argument("--repeats", type=int, default=3,
                        help="fresh servers measured per configuration")
    parser.add_argument("-o", "--output", type=Path, default=None)
    args = parser.parse_args()

    load_before = os.getloadavg()
    configurations = {"process": {"CPUTIME_BULK_PROCESS": "1"},
                      "thread": {"CPUTIME_BULK_PROCESS": "0"}}
    runs: dict[str, list[dict]] = {name: [] for name in configurations}
    for _ in range(args.repeats):  # interleaved: both see the same drift in the machine's load
        for name, environ in configurations.items():
            runs[name].append(measure(args.big_visits, args.quiet, args.loaded_seconds,
                                      environ))

    def summary(name: str) -> dict:
        ratios = [run["p99_ratio_loaded_to_quiet"] for run in runs[name]]
        median_run = sorted(runs[name], key=lambda run: run["p99_ratio_loaded_to_quiet"])[
            (len(ratios) - 1) // 2]
        return {"bulk_lane": name, **median_run, "p99_ratios_of_all_runs": ratios}

    result = {
        "cores": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        **summary("process"),  # the default: the bulk lane in its own process
        "bulk_lane_in_thread": summary("thread"),  # before, and CPUTIME_BULK_PROCESS=0
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.output is not None:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
