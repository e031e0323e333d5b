"""Engine-ready predictions: the default walltime level and PhoSim-shaped checkpoint plans."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cputime
from cputime.errors import InputError
from cputime.physics.features import visit_features
from cputime.planning.predictions import (
    PREDICTION_COLUMNS,
    predict_jobs,
    predict_visits,
    walltime_levels,
)

TWINKLES = Path(__file__).resolve().parents[1] / "features" / "twinkles_run1.csv"


@pytest.fixture(scope="module")
def model():
    return cputime.load_model()


@pytest.fixture(scope="module")
def visits():
    return pd.read_csv(TWINKLES).iloc[::40].reset_index(drop=True)


def test_default_level_loses_the_least_cpu_and_a_fixed_level_stays_fixed(model, visits):
    fixed = predict_jobs(model, visits, confidence_level=0.95)
    default = predict_jobs(model, visits)
    assert list(default.columns[: len(PREDICTION_COLUMNS)]) == PREDICTION_COLUMNS
    assert (fixed["confidence_level"] == 0.95).all()
    single = default["segments"] == 1
    groups = model.calibration_group_of(visits)  # moon up / down: each its own scores
    for group in np.unique(groups):
        level = default.loc[single & (groups == group), "confidence_level"].unique()
        assert len(level) == 1 and 0.95 < level[0] < 1.0  # a kill costs more than unused time
    assert (
        default.loc[single, "cpu_seconds_upper"] >= fixed.loc[single, "cpu_seconds_upper"]
    ).all()
    # Unused reservation that costs more than a kill's share gives a lower level.
    frugal = predict_jobs(model, visits, overreserve_cost=5.0)
    assert (frugal["confidence_level"] < default["confidence_level"]).all()


def test_a_checkpointed_job_risks_one_segment_so_its_level_is_lower(model, visits):
    plans = predict_jobs(model, visits, queue_max_seconds=12 * 3600.0)
    split = plans["segments"] > 1
    assert split.any() and (~split).any()
    assert plans.loc[split, "confidence_level"].max() <= plans.loc[~split, "confidence_level"].min()
    times = plans.loc[split, "segment_slurm_times"].str.split(";")
    assert (times.str.len() == plans.loc[split, "segments"]).all()
    fits = plans["fits_queue"]
    assert (plans.loc[fits, "walltime_seconds"] <= 0.9 * 12 * 3600.0).all()
    assert (plans.loc[~fits, "plan_note"].str.contains("a queue of")).all()
    assert np.all(plans["total_walltime_seconds"] >= plans["walltime_seconds"])


HEADER_KEYS = [
    "obshistid", "filter", "vistime", "nsnap", "airmass", "altitude", "moonalt", "moonphase",
    "dist2moon", "sunalt", "seeing",
]  # fmt: skip


def _header_visits(n: int) -> list[dict]:
    """Twinkles visits as a client sends them: header keywords only (one in PhoSim's Opsim_
    style), some left out."""
    visits = pd.read_csv(TWINKLES)[HEADER_KEYS].iloc[:n].to_dict("records")
    for i, visit in enumerate(visits):
        visit["Opsim_moonalt"] = visit.pop("moonalt")
        if i % 7 == 1:
            del visit["altitude"]  # from the airmass
        if i % 11 == 2:
            del visit["vistime"], visit["nsnap"]  # the defaults
        if i % 17 == 4:
            visit["seeing"] = None
    return visits


def _same(table: dict, fast: dict) -> list[str]:
    """Keys whose values differ in value or type (NaN equals NaN)."""

    def equal(a, b) -> bool:
        if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
            return True
        return type(a) is type(b) and a == b

    assert list(table) == list(fast)
    return [key for key in table if not equal(table[key], fast[key])]


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"confidence_level": 0.9},
        {"queue_max_seconds": 3600.0, "threads": 2},
        {"queue_max_seconds": 12 * 3600.0, "host_slowdown": 1.7, "model_version": "7"},
    ],
    ids=["default-level", "fixed-level", "all-split", "some-split"],
)
def test_predict_visits_gives_the_numbers_of_the_table_path(model, options):
    visits = _header_visits(300)
    for sensors in (None, ["R22_S11", "R01_S00"]):
        table = predict_jobs(model, visit_features(pd.DataFrame(visits), sensors), **options)
        fast = predict_visits(model, visits, sensors, **options)
        assert len(fast) == len(table) == len(visits) * len(sensors or [""])
        for row, (expected, got) in enumerate(zip(table.to_dict("records"), fast, strict=True)):
            assert not _same(expected, got), (row, _same(expected, got))
    # One visit at a time takes the few-rows path (the trees as numpy arrays, cached levels):
    # the same numbers as XGBoost on the whole table.
    records = predict_jobs(model, visit_features(pd.DataFrame(visits)), **options)
    for row, (visit, expected) in enumerate(zip(visits, records.to_dict("records"), strict=True)):
        (got,) = predict_visits(model, [visit], **options)
        assert not _same(expected, got), (row, _same(expected, got))
    segments = np.array([row["segments"] for row in fast])
    if "queue_max_seconds" in options:
        assert (segments > 1).any()
    levels = {row["confidence_level"] for row in fast}
    assert len(levels) > 1 if "confidence_level" not in options else levels == {0.9}


def test_predict_visits_builds_no_frame(model, monkeypatch):
    visits = _header_visits(3)
    expected = predict_visits(model, visits, queue_max_seconds=3600.0)

    def no_frames(*args, **kwargs):
        raise AssertionError("predict_visits built a pandas object")

    monkeypatch.setattr(pd.DataFrame, "__init__", no_frames)
    monkeypatch.setattr(pd.Series, "__init__", no_frames)
    got = predict_visits(model, visits, queue_max_seconds=3600.0)
    assert all(not _same(a, b) for a, b in zip(expected, got, strict=True))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"Opsim_moonalt": "high"}, r"visits\[1\]: moonalt: 'high' is not a number"),
        ({"nsnap": 1.5}, r"visits\[1\]: nsnap: 1.5 is not an integer"),
        ({"filter": 6}, r"visits\[1\]: filter: 6 is not 0..5"),
        ({"obshistid": None}, r"visits\[1\]: obshistid: missing"),
        ({"sunalt": None}, r"visits\[1\]: missing sunalt"),
    ],
)
def test_predict_visits_names_the_visit_and_field_of_a_bad_value(model, change, message):
    visits = _header_visits(2)
    visits[1].update(change)
    with pytest.raises(InputError, match=message):
        predict_visits(model, visits)


def test_policy_levels_follow_a_recalibrated_model(visits):
    model = cputime.load_model()
    before = walltime_levels(model, visits)
    regressor = model.sky_regressor_
    regressor.conformity_scores_ = regressor.conformity_scores_ * 3.0  # new scores, new array
    after = walltime_levels(model, visits)
    assert not np.array_equal(before, after)
    fresh = cputime.load_model()
    fresh.sky_regressor_.conformity_scores_ = fresh.sky_regressor_.conformity_scores_ * 3.0
    np.testing.assert_array_equal(after, walltime_levels(fresh, visits))


def test_predict_visits_reads_any_spelling_and_number_type_alike(model):
    """Keywords are read column by column when every visit spells them one way; other visits
    (strings, two spellings of one keyword) go visit by visit, to the same numbers."""
    visits = _header_visits(40)
    expected = predict_visits(model, visits)
    spelt = [{("Opsim_sunalt" if k == "sunalt" and i % 2 else k): v for k, v in visit.items()}
             for i, visit in enumerate(visits)]
    texts = [{**visit, "filter": str(visit["filter"])} for visit in visits]
    both = [{**visit, "moonalt": -1.0} for visit in visits]  # the first spelling counts
    for other in (spelt, texts, both):
        got = predict_visits(model, other)
        assert all(not _same(a, b) for a, b in zip(expected, got, strict=True))
