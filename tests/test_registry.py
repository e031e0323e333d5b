"""Tests of cputime.runs.registry: MLflow writes on a real SQLite store, and the registered
version as an MLflow Model built from code."""

from __future__ import annotations

import pytest

from cputime.model.loading import default_model_dir, resolve_model
from cputime.runs.registry import _artifact_location, log_and_register


def test_artifacts_go_next_to_the_sqlite_file(tmp_path):
    location = _artifact_location(f"sqlite:///{tmp_path}/mlflow.db", "exp")
    assert location == (tmp_path / "mlartifacts" / "exp").as_uri()
    assert _artifact_location("http://localhost:5000", "exp") is None


VISITS = {"obshistid": [230, 231], "filter": [2, 1], "altitude": [66.3, 60.0],
          "moonalt": [-36.1, 35.0], "moonphase": [3.8, 85.0], "dist2moon": [124.3, 60.0],
          "sunalt": [-32.7, -40.0]}  # fmt: skip
PYFUNC_COLUMNS = ["cpu_seconds_p50", "cpu_seconds_upper", "walltime_seconds", "segments"]


@pytest.fixture(scope="module")
def registered(mlflow_uri):
    return log_and_register(default_model_dir(), name="pyfunc-test", tracking_uri=mlflow_uri)


def _expected(registered, mlflow_uri, **options):
    import pandas as pd

    from cputime.physics.features import visit_features
    from cputime.planning.predictions import predict_jobs

    loaded = resolve_model(registered.uri, tracking_uri=mlflow_uri)
    return predict_jobs(loaded.model, visit_features(pd.DataFrame(VISITS)), **options)


def test_registered_version_is_an_mlflow_model_built_from_code(
    registered, mlflow_uri, monkeypatch
):
    """``mlflow.pyfunc.load_model`` predicts what cputime's own (JSON-only) loader does."""
    import mlflow.pyfunc
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts
    from mlflow.models import Model

    client = MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
    source = client.get_model_version_download_uri("pyfunc-test", registered.version)
    local = download_artifacts(artifact_uri=source, tracking_uri=mlflow_uri)
    flavor = Model.load(local).flavors["python_function"]
    assert flavor["loader_module"] == "mlflow.pyfunc.loaders.code_model"  # code, not a pickle
    assert not any(p.endswith((".pkl", ".pickle")) for p in
                   (a.path for a in client.list_artifacts(registered.run_id, "model")))

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", mlflow_uri)
    served = mlflow.pyfunc.load_model(f"models:/pyfunc-test/{registered.version}")
    got = served.predict(pd.DataFrame(VISITS),
                         params={"queue_max_seconds": 4 * 3600.0, "threads": 2})  # fmt: skip
    expected = _expected(registered, mlflow_uri, threads=2, queue_max_seconds=4 * 3600.0)
    pd.testing.assert_frame_equal(got[PYFUNC_COLUMNS], expected[PYFUNC_COLUMNS])
    assert (got["segments"] > 1).any()


def test_mlflow_models_serve_answers_with_the_same_predictions(registered, mlflow_uri, tmp_path):
    """The real ``mlflow models serve`` (this environment, 127.0.0.1) serves the version."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    import httpx
    import pandas as pd

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_uri, "MLFLOW_REGISTRY_URI": mlflow_uri}
    server = subprocess.Popen(
        [sys.executable, "-c", "from mlflow.cli import cli; cli()", "models", "serve",
         "-m", f"models:/pyfunc-test/{registered.version}", "--env-manager", "local",
         "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "mlflow models serve did not start in 120 s"
            time.sleep(0.5)
        frame = pd.DataFrame(VISITS)
        response = httpx.post(
            f"http://127.0.0.1:{port}/invocations",
            json={"dataframe_split": frame.to_dict(orient="split", index=False),
                  "params": {"queue_max_seconds": 4 * 3600.0}},
            timeout=60,
        )  # fmt: skip
        assert response.status_code == 200, response.text
        got = pd.DataFrame(response.json()["predictions"])
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    expected = _expected(registered, mlflow_uri, queue_max_seconds=4 * 3600.0)
    pd.testing.assert_frame_equal(got[PYFUNC_COLUMNS], expected[PYFUNC_COLUMNS],
                                  check_dtype=False)  # fmt: skip
