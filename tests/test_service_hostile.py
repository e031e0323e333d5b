"""The service against hostile and careless clients: the real server on 127.0.0.1, bounded work
per request, one error shape, safe champion promotion, a seeded fuzz of request bodies."""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import signal
import socket
import threading
import time
import zlib
from pathlib import Path

import httpx
import pytest
from process_tree import peak_rss, process_tree
from test_service import CATALOG, VISITS, Server
from upload_synth import big_catalog_gzip

GIB = 1 << 30


def bulk_lane_pid(proc, limit: float = 30.0) -> int:
    """The server's bulk-lane child, once started [process id]."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        for pid in process_tree(proc.pid)[1:]:
            if b"bulkworker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        time.sleep(0.05)
    raise AssertionError("no bulk lane process started")


def gone(pids: list[int], limit: float) -> bool:
    """Whether the processes ``pids`` all end (or become zombies) within ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if all(_ended(pid) for pid in pids):
            return True
        time.sleep(0.05)
    return False


def _ended(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def cpu_seconds(proc) -> float:
    """User + system CPU time of a process so far [s]."""
    fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # clock ticks, USER_HZ = 100


def seconds_until_idle(proc, limit: float = 30.0) -> float:
    """Seconds until the process uses under 0.3 s of CPU in a second."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        before = cpu_seconds(proc)
        time.sleep(1.0)
        if cpu_seconds(proc) - before < 0.3:
            break
    return time.monotonic() - start - 1.0


@pytest.fixture(scope="module")
def server():
    srv = Server(env={"CPUTIME_CLIENT_SECONDS": "1", "CPUTIME_REQUEST_SECONDS": "4"})
    yield srv
    print(srv.stop())


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


def assert_one_shape(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"detail"} and isinstance(body["detail"], str), body
    assert "\n" not in body["detail"] and "/tmp" not in body["detail"], body
    return body["detail"]


def comment_bomb(n_bytes: int) -> bytes:
    """gzip of ``n_bytes`` of ``##`` lines, built without holding them in memory."""
    block = b"##\n" * (1 << 18)
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [packer.compress(block) for _ in range(n_bytes // len(block))]
    return b"".join(out) + packer.flush()


# ------------------------------------------------------------------------- bounded uploads


def test_small_gzip_of_250_mb_of_comment_lines_is_refused_with_bounded_memory(server, client):
    bomb = comment_bomb(250 << 20)
    assert len(bomb) < 1 << 20
    start = time.monotonic()
    response = client.post("/v1/predict/catalog?sensors=R22_S11", content=bomb)
    assert response.status_code == 413
    assert "100000 lines other than object lines (max_catalog_lines)" in assert_one_shape(response)
    assert time.monotonic() - start < 10
    assert peak_rss(server.proc.pid) < GIB


def test_largest_catalog_upload_is_read_within_memory():
    srv = Server()
    try:
        with httpx.Client(base_url=srv.url, timeout=120) as slow:
            response = slow.post("/v1/predict/catalog?sensors=R22_S11", content=big_catalog_gzip())
        assert response.status_code == 200, response.text
        assert response.json()["predictions"][0]["n_objects"] > 3_000_000
        assert peak_rss(srv.proc.pid) < GIB
    finally:
        srv.stop()


def test_catalog_upload_over_the_time_limit_stops_reading():
    # The whole read takes a few seconds of CPU: a limit well below it, whatever the host.
    srv = Server(env={"CPUTIME_REQUEST_SECONDS": "0.5"})
    try:
        with httpx.Client(base_url=srv.url, timeout=60) as client:
            response = client.post(
                "/v1/predict/catalog?sensors=R22_S11", content=big_catalog_gzip()
            )
        assert response.status_code == 503
        assert "(request_seconds)" in assert_one_shape(response)
        # Stopped, the reader only finishes the chunks it holds.
        assert seconds_until_idle(srv.proc) < 8
    finally:
        srv.stop()


def test_gzip_inside_gzip_is_refused_without_server_paths(client):
    twice = gzip.compress(gzip.compress(CATALOG.read_bytes()))
    response = client.post("/v1/predict/catalog?sensors=R22_S11", content=twice)
    assert response.status_code == 422
    assert "gzip data inside gzip data" in assert_one_shape(response)
    hidden = gzip.compress(gzip.compress(b"includeobj /etc/passwd\n" * 100))
    response = client.post("/v1/predict/catalog?sensors=R22_S11", content=hidden)
    assert response.status_code == 422
    assert_one_shape(response)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\xef\xbb\xbf" + CATALOG.read_bytes(), 200),  # a BOM is not part of a keyword
        (CATALOG.read_bytes().replace(b"vistime 15", b"vistime -30"), 422),
        (CATALOG.read_bytes().replace(b"moonphase 10.0", b"moonphase 500"), 422),
        (CATALOG.read_bytes().replace(b"obshistid 9003", b"\xef\xbb\xbfincludeobj x\nobshistid 1"),
         422),
        (b"rightascension 1\n" + b"x" * (2 << 20) + b"\n", 422),
        (gzip.compress(CATALOG.read_bytes())[:-20], 422),
    ],
)
def test_catalog_uploads_bad_values_and_lines(client, content, expected):
    response = client.post("/v1/predict/catalog?sensors=R22_S11", content=content)
    assert response.status_code == expected, response.text
    if expected != 200:
        assert_one_shape(response)


# ------------------------------------------------------------------- bounded visit requests


def test_fan_out_over_the_row_limit_is_413_naming_it(server, client):
    visits = [{**VISITS[0], "obshistid": k} for k in range(5000)]
    response = client.post("/v1/predict", json={"visits": visits, "sensors": ["all"]})
    assert response.status_code == 413
    assert "945000 prediction rows" in assert_one_shape(response)
    assert "50000 rows per request (max_rows)" in response.json()["detail"]
    assert peak_rss(server.proc.pid) < GIB


def test_largest_allowed_fan_out_answers_in_slices_within_memory(server, client):
    visits = [{**VISITS[0], "obshistid": k} for k in range(40)]
    response = client.post("/v1/predict", json={"visits": visits, "sensors": ["all"]})
    assert response.status_code == 200
    rows = response.json()["predictions"]
    assert [(r["obshistid"], r["sensor"]) for r in rows[::189]] == [
        (k, rows[0]["sensor"]) for k in range(40)]
    assert len(rows) == 40 * 189
    alone = client.post("/v1/predict", json={"visits": visits[7:8], "sensors": ["all"]}).json()
    assert rows[7 * 189:8 * 189] == alone["predictions"]
    assert peak_rss(server.proc.pid) < GIB


@pytest.mark.parametrize(
    ("content", "where"),
    [
        (b'{"visits":[{"obshistid":1,"filter":2,"seeing":NaN}]}', "visits.0.seeing"),
        (b'{"visits":[{"obshistid":1,"filter":2,"vistime":Infinity}]}', "visits.0.vistime"),
        (b'{"visits":[{"obshistid":1,"filter":2,"vistime":1e300}]}', "visits.0.vistime"),
        (b'{"visits":[{"obshistid":1,"filter":2,"seeing":1e300}]}', "visits.0.seeing"),
        (b'{"visits":[{"obshistid":1,"filter":2,"nsnap":-3}]}', "visits.0.nsnap"),
        (b'{"visits":[{"obshistid":1,"filter":2,"altitude":200}]}', "visits.0.altitude"),
        (b'{"visits":[{"obshistid":1,"filter":2,"moonphase":500}]}', "visits.0.moonphase"),
        (b'{"visits":[{"obshistid":1e30,"filter":2}]}', "visits.0.obshistid"),
        (b'{"visits":[{"obshistid":1,"filter":2}],"host_factor":Infinity}', "host_factor"),
        (b'{"visits":[{"obshistid":1,"filter":2}],"queue_max_seconds":NaN}', "queue_max_seconds"),
        (b'{"visits":[{"obshistid":1,"filter":2,"vistime":6,"nsnap":3}]}', "visits.0.vistime"),
    ],
)
def test_nan_infinity_and_nonsense_values_are_422_naming_the_field(client, content, where):
    response = client.post("/v1/predict", content=content,
                           headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert assert_one_shape(response).startswith(where)


def test_time_limit_and_disconnect_stop_the_work():
    visits = [{**VISITS[0], "obshistid": k} for k in range(260)]
    # ~49,000 rows with checkpoint plans at a 1 h queue: seconds of work, whatever the host.
    body = {"visits": visits, "sensors": ["all"], "queue_max_seconds": 3600}
    limited = Server(env={"CPUTIME_REQUEST_SECONDS": "0.3"})
    try:
        start = time.monotonic()
        response = httpx.post(limited.url + "/v1/predict", json=body, timeout=60)
        assert response.status_code == 503
        assert "0.3 s (request_seconds)" in assert_one_shape(response)
        assert time.monotonic() - start < 8
        assert seconds_until_idle(limited.proc) < 2  # the rest of the work was dropped
    finally:
        limited.stop()
    patient = Server(env={"CPUTIME_REQUEST_SECONDS": "60"})
    try:
        with pytest.raises(httpx.TimeoutException):  # the client gives up after 0.3 s
            httpx.post(patient.url + "/v1/predict", json=body, timeout=0.3)
        assert seconds_until_idle(patient.proc) < 2
        answer = httpx.post(patient.url + "/v1/predict", json={"visits": VISITS[:1]}, timeout=30)
        assert answer.status_code == 200
    finally:
        patient.stop()


def test_slow_headers_are_closed_and_a_stalled_body_gets_408(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\n")  # and then nothing
        assert sock.recv(100) == b""  # closed by the server after client_seconds
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     b"\r\nContent-Length: 100\r\n\r\n{\"visits\"")
        answer = b""
        while piece := sock.recv(4096):
            answer += piece
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert b"(client_seconds)" in answer
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /v1/predict/catalog?sensors=R22_S11 HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: 1000000\r\n\r\n" + b"#" * 1000)  # gone mid-upload
    assert httpx.get(server.url + "/healthz").status_code == 200


def test_fair_share_one_visit_is_not_stuck_behind_a_big_request(server, client):
    """A one-visit request waits for one slice of a big request, not for all of it."""
    visits = [{**VISITS[0], "obshistid": k} for k in range(100)]
    big_done: list[float] = []

    def big():
        with httpx.Client(base_url=server.url, timeout=60) as c:
            start = time.monotonic()
            c.post("/v1/predict", json={"visits": visits, "sensors": ["all"]})
            big_done.append(time.monotonic() - start)

    thread = threading.Thread(target=big)
    thread.start()
    time.sleep(0.3)
    latencies = []
    while thread.is_alive() and len(latencies) < 10:
        start = time.monotonic()
        assert client.post("/v1/predict", json={"visits": VISITS[:1]}).status_code == 200
        latencies.append(time.monotonic() - start)
    thread.join()
    assert latencies and big_done
    assert max(latencies) < max(0.25 * big_done[0], 0.5), (latencies, big_done)


def test_seeded_fuzz_of_json_bodies_and_uploads_gives_no_500(server, client):
    rng = random.Random(12)
    values = [None, True, -1, 0, 1, 2.5, 1e308, -1e308, 1e-320, 2**70, "2", "x", "", [], {},
              [1], {"a": 1}, "NaN", "\u0000", "R22_S11", "all"]
    keys = ["obshistid", "filter", "vistime", "nsnap", "airmass", "altitude", "moonalt",
            "moonphase", "dist2moon", "sunalt", "seeing", "Opsim_filter", "rawseeing", "x"]
    raw_numbers = [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-0", b"1" * 500]
    for _ in range(120):
        visit = {**rng.choice(VISITS)}
        for key in rng.sample(keys, rng.randint(0, 4)):
            visit[key] = rng.choice(values)
        body: dict = {"visits": [visit] * rng.randint(0, 3)}
        for option in rng.sample(["confidence", "queue_max_seconds", "host_factor", "threads",
                                  "sensors", "extra"], rng.randint(0, 2)):
            body[option] = rng.choice(values)
        text = json.dumps(body).encode()
        if rng.random() < 0.3:
            text = text.replace(b"null", rng.choice(raw_numbers), 1)
        if rng.random() < 0.1:
            text = text[: rng.randint(0, len(text))]
        response = client.post("/v1/predict", content=text,
                               headers={"content-type": "application/json"})
        assert response.status_code in (200, 413, 422), (text, response.text)
        if response.status_code != 200:
            assert_one_shape(response)
    lines = CATALOG.read_bytes().splitlines(keepends=True)
    for _ in range(40):
        chosen = list(lines)
        for _ in range(rng.randint(1, 5)):
            k = rng.randrange(len(chosen))
            words = chosen[k].split()
            if words:
                words[rng.randrange(len(words))] = rng.choice(
                    [b"nan", b"-1e30", b"1e400", b"500", b"-30", b"0", b"\xff", b"includeobj"])
            chosen[k] = b" ".join(words) + b"\n"
        content = b"".join(chosen)
        if rng.random() < 0.5:
            content = gzip.compress(content)
        response = client.post("/v1/predict/catalog?sensors=R22_S11", content=content)
        assert response.status_code in (200, 413, 422), response.text
        if response.status_code != 200:
            assert_one_shape(response)
    assert server.proc.poll() is None


# ----------------------------------------------------------------------- safe promotion


def test_champion_that_cannot_predict_is_not_served_nor_fetched_again(tmp_path):
    from cputime.model.loading import default_model_dir
    from cputime.runs.registry import log_and_register, set_champion

    broken = tmp_path / "broken"
    shutil.copytree(default_model_dir(), broken)
    metadata = json.loads((broken / "metadata.json").read_text())
    calibration = metadata["sky_regressor"]["learned"]
    calibration["upper_log_offset"] = 1e300  # every upper bound would be infinite
    calibration["group_log_offsets"] = dict.fromkeys(calibration["group_log_offsets"], 1e300)
    (broken / "metadata.json").write_text(json.dumps(metadata))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    good = log_and_register(default_model_dir(), name="cputime", tracking_uri=uri)
    bad = log_and_register(broken, name="cputime", tracking_uri=uri)
    set_champion("cputime", good.version, tracking_uri=uri)
    srv = Server("--model", "models:/cputime@champion", "--tracking-uri", uri,
                 "--poll-seconds", "0.2")
    try:
        set_champion("cputime", bad.version, tracking_uri=uri)
        deadline = time.monotonic() + 30
        health = {}
        while time.monotonic() < deadline:
            health = httpx.get(srv.url + "/healthz").json()
            if health["last_load_error"]:
                break
            time.sleep(0.1)
        assert health["version"] == f"cputime/{good.version}"
        assert health["last_load_error"]["version"] == f"cputime/{bad.version}"
        # Refused when loaded (its offsets are no usable numbers) or by the trial prediction.
        assert any(reason in health["last_load_error"]["error"] for reason in (
            "not a usable offset", "trial prediction", "walltime"))
        time.sleep(1.5)  # several polls
        response = httpx.post(srv.url + "/v1/predict", json={"visits": VISITS[:1]})
        assert response.status_code == 200
        assert response.json()["model"]["version"] == f"cputime/{good.version}"
        set_champion("cputime", good.version, tracking_uri=uri)
        time.sleep(1.0)
        assert httpx.get(srv.url + "/healthz").json()["version"] == f"cputime/{good.version}"
    finally:
        log = srv.stop()
    assert log.count("refused") == 1, log  # the failed version was not fetched again


def _busy_server(**env) -> tuple[Server, threading.Thread, list]:
    """A server predicting a 378,000-row request (over 10 s of work) in its bulk lane."""
    srv = Server(env={"CPUTIME_REQUEST_SECONDS": "60", "CPUTIME_MAX_ROWS": "400000", **env})
    visits = [{**VISITS[0], "obshistid": k} for k in range(2000)]
    outcome = []

    def big():
        try:
            outcome.append(httpx.post(srv.url + "/v1/predict", timeout=60,
                                      json={"visits": visits, "sensors": ["all"]}).status_code)
        except httpx.HTTPError as err:
            outcome.append(err)

    thread = threading.Thread(target=big)
    thread.start()
    return srv, thread, outcome


def test_sigterm_while_working_exits_promptly_and_leaves_no_process():
    srv, thread, outcome = _busy_server()
    bulk_lane_pid(srv.proc)
    children = process_tree(srv.proc.pid)[1:]
    time.sleep(1.0)
    start = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    try:
        srv.proc.wait(timeout=20)
    finally:
        if srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.wait()
    thread.join()
    assert time.monotonic() - start < 15
    assert outcome == [503]  # stopped after the 5 s of grace
    assert "Exception in ASGI application" not in srv.proc.stderr.read()
    assert gone(children, 1.0)


def test_killed_server_leaves_no_process():
    srv, thread, _ = _busy_server()
    bulk_lane_pid(srv.proc)
    children = process_tree(srv.proc.pid)[1:]
    time.sleep(1.0)  # the child is predicting
    srv.proc.kill()
    srv.proc.wait()
    thread.join()
    assert gone(children, 5.0)  # the child sees its parent gone within a second


def test_bulk_lane_in_the_server_thread_gives_the_same_rows(server):
    visits = [{**VISITS[k % len(VISITS)], "obshistid": k} for k in range(70)]
    body = {"visits": visits, "sensors": ["R22_S11", "R01_S00"]}
    in_process = httpx.post(server.url + "/v1/predict", json=body, timeout=60)
    srv = Server("--no-bulk-process")
    try:
        in_thread = httpx.post(srv.url + "/v1/predict", json=body, timeout=60)
        assert process_tree(srv.proc.pid) == [srv.proc.pid]
    finally:
        srv.stop()
    assert in_process.status_code == in_thread.status_code == 200
    assert in_process.json() == in_thread.json()


def test_bulk_lane_process_killed_fails_its_request_then_restarts():
    srv, thread, outcome = _busy_server()
    try:
        worker = bulk_lane_pid(srv.proc)
        time.sleep(1.0)
        os.kill(worker, signal.SIGKILL)  # as the kernel's OOM killer would
        thread.join()
        assert outcome == [500]
        again = httpx.post(srv.url + "/v1/predict", timeout=60,
                           json={"visits": VISITS * 30, "sensors": ["R22_S11", "R01_S00"]})
        assert again.status_code == 200
        assert bulk_lane_pid(srv.proc) != worker
    finally:
        log = srv.stop()
    assert "bulk lane's process ended" in log


def test_two_server_workers_each_with_a_bulk_lane_leave_no_process_on_sigterm():
    srv = Server("--workers", "2")
    try:
        body = {"visits": VISITS * 30, "sensors": ["R22_S11", "R01_S00"]}
        for _ in range(6):  # the requests reach both workers
            assert httpx.post(srv.url + "/v1/predict", json=body, timeout=60).status_code == 200
        bulk_lane_pid(srv.proc)
        descendants = process_tree(srv.proc.pid)[1:]
    finally:
        log = srv.stop()
    assert srv.proc.returncode is not None
    assert gone(descendants, 5.0), log
