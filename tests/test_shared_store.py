"""A store many write to: concurrent ingests into one runs store (SQLite and a real PostgreSQL
server), and the MLflow tracking/registry store on PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from old_store import check_migrated, create_old_store
from pgserver import create_database, postgres_server
from sacct_synth import HEADER, synthetic_sacct

from cputime.runs.ingest import ingest
from cputime.runs.store import RunsStore

TWINKLES = Path(__file__).resolve().parents[1] / "cputime" / "data" / "twinkles_run1_train.csv"
N_JOBS = 400


@pytest.fixture(scope="module")
def postgres():
    with postgres_server() as (url, why):
        if url is None:
            pytest.skip(f"no PostgreSQL server: {why}")
        yield url


def overlapping_sacct_files(folder: Path, n_files: int = 4) -> list[Path]:
    """sacct files of N_JOBS jobs, each sharing a quarter of its jobs with the next."""
    visits = pd.read_csv(TWINKLES, skipinitialspace=True).head(100)
    lines = synthetic_sacct(visits, N_JOBS, seed=3, failure_share=0.05).splitlines()[1:]
    jobs = [lines[i:i + 3] for i in range(0, len(lines), 3)]  # job line + 2 steps
    size = N_JOBS // n_files
    files = []
    for k in range(n_files):
        chosen = jobs[max(0, k * size - size // 4):(k + 1) * size + size // 4]
        path = folder / f"sacct_{k}.txt"
        path.write_text(HEADER + "\n" + "\n".join(line for job in chosen for line in job) + "\n")
        files.append(path)
    return files


def ingest_concurrently(files: list[Path], uri: str) -> list[dict]:
    procs = [subprocess.Popen([sys.executable, "-m", "cputime", "ingest", str(f),
                               "--format", "sacct", "--runs-db", uri],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for f in files]
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        reports.append(json.loads(out)[0])
    return reports


def check_every_job_once(reports: list[dict], store: RunsStore) -> None:
    table = store.table()
    assert len(table) == N_JOBS and table["job_id"].is_unique
    assert sum(r["stored"] for r in reports) == N_JOBS  # each job counted by one writer
    assert sum(r["read"] for r in reports) > N_JOBS  # the files did overlap


def test_four_concurrent_ingests_into_sqlite(tmp_path):
    uri = f"sqlite:///{tmp_path / 'runs.db'}"
    reports = ingest_concurrently(overlapping_sacct_files(tmp_path), uri)
    check_every_job_once(reports, RunsStore(uri))


def test_four_concurrent_ingests_into_postgresql(tmp_path, postgres):
    uri = create_database(postgres, "runs_concurrent")
    reports = ingest_concurrently(overlapping_sacct_files(tmp_path), uri)
    check_every_job_once(reports, RunsStore(uri))
    again = ingest(overlapping_sacct_files(tmp_path), "sacct", RunsStore(uri))
    assert sum(r.stored for r in again) == 0
    assert RunsStore(uri).count() == N_JOBS


def test_old_postgresql_store_is_migrated_once_by_concurrent_openers(postgres):
    uri = create_database(postgres, "runs_old")
    create_old_store(uri)
    script = "import sys; from cputime.runs.store import RunsStore; RunsStore(sys.argv[1])"
    procs = [subprocess.Popen([sys.executable, "-c", script, uri], stderr=subprocess.PIPE,
                              text=True) for _ in range(3)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    check_migrated(RunsStore(uri))  # inverted once, every row kept


def test_sqlite_writer_waits_for_another_instead_of_failing(tmp_path):
    path = tmp_path / "runs.db"
    uri = f"sqlite:///{path}"
    RunsStore(uri)  # the table exists
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock for 3 s
    release = threading.Timer(3.0, holder.execute, args=("COMMIT",))
    release.start()
    start = time.monotonic()
    try:
        reports = ingest_concurrently(overlapping_sacct_files(tmp_path, 1), uri)
    finally:
        release.join()
        holder.close()
    assert time.monotonic() - start >= 3.0
    assert reports[0]["stored"] == RunsStore(uri).count() > 0


def test_mlflow_tracking_store_on_postgresql_with_concurrent_registrations(postgres):
    from mlflow import MlflowClient

    from cputime.model.loading import resolve_model

    uri = create_database(postgres, "mlflow")
    MlflowClient(tracking_uri=uri, registry_uri=uri).search_experiments()  # creates the tables
    script = ("import sys; from cputime.model.loading import default_model_dir; "
              "from cputime.runs.registry import log_and_register; "
              "print(log_and_register(default_model_dir(), name='cputime', "
              "tracking_uri=sys.argv[1]).version)")
    procs = [subprocess.Popen([sys.executable, "-c", script, uri], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    versions = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        versions.append(out.strip().splitlines()[-1])
    assert sorted(versions) == ["1", "2"]
    loaded = resolve_model("models:/cputime/2", tracking_uri=uri)
    assert loaded.version == "cputime/2"
