"""Tests of cputime.model.persistence: JSON round trip and clear errors on bad files."""

import json

import numpy as np
import pandas as pd
import pytest

from cputime.errors import InputError
from cputime.model import persistence as modelio
from cputime.model.estimator import CPUTimeRegressor


def fitted(prior=None):
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"filter": rng.integers(0, 6, 120), "moonalt": rng.uniform(-50, 50, 120)})
    y = np.exp(10 + 0.2 * X["filter"] + 0.03 * X["moonalt"].clip(0) + rng.normal(0, 0.1, 120))
    censored = y > np.quantile(y, 0.9)
    model = CPUTimeRegressor(n_estimators=30, cv=3, prior=prior)
    return model.fit(X, np.where(censored, np.quantile(y, 0.9), y), censored), X


class ScalePrior:
    """A tiny serialisable prior: ln CPU = ln(base) + slope * filter [ln s]."""

    kind = "test-scale"

    def __init__(self, base, slope):
        self.base, self.slope = base, slope

    def predict_log_seconds(self, X):
        return np.log(self.base) + self.slope * X["filter"].to_numpy(dtype=float)

    def to_dict(self):
        return {"base": self.base, "slope": self.slope}

    @classmethod
    def from_dict(cls, d):
        return cls(**d)


def test_round_trip_identical_predictions(tmp_path):
    model, X = fitted()
    modelio.save_model(model, tmp_path / "m", extra_metadata={"metrics": {"mae_dex": 0.04}})
    loaded = modelio.load_model(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.predict_upper(X), model.predict_upper(X))
    np.testing.assert_array_equal(loaded.predict_upper(X, 0.8), model.predict_upper(X, 0.8))
    assert loaded.get_params() == model.get_params()
    metadata = json.loads((tmp_path / "m" / "metadata.json").read_text())
    assert metadata["extra"]["metrics"]["mae_dex"] == 0.04
    assert metadata["format_version"] == modelio.FORMAT_VERSION
    assert "xgboost" in metadata["versions"]


def test_round_trip_with_registered_prior(tmp_path, monkeypatch):
    model, X = fitted(prior=ScalePrior(2e4, 0.2))
    modelio.save_model(model, tmp_path)
    with pytest.raises(InputError, match="test-scale"):
        modelio.load_model(tmp_path)  # kind not registered: never imported from the file
    monkeypatch.setitem(modelio.PRIOR_KINDS, "test-scale", ScalePrior.from_dict)
    loaded = modelio.load_model(tmp_path)
    assert loaded.prior.to_dict() == {"base": 2e4, "slope": 0.2}
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("metadata.json", "{not json", "metadata.json: not valid JSON"),
        ("metadata.json", '{"format_version": "9.0"}', "format_version '9.0'"),
        ("metadata.json", '{"format_version": "1.0"}', "malformed"),
        ("booster.json", '{"learner": 1}', "booster.json: not a valid XGBoost model"),
    ],
)
def test_corrupt_files_raise_input_error(tmp_path, name, content, match):
    model, _ = fitted()
    modelio.save_model(model, tmp_path)
    (tmp_path / name).write_text(content)
    with pytest.raises(InputError, match=match) as info:
        modelio.load_model(tmp_path)
    assert "\n" not in str(info.value)


def test_missing_directory(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        modelio.load_model(tmp_path / "nowhere")


def test_training_data_hash_is_stable():
    table = pd.DataFrame({"a": [1.0, 2.0], "b": [3, 4]})
    assert modelio.training_data_hash(table) == modelio.training_data_hash(table.copy())
    assert modelio.training_data_hash(table) != modelio.training_data_hash(table.iloc[::-1])
    assert len(modelio.training_data_hash(table)) == 64


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("extra", "cputime_model", "confidence_level"), 1e300, "confidence_level"),
        # The shipped model was saved before the rename: its prior holds the inverse.
        (("prior", "reference_host_factor"), -5.0, "prior.reference_host_factor"),
        (("prior", "reference_host_factor"), 0.0, "prior.reference_host_factor"),
        (("prior", "cost_model", "parameters", "seconds_per_star_photon"), "x",
         "parameters.seconds_per_star_photon"),
        (("prior", "filter_log_scale"), [1.0], "prior.filter_log_scale"),
        (("extra", "cputime_model", "source_scores"), [0.1], "source_scores"),
        (("calibration", "upper_log_offset"), 1e300, "calibration.upper_log_offset"),
    ],
)
def test_edited_model_numbers_are_refused_naming_the_field(tmp_path, path, value, field):
    import shutil

    from cputime.runs.registry import default_model_dir

    folder = tmp_path / "edited"
    shutil.copytree(default_model_dir(), folder)  # real files, not the package's links
    metadata = json.loads((folder / "metadata.json").read_text())
    node = metadata
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    (folder / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(InputError, match=field.replace(".", r"\.")) as raised:
        modelio.load_cputime_model(folder)
    assert "\n" not in str(raised.value)


def test_a_model_saved_before_the_host_slowdown_rename_loads_inverted(tmp_path):
    from cputime.runs.registry import default_model_dir

    # The shipped model stores reference_host_factor (reference-host seconds per second of the
    # runs' host); the loaded model has its inverse, and saves it under the new name.
    saved = json.loads((default_model_dir() / "metadata.json").read_text())
    factor = saved["prior"]["reference_host_factor"]
    model, _ = modelio.load_cputime_model(default_model_dir())
    assert model.runs_host_slowdown_ == 1.0 / factor
    modelio.save_cputime_model(model, tmp_path / "again")
    prior = json.loads((tmp_path / "again" / "metadata.json").read_text())["prior"]
    assert prior["runs_host_slowdown"] == 1.0 / factor and "reference_host_factor" not in prior
    again, _ = modelio.load_cputime_model(tmp_path / "again")
    assert again.runs_host_slowdown_ == model.runs_host_slowdown_
