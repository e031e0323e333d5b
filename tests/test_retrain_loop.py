"""The whole retraining loop on a real SQLite runs store and a real MLflow SQLite store:
sacct text (steps, timeouts, failures) -> ingest twice -> one record per job -> retrain ->
registered version with metrics -> champion alias -> predictions from models:/NAME@champion equal
those of the same model loaded from its folder -> monitor."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sacct_synth import host_factors_csv, synthetic_sacct

from cputime.frontends.cli import ExitStatus, main
from cputime.model.loading import resolve_model
from cputime.runs.registry import CHAMPION
from cputime.runs.retrain import retrain, time_split
from cputime.runs.store import RunsStore

REPO = Path(__file__).resolve().parents[1]
TWINKLES = REPO / "cputime" / "data" / "twinkles_run1_train.csv"
CATALOG_RUNS = REPO / "features" / "phosim_runs.csv"
SMALL = {"n_estimators": 30, "learning_rate": 0.2, "cv": 3}
N_VISITS = 240


@pytest.fixture(scope="module")
def visits(tmp_path_factory) -> Path:
    """The first visits of the Twinkles training table (header keywords + CPU)."""
    table = pd.read_csv(TWINKLES, skipinitialspace=True).head(N_VISITS)
    path = tmp_path_factory.mktemp("visits") / "visits.csv"
    table.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def catalog_runs() -> Path:
    if not CATALOG_RUNS.exists():
        pytest.skip(f"{CATALOG_RUNS} missing (cputime build-default makes it)")
    return CATALOG_RUNS


def _ingest(sacct: Path, visits: Path, hosts: Path, uri: str, capsys) -> list[dict]:
    code = main(["ingest", str(sacct), "--format", "sacct", "--visits", str(visits),
                 "--host-slowdowns", str(hosts), "--runs-db", uri])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def test_time_split_holds_out_the_most_recent():
    table = pd.DataFrame({"ended": pd.date_range("2024-05-01", periods=10)})
    train, holdout = time_split(table, 0.2)
    assert len(train) == 8 and len(holdout) == 2
    assert holdout["ended"].min() > train["ended"].max()


def test_whole_loop(tmp_path, visits, catalog_runs, mlflow_uri, capsys):
    from mlflow import MlflowClient

    table = pd.read_csv(visits)
    sacct = tmp_path / "sacct.txt"
    n_jobs = 2 * N_VISITS
    sacct.write_text(synthetic_sacct(table, n_jobs, sensors=["R22_S11", "R22_S12"], seed=1))
    hosts = tmp_path / "hosts.csv"
    hosts.write_text(host_factors_csv())
    runs_uri = f"sqlite:///{tmp_path / 'runs.db'}"

    first = _ingest(sacct, visits, hosts, runs_uri, capsys)[0]
    second = _ingest(sacct, visits, hosts, runs_uri, capsys)[0]
    assert first["read"] == n_jobs and first["stored"] == n_jobs and first["problems"] == 0
    assert second["stored"] == 0 and second["already_stored"] == n_jobs
    store = RunsStore(runs_uri)
    stored = store.table()
    assert len(stored) == n_jobs and stored["job_id"].is_unique  # steps not stored as jobs
    assert {"finished", "censored", "failed"} <= set(stored["outcome"])
    assert (stored["cpu_seconds_ref"] >= stored["cpu_seconds"]).all()  # factors >= 1

    name = "cputime-test"
    out = tmp_path / "challenger"
    result = retrain(store, name=name, runs=_runs(catalog_runs), tracking_uri=mlflow_uri,
                     promote=True, regressor_params=SMALL, out=out)
    assert result.promoted and result.registered.version == "1", result.decision.reason
    assert result.split["n_holdout"] > 0
    client = MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
    version = client.get_model_version_by_alias(name, CHAMPION)
    assert str(version.version) == "1"
    assert 0 <= float(version.tags["challenger_killed_share"]) <= 1
    run = client.get_run(result.registered.run_id)
    assert {"challenger_killed_share", "challenger_mae_dex"} <= set(run.data.metrics)
    artifacts = {a.path for a in client.list_artifacts(result.registered.run_id)}
    assert {"model", "plots", "tables"} <= artifacts

    # The registered champion predicts exactly as the folder it was made from.
    predictions = {}
    for label, spec in (("registry", f"models:/{name}@{CHAMPION}"), ("folder", str(out))):
        path = tmp_path / f"pred_{label}.csv"
        code = main(["predict", str(visits), "--model", spec, "--tracking-uri", mlflow_uri,
                     "-o", str(path)])
        assert code == 0, capsys.readouterr().err
        predictions[label] = pd.read_csv(path).drop(columns=["model_version"])
    pd.testing.assert_frame_equal(predictions["registry"], predictions["folder"])
    assert resolve_model(f"models:/{name}@{CHAMPION}", mlflow_uri).version == f"{name}/1"

    # A second challenger (CLI) is compared with the champion on the same held-out runs.
    code = main(["retrain", "--runs-db", runs_uri, "--tracking-uri", mlflow_uri, "--name", name,
                 "--runs", str(catalog_runs), "--regressor-params", json.dumps(SMALL)])
    out2 = capsys.readouterr()
    assert code == 0, out2.err
    summary = json.loads(out2.out)
    assert summary["registered"]["version"] == "2" and summary["champion_version"] == "1"
    assert summary["champion"] is not None and not summary["promoted"]
    assert "cputime retrain: registered cputime-test version 2" in out2.err
    assert str(client.get_model_version_by_alias(name, CHAMPION).version) == "1"

    # Monitoring the champion on the stored runs.
    report_dir = tmp_path / "monitor"
    code = main(["monitor", "--runs-db", runs_uri, "--model", f"models:/{name}@{CHAMPION}",
                 "--tracking-uri", mlflow_uri, "--since", "2024-05-01", "--min-coverage", "0.5",
                 "-o", str(report_dir)])
    report = json.loads(capsys.readouterr().out)
    assert code == ExitStatus.OK and report["n_runs"] > 0 and report["coverage"] >= 0.5
    assert (report_dir / "monitor.png").stat().st_size > 0
    drift = pd.read_csv(report_dir / "monitor_drift.csv")
    assert "moonalt" in set(drift["feature"])
    code = main(["monitor", "--runs-db", runs_uri, "--model", str(out),
                 "--min-coverage", "1.0"])
    report = json.loads(capsys.readouterr().out)
    assert code == (ExitStatus.ALERT if report["coverage"] < 1.0 else ExitStatus.OK)


def _runs(path: Path):
    from cputime.runs.training import load_runs_table

    return load_runs_table(path)
