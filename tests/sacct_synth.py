"""Synthetic ``sacct --parsable2`` text for PhoSim jobs, from a table of real visits.

Used by the retrain-loop test and by ``benchmarks/bench_ingest_retrain.py``. Every job gets a
job line plus ``.batch`` and ``.extern`` step lines in the layout of ``tests/data/sacct`` (the
job's TotalCPU is the sum of its steps', as sacct prints it). CPU times come from the Twinkles
Run 1 reference-host CPU (``cputime_fell``) of the job's visit times a small log-normal scatter,
divided by the factor of the host class the job ran on; the visit's ``runlimit`` jobs and a share
of the others are TIMEOUT, FAILED, CANCELLED by <uid>, OUT_OF_MEMORY or NODE_FAIL.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

#: Host class name prefix -> reference seconds per host second (as in twinkles_host_factors).
HOST_CLASSES = {"fell": 1.000, "hequ": 1.130, "kiso": 1.204, "dole": 1.710, "bull": 1.419}

HEADER = "JobID|JobName|State|Elapsed|TotalCPU|NCPUS|NodeList|Start|End|ExitCode|MaxRSS"

#: The CPU limit of the Twinkles jobs [s on the host].
LIMIT_SECONDS = 120 * 3600.0


def host_factors_csv() -> str:
    """The host-factors file matching the generated node names (glob patterns)."""
    return "host,factor\n" + "".join(f"{p}*,{f}\n" for p, f in HOST_CLASSES.items())


def _clock(seconds: float, *, millis: bool) -> str:
    """sacct's [D-][HH:]MM:SS[.mmm]."""
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    if days:
        text = f"{days}-{text}"
    if millis:
        text += f".{int(round((seconds - whole) * 1000)) % 1000:03d}"
    return text


def synthetic_sacct(
    visits: pd.DataFrame,
    n_jobs: int,
    *,
    sensors: list[str] | None = None,
    seed: int = 0,
    start: datetime = datetime(2024, 5, 1),
    failure_share: float = 0.03,
) -> str:
    """sacct --parsable2 text of ``n_jobs`` PhoSim jobs over the visits (cycled) and sensors.

    Parameters
    ----------
    visits : pandas.DataFrame
        ``obshistid``, ``cputime_fell`` [s, reference host] and ``runlimit`` (1 = killed).
    n_jobs : int
        Jobs to write.
    sensors : list of str, optional
        Sensors to cycle through (default R22_S11 only).
    seed : int
        Random seed.
    start : datetime
        Start of the first job; jobs start 30 s apart.
    failure_share : float
        Share of jobs that fail (FAILED, CANCELLED, OUT_OF_MEMORY, NODE_FAIL).
    """
    rng = np.random.default_rng(seed)
    sensors = sensors or ["R22_S11"]
    prefixes = list(HOST_CLASSES)
    lines = [HEADER]
    obshistid = visits["obshistid"].to_numpy()
    reference = visits["cputime_fell"].to_numpy(dtype=float)
    runlimit = visits["runlimit"].to_numpy(dtype=int)
    failures = ["FAILED", "CANCELLED by 51234", "OUT_OF_MEMORY", "NODE_FAIL"]
    for job in range(n_jobs):
        visit = job % len(obshistid)
        sensor = sensors[(job // len(obshistid)) % len(sensors)]
        host = int(rng.integers(len(prefixes)))
        node = f"{prefixes[host]}{int(rng.integers(1, 300)):04d}"
        cpu = reference[visit] * float(np.exp(rng.normal(0.0, 0.05))) / HOST_CLASSES[prefixes[host]]
        state, exit_code = "COMPLETED", "0:0"
        if runlimit[visit] or cpu > LIMIT_SECONDS:
            state, cpu = "TIMEOUT", LIMIT_SECONDS - float(rng.uniform(0, 60))
        elif rng.random() < failure_share:
            state = failures[int(rng.integers(len(failures)))]
            cpu *= float(rng.uniform(0.01, 0.9))
            exit_code = "1:0" if state == "FAILED" else "0:9"
        extern = 0.02
        batch = cpu - extern
        elapsed = cpu * 1.02 + 20.0
        begin = start + timedelta(seconds=30.0 * job)
        end = begin + timedelta(seconds=elapsed)
        times = f"{begin:%Y-%m-%dT%H:%M:%S}|{end:%Y-%m-%dT%H:%M:%S}"
        job_id = str(100000 + job)
        name = f"phosim_{obshistid[visit]}_{sensor}"
        wall = _clock(elapsed, millis=False)
        rss = f"{int(rng.integers(2_200_000, 2_400_000))}K"
        batch_state = "CANCELLED" if state == "TIMEOUT" else state.split(" ")[0]
        lines.append(f"{job_id}|{name}|{state}|{wall}|{_clock(cpu, millis=True)}|1|{node}|"
                     f"{times}|{exit_code}|")
        lines.append(f"{job_id}.batch|batch|{batch_state}|{wall}|{_clock(batch, millis=True)}|1|"
                     f"{node}|{times}|{exit_code}|{rss}")
        lines.append(f"{job_id}.extern|extern|COMPLETED|{wall}|{_clock(extern, millis=True)}|1|"
                     f"{node}|{times}|0:0|0")
    return "\n".join(lines) + "\n"
