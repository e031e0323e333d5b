"""Tests of cputime.runs.store on a real SQLite store in tmp_path."""

from __future__ import annotations

import json
import math
from datetime import datetime

import pytest
import sqlalchemy as sa
from old_store import check_migrated, create_old_store

from cputime.errors import InputError
from cputime.runs.store import RunAttempt, RunsStore, attempt_key, features_frame, features_json


def _attempt(job: int, *, outcome="finished", ended=None, features=True, version="1"):
    state = {"finished": "COMPLETED", "censored": "TIMEOUT", "failed": "FAILED"}[outcome]
    return RunAttempt(
        attempt_key=attempt_key("test", job),
        source_format="csv",
        source_file="runs.csv",
        source_line=job + 1,
        state=state,
        outcome=outcome,
        obshistid=200 + job,
        sensor="R22_S11",
        cpu_seconds=100.0 * (job + 1),
        host_slowdown=0.5,
        cpu_seconds_ref=200.0 * (job + 1),
        ended=ended or datetime(2024, 5, 1 + job),
        features=features_json({"filter": 2, "moonalt": -30.0 + job}) if features else None,
        feature_code_version=version if features else None,
    )


@pytest.fixture
def store(tmp_path):
    return RunsStore(f"sqlite:///{tmp_path / 'runs.db'}")


def test_attempt_key_is_stable_and_distinguishes_parts():
    assert attempt_key("sacct", "123", "2024-05-01T10:00:00") == attempt_key(
        "sacct", "123", "2024-05-01T10:00:00"
    )
    assert attempt_key("sacct", "123", None) != attempt_key("sacct", "12", "3None")
    assert len(attempt_key(b"bytes")) == 64


def test_add_is_idempotent(store):
    attempts = [_attempt(j) for j in range(3)]
    assert store.add(attempts) == 3
    assert store.add(attempts) == 0
    assert store.add([_attempt(1), _attempt(3)]) == 1
    assert store.count() == 4


def test_failure_mid_add_stores_nothing(store):
    store.add([_attempt(0)])

    def crashing():
        yield _attempt(1)
        yield _attempt(2)
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        store.add(crashing())
    assert store.count() == 1


def test_constraint_violation_rolls_back_the_whole_batch(store):
    bad = _attempt(2)
    bad.outcome = "active"  # not a stored outcome (CHECK constraint)
    with pytest.raises(sa.exc.IntegrityError):
        store.add([_attempt(0), _attempt(1), bad])
    assert store.count() == 0


def test_table_order_filters_and_store_reopens(tmp_path):
    uri = f"sqlite:///{tmp_path / 'runs.db'}"
    RunsStore(uri).add([_attempt(2), _attempt(0), _attempt(1, outcome="failed")])
    store = RunsStore(uri)  # an existing store is opened, not recreated
    table = store.table()
    assert table["obshistid"].tolist() == [200, 201, 202]
    assert store.table(outcomes=["failed"])["obshistid"].tolist() == [201]
    assert store.table(ended_since=datetime(2024, 5, 2, 12))["obshistid"].tolist() == [202]
    assert str(table["ended"].dtype).startswith("datetime64")


def test_training_table_uses_current_features_only(store):
    store.add([
        _attempt(0),
        _attempt(1, outcome="censored"),
        _attempt(2, outcome="failed"),
        _attempt(3, features=False),
        _attempt(4, version="0"),
    ])
    table, counts = store.training_table("1")
    assert counts == {"stored": 5, "training": 2, "without_features": 1, "stale_features": 1,
                      "not_training": 1}
    assert table["obshistid"].tolist() == [200, 201]
    assert table["censored"].tolist() == [False, True]
    assert table["cpu_seconds_ref"].tolist() == [200.0, 400.0]
    assert table["moonalt"].tolist() == [-30.0, -29.0]


def test_features_json_round_trip_keeps_inf_and_nan():
    text = features_json({"a": math.nan, "b": math.inf, "c": 1})
    assert json.loads(text)["a"] is None
    frame = features_frame([text, None])
    assert math.isnan(frame.loc[0, "a"]) and frame.loc[0, "b"] == math.inf
    assert math.isnan(frame.loc[1, "c"])


def test_bad_uri_is_an_input_error():
    with pytest.raises(InputError, match="not a database URL"):
        RunsStore("nonsense://")


def test_a_store_with_the_old_host_factor_column_is_migrated(tmp_path):
    uri = f"sqlite:///{tmp_path / 'old.db'}"
    create_old_store(uri)
    check_migrated(RunsStore(uri))
    check_migrated(RunsStore(uri))  # opened again: not inverted twice
    store = RunsStore(uri)
    assert store.add([_attempt(7)]) == 1
    assert store.table().set_index("obshistid").loc[207, "host_slowdown"] == 0.5
