"""Tests of cputime.registry: model specs, the promotion gate, and a real MLflow SQLite store."""

from __future__ import annotations

import math

import pytest

from cputime.errors import InputError
from cputime.registry import (
    DEFAULT_TRACKING_URI,
    _artifact_location,
    default_model_dir,
    promotion_decision,
    resolve_model,
    tracking_uri_or_default,
)


@pytest.mark.parametrize(
    ("challenger", "champion", "promote", "why"),
    [
        ({"killed_share": 0.02, "mae_dex": 0.3}, None, True, "no champion"),
        ({"killed_share": 0.02, "mae_dex": 0.3}, {"killed_share": 0.05, "mae_dex": 0.1}, True,
         "lower"),
        ({"killed_share": 0.05, "mae_dex": 0.1}, {"killed_share": 0.02, "mae_dex": 0.3}, False,
         "higher"),
        ({"killed_share": 0.02, "mae_dex": 0.1}, {"killed_share": 0.02, "mae_dex": 0.1}, True,
         "<="),
        ({"killed_share": 0.02, "mae_dex": 0.2}, {"killed_share": 0.02, "mae_dex": 0.1}, False,
         ">"),
        ({"killed_share": 0.0, "mae_dex": 0.2}, {"killed_share": 0.0, "mae_dex": math.nan}, True,
         "<="),
    ],
)
def test_promotion_gate(challenger, champion, promote, why):
    decision = promotion_decision(challenger, champion)
    assert decision.promote is promote
    assert why in decision.reason


def test_first_champion_must_pass_the_floor():
    assert promotion_decision({"killed_share": 0.04, "mae_dex": 0.1}, None).promote
    refused = promotion_decision({"killed_share": 0.86, "mae_dex": 0.4}, None)
    assert not refused.promote and "floor" in refused.reason


def test_default_model_dir_and_override(monkeypatch, tmp_path):
    monkeypatch.delenv("CPUTIME_DEFAULT_MODEL", raising=False)
    assert default_model_dir().parts[-2:] == ("models", "default")
    monkeypatch.setenv("CPUTIME_DEFAULT_MODEL", str(tmp_path))
    assert default_model_dir() == tmp_path


def test_tracking_uri_default(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri_or_default(None) == DEFAULT_TRACKING_URI
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///x.db")
    assert tracking_uri_or_default(None) == "sqlite:///x.db"
    assert tracking_uri_or_default("sqlite:///y.db") == "sqlite:///y.db"


def test_artifacts_go_next_to_the_sqlite_file(tmp_path):
    location = _artifact_location(f"sqlite:///{tmp_path}/mlflow.db", "exp")
    assert location == (tmp_path / "mlartifacts" / "exp").as_uri()
    assert _artifact_location("http://localhost:5000", "exp") is None


def test_bad_specs_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="not a model folder"):
        resolve_model(str(tmp_path / "nothing"))
    with pytest.raises(InputError, match="models:/NAME@ALIAS"):
        resolve_model("models:/only-a-name", tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")


def test_unknown_registered_model(mlflow_uri):
    with pytest.raises(InputError, match="not found"):
        resolve_model("models:/nobody@champion", tracking_uri=mlflow_uri)
