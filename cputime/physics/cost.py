"""PhoSim's CPU cost as a sum of named, physically motivated parts.

The data-driven model (:mod:`cputime.model.estimator`) learns from production times how sky
conditions
change the cost, but production runs of one field cannot tell what catalog content costs. This
module supplies that part from PhoSim's source plus measured PhoSim runs:

``cpu = setup + filter_factor * (star + galaxy + bright_star_bundles + bright_star_straylight
+ sky)``, where

- ``setup``: fixed cost of a job (atmosphere screens, optics set-up, trim), per snap [s];
- ``star``, ``galaxy``: cost per photon of faint stars and of galaxies, times their photons;
- ``bright_star_bundles``: stars brighter than 16 mag one by one. PhoSim traces a saturating
  star's photons in bundles (``sourceSaturation``/``sourceOver`` in ``photonloop.cpp``), so its
  cost grows less than linearly with its photons: ``c N (1 + N/N_sat)^(beta - 1)``;
- ``bright_star_straylight``: a star brighter than PhoSim's ``straylightcut`` (magnorm 10 unless
  the commands file says otherwise; ``straylight 0`` turns the path off) has every photon of its
  bundles traced again through the stray-light path, a cost linear in its photons;
- ``sky``: a fixed cost when the sky is on (PhoSim generates ~10^4 sky "sources" per sensor) plus
  a cost per sky photon;
- ``filter_factor``: how much more a photon costs in the visit's filter than in r (photons that
  reach the silicon in y travel deeper and are traced longer; in u most die early).

Every part is a parameter of :class:`PhosimCostModel`; :meth:`PhosimCostModel.fit` fits them to
measured runs (censored runs as lower bounds). :meth:`PhosimCostModel.source_type_seconds` spreads
the source parts over PhoSim's 73 source types, for checkpoint plans
(:mod:`cputime.physics.checkpoints`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from cputime.physics.checkpoints import (
    N_SOURCE_TYPES,
    SOURCE_TYPE_PHOTON_COLUMNS,
    SOURCE_TYPES_WITH_PHOTON_COLUMNS,
    source_type_of_magnitude,
)
from cputime.physics.columns import FeatureColumns, as_columns
from cputime.physics.photons import DEFAULT_STRAYLIGHT_CUT_MAG, N_BRIGHT_STAR_SLOTS, source_photons

__all__ = [
    "PhosimCostModel",
    "FILTER_WAVELENGTH_NM",
    "COST_PARTS",
    "SOURCE_PARTS",
    "DEFAULT_PARAMETERS",
]

#: Effective wavelengths of the LSST filters u g r i z y [nm], used to interpolate the filter
#: factor for filters without measured runs.
FILTER_WAVELENGTH_NM = np.array([367.0, 482.0, 622.0, 755.0, 869.0, 971.0])

#: Names of the cost parts returned by :meth:`PhosimCostModel.predict_parts`.
COST_PARTS = (
    "setup",
    "star",
    "galaxy",
    "bright_star_bundles",
    "bright_star_straylight",
    "sky",
)

#: The parts that catalog content and the job's set-up cost (everything but the sky).
SOURCE_PARTS = COST_PARTS[:-1]

#: Filter factor parameters (log of the cost of a photon relative to r), by filter index.
FILTER_PARAMETERS = {
    0: "log_filter_factor_u",
    1: "log_filter_factor_g",
    3: "log_filter_factor_i",
    4: "log_filter_factor_z",
    5: "log_filter_factor_y",
}

#: Starting values of :meth:`PhosimCostModel.fit`, and the values of
#: :meth:`PhosimCostModel.from_parameters`: the fit on the project's PhoSim 3.4 runs
#: (``features/phosim_runs.csv``; a 2-core AMD EPYC host, one thread). Seconds, seconds per
#: photon, photons, and natural logs of the filter factors.
DEFAULT_PARAMETERS = {
    "setup_seconds_per_snap": 47.2,
    "seconds_per_star_photon": 7.03e-7,
    "seconds_per_galaxy_photon": 6.92e-7,
    "bright_star_saturation_photons": 5.68e7,
    "bright_star_photon_exponent": 0.404,
    "seconds_per_straylight_photon": 9.55e-8,
    "sky_setup_seconds_per_snap": 179.3,
    "seconds_per_sky_photon": 3.82e-8,
    "log_filter_factor_u": -1.238,
    "log_filter_factor_g": -0.680,
    "log_filter_factor_i": 0.136,
    "log_filter_factor_z": 0.369,
    "log_filter_factor_y": 0.577,
}

#: What a fit assumes for a part its runs do not measure, chosen on the expensive side so that a
#: walltime is not cut by a guess: a bright star without a saturation run costs in proportion to
#: its photons (no bundling); a stray-light photon without a run below the cut costs what an
#: unsaturated photon costs (PhoSim traces every photon of the bundle again). Filters without
#: runs are interpolated (or extrapolated) in wavelength from the measured ones.
NEUTRAL_PARAMETERS = {
    "bright_star_saturation_photons": 1e30,
    "bright_star_photon_exponent": 1.0,
}


class PhosimCostModel(RegressorMixin, BaseEstimator):
    """PhoSim CPU time as a sum of named parts, on the host the runs were measured on.

    Parameters
    ----------
    parameters : dict, optional
        Starting values of :meth:`fit` for the keys of :data:`DEFAULT_PARAMETERS`; missing keys
        take the defaults. An unfitted model does not predict (``NotFittedError``); for the
        physical model at given values without fitting, use :meth:`from_parameters`.
    fixed : tuple of str
        Parameters kept at their starting value by :meth:`fit`.

    Attributes
    ----------
    parameters_ : dict
        Parameters after :meth:`fit`.
    measured_filters_ : list of int
        Filters whose factor was fitted (r is 1 by definition); the others are interpolated.
    n_fit_runs_ : int
        Runs used by the last fit.
    """

    def __init__(self, parameters: dict | None = None, fixed: tuple[str, ...] = ()):
        self.parameters = parameters
        self.fixed = fixed

    @classmethod
    def from_parameters(cls, parameters: dict | None = None) -> PhosimCostModel:
        """The physical model at given parameter values, ready to predict without a fit.

        Parameters
        ----------
        parameters : dict, optional
            Values for keys of :data:`DEFAULT_PARAMETERS` (units as there); missing keys take
            the defaults, the fit on the project's PhoSim 3.4 runs.

        Returns
        -------
        PhosimCostModel
            With ``parameters_`` set to those values, every filter factor taken as given
            (``measured_filters_``) and ``n_fit_runs_`` 0; :meth:`fit` would start from them.
        """
        model = cls(parameters=parameters)
        model.parameters_ = model._start()
        model.measured_filters_ = sorted(FILTER_PARAMETERS)
        model.n_fit_runs_ = 0
        return model

    def _values(self) -> dict:
        """The fitted parameters; ``NotFittedError`` before :meth:`fit`."""
        check_is_fitted(self, "parameters_")
        return self.parameters_

    def _start(self) -> dict:
        unknown = set(self.parameters or {}) - set(DEFAULT_PARAMETERS)
        if unknown:
            raise ValueError(f"unknown cost-model parameters: {sorted(unknown)}")
        return {**DEFAULT_PARAMETERS, **(self.parameters or {})}

    # ----------------------------------------------------------------------------------------
    def filter_factor(self, filters: np.ndarray) -> np.ndarray:
        """Cost of a photon in each filter relative to r [unitless]."""
        p = self._values()
        logs = np.array([p[FILTER_PARAMETERS[f]] if f != 2 else 0.0 for f in range(6)])
        index = np.clip(np.nan_to_num(np.asarray(filters, dtype=float), nan=2.0), 0, 5)
        return np.exp(logs[index.astype(int)])

    def bright_star_bundle_seconds(self, photons: np.ndarray) -> np.ndarray:
        """Raytrace cost in r of single saturating stars traced in bundles [s].

        Parameters
        ----------
        photons : array_like
            Photons of each star [photons].
        """
        p = self._values()
        photons = np.nan_to_num(np.asarray(photons, dtype=float), nan=0.0)
        log_saturation = np.log1p(photons / p["bright_star_saturation_photons"])
        exponent = p["bright_star_photon_exponent"] - 1.0
        return p["seconds_per_star_photon"] * photons * np.exp(exponent * log_saturation)

    def straylight_seconds(
        self, photons: np.ndarray, magnorm: np.ndarray, straylight_cut_mag: np.ndarray
    ) -> np.ndarray:
        """Stray-light cost in r of stars brighter than PhoSim's ``straylightcut`` [s].

        Parameters
        ----------
        photons : array_like
            Photons of each star [photons].
        magnorm : array_like
            Magnitude of each star [mag].
        straylight_cut_mag : array_like
            ``straylightcut`` of the run [mag]; ``-inf`` when ``straylight 0``.
        """
        below = np.nan_to_num(np.asarray(magnorm, dtype=float), nan=np.inf) < straylight_cut_mag
        photons = np.nan_to_num(np.asarray(photons, dtype=float), nan=0.0)
        return np.where(below, self._values()["seconds_per_straylight_photon"] * photons, 0.0)

    def sky_seconds(
        self, sky_photons: np.ndarray, filter_factor: np.ndarray, nsnap: np.ndarray
    ) -> np.ndarray:
        """Sky part [s]: a fixed cost per snap when the sky is on, plus a cost per sky photon.

        Parameters
        ----------
        sky_photons : array_like
            Sky photons on the sensor [photons]; 0 when the sky is off.
        filter_factor : array_like
            :meth:`filter_factor` of each row [unitless].
        nsnap : array_like
            Snaps [unitless].
        """
        p = self._values()
        sky_photons = np.asarray(sky_photons, dtype=float)
        cost = p["sky_setup_seconds_per_snap"] * np.asarray(nsnap, dtype=float)
        cost = cost + filter_factor * p["seconds_per_sky_photon"] * sky_photons
        return np.where(sky_photons > 0, cost, 0.0)

    def _bright_star_slots(self, columns: FeatureColumns) -> tuple[np.ndarray, np.ndarray]:
        """Bundle and stray-light cost in r of each bright-star slot, shape (n, slots) [s]."""
        exposure = columns.number("exposure_seconds", 0.0)[:, None]
        cut = columns.number("straylight_cut_mag", DEFAULT_STRAYLIGHT_CUT_MAG)[:, None]
        mags = _bright_star_mags(columns, np.nan)
        photons = np.where(
            np.isnan(mags), 0.0, source_photons(np.nan_to_num(mags, nan=99.0), exposure)
        )
        return self.bright_star_bundle_seconds(photons), self.straylight_seconds(photons, mags, cut)

    def predict_parts(self, features: pd.DataFrame) -> pd.DataFrame:
        """CPU seconds of each part for each row of a features table.

        Parameters
        ----------
        features : pandas.DataFrame
            Columns of :data:`cputime.physics.features.FEATURE_COLUMNS`. Missing catalog content (a
            planned visit without a catalog) counts as no sources.

        Returns
        -------
        pandas.DataFrame
            One column per name of :data:`COST_PARTS` [s, on the measuring host].
        """
        return pd.DataFrame(self.part_seconds(as_columns(features)), index=features.index)

    def part_seconds(self, columns: FeatureColumns) -> dict[str, np.ndarray]:
        """:meth:`predict_parts` on feature columns: part name -> seconds of each row [s]."""
        return self._parts_and_slots(columns)[0]

    def _parts_and_slots(self, columns: FeatureColumns):
        """:meth:`part_seconds`, the filter factor, and the bundle and stray-light cost in r
        of each bright-star slot (:meth:`_bright_star_slots`), computed once."""
        p = self._values()
        f = columns
        nsnap = f.number("nsnap", 1.0)
        factor = self.filter_factor(f.number("filter", 2.0))
        bundles, straylight = self._bright_star_slots(f)
        parts = {
            "setup": p["setup_seconds_per_snap"] * nsnap,
            "star": factor * p["seconds_per_star_photon"] * f.number("faint_star_photons", 0.0),
            "galaxy": factor * p["seconds_per_galaxy_photon"] * f.number("galaxy_photons", 0.0),
            "bright_star_bundles": factor * bundles.sum(axis=1),
            "bright_star_straylight": factor * straylight.sum(axis=1),
            "sky": self.sky_seconds(f.number("sky_photons", 0.0), factor, nsnap),
        }
        return parts, factor, bundles, straylight

    def predict(self, features: pd.DataFrame | FeatureColumns) -> np.ndarray:
        """Total CPU seconds on the measuring host [s]."""
        check_is_fitted(self, "parameters_")  # said before anything about the features
        return sum_parts(self.part_seconds(as_columns(features)), COST_PARTS)

    def source_type_seconds(
        self, features: pd.DataFrame | FeatureColumns
    ) -> tuple[np.ndarray, np.ndarray]:
        """The catalog's cost spread over PhoSim's source types (not the sky, not the set-up).

        Parameters
        ----------
        features : pandas.DataFrame or FeatureColumns
            As for :meth:`predict_parts`; the ``photons_source_type_*`` columns place the faint
            stars and galaxies in their magnitude bins.

        Returns
        -------
        by_type : numpy.ndarray, shape (n, 73)
            Star, galaxy and bright-star cost of each source type [s, measuring host].
        unplaced : numpy.ndarray, shape (n,)
            Faint-star and galaxy cost of rows without per-type photons (older feature tables):
            its bins are unknown, so a checkpoint plan must count it in every segment [s].
        """
        return self.parts_and_source_types(features)[1:]

    def parts_and_source_types(
        self, features: pd.DataFrame | FeatureColumns
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """:meth:`part_seconds` and :meth:`source_type_seconds` in one pass over the features
        (a prediction that plans checkpoints needs both) [s, measuring host]."""
        columns = as_columns(features)
        parts, factor, bundles, straylight = self._parts_and_slots(columns)
        n = len(columns)
        slot_types = source_type_of_magnitude(_bright_star_mags(columns, 99.0))
        cells = (np.arange(n)[:, None] * N_SOURCE_TYPES + slot_types).ravel()
        # Slots of one type add up, in slot order (as numpy.add.at would, for less CPU).
        by_type = np.bincount(
            cells, (factor[:, None] * (bundles + straylight)).ravel(), n * N_SOURCE_TYPES
        ).reshape(n, N_SOURCE_TYPES)
        faint = parts["star"] + parts["galaxy"]
        photons = np.column_stack([columns.number(c, np.nan) for c in SOURCE_TYPE_PHOTON_COLUMNS])
        total = np.nansum(photons, axis=1)
        known = ~np.isnan(photons).all(axis=1) & (total > 0)
        share = np.divide(
            np.nan_to_num(photons),
            total[:, None],
            where=total[:, None] > 0,
            out=np.zeros_like(photons),
        )
        by_type[:, SOURCE_TYPES_WITH_PHOTON_COLUMNS] += np.where(
            known[:, None], share * faint[:, None], 0.0
        )
        return parts, by_type, np.where(known, 0.0, faint)

    # ----------------------------------------------------------------------------------------
    def fit(
        self, features: pd.DataFrame, cpu_seconds: np.ndarray, censored: np.ndarray | None = None
    ) -> PhosimCostModel:
        """Fit the parameters to measured runs.

        Parameters
        ----------
        features : pandas.DataFrame
            Features of the runs (one row per run).
        cpu_seconds : array_like
            Measured CPU (user + system) [s].
        censored : array_like of bool, optional
            True where the run was killed: its CPU is a lower bound.

        Returns
        -------
        self

        Notes
        -----
        Least squares in log10 CPU. A censored run adds a residual only when the model predicts
        less than the CPU it had already used (a one-sided, hinge residual). Parameters are fitted
        on a log scale (positive). A parameter that no finished run constrains takes its value
        in :data:`NEUTRAL_PARAMETERS`, the stray-light cost that of an unsaturated photon, and a
        filter without runs is interpolated in wavelength, so that a fit never borrows from runs
        it was not given.
        """
        from scipy.optimize import least_squares

        features = as_columns(features)
        seconds = np.asarray(cpu_seconds, dtype=float).ravel()
        if len(features) == 0 or seconds.size != len(features):
            raise ValueError(f"fit: {seconds.size} CPU times for {len(features)} runs")
        if not np.all(np.isfinite(seconds) & (seconds > 0)):
            raise ValueError("fit: cpu_seconds must be finite CPU times > 0 [s]")
        y = np.log10(seconds)
        cens = np.zeros(len(y), bool) if censored is None else np.asarray(censored, bool).ravel()
        if cens.size != y.size:
            raise ValueError(f"fit: {cens.size} censoring flags for {y.size} runs")
        self.parameters_ = self._start()
        self.measured_filters_ = sorted(
            f for f in FILTER_PARAMETERS if _has_finished(cens, features.number("filter", 2.0) == f)
        )
        free = [n for n in DEFAULT_PARAMETERS if n not in self.fixed]
        names = [n for n in free if self._informed(n, features, cens)]
        derived = [n for n in free if n not in names]
        for name in derived:
            if name in NEUTRAL_PARAMETERS:
                self.parameters_[name] = NEUTRAL_PARAMETERS[name]
        start = np.array([_to_free(n, self.parameters_[n]) for n in names])

        def residuals(free: np.ndarray) -> np.ndarray:
            for name, value in zip(names, free, strict=True):
                self.parameters_[name] = _from_free(name, value)
            self._derive(derived)
            pred = np.log10(np.maximum(self.predict(features), 1e-9))
            r = pred - y
            return np.where(cens, np.minimum(r, 0.0), r)

        solution = least_squares(residuals, start, method="trf", loss="soft_l1", f_scale=0.1)
        residuals(solution.x)
        self.n_fit_runs_ = len(y)
        return self

    def _derive(self, names: list[str]) -> None:
        """Parameters no finished run measures, from the fitted ones (see :meth:`fit`)."""
        p = self.parameters_
        for name in ("seconds_per_galaxy_photon", "seconds_per_straylight_photon"):
            if name in names:
                p[name] = p["seconds_per_star_photon"]
        measured = [2, *self.measured_filters_]
        logs = np.array([0.0 if f == 2 else p[FILTER_PARAMETERS[f]] for f in measured])
        for f, name in FILTER_PARAMETERS.items():
            if name in names:
                p[name] = _log_factor_in_wavelength(f, np.array(measured), logs)

    def _informed(self, name: str, features: FeatureColumns, censored: np.ndarray) -> bool:
        """Whether finished runs hold anything that constrains a parameter."""
        for code, param in FILTER_PARAMETERS.items():
            if name == param:
                return code in self.measured_filters_
        if name in ("sky_setup_seconds_per_snap", "seconds_per_sky_photon"):
            # Two sky runs, killed ones included: their lower bounds keep the fit honest.
            return int((features.number("sky_photons", 0.0) > 0).sum()) >= 2
        if name == "seconds_per_galaxy_photon":
            return _has_finished(censored, features.number("galaxy_photons", 0.0) > 0)
        if name == "seconds_per_straylight_photon":
            _, straylight = self._bright_star_slots(features)
            return _has_finished(censored, straylight.sum(axis=1) > 0)
        if name.startswith("bright_star"):
            bright = ~np.isnan(features.number("bright_star_mag_1", np.nan))
            return int((bright & ~censored).sum()) >= 2
        return True


def _to_free(name: str, value: float) -> float:
    return value if name.startswith("log_") else np.log(value)


def _from_free(name: str, value: float) -> float:
    return float(value if name.startswith("log_") else np.exp(value))


def _has_finished(censored: np.ndarray, mask: np.ndarray) -> bool:
    return bool((mask & ~censored).any())


def _log_factor_in_wavelength(filter_index: int, measured: np.ndarray, logs: np.ndarray) -> float:
    """Log filter factor of a filter without runs [ln], linear in wavelength between the measured
    filters and extended beyond them with the slope of the nearest two (flat with only r)."""
    order = np.argsort(FILTER_WAVELENGTH_NM[measured])
    waves, logs = FILTER_WAVELENGTH_NM[measured][order], logs[order]
    wave = FILTER_WAVELENGTH_NM[filter_index]
    if len(waves) == 1:
        return float(logs[0])
    if wave < waves[0]:
        i, j = 0, 1
    elif wave > waves[-1]:
        i, j = -2, -1
    else:
        return float(np.interp(wave, waves, logs))
    slope = (logs[j] - logs[i]) / (waves[j] - waves[i])
    return float(logs[i] + slope * (wave - waves[i]))


def sum_parts(parts: dict[str, np.ndarray], names) -> np.ndarray:
    """Sum of the named parts, added in the order named (as a table's row sum adds them) [s]."""
    total = parts[names[0]]
    for name in names[1:]:
        total = total + parts[name]
    return total


def _bright_star_mags(columns: FeatureColumns, default: float) -> np.ndarray:
    """Magnitudes of the bright-star slots, shape (n, slots), ``default`` where empty [mag]."""
    return np.column_stack(
        [columns.number(f"bright_star_mag_{k}", default) for k in range(1, N_BRIGHT_STAR_SLOTS + 1)]
    )
