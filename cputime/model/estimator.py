"""XGBoost accelerated-failure-time regressor of PhoSim CPU time with a conformal upper bound.

The model predicts log CPU seconds on the reference host. Jobs killed at the batch CPU limit are
right-censored: their CPU time is only known to be at least the limit. The booster uses the
``survival:aft`` objective, which takes such rows as interval labels ``[limit, +inf)``, and the
conformal calibration treats their residuals as censored (Kaplan--Meier, see
:mod:`cputime.model.conformal`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.model_selection import KFold
from sklearn.utils.validation import check_is_fitted

from cputime.model.conformal import (
    check_confidence_level,
    km_conformal_upper_quantile,
    min_calibration_size,
)
from cputime.model.trees import tree_arrays
from cputime.physics.columns import distinct

__all__ = [
    "AFT_LOSS_DISTRIBUTIONS",
    "CALIBRATION_GROUPINGS",
    "CPUTimeRegressor",
    "check_frame",
    "check_target",
]

#: Up to this many rows, margins are computed by :mod:`cputime.model.trees` rather than XGBoost
#: (beyond it XGBoost's C++ loop is faster than numpy's; the numbers are the same).
_TREE_ROWS = 16

#: Error distributions of log CPU time accepted by XGBoost's ``survival:aft``.
AFT_LOSS_DISTRIBUTIONS = ("normal", "logistic", "extreme")


def _moon_up(X: pd.DataFrame) -> np.ndarray:
    """'up' when the Moon is above the horizon (``moonalt > 0`` [degrees]), else 'down'."""
    return np.where(np.asarray(X["moonalt"], dtype=float) > 0.0, "up", "down")


def _filter_moon(X: pd.DataFrame) -> np.ndarray:
    """Filter (0..5) crossed with Moon up/down, e.g. '2/up'."""
    filters = np.asarray(X["filter"]).astype(int).astype(str)
    return np.char.add(np.char.add(filters, "/"), _moon_up(X).astype(str))


#: Named calibration groupings (Mondrian conformal): name -> function of the feature table.
#: Any other string is read as a column name whose values are the groups.
CALIBRATION_GROUPINGS: dict[str, Callable[[pd.DataFrame], np.ndarray]] = {
    "moon": _moon_up,
    "filter_moon": _filter_moon,
}


class CPUTimeRegressor(RegressorMixin, BaseEstimator):
    """PhoSim CPU-time regressor: XGBoost AFT median plus a conformal upper bound.

    Parameters
    ----------
    confidence_level : float, default=0.95
        Default coverage of :meth:`predict_upper`, in (0, 1). Any other level can be asked for
        at predict time; the calibration scores are kept.
    n_estimators : int, default=200
        Boosting rounds.
    learning_rate : float, default=0.05
        Shrinkage per round.
    max_depth : int, default=4
        Maximum tree depth.
    min_child_weight : float, default=1.0
        Minimum Hessian sum in a leaf (XGBoost's regulariser; with the AFT loss it is not a
        row count).
    subsample : float, default=0.8
        Row fraction per tree, in (0, 1].
    colsample_bytree : float, default=1.0
        Feature fraction per tree, in (0, 1].
    reg_lambda : float, default=1.0
        L2 penalty on leaf values.
    aft_loss_distribution : {"normal", "logistic", "extreme"}, default="normal"
        Distribution of the log-time error in the AFT likelihood.
    aft_loss_distribution_scale : float, default=0.3
        Scale of that distribution [ln s]. It sets how hard censored rows push the median up.
    monotone_constraints : dict of str to int, default=None
        Per-feature monotone constraint (+1 increasing, -1 decreasing, 0 none) for features
        whose effect on CPU time is physically obvious. Features not named are unconstrained.
    cv : int or "split", default=5
        ``int >= 2``: cross-conformal calibration inside :meth:`fit` -- out-of-fold log residuals
        from ``cv`` folds are the conformity scores and the final booster is trained on all
        rows. ``"split"``: :meth:`fit` only trains; call :meth:`conformalize` on held-out rows
        before :meth:`predict_upper`.
    calibration_groups : str or callable or None, default="moon"
        Mondrian calibration: separate conformity scores per group. A name in
        :data:`CALIBRATION_GROUPINGS` (``"moon"``: Moon up/down, ``"filter_moon"``), a column of
        X (e.g. ``"filter"``), or a function ``f(X) -> labels``. Rows of a group with fewer
        calibration scores than the level needs use the pooled scores.
    prior : object, default=None
        Physical cost model with ``predict_log_seconds(X: DataFrame) -> ndarray`` returning
        natural-log CPU seconds on the reference host [ln s]. It is the booster's base margin,
        so the trees learn a multiplicative correction to it. It is used as is (not fitted
        here); if it was fitted on the same rows, the calibration is optimistic.
    feature_names : list of str, default=None
        Columns of X given to the booster. None: all columns. (The prior and the calibration
        groups may read other columns of X.)
    random_state : int, default=0
        Seed for fold assignment and row subsampling.
    nthread : int, default=1
        XGBoost threads.

    Attributes
    ----------
    booster_ : xgboost.Booster
        Booster trained on all rows given to :meth:`fit`.
    feature_names_in_ : ndarray of str
        Columns of X seen in :meth:`fit`; X at predict time must have them all.
    n_features_in_ : int
        Number of those columns.
    features_used_ : list of str
        Columns given to the booster.
    base_log_seconds_ : float
        Base margin [ln s] when there is no prior: median log CPU time of the training rows.
    conformity_scores_ : ndarray
        Calibration scores, ``ln(actual / predicted median)`` [ln s].
    score_censored_ : ndarray of bool
        True where the score is a lower bound (job killed at the limit).
    score_groups_ : ndarray of str
        Calibration group of each score ("all" without grouping).
    upper_log_offset_ : float
        Pooled offset [ln s] at ``confidence_level``: upper bound = median * exp(offset).
    group_log_offsets_ : dict of str to float
        Per-group offsets at ``confidence_level`` (empty without grouping).
    level_offsets_ : dict of float to (float, dict)
        Pooled and per-group offsets of every other level asked for so far, filled lazily by
        :meth:`upper_log_offsets` (a walltime policy asks for a few levels, each a
        Kaplan-Meier quantile over all scores: computed once per level, not per request) and
        emptied whenever the scores change.

    Notes
    -----
    XGBoost's ``survival:aft`` works on the natural log of time: labels are given in seconds
    and the margin (and ``base_margin``) is ``ln(seconds)``. A base margin given at training
    time must be given again at prediction; this class does that.
    """

    def __init__(
        self,
        *,
        confidence_level: float = 0.95,
        n_estimators: int = 200,
        learning_rate: float = 0.05,
        max_depth: int = 4,
        min_child_weight: float = 1.0,
        subsample: float = 0.8,
        colsample_bytree: float = 1.0,
        reg_lambda: float = 1.0,
        aft_loss_distribution: str = "normal",
        aft_loss_distribution_scale: float = 0.3,
        monotone_constraints: dict[str, int] | None = None,
        cv: int | str = 5,
        calibration_groups: str | Callable[[pd.DataFrame], np.ndarray] | None = "moon",
        prior: Any = None,
        feature_names: list[str] | None = None,
        random_state: int = 0,
        nthread: int = 1,
    ):
        self.confidence_level = confidence_level
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.aft_loss_distribution = aft_loss_distribution
        self.aft_loss_distribution_scale = aft_loss_distribution_scale
        self.monotone_constraints = monotone_constraints
        self.cv = cv
        self.calibration_groups = calibration_groups
        self.prior = prior
        self.feature_names = feature_names
        self.random_state = random_state
        self.nthread = nthread

    # ------------------------------------------------------------------ validation
    def _validate_params(self) -> None:
        check_confidence_level(self.confidence_level)
        positive_ints = ("n_estimators", "max_depth", "nthread")
        for name in positive_ints:
            value = getattr(self, name)
            if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("learning_rate", "aft_loss_distribution_scale"):
            value = getattr(self, name)
            if not isinstance(value, Real) or not value > 0:
                raise ValueError(f"{name} must be a number > 0, got {value!r}")
        for name in ("min_child_weight", "reg_lambda"):
            value = getattr(self, name)
            if not isinstance(value, Real) or not value >= 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        for name in ("subsample", "colsample_bytree"):
            value = getattr(self, name)
            if not isinstance(value, Real) or not 0 < value <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {value!r}")
        if self.aft_loss_distribution not in AFT_LOSS_DISTRIBUTIONS:
            raise ValueError(
                f"aft_loss_distribution must be one of {AFT_LOSS_DISTRIBUTIONS}, "
                f"got {self.aft_loss_distribution!r}"
            )
        if not (self.cv == "split" or (isinstance(self.cv, Integral) and self.cv >= 2)):
            raise ValueError(f"cv must be an integer >= 2 or 'split', got {self.cv!r}")
        prior_method = getattr(self.prior, "predict_log_seconds", None)
        if self.prior is not None and not callable(prior_method):
            raise ValueError("prior must have a method predict_log_seconds(X) -> ndarray [ln s]")
        groups = self.calibration_groups
        if not (groups is None or isinstance(groups, str) or callable(groups)):
            raise ValueError(
                f"calibration_groups must be None, a grouping name {tuple(CALIBRATION_GROUPINGS)},"
                f" a column name or a callable, got {groups!r}"
            )
        if self.monotone_constraints is not None:
            bad = {k: v for k, v in dict(self.monotone_constraints).items() if v not in (-1, 0, 1)}
            if bad:
                raise ValueError(f"monotone_constraints values must be -1, 0 or 1, got {bad}")

    def _check_predict_frame(self, X: Any, method: str) -> pd.DataFrame:
        check_is_fitted(self, "booster_")
        X = check_frame(X, method)
        expected = list(self.feature_names_in_)
        missing = [c for c in expected if c not in X.columns]
        unexpected = [c for c in X.columns if c not in expected]
        if missing or unexpected:
            raise ValueError(
                f"{method}: the feature names should match those passed during fit; "
                f"missing: {missing}, unexpected: {unexpected}"
            )
        return X[expected]

    # ------------------------------------------------------------------ internals
    def _xgb_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "objective": "survival:aft",
            "eval_metric": "aft-nloglik",
            "aft_loss_distribution": self.aft_loss_distribution,
            "aft_loss_distribution_scale": float(self.aft_loss_distribution_scale),
            "learning_rate": float(self.learning_rate),
            "max_depth": int(self.max_depth),
            "min_child_weight": float(self.min_child_weight),
            "subsample": float(self.subsample),
            "colsample_bytree": float(self.colsample_bytree),
            "reg_lambda": float(self.reg_lambda),
            "tree_method": "hist",
            "seed": int(self.random_state),
            "nthread": int(self.nthread),
            "verbosity": 0,
        }
        if self.monotone_constraints:
            constraints = dict(self.monotone_constraints)
            unknown = sorted(set(constraints) - set(self.features_used_))
            if unknown:
                raise ValueError(f"monotone_constraints name unknown features: {unknown}")
            params["monotone_constraints"] = (
                "(" + ",".join(str(int(constraints.get(c, 0))) for c in self.features_used_) + ")"
            )
        return params

    def _base_margin(self, X: pd.DataFrame) -> np.ndarray:
        if self.prior is None:
            return np.full(len(X), self.base_log_seconds_, dtype=float)
        margin = np.asarray(self.prior.predict_log_seconds(X), dtype=float).ravel()
        if margin.size != len(X) or not np.all(np.isfinite(margin)):
            raise ValueError("prior.predict_log_seconds(X) must return one finite value per row")
        return margin

    def _dmatrix(self, X: pd.DataFrame, margin: np.ndarray) -> xgb.DMatrix:
        data = X[self.features_used_].to_numpy(dtype=float)
        return xgb.DMatrix(data, base_margin=margin, feature_names=list(self.features_used_))

    def _train(
        self, X: pd.DataFrame, seconds: np.ndarray, cens: np.ndarray, margin: np.ndarray
    ) -> xgb.Booster:
        dtrain = self._dmatrix(X, margin)
        dtrain.set_float_info("label_lower_bound", seconds)
        dtrain.set_float_info("label_upper_bound", np.where(cens, np.inf, seconds))
        return xgb.train(self._xgb_params(), dtrain, num_boost_round=int(self.n_estimators))

    def _log_median(self, booster: xgb.Booster, X: pd.DataFrame, margin: np.ndarray) -> np.ndarray:
        # inplace_predict on a matrix in the booster's feature order skips building a DMatrix,
        # which dominates one-row predictions. With XGBoost's default of every core, the base
        # margin's proxy matrix and the prediction each woke a thread pool: ~1 ms of CPU for
        # one row, and far more on a busy host; ``nthread`` threads do both (a loaded booster
        # does not keep the setting).
        data = np.column_stack([np.asarray(X[c], dtype=float) for c in self.features_used_])
        if len(data) <= _TREE_ROWS:
            # A few rows: XGBoost's own per-call cost dominates; the same numbers from the
            # trees as numpy arrays (read once per booster) cost a fraction of it.
            if "_cputime_trees" not in booster.__dict__:
                booster._cputime_trees = tree_arrays(booster)
            if booster._cputime_trees is not None:
                return booster._cputime_trees.margin(data, margin)
        nthread = int(self.nthread)
        if booster.__dict__.get("_cputime_nthread") != nthread:
            booster.set_param({"nthread": nthread})
            booster._cputime_nthread = nthread
        with xgb.config_context(nthread=nthread):
            log_median = booster.inplace_predict(data, predict_type="margin", base_margin=margin)
        return np.asarray(log_median, dtype=float)

    def _groups(self, X: pd.DataFrame) -> np.ndarray:
        grouping = self.calibration_groups
        if grouping is None:
            return np.full(len(X), "all", dtype=object)
        if callable(grouping):
            labels = grouping(X)
        elif grouping in CALIBRATION_GROUPINGS:
            labels = CALIBRATION_GROUPINGS[grouping](X)
        elif grouping in X.columns:
            labels = X[grouping].to_numpy()
        else:
            raise ValueError(
                f"calibration_groups={grouping!r} is neither a grouping name "
                f"{tuple(CALIBRATION_GROUPINGS)} nor a column of X"
            )
        labels = np.asarray(labels).ravel()
        if labels.size != len(X):
            raise ValueError("calibration_groups must give one label per row of X")
        if labels.dtype == object:  # mixed types need not sort: one key per row
            return np.array([_group_key(v) for v in labels], dtype=object)
        # Few groups, many rows: one key per distinct label.
        unique, inverse = distinct(labels, return_inverse=True)
        return np.array([_group_key(v) for v in unique], dtype=object)[inverse]

    def _set_scores(self, scores: np.ndarray, cens: np.ndarray, groups: np.ndarray) -> None:
        level = float(self.confidence_level)
        if scores.size < min_calibration_size(level):
            raise ValueError(
                f"{scores.size} calibration rows are too few for confidence_level={level}: "
                f"at least {min_calibration_size(level)} are needed"
            )
        self.conformity_scores_ = scores.astype(float)
        self.score_censored_ = cens.astype(bool)
        self.score_groups_ = np.asarray(groups, dtype=str)
        self.level_offsets_ = {}
        self.upper_log_offset_, self.group_log_offsets_ = self._offsets(level)

    def _offsets_at(self, level: float) -> tuple[float, dict[str, float]]:
        """:meth:`_offsets` at a level other than the default, cached in ``level_offsets_``."""
        cache = self.__dict__.setdefault("level_offsets_", {})
        if level not in cache:
            cache[level] = self._offsets(check_confidence_level(level))
        return cache[level]

    def _offsets(self, level: float) -> tuple[float, dict[str, float]]:
        need = min_calibration_size(level)
        # Too few scores for this level support no finite bound (fit refuses that at the
        # model's own confidence_level; other levels are asked for at predict time).
        pooled = (
            km_conformal_upper_quantile(self.conformity_scores_, self.score_censored_, level)
            if self.conformity_scores_.size >= need
            else math.inf
        )
        per_group: dict[str, float] = {}
        if self.calibration_groups is not None:
            for group in np.unique(self.score_groups_):
                in_group = self.score_groups_ == group
                if in_group.sum() >= need:
                    per_group[str(group)] = km_conformal_upper_quantile(
                        self.conformity_scores_[in_group], self.score_censored_[in_group], level
                    )
        return pooled, per_group

    # ------------------------------------------------------------------ public API
    def fit(self, X: pd.DataFrame, y: Any, censored: Any = None) -> CPUTimeRegressor:
        """Train the booster and, unless ``cv="split"``, calibrate the upper bound.

        Parameters
        ----------
        X : DataFrame of shape (n_samples, n_columns)
            Feature table (see :mod:`cputime.physics.features`).
        y : array-like of shape (n_samples,)
            CPU time on the reference host [s]; a lower bound where ``censored``.
        censored : array-like of bool, shape (n_samples,), default=None
            True for jobs killed at the CPU limit (their true CPU time is at least ``y``).

        Returns
        -------
        self : CPUTimeRegressor
        """
        self._validate_params()
        X = check_frame(X, "fit")
        seconds, cens = check_target(X, y, censored)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        if len(set(self.feature_names_in_)) != len(self.feature_names_in_):
            raise ValueError("fit: X has duplicate column names")
        self.n_features_in_ = len(self.feature_names_in_)
        used = list(X.columns) if self.feature_names is None else list(self.feature_names)
        missing = [c for c in used if c not in X.columns]
        if missing:
            raise ValueError(f"fit: feature_names not in X: {missing}")
        self.features_used_ = used
        self.base_log_seconds_ = float(np.median(np.log(seconds)))
        for name in (
            "conformity_scores_",
            "score_censored_",
            "score_groups_",
            "upper_log_offset_",
            "group_log_offsets_",
            "level_offsets_",
        ):
            self.__dict__.pop(name, None)

        margin = self._base_margin(X)
        if self.cv != "split":
            scores = np.empty(seconds.size)
            folds = KFold(int(self.cv), shuffle=True, random_state=self.random_state)
            for train, held in folds.split(X):
                booster = self._train(X.iloc[train], seconds[train], cens[train], margin[train])
                log_median = self._log_median(booster, X.iloc[held], margin[held])
                scores[held] = np.log(seconds[held]) - log_median
        self.booster_ = self._train(X, seconds, cens, margin)
        if self.cv != "split":
            self._set_scores(scores, cens, self._groups(X))
        return self

    def conformalize(self, X: pd.DataFrame, y: Any, censored: Any = None) -> CPUTimeRegressor:
        """Calibrate (or re-calibrate) the upper bound on rows not used in :meth:`fit`.

        Replaces any calibration made by :meth:`fit`; this also serves to re-calibrate a
        shipped model on newly measured runs without retraining it.

        Parameters
        ----------
        X : DataFrame
            Feature table with the columns seen in :meth:`fit`.
        y : array-like of shape (n_samples,)
            CPU time on the reference host [s]; a lower bound where ``censored``.
        censored : array-like of bool, default=None
            True for jobs killed at the CPU limit.

        Returns
        -------
        self : CPUTimeRegressor
        """
        if not hasattr(self, "booster_"):
            raise _order_error("conformalize", "fit")
        check_confidence_level(self.confidence_level)
        X = self._check_predict_frame(X, "conformalize")
        seconds, cens = check_target(X, y, censored)
        scores = np.log(seconds) - self._predict_log(X)
        self._set_scores(scores, cens, self._groups(X))
        return self

    def _predict_log(self, X: pd.DataFrame) -> np.ndarray:
        return self._log_median(self.booster_, X, self._base_margin(X))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Median CPU time on the reference host [s].

        Parameters
        ----------
        X : DataFrame
            Feature table with the columns seen in :meth:`fit`.

        Returns
        -------
        ndarray of shape (n_samples,)
            Predicted median CPU seconds [s].
        """
        X = self._check_predict_frame(X, "predict")
        return np.exp(self._predict_log(X))

    def predict_log10(self, X: pd.DataFrame) -> np.ndarray:
        """Base-10 log of the median CPU time on the reference host [log10 s]."""
        X = self._check_predict_frame(X, "predict_log10")
        return self._predict_log(X) / math.log(10.0)

    def upper_log_offsets(
        self, X: pd.DataFrame, confidence_level: float | np.ndarray | None = None
    ) -> np.ndarray:
        """Per-row offset of the upper bound above the median [ln s].

        Parameters
        ----------
        X : DataFrame
            Feature table (only the columns the calibration grouping reads are used).
        confidence_level : float or array of shape (n_samples,), default=None
            Coverage in (0, 1), one for all rows or one per row; None uses
            ``self.confidence_level``.

        Returns
        -------
        ndarray of shape (n_samples,)
            ``ln(upper / median)``; ``+inf`` where the calibration cannot support a finite bound
            (too few scores for the level, or too many censored scores above it).
        """
        if not hasattr(self, "booster_"):
            raise _order_error("predict_upper", "fit")
        if not hasattr(self, "conformity_scores_"):
            raise _order_error("predict_upper", "conformalize")
        default = self.confidence_level if confidence_level is None else confidence_level
        levels = np.broadcast_to(np.asarray(default, dtype=float), (len(X),))
        groups = self._groups(X) if self.calibration_groups is not None else None
        offsets = np.empty(len(X), dtype=float)
        for level in distinct(levels):
            if level == float(self.confidence_level):
                pooled, per_group = self.upper_log_offset_, self.group_log_offsets_
            else:
                pooled, per_group = self._offsets_at(float(level))
            rows = levels == level
            offsets[rows] = pooled
            for group, offset in per_group.items():
                offsets[rows & (groups == group)] = offset
        return offsets

    def calibration_group_of(self, X: pd.DataFrame) -> np.ndarray:
        """Calibration group of each row (``"all"`` without Mondrian calibration)."""
        return self._groups(X)

    def predict_median_and_upper(
        self, X: pd.DataFrame, confidence_level: float | np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Median and upper bound together, with one pass through the booster [s].

        See :meth:`predict` and :meth:`predict_upper`.
        """
        X = self._check_predict_frame(X, "predict_median_and_upper")
        return self.predict_median_and_upper_columns(X, confidence_level)

    def predict_log_median_columns(self, columns: Any) -> np.ndarray:
        """Log of the median CPU time of named columns, without a DataFrame [ln s]
        (the columns as for :meth:`predict_median_and_upper_columns`)."""
        return self._predict_log(columns)

    def predict_median_and_upper_columns(
        self, columns: Any, confidence_level: float | np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`predict_median_and_upper` on named columns, without a DataFrame.

        Parameters
        ----------
        columns : cputime.physics.columns.FeatureColumns or DataFrame
            The columns seen in :meth:`fit` (not checked here: the caller's job); the prior and
            the calibration grouping read them as they read a DataFrame (``columns[name]``).
        confidence_level : float or array of shape (n_samples,), default=None
            As for :meth:`upper_log_offsets`.
        """
        log_median = self._predict_log(columns)
        offsets = self.upper_log_offsets(columns, confidence_level)
        with np.errstate(over="ignore"):
            return np.exp(log_median), np.exp(log_median + offsets)

    def predict_upper(self, X: pd.DataFrame, confidence_level: float | None = None) -> np.ndarray:
        """Upper bound on CPU time on the reference host [s].

        Parameters
        ----------
        X : DataFrame
            Feature table with the columns seen in :meth:`fit`.
        confidence_level : float, default=None
            Coverage in (0, 1); None uses ``self.confidence_level``. Any level is computed from
            the stored calibration scores.

        Returns
        -------
        ndarray of shape (n_samples,)
            CPU seconds [s] that the job's CPU time stays below with probability at least
            ``confidence_level`` (for a job exchangeable with the calibration rows). May be
            ``+inf`` (see :meth:`upper_log_offsets`).
        """
        X = self._check_predict_frame(X, "predict_upper")
        offsets = self.upper_log_offsets(X, confidence_level)
        with np.errstate(over="ignore"):
            return np.exp(self._predict_log(X) + offsets)


def check_frame(X: Any, method: str) -> pd.DataFrame:
    """``X`` if it is a DataFrame; features are read by name, so anything else is a TypeError."""
    if not isinstance(X, pd.DataFrame):
        raise TypeError(
            f"{method}: X must be a pandas DataFrame with named feature columns, "
            f"got {type(X).__name__}"
        )
    return X


def check_target(X: pd.DataFrame, y: Any, censored: Any) -> tuple[np.ndarray, np.ndarray]:
    """CPU times [s] and censoring flags of the rows of ``X``, as float and bool arrays.

    Raises
    ------
    ValueError
        When ``X`` has no rows, ``y`` or ``censored`` has another length, or a time is not a
        finite number > 0.
    """
    seconds = np.asarray(y, dtype=float).ravel()
    if len(X) == 0:
        raise ValueError("X has no rows: nothing to fit")
    if seconds.size != len(X):
        raise ValueError(f"y has {seconds.size} values but X has {len(X)} rows")
    if not np.all(np.isfinite(seconds) & (seconds > 0)):
        raise ValueError("y must be finite CPU times > 0 [s]")
    if censored is None:
        cens = np.zeros(seconds.size, dtype=bool)
    else:
        cens = np.asarray(censored).ravel()
        if cens.size != seconds.size:
            raise ValueError(f"censored has {cens.size} values but y has {seconds.size}")
        cens = cens.astype(bool)
    return seconds, cens


def _group_key(value: Any) -> str:
    """Group label as a string (JSON keys); integral floats print as integers."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _order_error(called: str, needed: str) -> ValueError:
    return ValueError(f"{called}() was called before {needed}(): call {needed}() first")
