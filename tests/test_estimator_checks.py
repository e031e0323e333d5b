"""scikit-learn's estimator checks for cputime's estimators, and the checks that need data run on
feature tables.

``parametrize_with_checks`` runs every check scikit-learn has; the ones listed in
:func:`expected_failed_checks` are marked as expected failures, each with why it does not apply.
They all fail for one of two reasons: the estimators read features by name (``filter``,
``moonalt``, ``sky_photons`` ...), so X must be a DataFrame with named columns and a bare array
is refused with a TypeError; and the composite's fit needs the measured PhoSim runs. What those
checks pin (fit returns self and keeps its parameters, is idempotent, predictions of a row do
not depend on the others, bad targets are ValueErrors, pickling) is checked below on the
shipped feature tables.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import check_is_fitted

from cputime.model.composite import REGRESSOR_FEATURES, CPUTimeModel
from cputime.model.estimator import CPUTimeRegressor
from cputime.physics.cost import PhosimCostModel
from cputime.runs.training import (
    CENSORED_COLUMN,
    TARGET_COLUMN,
    load_runs_table,
    load_training_table,
)

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"n_estimators": 10, "learning_rate": 0.3, "cv": 3}

#: Why a check does not apply (the module docstring says more).
ARRAY_INPUT = "passes a bare array; features are read by name from a DataFrame"
NEEDS_RUNS = "calls fit(X, y); the cost parts need fit(..., runs=MeasuredRuns)"

#: Checks that fit on (or predict) bare arrays; every estimator here refuses them.
_ARRAY_CHECKS = (
    "check_complex_data", "check_dict_unchanged", "check_dont_overwrite_parameters",
    "check_dtype_object", "check_estimator_sparse_array", "check_estimator_sparse_matrix",
    "check_estimator_sparse_tag", "check_estimators_dtypes",
    "check_estimators_empty_data_messages", "check_estimators_fit_returns_self",
    "check_estimators_nan_inf", "check_estimators_overwrite_params", "check_estimators_pickle",
    "check_f_contiguous_array_estimator", "check_fit1d", "check_fit2d_1feature",
    "check_fit2d_1sample", "check_fit2d_predict1d", "check_fit_check_is_fitted",
    "check_fit_idempotent", "check_fit_score_takes_y", "check_methods_sample_order_invariance",
    "check_methods_subset_invariance", "check_n_features_in", "check_n_features_in_after_fitting",
    "check_pipeline_consistency", "check_positive_only_tag_during_fit",
    "check_readonly_memmap_input",
)  # fmt: skip
#: The regressor checks (RegressorMixin), also on bare arrays.
_REGRESSOR_ARRAY_CHECKS = (
    "check_regressor_data_not_an_array", "check_regressors_int",
    "check_regressors_no_decision_function", "check_regressors_train", "check_requires_y_none",
    "check_supervised_y_2d", "check_supervised_y_no_nan",
)  # fmt: skip


def expected_failed_checks(estimator) -> dict[str, str]:
    """Check name -> why it does not apply to ``estimator``."""
    if isinstance(estimator, CPUTimeModel):
        return dict.fromkeys(_ARRAY_CHECKS, NEEDS_RUNS)
    return dict.fromkeys(_ARRAY_CHECKS + _REGRESSOR_ARRAY_CHECKS, ARRAY_INPUT)


@parametrize_with_checks(
    [CPUTimeRegressor(**SMALL), PhosimCostModel(), CPUTimeModel(regressor_params=SMALL)],
    expected_failed_checks=expected_failed_checks,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ------------------------------------------------------------------ the same, on feature tables
@pytest.fixture(scope="module")
def data():
    table = load_training_table(ROOT / "features" / "twinkles_run1.csv").head(300)
    runs = load_runs_table(ROOT / "features" / "phosim_runs.csv")
    y = table[TARGET_COLUMN].to_numpy(float)
    censored = table[CENSORED_COLUMN].to_numpy(bool)
    return {
        "regressor": (CPUTimeRegressor(**SMALL, feature_names=REGRESSOR_FEATURES),
                      table, (y, censored), {}),
        "cost model": (PhosimCostModel(), runs.features,
                       (runs.cpu_seconds, runs.censored), {}),
        "composite": (CPUTimeModel(regressor_params=SMALL), table, (y, censored),
                      {"runs": runs}),
    }  # fmt: skip


CASES = ["regressor", "cost model", "composite"]


def _fit(case, estimator=None):
    prototype, X, (y, censored), kwargs = case
    estimator = clone(prototype) if estimator is None else estimator
    return estimator.fit(X, y, censored, **kwargs)


@pytest.mark.parametrize("name", CASES)
def test_fit_returns_self_keeps_its_parameters_and_learns_with_underscores(data, name):
    case = data[name]
    estimator = clone(case[0])
    assert not [k for k in vars(estimator) if k.endswith("_")]  # nothing learned in __init__
    params = joblib.hash(estimator.get_params())
    assert _fit(case, estimator) is estimator
    assert joblib.hash(estimator.get_params()) == params
    check_is_fitted(estimator)
    public = [k for k in vars(estimator) if not k.startswith("_")]
    assert set(public) - set(estimator.get_params()) == {k for k in public if k.endswith("_")}


@pytest.mark.parametrize("name", CASES)
def test_fit_is_idempotent_and_rows_are_predicted_alone(data, name):
    case = data[name]
    X = case[1]
    first = _fit(case)
    again = _fit(case, _fit(case))  # fitted twice
    np.testing.assert_array_equal(again.predict(X), first.predict(X))
    rows = np.random.default_rng(0).permutation(len(X))[: len(X) // 2]
    np.testing.assert_array_equal(first.predict(X.iloc[rows]), first.predict(X)[rows])
    if hasattr(first, "predict_upper"):
        np.testing.assert_array_equal(first.predict_upper(X.iloc[rows]),
                                      first.predict_upper(X)[rows])  # fmt: skip


@pytest.mark.parametrize("name", CASES)
def test_pickling_keeps_predictions(data, name):
    case = data[name]
    fitted = _fit(case)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(fitted)).predict(case[1]),
                                  fitted.predict(case[1]))  # fmt: skip


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda X, y: (X, np.where(np.arange(len(y)) == 3, np.inf, y)), "finite"),
        (lambda X, y: (X, np.where(np.arange(len(y)) == 3, np.nan, y)), "finite"),
        (lambda X, y: (X, np.where(np.arange(len(y)) == 3, 0.0, y)), "> 0"),
        (lambda X, y: (X, y[:-1]), "rows|runs"),
        (lambda X, y: (X.iloc[:0], y[:0]), "no rows|0 CPU times for 0 runs"),
    ],
    ids=["inf", "nan", "zero", "length", "empty"],
)
def test_bad_targets_are_value_errors(data, name, change, match):
    prototype, X, (y, censored), kwargs = data[name]
    X, y = change(X, y)
    with pytest.raises(ValueError, match=match):
        clone(prototype).fit(X, y, None, **kwargs)


@pytest.mark.parametrize("name", CASES)
def test_arrays_are_refused_naming_what_is_expected(data, name):
    prototype, X, (y, censored), kwargs = data[name]
    with pytest.raises(TypeError, match="DataFrame with named feature columns"):
        clone(prototype).fit(X.select_dtypes("number").to_numpy(), y, censored, **kwargs)


@pytest.mark.parametrize("name", ["regressor", "composite"])
def test_predicting_before_fit_is_a_not_fitted_error(data, name):
    prototype, X, _, _ = data[name]
    with pytest.raises(NotFittedError):
        clone(prototype).predict(X)
