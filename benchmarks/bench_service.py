"""Latency and throughput of ``cputime serve``, and of ``mlflow models serve`` where it runs.

Two loads, each against a real server started in a subprocess on 127.0.0.1:

- single-visit requests (``POST /v1/predict`` with one visit) from ``--clients`` concurrent
  clients (threads) for ``--duration`` seconds, once with keep-alive connections and once with
  a new connection per request: p50/p90/p99 latency and requests per second;
- batches of ``--batch`` visits, one at a time: latency per batch and visits per second.

Visits are drawn at random (seed 0) from realistic ranges, so no two requests are the same.
``mlflow models serve`` serves the same model wrapped as an MLflow pyfunc (models-from-code, no
pickle) with ``--env-manager local``; when it cannot start here the reason is recorded instead.

``cputime serve`` is measured on ``--servers`` fresh servers, one after another: the result is
the one with the median keep-alive p99, with every server's numbers in ``cputime_all_servers``
(on the 2-core VM, single-visit throughput differs by up to a third between two starts of the
same server, and stays put while one server runs).

Usage::

    python benchmarks/bench_service.py -o benchmarks/results/service.json
    python benchmarks/bench_service.py --also-workers 2   # and again with 2 server processes

Results depend on the machine and on what else runs on it: the JSON records the core count and
the load average before and after.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def random_visits(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [
        {
            "obshistid": 100000 + i,
            "filter": rng.randrange(6),
            "altitude": round(rng.uniform(25, 89), 3),
            "moonalt": round(rng.uniform(-60, 60), 3),
            "moonphase": round(rng.uniform(0, 100), 2),
            "dist2moon": round(rng.uniform(10, 170), 3),
            "sunalt": round(rng.uniform(-60, -12), 3),
            "vistime": 33,
            "nsnap": 2,
            "seeing": round(rng.uniform(0.4, 1.5), 3),
        }
        for i in range(n)
    ]


def wait_healthy(port: int, path: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server did not become healthy")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _post(conn: http.client.HTTPConnection, path: str, body: bytes) -> int:
    conn.request("POST", path, body, {"content-type": "application/json"})
    response = conn.getresponse()
    response.read()
    return response.status


def single_visit_load(port, path, make_body, clients: int, duration: float,
                      keep_alive: bool = True) -> dict:
    """``clients`` threads posting one visit each, back to back, for ``duration`` seconds, on
    one connection each (``keep_alive``) or a new connection per request."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    bodies = [make_body([v]) for v in random_visits(2000, seed=1)]
    start = threading.Barrier(clients + 1)
    end_at = [0.0]

    def client(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        start.wait()
        i = k
        while time.perf_counter() < end_at[0]:
            t0 = time.perf_counter()
            if not keep_alive:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            status = _post(conn, path, bodies[i % len(bodies)])
            latencies[k].append(time.perf_counter() - t0)
            errors[k] += status != 200
            i += clients
        conn.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    end_at[0] = t0 + duration
    start.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    all_ms = np.array([x for lat in latencies for x in lat]) * 1e3
    return {
        "clients": clients,
        "keep_alive": keep_alive,
        "requests": int(all_ms.size),
        "errors": int(sum(errors)),
        "seconds": round(elapsed, 2),
        "requests_per_second": round(all_ms.size / elapsed, 1),
        "latency_ms": {q: round(float(np.percentile(all_ms, p)), 2)
                       for q, p in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))},
    }


def batch_load(port, path, make_body, size: int, repeats: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    seconds, errors = [], 0
    for r in range(repeats):
        body = make_body(random_visits(size, seed=10 + r))
        t0 = time.perf_counter()
        errors += _post(conn, path, body) != 200
        seconds.append(time.perf_counter() - t0)
    s = np.array(seconds)
    return {
        "visits_per_request": size,
        "requests": repeats,
        "errors": errors,
        "latency_s": {"p50": round(float(np.median(s)), 3), "max": round(float(s.max()), 3)},
        "visits_per_second": round(size / float(np.median(s)), 1),
        "request_bytes": len(body),
    }


def cputime_body(visits: list[dict]) -> bytes:
    return json.dumps({"visits": visits}).encode()


def mlflow_body(visits: list[dict]) -> bytes:
    return json.dumps({"dataframe_records": visits}).encode()


def run_loads(port, path, make_body, args) -> dict:
    single_visit_load(port, path, make_body, 2, 1.0)  # warm-up
    return {
        "single_visit": single_visit_load(port, path, make_body, args.clients, args.duration),
        "single_visit_new_connections": single_visit_load(port, path, make_body, args.clients,
                                                          args.duration, keep_alive=False),
        "batch": batch_load(port, path, make_body, args.batch, args.batch_repeats),
    }


def bench_cputime(args, workers: int) -> dict:
    port = _free_port()
    command = [sys.executable, "-m", "cputime", "serve", "--port", str(port),
               "--no-access-log", "--workers", str(workers),
               "--max-body-bytes", str(64 * 1024 * 1024)]
    if args.model:
        command += ["--model", args.model]
    proc = subprocess.Popen(command, cwd=ROOT)
    try:
        wait_healthy(port, "/healthz", proc)
        return {"server": f"cputime serve (FastAPI + uvicorn, {workers} worker(s))",
                **run_loads(port, "/v1/predict", cputime_body, args)}
    finally:
        stop(proc)


def median_run(runs: list[dict]) -> dict:
    """The run whose keep-alive single-visit p99 is the median of the runs'."""
    ranked = sorted(runs, key=lambda run: run["single_visit"]["latency_ms"]["p99"])
    return ranked[(len(ranked) - 1) // 2]


def bench_mlflow(args) -> dict:
    """``mlflow models serve`` on the same model, or why it could not run."""
    try:
        from cputime.model.loading import default_model_dir
        from cputime.runs.registry import save_mlflow_model
    except ImportError as err:
        return {"server": "mlflow models serve", "skipped": f"mlflow not importable: {err}"}
    work = Path(tempfile.mkdtemp(prefix="cputime-mlflow-"))
    model_dir = Path(args.model) if args.model else default_model_dir()
    try:  # the registry's own MLflow Model of the same model folder (models-from-code)
        save_mlflow_model(model_dir, work / "pyfunc")
    except Exception as err:  # mlflow-skinny may lack what save_model needs
        return {"server": "mlflow models serve",
                "skipped": f"could not save the pyfunc model: {type(err).__name__}: {err}"}
    port = _free_port()
    log = work / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            ["mlflow", "models", "serve", "-m", str(work / "pyfunc"), "--env-manager", "local",
             "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers)],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        try:
            wait_healthy(port, "/ping", proc, timeout=120)
        except RuntimeError as err:
            tail = log.read_text().strip().splitlines()[-3:]
            return {"server": "mlflow models serve", "skipped": f"{err}: {' | '.join(tail)}"}
        return {"server": f"mlflow models serve ({args.workers} worker(s), --env-manager local)",
                **run_loads(port, "/invocations", mlflow_body, args)}
    finally:
        stop(proc)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model spec (default: the shipped model)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0, help="[s] of single-visit load")
    parser.add_argument("--batch", type=int, default=10_000, help="visits per batch request")
    parser.add_argument("--batch-repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--servers", type=int, default=3,
                        help="fresh cputime servers measured one after another (one server "
                             "start can be ~30 %% faster than the next on the same VM)")
    parser.add_argument("--also-workers", type=int, nargs="*", default=[],
                        help="cputime serve measured again with these numbers of processes "
                             "(results under cputime_workers_N)")
    parser.add_argument("--no-mlflow", action="store_true", help="skip mlflow models serve")
    parser.add_argument("-o", "--output", type=Path,
                        default=ROOT / "benchmarks" / "results" / "service.json")
    args = parser.parse_args(argv)

    results = {
        "machine": {
            "cores": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": {k: v for k, v in vars(args).items() if k != "output"},
    }
    runs = [bench_cputime(args, args.workers) for _ in range(args.servers)]
    results["cputime"] = median_run(runs)
    results["cputime_all_servers"] = [
        {"single_visit_p99_ms": run["single_visit"]["latency_ms"]["p99"],
         "single_visit_requests_per_second": run["single_visit"]["requests_per_second"],
         "new_connections_p99_ms": run["single_visit_new_connections"]["latency_ms"]["p99"],
         "batch_visits_per_second": run["batch"]["visits_per_second"]}
        for run in runs
    ]
    for workers in args.also_workers:
        results[f"cputime_workers_{workers}"] = bench_cputime(args, workers)
    if not args.no_mlflow:
        results["mlflow"] = bench_mlflow(args)
    results["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
