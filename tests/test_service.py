"""The HTTP service, run for real: `cputime serve` in a subprocess on a free port, httpx client."""

import gzip
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from cputime.frontends.cli import main

DATA = Path(__file__).parent / "data"
CATALOG = DATA / "phosim_runs" / "base" / "catalog.txt"
LIMIT = 64 * 1024
INFLATED_LIMIT = 1024 * 1024

VISITS = [
    {"obshistid": 230, "filter": 2, "altitude": 66.3, "moonalt": -20.5, "moonphase": 12.0,
     "dist2moon": 120.0, "sunalt": -35.0, "vistime": 33, "nsnap": 2, "seeing": 0.7},
    {"obshistid": 231, "filter": 5, "altitude": 41.0, "moonalt": 35.0, "moonphase": 88.0,
     "dist2moon": 45.0, "sunalt": -19.0, "vistime": 30},
    # header keywords in the older OpSim style are accepted too
    {"Opsim_obshistid": 232, "Opsim_filter": 0, "Opsim_altitude": 80.0, "Opsim_moonalt": -5.0,
     "Opsim_moonphase": 50.0, "Opsim_dist2moon": 90.0, "Opsim_sunalt": -25.0},
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`cputime serve ...` in a subprocess, stopped by its own process id."""

    def __init__(self, *args: str, env: dict | None = None):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cputime", "serve", "--port", str(self.port),
             "--no-access-log", *args],
            env={**os.environ, **(env or {})}, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stderr.read()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not become healthy")

    def stop(self) -> str:
        self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err


@pytest.fixture(scope="module")
def server():
    srv = Server("--max-body-bytes", str(LIMIT),
                 env={"CPUTIME_MAX_CATALOG_BYTES": str(INFLATED_LIMIT)})
    yield srv
    print(srv.stop())  # the server's log, shown with any failure


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def _cli_predictions(tmp_path, inputs, *options) -> list[dict]:
    out = tmp_path / "cli.json"
    assert main(["predict", *map(str, inputs), *options, "-o", str(out)]) == 0
    return json.loads(out.read_text())  # the filter as its letter, as the service writes it


# ---------------------------------------------------------------------------------- routes


def test_healthz_and_model(client):
    health = client.get("/healthz")
    assert health.status_code == 200
    info = client.get("/v1/model").json()
    assert info["version"] == health.json()["version"]
    assert 0 < info["confidence_level"] < 1
    assert "filter" in info["features"]
    assert info["training"]["training_rows"] > 0
    assert client.get("/docs").status_code == 200
    assert "/v1/predict/catalog" in client.get("/openapi.json").json()["paths"]


def test_predict_visits_equals_the_cli(client, tmp_path):
    table = tmp_path / "visits.csv"
    pd.DataFrame(VISITS[:2]).to_csv(table, index=False)
    options = {"confidence": 0.9, "queue_max_seconds": 3600, "host_factor": 0.6, "threads": 4}
    response = client.post("/v1/predict", json={"visits": VISITS[:2], **options})
    assert response.status_code == 200, response.text
    body = response.json()
    cli = _cli_predictions(tmp_path, [table], "--confidence", "0.9", "--queue-max", "60",
                           "--host-factor", "0.6", "--threads", "4")
    assert body["predictions"] == cli
    assert body["model"]["version"] == cli[0]["model_version"]


def test_concurrent_requests_get_the_rows_they_get_alone(server, client):
    """Requests arriving together are predicted in one batch; each gets exactly its own rows."""
    from concurrent.futures import ThreadPoolExecutor

    visits = [{**VISITS[k % 2], "obshistid": 1000 + k, "moonphase": 5.0 * k} for k in range(16)]
    alone = [client.post("/v1/predict", json={"visits": [v], "threads": 2}).json()
             for v in visits]

    def post(visit):
        with httpx.Client(base_url=server.url, timeout=60) as c:
            return c.post("/v1/predict", json={"visits": [visit], "threads": 2}).json()

    for _ in range(2):
        with ThreadPoolExecutor(16) as pool:
            together = list(pool.map(post, visits))
        assert together == alone


def test_predict_per_sensor_and_header_keyword_styles(client):
    payload = {"visits": VISITS, "sensors": ["R22_S11", "r01_s10"]}
    response = client.post("/v1/predict", json=payload)
    assert response.status_code == 200, response.text
    rows = response.json()["predictions"]
    assert [(r["obshistid"], r["sensor"]) for r in rows] == [
        (v, s) for v in (230, 231, 232) for s in ("R22_S11", "R01_S10")
    ]
    assert all(r["cpu_seconds_upper"] >= r["cpu_seconds_p50"] > 0 for r in rows)
    assert rows[4]["filter"] == "u"


def test_catalog_upload_plain_and_gzip_equal_the_cli(client, tmp_path):
    cli = _cli_predictions(tmp_path, [CATALOG], "--sensors", "R22_S11,R22_S12")
    text = CATALOG.read_bytes()
    for body in (text, gzip.compress(text)):
        response = client.post("/v1/predict/catalog?sensors=R22_S11,R22_S12", content=body)
        assert response.status_code == 200, response.text
        assert response.json()["predictions"] == cli


def test_catalog_upload_refuses_includeobj(client):
    body = CATALOG.read_text() + "includeobj /etc/passwd\n"
    response = client.post("/v1/predict/catalog?sensors=R22_S11", content=body)
    assert response.status_code == 422
    assert "includeobj" in response.json()["detail"]
    gz = client.post("/v1/predict/catalog?sensors=R22_S11", content=gzip.compress(body.encode()))
    assert gz.status_code == 422


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"visits": [{**VISITS[0], "filter": 7}]}, "visits.0.filter"),
        ({"visits": [{**VISITS[0], "filter": "q"}]}, "visits.0.filter"),
        ({"visits": [{**VISITS[0], "vistime": -30}]}, "visits.0.vistime"),
        ({"visits": [{k: v for k, v in VISITS[0].items() if k != "obshistid"}]},
         "visits.0.obshistid"),
        ({"visits": []}, "visits"),
        ({"visits": VISITS[:1], "confidence": 1.5}, "confidence"),
        ({"visits": VISITS[:1], "threads": 0}, "threads"),
        ({"visits": VISITS[:1], "sensors": ["R99_S99"]}, "sensors"),
        ({"visit": VISITS[:1]}, "visits"),
    ],
)
def test_bad_requests_name_the_field(client, payload, field):
    response = client.post("/v1/predict", json=payload)
    assert response.status_code == 422, response.text
    body = response.json()
    message = body.get("message", body["detail"])
    assert message.startswith(field), message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("content", "params"),
    [
        (b"{not json", None),
        (b"", None),
        (b'"a string"', None),
    ],
)
def test_bad_bodies_are_4xx(client, content, params):
    response = client.post("/v1/predict", content=content,
                           headers={"content-type": "application/json"})
    assert response.status_code in (400, 422), response.text


@pytest.mark.parametrize(
    ("content", "query", "expected"),
    [
        (b"", "sensors=R22_S11", "empty body"),
        (b"rightascension 1\n", "sensors=R22_S11", "<upload>"),
        (b"\x1f\x8bnot gzip at all", "sensors=R22_S11", "gzip"),
        (CATALOG.read_bytes(), "sensors=R22_S99", "sensors"),
        (CATALOG.read_bytes(), "sensors=R22_S11&threads=0", "threads"),
        (CATALOG.read_bytes().replace(b"filter 2", b"filter 9"), "sensors=R22_S11", "filter"),
    ],
)
def test_bad_catalog_uploads_are_422(client, content, query, expected):
    response = client.post(f"/v1/predict/catalog?{query}", content=content)
    assert response.status_code == 422, response.text
    body = response.json()
    assert expected in body.get("message", "") + json.dumps(body["detail"])


def test_bodies_over_the_limit_are_413(client):
    big = b" " * (LIMIT + 1)
    assert client.post("/v1/predict", content=big,
                       headers={"content-type": "application/json"}).status_code == 413

    def chunks():  # no Content-Length: the server must count what it reads
        for _ in range(LIMIT // 1024 + 2):
            yield b"#" * 1024

    assert client.post("/v1/predict/catalog?sensors=R22_S11", content=chunks()).status_code == 413
    bomb = gzip.compress(b"#" * (4 * INFLATED_LIMIT))  # small on the wire, large inflated
    assert len(bomb) < LIMIT
    assert client.post("/v1/predict/catalog?sensors=R22_S11", content=bomb).status_code == 413


def test_still_healthy_after_bad_input(server, client):
    client.post("/v1/predict", content=b"\xff\xfe", headers={"content-type": "application/json"})
    assert client.get("/healthz").status_code == 200
    assert client.post("/v1/predict", json={"visits": VISITS[:1]}).status_code == 200
    assert server.proc.poll() is None


def test_workers_get_the_settings_object():
    """Each worker process builds its app from the settings the command made (no environment)."""
    srv = Server("--workers", "2", "--max-body-bytes", "2000")
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            for _ in range(4):  # whichever worker answers
                assert c.post("/v1/predict", json={"visits": VISITS[:1]}).status_code == 200
                big = c.post("/v1/predict", json={"visits": VISITS * 20})
                assert big.status_code == 413, big.text
    finally:
        srv.stop()


# ------------------------------------------------------------------------- champion alias


def test_follows_the_champion_without_failing_requests(tmp_path):
    from cputime.model.loading import default_model_dir
    from cputime.runs.registry import log_and_register, set_champion

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = log_and_register(default_model_dir(), name="cputime", tracking_uri=uri)
    second = log_and_register(default_model_dir(), name="cputime", tracking_uri=uri)
    set_champion("cputime", first.version, tracking_uri=uri)
    srv = Server("--model", "models:/cputime@champion", "--tracking-uri", uri,
                 "--poll-seconds", "0.2")
    statuses: list[int] = []
    stop = threading.Event()

    def hammer():
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            while not stop.is_set():
                statuses.append(c.post("/v1/predict", json={"visits": VISITS[:1]}).status_code)

    try:
        assert httpx.get(srv.url + "/v1/model").json()["version"] == f"cputime/{first.version}"
        threads = [threading.Thread(target=hammer)]
        for t in threads:
            t.start()
        set_champion("cputime", second.version, tracking_uri=uri)
        deadline = time.monotonic() + 30
        version = None
        while time.monotonic() < deadline:
            version = httpx.get(srv.url + "/v1/model").json()["version"]
            if version == f"cputime/{second.version}":
                break
            time.sleep(0.1)
        time.sleep(0.3)  # requests across the swap
        stop.set()
        for t in threads:
            t.join()
        assert version == f"cputime/{second.version}"
        assert statuses and set(statuses) == {200}
    finally:
        stop.set()
        srv.stop()
