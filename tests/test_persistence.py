"""Tests of cputime.model.persistence: one JSON document plus the booster, every learned attribute
round-trips, and damaged or edited files are refused in one line naming the file and field."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cputime.errors import InputError
from cputime.model import persistence
from cputime.model.composite import CPUTimeModel, SkyPrior
from cputime.model.loading import default_model_dir
from cputime.runs.training import (
    CENSORED_COLUMN,
    TARGET_COLUMN,
    load_runs_table,
    load_training_table,
)

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"n_estimators": 30, "learning_rate": 0.2, "cv": 3}


@pytest.fixture(scope="module")
def fitted():
    """A composite fitted on the shipped tables (Twinkles Run 1 and the catalog runs), small
    booster; and the Twinkles features."""
    table = load_training_table(ROOT / "features" / "twinkles_run1.csv")
    runs = load_runs_table(ROOT / "features" / "phosim_runs.csv")
    model = CPUTimeModel(confidence_level=0.9, regressor_params=SMALL, random_state=3)
    model.fit(table, table[TARGET_COLUMN].to_numpy(float),
              table[CENSORED_COLUMN].to_numpy(bool), runs=runs)  # fmt: skip
    return model, pd.concat([table, runs.features], ignore_index=True)


def _learned(estimator) -> dict:
    """Learned attributes (trailing underscore, sklearn's convention), caches excluded."""
    caches = {"source_bounds_", "level_offsets_"}
    return {k: v for k, v in vars(estimator).items() if k.endswith("_") and k not in caches}


def _assert_same(a, b, where: str) -> None:
    if isinstance(a, np.ndarray):
        assert a.dtype.kind == np.asarray(b).dtype.kind, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif hasattr(a, "save_raw"):  # the booster
        assert bytes(a.save_raw("json")) == bytes(b.save_raw("json")), where
    elif hasattr(a, "get_params"):
        _assert_same_estimator(a, b, where)
    else:
        assert a == b and type(a) is type(b), where


def _assert_same_estimator(a, b, where: str) -> None:
    assert type(a) is type(b), where
    params_a, params_b = a.get_params(deep=False), b.get_params(deep=False)
    if isinstance(params_a.get("prior"), SkyPrior):  # rebuilt, not stored: compare its parts
        prior_a, prior_b = params_a.pop("prior"), params_b.pop("prior")
        assert prior_b.runs_host_slowdown == prior_a.runs_host_slowdown, where
        assert prior_b.filter_log_scale == prior_a.filter_log_scale, where
        _assert_same_estimator(prior_a.cost_model, prior_b.cost_model, f"{where}.prior")
    assert params_a == params_b, where
    learned_a, learned_b = _learned(a), _learned(b)
    assert sorted(learned_a) == sorted(learned_b), where
    for name, value in learned_a.items():
        _assert_same(value, learned_b[name], f"{where}.{name}")


def test_every_learned_attribute_round_trips(fitted, tmp_path):
    model, X = fitted
    model.predict_upper(X.head(3), 0.8)  # fills the caches, which are not saved
    persistence.save_cputime_model(model, tmp_path, training={"rows": 934},
                                   metrics={"mae_dex": 0.04})  # fmt: skip
    loaded, metadata = persistence.load_cputime_model(tmp_path)
    assert sorted(_learned(model)) == [
        "cost_model_", "feature_names_in_", "fitted_ranges_", "runs_host_slowdown_",
        "sky_filter_log_scale_", "sky_regressor_", "source_censored_",
        "source_extrapolation_dex_", "source_scores_",
    ]  # fmt: skip
    _assert_same_estimator(model, loaded, "model")
    for level in (None, 0.8, np.linspace(0.6, 0.99, len(X))):
        pd.testing.assert_frame_equal(loaded.predict_frame(X, level), model.predict_frame(X, level),
                                      check_exact=True)  # fmt: skip
    np.testing.assert_array_equal(loaded.calibration_group_of(X), model.calibration_group_of(X))
    by_type, every = model.upper_seconds_by_source_type(X, model.predict_frame(X))
    again = loaded.upper_seconds_by_source_type(X, loaded.predict_frame(X))
    np.testing.assert_array_equal(again[0], by_type)
    np.testing.assert_array_equal(again[1], every)
    assert metadata["training"] == {"rows": 934} and metadata["metrics"] == {"mae_dex": 0.04}
    assert metadata["format_version"] == persistence.FORMAT_VERSION
    assert "xgboost" in metadata["versions"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["booster.json", "metadata.json"]


def test_the_shipped_model_is_one_document_in_the_current_format():
    metadata = persistence.read_metadata(default_model_dir())
    assert metadata["model"] == "CPUTimeModel"
    assert {"params", "learned", "cost_model", "sky_regressor", "training"} <= set(metadata)
    assert "prior" not in metadata["sky_regressor"]["params"]  # rebuilt from the composite
    assert metadata["training"]["training_rows"] == 934


def test_saving_refuses_an_unfitted_model_or_a_grouping_function(fitted, tmp_path):
    with pytest.raises(ValueError, match="fitted"):
        persistence.save_cputime_model(CPUTimeModel(), tmp_path)
    model, _ = fitted
    model.sky_regressor_.set_params(calibration_groups=lambda X: X["filter"])
    try:
        with pytest.raises(ValueError, match="calibration_groups is a function"):
            persistence.save_cputime_model(model, tmp_path)
    finally:
        model.sky_regressor_.set_params(calibration_groups="moon")


@pytest.fixture()
def shipped_copy(tmp_path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(default_model_dir(), folder)  # real files, not the package's links
    return folder


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("metadata.json", "{not json", "metadata.json: not valid JSON"),
        ("metadata.json", "[1, 2]", "metadata.json: expected a JSON object"),
        ("metadata.json", '{"format_version": "3.0"}', "format_version '3.0' is not supported"),
        ("metadata.json", '{"format_version": "1.0"}', "metadata.json: estimator: missing"),
        ("metadata.json", '{"format_version": "2.0", "model": "os.system"}',
         r"model: 'os.system' is not 'CPUTimeModel'"),
        ("metadata.json", '{"format_version": "2.0", "model": "CPUTimeModel"}',
         "params: missing"),
        ("booster.json", '{"learner": 1}', "booster.json: not a valid XGBoost model"),
    ],
)
def test_corrupt_files_raise_input_error(shipped_copy, name, content, match):
    (shipped_copy / name).write_text(content)
    with pytest.raises(InputError, match=match) as info:
        persistence.load_cputime_model(shipped_copy)
    assert "\n" not in str(info.value)


def test_missing_files(tmp_path, shipped_copy):
    with pytest.raises(InputError, match="no such file"):
        persistence.load_cputime_model(tmp_path / "nowhere")
    (shipped_copy / "booster.json").unlink()
    with pytest.raises(InputError, match=r"booster.json: no such file"):
        persistence.load_cputime_model(shipped_copy)


def _edit_metadata(folder: Path, path: tuple, value) -> None:
    """Set one field (a path of keys) of a model folder's metadata.json, as a hand edit would."""
    metadata = json.loads((folder / "metadata.json").read_text())
    node = metadata
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    (folder / "metadata.json").write_text(json.dumps(metadata))


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("params", "confidence_level"), 1e300, "params.confidence_level"),
        (("params", "warp_drive"), 1, "params: malformed"),
        (("learned", "runs_host_slowdown"), -5.0, "learned.runs_host_slowdown"),
        (("learned", "runs_host_slowdown"), [1], "learned.runs_host_slowdown"),
        (("cost_model", "learned", "parameters", "seconds_per_star_photon"), "x",
         "cost_model.learned.parameters"),
        (("cost_model", "learned", "parameters", "seconds_per_star_photon"), -1.0,
         "parameters.seconds_per_star_photon"),
        (("cost_model", "learned", "parameters", "warp_drive"), 1.0,
         "cost_model.learned.parameters: unknown ['warp_drive'], missing []"),
        (("cost_model", "params", "fixed"), 3, "cost_model.params.fixed"),
        (("learned", "sky_filter_log_scale"), [1.0], "learned.sky_filter_log_scale"),
        (("learned", "source_scores"), [0.1], "learned.source_scores"),
        (("learned", "source_censored"), [0.1], "learned.source_censored"),
        (("learned", "fitted_ranges"), "wide", "learned.fitted_ranges"),
        (("sky_regressor", "learned", "upper_log_offset"), 1e300,
         "sky_regressor.learned.upper_log_offset"),
        (("sky_regressor", "learned", "score_groups"), ["up"], "sky_regressor.learned"),
        (("sky_regressor", "learned", "features_used"), ["filter"],
         "booster has 9 features, metadata lists 1"),
    ],
)
def test_edited_model_numbers_are_refused_naming_the_field(shipped_copy, path, value, field):
    _edit_metadata(shipped_copy, path, value)
    with pytest.raises(InputError, match=re.escape(field)) as raised:
        persistence.load_cputime_model(shipped_copy)
    assert str(raised.value).startswith(f"{shipped_copy}{os.sep}")
    assert "\n" not in str(raised.value)


def test_a_missing_field_is_named(shipped_copy):
    metadata = json.loads((shipped_copy / "metadata.json").read_text())
    del metadata["sky_regressor"]["learned"]["score_censored"]
    (shipped_copy / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(InputError, match=r"sky_regressor\.learned\.score_censored: missing"):
        persistence.load_cputime_model(shipped_copy)


def test_cost_model_parameters_round_trip_as_given(fitted, tmp_path):
    model, X = fitted
    model.cost_model_.set_params(parameters={"setup_seconds_per_snap": 33.0}, fixed=("a",))
    try:
        persistence.save_cputime_model(model, tmp_path)
    finally:
        model.cost_model_.set_params(parameters=None, fixed=())
    loaded, _ = persistence.load_cputime_model(tmp_path)
    assert loaded.cost_model_.get_params() == {"parameters": {"setup_seconds_per_snap": 33.0},
                                               "fixed": ("a",)}  # fmt: skip
    assert loaded.cost_model_.parameters_ == model.cost_model_.parameters_


def test_training_data_hash_is_stable():
    table = pd.DataFrame({"a": [1.0, 2.0], "b": [3, 4]})
    assert persistence.training_data_hash(table) == persistence.training_data_hash(table.copy())
    assert persistence.training_data_hash(table) != persistence.training_data_hash(table.iloc[::-1])
    assert len(persistence.training_data_hash(table)) == 64


# ------------------------------------------------------------------------------ format 1.0
FORMAT_1 = Path(__file__).parent / "data" / "model_format_1"
SHIPPED = ROOT / "models" / "default"


@pytest.fixture()
def format_1_copy(tmp_path) -> Path:
    """The previous release's shipped model folder: its metadata (format 1.0) beside its booster,
    which the current shipped model still uses byte for byte."""
    folder = tmp_path / "model_1"
    folder.mkdir()
    shutil.copy(FORMAT_1 / "metadata.json", folder)
    shutil.copy(SHIPPED / "booster.json", folder)
    return folder


def _tables() -> list[pd.DataFrame]:
    return [load_training_table(ROOT / "features" / "twinkles_run1.csv"),
            load_runs_table(ROOT / "features" / "phosim_runs.csv").features]  # fmt: skip


def _assert_same_predictions(model, reference) -> None:
    """Equal up to the last bit of the host slowdown, 1/(1/H) in the 1.0 folder."""
    for X in _tables():
        for level in (None, 0.8):
            pd.testing.assert_frame_equal(model.predict_frame(X, level),
                                          reference.predict_frame(X, level),
                                          check_exact=False, rtol=1e-12, atol=0)  # fmt: skip


def test_a_format_1_folder_loads_as_the_shipped_model(format_1_copy):
    old = json.loads((FORMAT_1 / "metadata.json").read_text())
    assert old["format_version"] == "1.0"
    loaded, metadata = persistence.load_cputime_model(format_1_copy)
    shipped, _ = persistence.load_cputime_model(SHIPPED)
    _assert_same_predictions(loaded, shipped)
    assert loaded.runs_host_slowdown_ == pytest.approx(1 / old["prior"]["reference_host_factor"],
                                                       rel=1e-15)  # fmt: skip
    assert loaded.runs_host_slowdown_ == pytest.approx(shipped.runs_host_slowdown_, rel=1e-15)
    assert loaded.get_params(deep=False) == shipped.get_params(deep=False)
    assert loaded.cost_model_.get_params() == shipped.cost_model_.get_params()
    # what callers read, where a 2.0 document has it
    assert metadata["converted_from"] == "1.0" and metadata["model"] == "CPUTimeModel"
    # The training section as the current code writes it: the 1.0 reference_host_factor H
    # becomes runs_host_slowdown, 1/H, as learned.runs_host_slowdown does.
    training = dict(old["extra"]["training"])
    factor = training.pop("reference_host_factor")
    slowdown = pytest.approx(1 / factor, rel=1e-15)
    assert metadata["training"] == {**training, "runs_host_slowdown": slowdown}
    shipped_training = json.loads((SHIPPED / "metadata.json").read_text())["training"]
    assert set(metadata["training"]) == set(shipped_training)
    assert metadata["training"]["feature_summary"]  # the monitor's drift reference
    assert metadata["metrics"] == {} and metadata["versions"] == old["versions"]
    assert persistence.read_metadata(format_1_copy) == metadata


def test_re_saving_a_format_1_model_writes_the_current_format(format_1_copy, tmp_path):
    loaded, metadata = persistence.load_cputime_model(format_1_copy)
    again = persistence.save_cputime_model(loaded, tmp_path / "again",
                                           training=metadata["training"])  # fmt: skip
    written = json.loads((again / "metadata.json").read_text())
    shipped = json.loads((SHIPPED / "metadata.json").read_text())
    assert written["format_version"] == persistence.FORMAT_VERSION == "2.0"
    assert "converted_from" not in written and "extra" not in written
    slowdown = written["learned"].pop("runs_host_slowdown")
    assert slowdown == pytest.approx(shipped["learned"].pop("runs_host_slowdown"), rel=1e-15)
    for section in ("params", "learned", "cost_model", "sky_regressor", "metrics"):
        assert written[section] == shipped[section], section
    reloaded, _ = persistence.load_cputime_model(again)
    _assert_same_predictions(reloaded, loaded)


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("estimator",), "os.system", "estimator: 'os.system' is malformed"),
        (("prior", "kind"), "os.system", "prior.kind"),
        (("prior", "reference_host_factor"), -3.9, "prior.reference_host_factor: -3.9"),
        (("prior", "reference_host_factor"), 0, "prior.reference_host_factor: 0"),
        (("prior", "reference_host_factor"), "inf", "prior.reference_host_factor: 'inf'"),
        (("prior", "cost_model", "parameters", "seconds_per_star_photon"), -1.0,
         "prior.cost_model.parameters.seconds_per_star_photon: -1.0 is not positive"),
        (("prior", "cost_model", "parameters", "warp_drive"), 1.0,
         "prior.cost_model.parameters: unknown ['warp_drive'], missing []"),
        (("prior", "cost_model", "fixed"), 3, "prior.cost_model.fixed"),
        (("prior", "cost_model", "n_fit_runs"), "many", "prior.cost_model.n_fit_runs"),
        (("prior", "filter_log_scale"), [1.0], "prior.filter_log_scale"),
        (("params", "warp_drive"), 1, "params: malformed"),
        (("base_log_seconds",), "x", "base_log_seconds: 'x' is malformed"),
        (("calibration", "upper_log_offset"), 1e300, "calibration.upper_log_offset"),
        (("calibration", "score_groups"), ["up"], "calibration.conformity_scores"),
        (("extra", "cputime_model"), [], "extra.cputime_model: [] is malformed"),
        (("extra", "cputime_model", "confidence_level"), 1e300,
         "extra.cputime_model.confidence_level: 1e+300 is not in (0, 1)"),
        (("extra", "cputime_model", "source_scores"), [0.1], "extra.cputime_model.source_scores"),
        (("extra", "cputime_model", "fitted_ranges"), "wide", "extra.cputime_model.fitted_ranges"),
        (("extra", "training", "reference_host_factor"), 0,
         "extra.training.reference_host_factor: 0"),
    ],
)
def test_edited_format_1_numbers_are_refused_naming_the_field(format_1_copy, path, value, field):
    _edit_metadata(format_1_copy, path, value)
    with pytest.raises(InputError, match=re.escape(field)) as raised:
        persistence.load_cputime_model(format_1_copy)
    assert str(raised.value).startswith(f"{format_1_copy / 'metadata.json'}: ")
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    "path",
    [("calibration", "score_censored"), ("prior", "reference_host_factor"),
     ("prior", "cost_model", "measured_filters"), ("extra", "cputime_model", "source_censored"),
     ("feature_names_in",)],
)  # fmt: skip
def test_a_missing_format_1_field_is_named(format_1_copy, path):
    metadata = json.loads((format_1_copy / "metadata.json").read_text())
    node = metadata
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    (format_1_copy / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(InputError, match=re.escape(f"{'.'.join(path)}: missing")):
        persistence.load_cputime_model(format_1_copy)


def test_the_command_line_predicts_with_a_format_1_folder(format_1_copy, tmp_path, capsys):
    from cputime.frontends.cli import ExitStatus, main

    run = ROOT / "tests" / "data" / "phosim_runs" / "base"
    tables = []
    for model in (format_1_copy, SHIPPED):
        out = tmp_path / f"{model.name}.csv"
        argv = ["predict", run / "catalog.txt", "--commands", run / "commands.txt", "--sensors",
                "R22_S11,R01_S00", "--model", model, "-o", out]  # fmt: skip
        status = main([str(a) for a in argv])
        assert status == ExitStatus.OK, capsys.readouterr().err
        tables.append(pd.read_csv(out))
    assert len(tables[0]) == 2 and (tables[0]["cpu_seconds_upper"] > 0).all()
    assert list(tables[0].pop("model_version")) == ["model_1"] * 2  # the folder's name
    assert list(tables[1].pop("model_version")) == ["default"] * 2
    pd.testing.assert_frame_equal(tables[0], tables[1], check_exact=False, rtol=1e-12)
