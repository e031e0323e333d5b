"""A booster's trees as numpy arrays give XGBoost's margins exactly."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

import cputime
from cputime.model.trees import tree_arrays


def _booster(rng, **params):
    data = rng.normal(size=(400, 5))
    data[rng.random(data.shape) < 0.1] = np.nan  # missing values take the default branch
    label = np.nan_to_num(data[:, 0]) * 2 + np.nan_to_num(data[:, 1]) ** 2 + rng.normal(size=400)
    matrix = xgb.DMatrix(data, label=label)
    return xgb.train({"max_depth": 4, "verbosity": 0, **params}, matrix, num_boost_round=40)


@pytest.mark.parametrize("rows", [1, 3, 50])
def test_trees_give_xgboosts_margin_exactly(rows):
    rng = np.random.default_rng(rows)
    booster = _booster(rng)
    trees = tree_arrays(booster)
    data = rng.normal(size=(rows, 5)) * 3
    data[rng.random(data.shape) < 0.2] = np.nan
    margin = rng.uniform(-5, 5, rows)
    expected = booster.inplace_predict(data, predict_type="margin", base_margin=margin)
    assert np.array_equal(trees.margin(data, margin), np.asarray(expected, dtype=float))


def test_the_shipped_sky_correction_on_its_training_conditions():
    model = cputime.load_model()
    regressor = model.sky_regressor_
    booster = regressor.booster_
    table = pd.read_csv(Path(__file__).resolve().parents[1] / "features" / "twinkles_run1.csv")
    X = model.feature_columns(table)
    data = np.column_stack([X[c] for c in regressor.features_used_])
    margin = regressor._base_margin(X)
    expected = booster.inplace_predict(data, predict_type="margin", base_margin=margin)
    assert np.array_equal(tree_arrays(booster).margin(data, margin), np.asarray(expected, float))


def test_a_booster_it_does_not_read_is_left_to_xgboost():
    booster = _booster(np.random.default_rng(0), booster="dart")
    assert tree_arrays(booster) is None
