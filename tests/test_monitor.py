"""Drift monitoring: no drift on the training data itself, real shifts found, per category for
discrete features; an empty runs store is an error."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cputime.errors import InputError
from cputime.frontends.cli import ExitStatus, main
from cputime.model.loading import resolve_model
from cputime.physics.features import CATALOG_COLUMNS, FEATURE_COLUMNS
from cputime.runs.monitor import (
    DISCRETE_FEATURES,
    category_psi,
    feature_drift,
    feature_reference,
    monitor,
    population_stability_index,
)
from cputime.runs.store import RunsStore

ROOT = Path(__file__).resolve().parents[1]
TWINKLES = ROOT / "features" / "twinkles_run1.csv"
CONDITIONS = [c for c in FEATURE_COLUMNS if c not in CATALOG_COLUMNS]


@pytest.fixture(scope="module")
def training() -> pd.DataFrame:
    return pd.read_csv(TWINKLES)


def _shipped_summary() -> dict:
    metadata = json.loads((ROOT / "models" / "default" / "metadata.json").read_text())
    return metadata["training"]["feature_summary"]


@pytest.mark.parametrize("reference", ["shipped quantiles", "feature_reference"])
def test_the_training_data_has_not_drifted_from_itself(training, reference):
    summary = (_shipped_summary() if reference == "shipped quantiles"
               else feature_reference(training, CONDITIONS))  # fmt: skip
    drift = feature_drift(training, summary).set_index("feature")
    assert not drift["drifted"].any(), drift
    assert (drift["psi"].dropna() < 0.05).all(), drift
    # Every Twinkles visit is one 30 s snap: constant, so no PSI at all.
    for constant in ("vistime", "nsnap", "exposure_seconds"):
        assert drift.loc[constant, "kind"] in ("constant", "categories")
        assert drift.loc[constant, "outside_range_share"] == 0.0
    # Quantiles cannot say how often each filter occurred: by category, or not at all.
    assert drift.loc["filter", "kind"] in ("categories", "discrete, no shares")


def test_a_moon_shift_is_drift_and_an_unseen_setting_is_outside(training):
    summary = feature_reference(training, CONDITIONS)
    recent = training.assign(moonalt=training["moonalt"] + 40.0, vistime=33.0, nsnap=2)
    drift = feature_drift(recent, summary).set_index("feature")
    assert drift.loc["moonalt", "drifted"] and drift.loc["moonalt", "kind"] == "continuous"
    assert drift.loc["vistime", "outside_range_share"] == 1.0
    assert drift.loc["nsnap", "drifted"]
    assert not drift.loc["sunalt", "drifted"]


def test_filter_drift_is_measured_by_category(training):
    summary = feature_reference(training, CONDITIONS)
    assert set(DISCRETE_FEATURES) <= {k for k, v in summary.items() if isinstance(v, dict)}
    shares = summary["filter"]["categories"]
    assert math.isclose(sum(shares.values()), 1.0)
    # The same filters in the same shares, shuffled: no drift; only u-band: drift.
    assert category_psi(training["filter"].sample(frac=1, random_state=0), shares) < 1e-9
    only_u = training[training["filter"] == 0]
    drift = feature_drift(only_u, summary).set_index("feature")
    assert drift.loc["filter", "kind"] == "categories" and drift.loc["filter", "drifted"]


def test_category_psi_hand_computed():
    # actual 0.75 / 0.25 against 0.5 / 0.5; no other category
    expected = 0.25 * math.log(1.5) + 0.25 * math.log(2.0)
    assert category_psi(np.array([0, 0, 0, 1.0]), {"0": 0.5, "1": 0.5}) == pytest.approx(
        expected, abs=1e-9
    )


def test_a_constant_reference_is_not_drift_for_the_same_constant():
    assert population_stability_index(np.full(50, 30.0), [30.0] * 7) == pytest.approx(0.0)


def test_an_empty_runs_store_is_an_error(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'runs.db'}"
    store = RunsStore(uri)
    with pytest.raises(InputError, match="runs store is empty"):
        monitor(store, resolve_model(None))
    assert main(["monitor", "--runs-db", uri]) == ExitStatus.BAD_INPUT
    err = capsys.readouterr().err
    assert "runs store is empty" in err and len(err.strip().splitlines()) == 1
