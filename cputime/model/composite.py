"""The CPU-time model users load: physical cost parts plus a learned, calibrated sky term.

``cpu = (setup + stars + galaxies + bright stars) / S + sky``, on the reference host, where

- the parts in brackets come from :class:`cputime.physics.cost.PhosimCostModel`, fitted on PhoSim
runs
  that vary catalog content (measured on another host: ``S``, :attr:`runs_host_slowdown_`, is
  that host's CPU seconds per reference-host CPU second, fitted);
- ``sky`` is the cost model's sky part over ``S``, times a correction learned from production
  times by :class:`cputime.model.estimator.CPUTimeRegressor` (XGBoost AFT with the physical sky
  cost as
  base margin), which is what the moon, twilight, filter and airmass change;
- the upper bound adds the two parts' own calibrated upper bounds: the regressor's conformal
  bound for the sky term, and a conformal bound from leave-one-group-out errors of the cost model
  on the runs for the rest. The sum covers the job whenever both parts are within their bounds,
  so its miss rate is at most the sum of the two parts' (in production one part dominates).

Adding a star therefore adds its cost (the term is increasing in brightness and independent of
the sky correction), and a visit with the sky off (``zenith_v 1000``) costs only its sources.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from cputime.model.conformal import (
    check_confidence_level,
    km_conformal_upper_quantile,
    min_calibration_size,
)
from cputime.model.estimator import CPUTimeRegressor, check_frame, check_target
from cputime.model.extrapolation import (
    DIMENSIONS,
    SKY_DIMENSIONS,
    SOURCE_DIMENSIONS,
    describe_extrapolation,
    extrapolation_dex,
    extrapolation_dex_columns,
    range_limits,
)
from cputime.physics.checkpoints import DARK_SKY_TYPES, MOON_TYPES
from cputime.physics.columns import FeatureColumns, as_columns, distinct
from cputime.physics.cost import SOURCE_PARTS, PhosimCostModel, sum_parts
from cputime.physics.features import FEATURE_COLUMNS
from cputime.physics.photons import sky_photons_per_sensor
from cputime.physics.sky import dark_sky_mag, moon_sky_fraction

__all__ = [
    "CPUTimeModel",
    "MeasuredRuns",
    "SkyPrior",
    "REGRESSOR_FEATURES",
    "source_log_offset",
    "extrapolation_log_slope",
]

#: Features the sky correction may use: the conditions of the visit, never catalog content
#: (production data of one field cannot teach what content costs).
REGRESSOR_FEATURES = [
    "filter",
    "airmass",
    "altitude",
    "seeing",
    "moonalt",
    "moonphase",
    "dist2moon",
    "sunalt",
    "sky_mag_per_arcsec2",
]

#: Booster settings of the sky correction, chosen by 5-fold CV on Twinkles Run 1 among a dozen
#: settings of depth, rounds, learning rate and AFT scale (deeper trees follow the moon's
#: geometry better: MAE 0.0346 against 0.0369 dex with the estimator's defaults).
DEFAULT_REGRESSOR_PARAMS = {"max_depth": 6, "n_estimators": 300, "learning_rate": 0.03}

#: When the runs are too few to calibrate the source part at the asked level, its upper bound
#: falls back to this multiple (in log) of the largest leave-one-group-out error.
SOURCE_FALLBACK_MULTIPLE = 1.5

#: Parts of the cost model that the sky correction does not touch.
_SOURCE_PARTS = list(SOURCE_PARTS)


@dataclass
class MeasuredRuns:
    """PhoSim runs measured on one host, varying catalog content.

    Attributes
    ----------
    features : pandas.DataFrame
        One row per run (:mod:`cputime.physics.features` columns).
    cpu_seconds : numpy.ndarray
        CPU (user + system) on the measuring host [s]; a lower bound where ``censored``.
    censored : numpy.ndarray of bool
        True for runs killed at their limit.
    groups : numpy.ndarray of str
        What each run varies (for leave-one-group-out errors).
    """

    features: pd.DataFrame
    cpu_seconds: np.ndarray
    censored: np.ndarray
    groups: np.ndarray


class SkyPrior:
    """Physical sky cost on the reference host, the base margin of the sky correction.

    Parameters
    ----------
    cost_model : PhosimCostModel
        Its ``sky`` part, in seconds of the runs' host.
    runs_host_slowdown : float
        CPU seconds of the runs' host per reference-host CPU second [unitless].
    filter_log_scale : sequence of 6 float, optional
        Per-filter ``ln`` scale of the sky cost [ln s]: the runs measured the sky only in r, and
        the cost of a sky photon differs by filter (the sky's spectrum is not flat).
    """

    def __init__(
        self,
        cost_model: PhosimCostModel,
        runs_host_slowdown: float,
        filter_log_scale: list[float] | None = None,
    ):
        self.cost_model = cost_model
        self.runs_host_slowdown = runs_host_slowdown
        self.filter_log_scale = filter_log_scale

    def sky_seconds(self, X: pd.DataFrame | FeatureColumns) -> np.ndarray:
        """Sky part on the reference host under a dark sky [s].

        The prior counts the sky photons of the filter's dark zenith sky, not of the modelled
        sky: the trees learn how the moon and twilight brighten the sky from production times
        (with ``sky_mag_per_arcsec2`` among their features), which fits better than correcting
        the modelled photons (0.037 against 0.040 dex in 5-fold CV on Twinkles). The prior keeps
        what 30 s single-snap production visits cannot teach: exposure time, snaps, sky on/off.
        """
        X = as_columns(X)
        filters = np.clip(X.number("filter", 2.0).astype(int), 0, 5)
        on = X.number("sky_photons", 0.0) > 0
        dark = sky_photons_per_sensor(dark_sky_mag(filters), X["exposure_seconds"])
        model = self.cost_model
        sky = model.sky_seconds(np.where(on, dark, 0.0), model.filter_factor(filters), X["nsnap"])
        sky = sky / self.runs_host_slowdown
        if self.filter_log_scale is None:
            return sky
        return sky * np.exp(np.asarray(self.filter_log_scale)[filters])

    def predict_log_seconds(self, X: pd.DataFrame | FeatureColumns) -> np.ndarray:
        return np.log(self.sky_seconds(X))


class CPUTimeModel(BaseEstimator):
    """Median and calibrated upper bound of PhoSim CPU time per (visit, sensor).

    Parameters
    ----------
    confidence_level : float, default=0.95
        Default coverage of :meth:`predict_upper`.
    regressor_params : dict, optional
        Parameters of the :class:`~cputime.model.estimator.CPUTimeRegressor` sky correction, over
        :data:`DEFAULT_REGRESSOR_PARAMS`.
    random_state : int, default=0
        Seed.

    Attributes
    ----------
    cost_model_ : PhosimCostModel
        Cost parts fitted on the measured runs.
    runs_host_slowdown_ : float
        CPU seconds of the runs' host per reference-host CPU second [unitless].
    sky_regressor_ : CPUTimeRegressor
        Learned sky correction, with its conformal calibration.
    source_scores_ : numpy.ndarray
        Leave-one-group-out ``ln(actual / predicted)`` of the cost model on the runs.
    source_censored_ : numpy.ndarray of bool
        True where that score is a lower bound.
    source_extrapolation_dex_ : numpy.ndarray
        How far beyond the range of the other groups each run lay [dex, the largest over drivers];
        the scores of runs beyond it teach how fast the error grows
        (:meth:`extrapolation_log_slope`).
    fitted_ranges_ : dict
        Largest value of each driver of :mod:`cputime.model.extrapolation` among finished runs and
        jobs; predictions beyond it are flagged and get a wider bound.
    """

    def __init__(
        self,
        *,
        confidence_level: float = 0.95,
        regressor_params: dict | None = None,
        random_state: int = 0,
    ):
        self.confidence_level = confidence_level
        self.regressor_params = regressor_params
        self.random_state = random_state

    # ---------------------------------------------------------------------------------- fit
    def fit(
        self,
        X: pd.DataFrame,
        y: np.ndarray,
        censored: np.ndarray | None = None,
        *,
        runs: MeasuredRuns,
    ) -> CPUTimeModel:
        """Fit the cost parts on ``runs`` and the sky correction on ``(X, y)``.

        Parameters
        ----------
        X : pandas.DataFrame
            Features of production jobs (e.g. the Twinkles visits).
        y : array_like
            Their CPU time on the reference host [s]; a lower bound where ``censored``.
        censored : array_like of bool, optional
            True for jobs killed at their limit.
        runs : MeasuredRuns
            Runs varying catalog content, for the cost parts.

        Returns
        -------
        self
        """
        check_confidence_level(self.confidence_level)
        self.__dict__.pop("source_bounds_", None)
        y, censored = check_target(check_frame(X, "fit"), y, censored)
        self.cost_model_ = PhosimCostModel().fit(runs.features, runs.cpu_seconds, runs.censored)
        self.source_scores_, self.source_censored_, self.source_extrapolation_dex_ = (
            leave_one_group_out_scores(runs)
        )
        both = pd.concat([runs.features, X], ignore_index=True)
        self.fitted_ranges_ = range_limits(both, np.concatenate([~runs.censored, ~censored]))
        self.runs_host_slowdown_ = self._fit_runs_host_slowdown(X, y, censored)
        rows_x, rows_y, rows_c = self._sky_training_rows(X, y, censored, runs)
        unscaled = SkyPrior(self.cost_model_, self.runs_host_slowdown_)
        self.sky_filter_log_scale_ = _filter_log_scale(
            rows_x, np.log(rows_y) - unscaled.predict_log_seconds(rows_x), rows_c
        )
        prior = SkyPrior(self.cost_model_, self.runs_host_slowdown_, self.sky_filter_log_scale_)
        self.sky_regressor_ = CPUTimeRegressor(
            confidence_level=self.confidence_level,
            prior=prior,
            feature_names=REGRESSOR_FEATURES,
            random_state=self.random_state,
            **{**DEFAULT_REGRESSOR_PARAMS, **(self.regressor_params or {})},
        ).fit(rows_x, rows_y, rows_c)
        self.feature_names_in_ = np.asarray(self.sky_regressor_.feature_names_in_)
        return self

    def _fit_runs_host_slowdown(
        self, X: pd.DataFrame, y: np.ndarray, censored: np.ndarray
    ) -> float:
        """The inverse of the median ratio of measured CPU to the cost model's, in the regime
        the runs measured.

        The runs measured the sky cost in r in dark time, so the ratio is taken on finished jobs
        in r in dark time when there are enough of them, else on all finished jobs.
        """
        predicted = self.cost_model_.predict(X)
        ok = ~censored & (predicted > 0)
        dark = ok & (X["filter"].to_numpy() == 2) & (X["moonalt"].to_numpy() < 0)
        dark &= X["sunalt"].to_numpy() < -18
        use = dark if dark.sum() >= 20 else ok
        if not use.any():
            raise ValueError("no finished job to fit the runs' host slowdown on")
        return 1.0 / float(np.median(y[use] / predicted[use]))

    def _sky_training_rows(self, X, y, censored, runs: MeasuredRuns):
        """Rows for the sky correction: jobs with the sky on, their sky CPU share as target."""
        slowdown = self.runs_host_slowdown_
        frames = [X[self._all_columns(X)]]
        targets = [y]
        flags = [censored]
        sky_runs = runs.features["sky_photons"].fillna(0).to_numpy() > 0
        if sky_runs.any():
            frames.append(runs.features.loc[sky_runs, self._all_columns(X)])
            targets.append(runs.cpu_seconds[sky_runs] / slowdown)
            flags.append(runs.censored[sky_runs])
        frame = pd.concat(frames, ignore_index=True)
        total = np.concatenate(targets)
        flag = np.concatenate(flags)
        parts = self.cost_model_.part_seconds(as_columns(frame))
        rest = sum_parts(parts, _SOURCE_PARTS) / slowdown
        keep = parts["sky"] > 0
        # Production jobs are sky-dominated; a job whose sources alone exceed its CPU says
        # nothing about the sky and is left out rather than given a negative sky time.
        sky_seconds = total - rest
        keep &= sky_seconds > 0.05 * total
        return frame[keep].reset_index(drop=True), sky_seconds[keep], flag[keep]

    @staticmethod
    def _all_columns(X: pd.DataFrame) -> list[str]:
        return [c for c in FEATURE_COLUMNS if c in X.columns]

    # ------------------------------------------------------------------------------ predict
    def predict_frame(
        self, X: pd.DataFrame, confidence_level: float | np.ndarray | None = None
    ) -> pd.DataFrame:
        """Everything a prediction needs, computed once, on the reference host [s].

        Parameters
        ----------
        X : pandas.DataFrame
            Features (:mod:`cputime.physics.features` columns).
        confidence_level : float or array of shape (n,), optional
            Coverage of the upper bound, for all rows or per row; the model's default when None.

        Returns
        -------
        pandas.DataFrame
            ``source_seconds`` and ``sky_seconds`` (medians of the two terms),
            ``cpu_seconds_p50``, ``cpu_seconds_upper``, ``setup_seconds`` (the fixed CPU that
            every job and every checkpoint segment pays), ``source_upper_ratio`` and
            ``sky_upper_ratio`` (each term's upper bound over its median, widening included),
            ``extrapolation_dex`` (how far beyond the fitted range, the largest over drivers
            [dex]) and ``extrapolation``
            (which drivers, by how much; '' inside the range).
        """
        return pd.DataFrame(self.predict_columns(self.feature_columns(X), confidence_level))

    def predict_columns(
        self, X: FeatureColumns, confidence_level: float | np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """:meth:`predict_frame` on feature columns (:meth:`feature_columns`): the same names,
        each an array; what every prediction path computes."""
        return self._prepared(X, source_types=False)(confidence_level)

    def predict_with_source_types(
        self, X: FeatureColumns, confidence_level: float | np.ndarray | None = None
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """:meth:`predict_columns` and :meth:`upper_seconds_by_source_type` of feature columns
        together, the cost parts computed once: what a walltime plan needs [s]."""
        return self.source_type_predictor(X)(confidence_level)

    def source_type_predictor(self, X: FeatureColumns):
        """:meth:`predict_with_source_types` of ``X`` as a function ``at(confidence_level,
        rows=None)`` (the rows of ``X`` an index array selects, all by default) whose work that
        does not depend on the level (cost parts, the sky correction's median, the range
        check, the moon's share of the sky) is done once: a walltime policy that tries a second
        level for some jobs pays only for the bound."""
        return self._prepared(X, source_types=True)

    def _prepared(self, X: FeatureColumns, *, source_types: bool):
        check_is_fitted(self, "sky_regressor_")
        slowdown = self.runs_host_slowdown_
        if source_types:
            parts, by_type, unplaced = self.cost_model_.parts_and_source_types(X)
            moon = _moon_share(X)
        else:
            parts = self.cost_model_.part_seconds(X)
        source = sum_parts(parts, _SOURCE_PARTS) / slowdown
        setup = parts["setup"] / slowdown
        sky_on = parts["sky"] > 0
        every_on = bool(sky_on.all())
        on_columns = X if every_on else X.take(sky_on)
        regressor = self.sky_regressor_
        log_median = regressor.predict_log_median_columns(on_columns) if sky_on.any() else None
        on_index = np.cumsum(sky_on) - 1  # row of X -> row of on_columns
        dex = extrapolation_dex_columns(X, self.fitted_ranges_, self.cost_model_.measured_filters_)
        # Catalog content and the filter's photon cost are the cost model's; the sky photons
        # and exposure, what the sky correction learned from production jobs.
        source_dex = _largest(dex, SOURCE_DIMENSIONS)
        sky_dex = _largest(dex, SKY_DIMENSIONS)
        largest = _largest(dex, DIMENSIONS)
        text = describe_extrapolation(dex)

        def at(confidence_level=None, rows=None):
            def pick(values):
                return values if rows is None else values[rows]

            n = len(X) if rows is None else len(rows)
            default = self.confidence_level if confidence_level is None else confidence_level
            level = np.broadcast_to(np.asarray(default, dtype=float), (n,))
            levels = distinct(level)
            for value in levels:
                check_confidence_level(float(value))
            sky = np.zeros(n)
            sky_upper = np.zeros(n)
            on = pick(sky_on)
            if rows is None and every_on and n:
                sky, sky_upper = _median_and_upper(
                    log_median, regressor.upper_log_offsets(on_columns, level)
                )
            elif on.any():
                index = pick(on_index)[on]
                sky[on], sky_upper[on] = _median_and_upper(
                    log_median[index],
                    regressor.upper_log_offsets(on_columns.take(index), level[on]),
                )
            offset = np.empty(n)
            slope = np.empty(n)
            for value in levels:
                chosen = level == value
                offset[chosen], slope[chosen] = self._source_bound(float(value))
            source_ratio = np.exp(offset + slope * pick(source_dex))
            sky_ratio = np.divide(sky_upper, sky, out=np.ones(n), where=sky > 0)
            sky_ratio = sky_ratio * np.exp(slope * pick(sky_dex))
            mine = pick(source)
            predicted = {
                "source_seconds": mine,
                "sky_seconds": sky,
                "cpu_seconds_p50": mine + sky,
                "cpu_seconds_upper": mine * source_ratio + sky * sky_ratio,
                "setup_seconds": pick(setup),
                "source_upper_ratio": source_ratio,
                "sky_upper_ratio": sky_ratio,
                "extrapolation_dex": pick(largest),
                "extrapolation": pick(text),
            }
            if not source_types:
                return predicted
            split = self._upper_by_source_type(predicted, pick(by_type), pick(unplaced), pick(moon))
            return predicted, *split

        return at

    def _source_bound(self, confidence_level: float) -> tuple[float, float]:
        """:meth:`source_log_offset` and :meth:`extrapolation_log_slope` at a level, each
        computed once per level: ``source_bounds_`` (filled lazily, emptied by :meth:`fit`)
        keeps them, as a walltime policy asks for the same few levels in every request."""
        cache = self.__dict__.setdefault("source_bounds_", {})
        if confidence_level not in cache:
            cache[confidence_level] = (
                self.source_log_offset(confidence_level),
                self.extrapolation_log_slope(confidence_level),
            )
        return cache[confidence_level]

    def calibration_scores(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Calibration scores ``ln(actual / predicted)`` of the production jobs, whether each
        is a lower bound (killed), and each one's calibration group: what a walltime policy
        weighs kills against (the sky term's cross-conformal scores, which production jobs'
        times are made of)."""
        regressor = self.sky_regressor_
        return regressor.conformity_scores_, regressor.score_censored_, regressor.score_groups_

    def calibration_group_of(self, X: pd.DataFrame | FeatureColumns) -> np.ndarray:
        """Calibration group (e.g. moon up or down) of each job."""
        return self.sky_regressor_.calibration_group_of(self.feature_columns(X))

    def upper_seconds_by_source_type(
        self, X: pd.DataFrame | FeatureColumns, predicted: pd.DataFrame | dict[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Upper bounds split as PhoSim's checkpoints split a job, on the reference host [s].

        Parameters
        ----------
        X : pandas.DataFrame or FeatureColumns
            Features.
        predicted : pandas.DataFrame or dict
            :meth:`predict_frame` (or :meth:`predict_columns`) of ``X``.

        Returns
        -------
        by_type : numpy.ndarray, shape (n, 73)
            Upper bound of the CPU of each of PhoSim's source types: the catalog's sources in
            their magnitude bins, the dark sky and the moon a tenth per type
            (:mod:`cputime.physics.checkpoints`).
        every_segment : numpy.ndarray, shape (n,)
            Upper bound of the CPU every segment pays: the set-up, and faint sources whose
            magnitude bins the features do not give.
        """
        X = self.feature_columns(X)
        by_type, unplaced = self.cost_model_.source_type_seconds(X)
        return self._upper_by_source_type(predicted, by_type, unplaced, _moon_share(X))

    def _upper_by_source_type(
        self,
        predicted: pd.DataFrame | dict[str, np.ndarray],
        by_type: np.ndarray,
        unplaced: np.ndarray,
        moon: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`upper_seconds_by_source_type` from the cost model's split of the jobs and the
        moon's share of their sky."""
        slowdown = self.runs_host_slowdown_
        source_ratio = np.asarray(predicted["source_upper_ratio"])
        by_type = by_type * (source_ratio / slowdown)[:, None]
        sky = np.asarray(predicted["sky_seconds"]) * np.asarray(predicted["sky_upper_ratio"])
        by_type[:, DARK_SKY_TYPES] += (sky * (1.0 - moon) / len(DARK_SKY_TYPES))[:, None]
        by_type[:, MOON_TYPES] += (sky * moon / len(MOON_TYPES))[:, None]
        every = (np.asarray(predicted["setup_seconds"]) + unplaced / slowdown) * source_ratio
        return by_type, every

    def extrapolation(self, X: pd.DataFrame) -> pd.DataFrame:
        """How far each job lies beyond the fitted range, per driver [dex]."""
        return extrapolation_dex(X, self.fitted_ranges_, self.cost_model_.measured_filters_)

    def predict_parts(self, X: pd.DataFrame) -> pd.DataFrame:
        """Median CPU of the source and sky terms on the reference host [s]."""
        return self.predict_frame(X)[["source_seconds", "sky_seconds"]]

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Median CPU time on the reference host [s]."""
        return self.predict_frame(X)["cpu_seconds_p50"].to_numpy()

    def predict_upper(
        self, X: pd.DataFrame, confidence_level: float | np.ndarray | None = None
    ) -> np.ndarray:
        """Upper bound of the CPU time on the reference host at ``confidence_level`` (one
        level, or one per row) [s]."""
        return self.predict_frame(X, confidence_level)["cpu_seconds_upper"].to_numpy()

    def source_log_offset(self, confidence_level: float) -> float:
        """Upper-bound offset of the source term inside the fitted range [ln s]
        (:func:`source_log_offset`)."""
        return source_log_offset(
            self.source_scores_, self.source_censored_, self.source_extrapolation_dex_,
            confidence_level,
        )  # fmt: skip

    def extrapolation_log_slope(self, confidence_level: float) -> float:
        """How fast the upper bound widens beyond the fitted range [ln per dex]
        (:func:`extrapolation_log_slope`)."""
        return extrapolation_log_slope(
            self.source_scores_, self.source_censored_, self.source_extrapolation_dex_,
            confidence_level,
        )  # fmt: skip

    def feature_columns(self, X: pd.DataFrame | FeatureColumns) -> FeatureColumns:
        """The model's features of a table as :class:`~cputime.physics.columns.FeatureColumns`,
        converted once (a ValueError names the missing ones)."""
        check_is_fitted(self, "sky_regressor_")
        missing = [c for c in self.feature_names_in_ if c not in X]
        if missing:
            raise ValueError(f"features missing: {missing}")
        if isinstance(X, FeatureColumns):
            return X
        return FeatureColumns.from_frame(X, self.feature_names_in_)

    @property
    def reference_sensor(self) -> str:
        """The sensor the production data were measured on."""
        return "R22_S11"


def _moon_share(X: FeatureColumns) -> np.ndarray:
    """Moonlight's share of each job's sky [unitless] (:func:`moon_sky_fraction`)."""
    return moon_sky_fraction(
        np.clip(X.number("filter", 2.0).astype(int), 0, 5),
        X["altitude"],
        X["moonalt"],
        X["moonphase"],
        X["dist2moon"],
        X["sunalt"],
        X["airmass"],
    )


def _median_and_upper(log_median: np.ndarray, offsets: np.ndarray):
    """Median and upper bound from the log median and the bound's log offset [s]."""
    with np.errstate(over="ignore"):
        return np.exp(log_median), np.exp(log_median + offsets)


def _largest(dex: dict[str, np.ndarray], names) -> np.ndarray:
    """Largest distance of each job over the named drivers [dex]."""
    return np.max(np.column_stack([dex[name] for name in names]), axis=1)


def _filter_log_scale(X: pd.DataFrame, log_ratio: np.ndarray, censored: np.ndarray) -> list[float]:
    """Median ``ln(measured / physical)`` sky cost per filter, on finished jobs in dark time.

    Filters without such jobs get the median over all filters.
    """
    finished = ~censored & (X["moonalt"].to_numpy() < 0) & (X["sunalt"].to_numpy() < -18)
    if not finished.any():
        finished = ~censored
    pooled = float(np.median(log_ratio[finished])) if finished.any() else 0.0
    filters = X["filter"].to_numpy()
    return [
        float(np.median(log_ratio[finished & (filters == f)]))
        if (finished & (filters == f)).sum() >= 5
        else pooled
        for f in range(6)
    ]


def source_log_offset(
    scores: np.ndarray, censored: np.ndarray, extrapolation_dex: np.ndarray, confidence_level: float
) -> float:
    """Upper-bound offset of the source term inside the fitted range [ln s].

    Parameters
    ----------
    scores, censored, extrapolation_dex : numpy.ndarray
        From :func:`leave_one_group_out_scores`.
    confidence_level : float

    Returns
    -------
    float
        The conformal quantile of the scores of the runs that lay inside the range of the other
        groups (Kaplan–Meier for killed runs); with too few of them for the level,
        :data:`SOURCE_FALLBACK_MULTIPLE` times their largest.
    """
    inside = extrapolation_dex == 0
    scores, censored = scores[inside], censored[inside]
    if len(scores) >= min_calibration_size(confidence_level):
        offset = km_conformal_upper_quantile(scores, censored, confidence_level)
        if np.isfinite(offset):
            return max(float(offset), 0.0)
    finite = np.abs(scores[~censored])
    return SOURCE_FALLBACK_MULTIPLE * float(finite.max()) if finite.size else np.log(2.0)


def extrapolation_log_slope(
    scores: np.ndarray, censored: np.ndarray, extrapolation_dex: np.ndarray, confidence_level: float
) -> float:
    """How fast the upper bound widens beyond the fitted range [ln per dex].

    Learned from the runs that lay beyond the range of the other groups: the largest
    ``(score - offset) / distance`` among them, so that the bound at their distance would have
    covered every one of them (a killed run's score is a lower bound and counts as such). Zero
    when no run lay beyond the range or every such run was covered anyway.
    """
    beyond = extrapolation_dex > 0
    if not beyond.any():
        return 0.0
    offset = source_log_offset(scores, censored, extrapolation_dex, confidence_level)
    return float(max(0.0, np.max((scores[beyond] - offset) / extrapolation_dex[beyond])))


def leave_one_group_out_scores(runs: MeasuredRuns) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Leave-one-group-out errors of the cost model on measured runs, and how far out each was.

    Parameters
    ----------
    runs : MeasuredRuns

    Returns
    -------
    scores : numpy.ndarray
        ``ln(cpu / predicted)`` per run, predicted by a cost model fitted without the run's group.
    censored : numpy.ndarray of bool
        True where the score is a lower bound (the run was killed).
    extrapolation_dex : numpy.ndarray
        How far the run lay beyond the range of the other groups [dex, the largest over drivers].
    """
    predicted, distance = leave_one_group_out_predictions(runs, with_extrapolation=True)
    return np.log(runs.cpu_seconds / predicted), runs.censored.copy(), distance


def leave_one_group_out_predictions(
    runs: MeasuredRuns, groups: np.ndarray | None = None, *, with_extrapolation: bool = False
):
    """Cost-model prediction of each run by a model fitted on the other groups [s].

    ``groups`` overrides ``runs.groups`` (e.g. one group per run for leave-one-run-out). With
    ``with_extrapolation``, also returns how far each run lay beyond the range of the runs its
    model was fitted on [dex, the largest over drivers].
    """
    groups = runs.groups if groups is None else np.asarray(groups)
    predicted = np.empty(len(runs.cpu_seconds))
    distance = np.zeros(len(runs.cpu_seconds))
    for group in np.unique(groups):
        held = groups == group
        rest = runs.features[~held]
        model = PhosimCostModel().fit(rest, runs.cpu_seconds[~held], runs.censored[~held])
        predicted[held] = model.predict(runs.features[held])
        limits = range_limits(rest, ~runs.censored[~held])
        dex = extrapolation_dex(runs.features[held], limits, model.measured_filters_)
        distance[held] = dex.max(axis=1).to_numpy()
    return (predicted, distance) if with_extrapolation else predicted
