"""Tests of cputime.model.loading: every model spec through one loader, and a cached load that
follows a promotion (real MLflow SQLite store)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cputime.errors import InputError
from cputime.model.loading import (
    DEFAULT_TRACKING_URI,
    default_model_dir,
    load_cached,
    pin_spec,
    resolve_model,
    tracking_uri_or_default,
)

ROOT = Path(__file__).resolve().parents[1]
VISIT = {"obshistid": 230, "filter": 2, "altitude": 66.3, "moonalt": -36.1, "moonphase": 3.8,
         "dist2moon": 124.3, "sunalt": -32.7}  # fmt: skip


def test_default_model_dir_and_override(monkeypatch, tmp_path):
    monkeypatch.delenv("CPUTIME_DEFAULT_MODEL", raising=False)
    # In a checkout the shipped model's files are the repository's models/default.
    assert (default_model_dir() / "booster.json").resolve().parent.parts[-2:] == (
        "models", "default")
    monkeypatch.setenv("CPUTIME_DEFAULT_MODEL", str(tmp_path))
    assert default_model_dir() == tmp_path


def test_tracking_uri_default(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri_or_default(None) == DEFAULT_TRACKING_URI
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///x.db")
    assert tracking_uri_or_default(None) == "sqlite:///x.db"
    assert tracking_uri_or_default("sqlite:///y.db") == "sqlite:///y.db"


def test_bad_specs_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="not a model folder"):
        resolve_model(str(tmp_path / "nothing"))
    with pytest.raises(InputError, match="models:/NAME@ALIAS"):
        resolve_model("models:/only-a-name", tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")


def test_unknown_registered_model(mlflow_uri):
    with pytest.raises(InputError, match="not found"):
        resolve_model("models:/nobody@champion", tracking_uri=mlflow_uri)


def test_a_missing_sqlite_registry_is_an_error_and_is_not_created(tmp_path):
    missing = tmp_path / "typo.db"
    with pytest.raises(InputError, match="no MLflow store at .*typo.db does not exist"):
        resolve_model("models:/phosim@champion", tracking_uri=f"sqlite:///{missing}")
    assert not missing.exists()



def test_the_loaded_model_says_where_it_came_from(tmp_path):
    shipped = resolve_model(None)
    assert (shipped.name, shipped.version) == ("default", "default")
    assert Path(shipped.source) == default_model_dir()
    assert shipped.training["training_rows"] == 934  # one place, whatever the spec
    assert shipped.metrics == {}
    folder = shutil.copytree(default_model_dir(), tmp_path / "mine")
    mine = resolve_model(str(folder))
    assert (mine.name, mine.version, mine.source) == ("mine", "mine", str(folder))


@pytest.mark.parametrize(
    ("code", "absent"),
    [
        # MLflow only for models:/ specs
        ("from cputime.model.loading import resolve_model; resolve_model(None)", "mlflow"),
        # persistence sits above the model: the model never imports it
        ("import cputime.model.composite", "cputime.model.persistence"),
    ],
)
def test_what_is_not_imported(code, absent):
    check = f"import sys; {code}; assert {absent!r} not in sys.modules, '{absent} imported'"
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                            cwd=ROOT)  # fmt: skip
    assert result.returncode == 0, result.stderr


def _scaled_copy(folder: Path, factor: float) -> Path:
    """The shipped model with the runs' host slowdown scaled: its predictions scale by 1/factor."""
    shutil.copytree(default_model_dir(), folder)
    metadata = json.loads((folder / "metadata.json").read_text())
    metadata["learned"]["runs_host_slowdown"] *= factor
    (folder / "metadata.json").write_text(json.dumps(metadata))
    return folder


def test_a_rewritten_folder_is_read_again(tmp_path):
    folder = _scaled_copy(tmp_path / "model", 1.0)
    first = load_cached(str(folder))
    assert load_cached(str(folder)) is first  # unchanged: not loaded again
    _scaled_copy(tmp_path / "new", 2.0)
    shutil.copy(tmp_path / "new" / "metadata.json", folder / "metadata.json")
    again = load_cached(str(folder))
    assert again is not first
    assert again.model.runs_host_slowdown_ == 2.0 * first.model.runs_host_slowdown_


def test_a_long_running_driver_follows_a_promotion(tmp_path):
    """The same process asks for models:/NAME@champion before and after the alias moves."""
    from cputime.frontends.workflow import predict_one
    from cputime.runs.registry import log_and_register, set_champion

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = log_and_register(default_model_dir(), name="driver", tracking_uri=uri)
    second = log_and_register(_scaled_copy(tmp_path / "v2", 0.5), name="driver",
                              tracking_uri=uri)  # fmt: skip
    set_champion("driver", first.version, tracking_uri=uri)
    spec = "models:/driver@champion"
    assert pin_spec(spec, uri) == f"models:/driver/{first.version}"

    before = predict_one(VISIT, "R22_S11", model=spec, tracking_uri=uri)
    assert before["model_version"] == f"driver/{first.version}"
    assert load_cached(spec, uri) is load_cached(spec, uri)  # one load per version

    set_champion("driver", second.version, tracking_uri=uri)
    after = predict_one(VISIT, "R22_S11", model=spec, tracking_uri=uri)
    assert after["model_version"] == f"driver/{second.version}"
    assert after["cpu_seconds_p50"] == pytest.approx(2.0 * before["cpu_seconds_p50"], rel=1e-9)
    assert load_cached(spec, uri).source == f"models:/driver/{second.version}"


def test_a_version_registered_by_the_previous_release_still_loads(tmp_path, mlflow_uri):
    """A registry holds model folders of format 1.0: the version loads, with its training record
    where callers read it, and predicts as the shipped model (the same fit)."""
    from cputime.frontends.workflow import predict_one
    from cputime.runs.registry import log_and_register

    folder = tmp_path / "model_1"
    folder.mkdir()
    shutil.copy(ROOT / "tests" / "data" / "model_format_1" / "metadata.json", folder)
    shutil.copy(ROOT / "models" / "default" / "booster.json", folder)
    version = log_and_register(folder, name="release_1", tracking_uri=mlflow_uri)
    spec = f"models:/release_1/{version.version}"
    loaded = resolve_model(spec, mlflow_uri)
    assert loaded.metadata["converted_from"] == "1.0"
    assert loaded.training["training_rows"] == 934 and loaded.training["feature_summary"]
    assert loaded.metrics == {}
    old = predict_one(VISIT, "R22_S11", model=spec, tracking_uri=mlflow_uri)
    new = predict_one(VISIT, "R22_S11", model=str(ROOT / "models" / "default"))
    for column in ("cpu_seconds_p50", "cpu_seconds_upper", "walltime_seconds"):
        assert old[column] == pytest.approx(new[column], rel=1e-12), column


def test_pinning_names_a_missing_alias(mlflow_uri):
    with pytest.raises(InputError, match="models:/nobody@champion: not found"):
        pin_spec("models:/nobody@champion", mlflow_uri)
    assert pin_spec("models:/x/3", mlflow_uri) == "models:/x/3"
    assert pin_spec(None) is None
