"""The bulk lane's child process: the same rows as in the server's thread, errors carried back,
no second run of the program that started it, and no process left behind."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
from test_service import VISITS

import cputime
from cputime.errors import InputError
from cputime.frontends.service.batcher import predict_json
from cputime.frontends.service.bulkworker import BulkWorker, WorkerDied

OPTIONS = {"confidence_level": None, "queue_max_seconds": 3600.0, "host_slowdown": 1.5,
           "threads": 2}


@pytest.fixture(scope="module")
def model():
    return cputime.load_model()


@pytest.fixture
def worker():
    lane = BulkWorker(predict_json)
    yield lane
    lane.close()


def test_rows_are_those_of_the_server_thread(model, worker):
    args = (VISITS * 3, ["R22_S11", "R01_S00"], OPTIONS, "v7", [6, 12])
    assert worker.call(model, *args) == predict_json(model, *args)
    first = worker.pid
    assert worker.call(model, *args) == predict_json(model, *args)
    assert worker.pid == first  # one child for the server's life


def test_input_error_comes_back_as_input_error_and_the_child_stays(model, worker):
    bad = [{**VISITS[0], "moonphase": 500.0}]
    with pytest.raises(InputError, match="moonphase"):
        worker.call(model, bad, None, OPTIONS, "v7", [1])
    first = worker.pid
    assert worker.call(model, VISITS[:1], None, OPTIONS, "v7", [1])
    assert worker.pid == first


def test_a_dead_child_fails_the_call_in_flight_and_is_replaced(model, worker):
    worker.call(model, VISITS[:1], None, OPTIONS, "v7", [1])
    first = worker.pid
    subprocess.run(["kill", "-KILL", str(first)], check=True)
    time.sleep(0.2)
    # Either the death is seen before sending (a new child answers) or during the call.
    try:
        worker.call(model, VISITS[:1], None, OPTIONS, "v7", [1])
    except WorkerDied:
        worker.call(model, VISITS[:1], None, OPTIONS, "v7", [1])
    assert worker.pid not in (None, first)


def test_close_ends_the_child(model, worker):
    worker.call(model, VISITS[:1], None, OPTIONS, "v7", [1])
    pid = worker.pid
    worker.close()
    assert worker.pid is None
    assert subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode != 0


def test_a_script_without_main_guard_runs_once_and_leaves_no_process(tmp_path):
    # multiprocessing's spawn would import the script again in the child: a script that starts
    # a server at import would start a second one.
    script = tmp_path / "serve_it.py"
    script.write_text(textwrap.dedent("""
        import operator
        from cputime.frontends.service.bulkworker import BulkWorker
        print("script ran", flush=True)
        lane = BulkWorker(operator.add)
        print(lane.call(1, 2), lane.pid, flush=True)
        # exits without closing the lane
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines.count("script ran") == 1
    result, pid = lines[1].split()
    assert result == "3"
    assert subprocess.run(["kill", "-0", pid], capture_output=True).returncode != 0
