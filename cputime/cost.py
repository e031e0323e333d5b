"""PhoSim's CPU cost as a sum of named, physically motivated parts.

The data-driven model (:mod:`cputime.estimator`) learns from production times how sky conditions
change the cost, but production runs of one field cannot tell what catalog content costs. This
module supplies that part from first principles plus measured PhoSim runs:

``cpu = setup + filter_factor * (star + galaxy + bright_stars + sky)``, where

- ``setup``: fixed cost of a job (atmosphere screens, optics set-up, trim), per snap [s];
- ``star``, ``galaxy``: cost per photon of faint stars and of galaxies, times their photons;
- ``bright_stars``: stars brighter than 16 mag one by one, whose cost grows less than linearly with
  their photons (saturated pixels stop the photon loop early), ``c N (1 + N/N_sat)^(beta - 1)``;
- ``sky``: a fixed cost when the sky is on (PhoSim generates ~10^4 sky "sources" per sensor) plus
  a cost per sky photon;
- ``filter_factor``: how much more a photon costs in the visit's filter than in r (photons that
  reach the silicon in y travel deeper and are traced longer; in u most die early).

Every part is a parameter of :class:`PhosimCostModel`; :meth:`PhosimCostModel.fit` fits them to
measured runs (censored runs as lower bounds), and the defaults are the values fitted on the
project's PhoSim 3.4 runs, so the model is usable without fitting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from cputime.photons import N_BRIGHT_STAR_SLOTS, source_photons

__all__ = ["PhosimCostModel", "FILTER_WAVELENGTH_NM", "COST_PARTS"]

#: Effective wavelengths of the LSST filters u g r i z y [nm], used to interpolate the filter
#: factor for filters without measured runs.
FILTER_WAVELENGTH_NM = np.array([367.0, 482.0, 622.0, 755.0, 869.0, 971.0])

#: Names of the cost parts returned by :meth:`PhosimCostModel.predict_parts`.
COST_PARTS = ("setup", "star", "galaxy", "bright_stars", "sky")

#: The parameters, with the values fitted on the project's 23 PhoSim 3.4 runs
#: (``features/phosim_runs.csv``; a 2-core AMD EPYC host, one thread): the model's values
#: before any fit and the starting point of :meth:`PhosimCostModel.fit`. Seconds, seconds per
#: photon, photons, and natural logs of the filter factors.
DEFAULT_PARAMETERS = {
    "setup_seconds_per_snap": 48.7,
    "seconds_per_star_photon": 7.00e-7,
    "seconds_per_galaxy_photon": 6.71e-7,
    "bright_star_saturation_photons": 4.58e7,
    "bright_star_photon_exponent": 0.438,
    "sky_setup_seconds_per_snap": 177.7,
    "seconds_per_sky_photon": 3.82e-8,
    "log_filter_factor_u": -1.285,
    "log_filter_factor_i": 0.129,
    "log_filter_factor_y": 0.574,
}

#: Values for parameters that the runs given to :meth:`PhosimCostModel.fit` cannot constrain:
#: what is assumed without a measurement (a photon costs the same in every filter; a bright
#: star costs in proportion to its photons). Galaxies without data cost what stars cost.
NEUTRAL_PARAMETERS = {
    "bright_star_saturation_photons": 1e30,
    "bright_star_photon_exponent": 1.0,
    "log_filter_factor_u": 0.0,
    "log_filter_factor_i": 0.0,
    "log_filter_factor_y": 0.0,
}

#: Filters whose factor is fitted; the others are interpolated in wavelength (r is 1 by definition).
_FITTED_FILTERS = {0: "log_filter_factor_u", 3: "log_filter_factor_i", 5: "log_filter_factor_y"}


@dataclass
class PhosimCostModel:
    """PhoSim CPU time as a sum of named parts, on the host the runs were measured on.

    Parameters
    ----------
    parameters : dict, optional
        Values for the keys of :data:`DEFAULT_PARAMETERS`; missing keys take the defaults.
    fixed : tuple of str
        Parameters kept at their value by :meth:`fit` (e.g. those the data cannot constrain).

    Attributes
    ----------
    parameters_ : dict
        Parameters after :meth:`fit` (or the given ones when not fitted).
    n_fit_runs_ : int
        Runs used by the last fit (0 when not fitted).
    """

    parameters: dict | None = None
    fixed: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.parameters_ = {**DEFAULT_PARAMETERS, **(self.parameters or {})}
        self.n_fit_runs_ = 0

    # ----------------------------------------------------------------------------------------
    def filter_factor(self, filters: np.ndarray) -> np.ndarray:
        """Cost of a photon in each filter relative to r [unitless]."""
        p = self.parameters_
        known_filters = [0, 2, 3, 5]
        known_logs = [p[_FITTED_FILTERS[0]], 0.0, p[_FITTED_FILTERS[3]], p[_FITTED_FILTERS[5]]]
        logs = np.interp(
            FILTER_WAVELENGTH_NM,
            FILTER_WAVELENGTH_NM[known_filters],
            np.asarray(known_logs, dtype=float),
        )
        index = np.clip(np.nan_to_num(np.asarray(filters, dtype=float), nan=2.0), 0, 5)
        return np.exp(logs[index.astype(int)])

    def bright_star_seconds(self, photons: np.ndarray) -> np.ndarray:
        """Raytrace cost in r of single bright stars with the given photon counts [s]."""
        p = self.parameters_
        photons = np.nan_to_num(np.asarray(photons, dtype=float), nan=0.0)
        log_saturation = np.log1p(photons / p["bright_star_saturation_photons"])
        exponent = p["bright_star_photon_exponent"] - 1.0
        return p["seconds_per_star_photon"] * photons * np.exp(exponent * log_saturation)

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
        p = self.parameters_
        sky_photons = np.asarray(sky_photons, dtype=float)
        cost = p["sky_setup_seconds_per_snap"] * np.asarray(nsnap, dtype=float)
        cost = cost + filter_factor * p["seconds_per_sky_photon"] * sky_photons
        return np.where(sky_photons > 0, cost, 0.0)

    def predict_parts(self, features: pd.DataFrame) -> pd.DataFrame:
        """CPU seconds of each part for each row of a features table.

        Parameters
        ----------
        features : pandas.DataFrame
            Columns of :data:`cputime.features.FEATURE_COLUMNS`. Missing catalog content (a
            planned visit without a catalog) counts as no sources.

        Returns
        -------
        pandas.DataFrame
            One column per name of :data:`COST_PARTS` [s, on the measuring host].
        """
        p = self.parameters_
        f = features
        nsnap = _column(f, "nsnap", 1.0)
        factor = self.filter_factor(_column(f, "filter", 2.0))
        exposure = _column(f, "exposure_seconds", 0.0)
        bright = np.zeros(len(f))
        for k in range(1, N_BRIGHT_STAR_SLOTS + 1):
            mags = _column(f, f"bright_star_mag_{k}", np.nan)
            bright += self.bright_star_seconds(
                np.where(
                    np.isnan(mags), 0.0, source_photons(np.nan_to_num(mags, nan=99.0), exposure)
                )
            )
        sky_photons = _column(f, "sky_photons", 0.0)
        parts = {
            "setup": p["setup_seconds_per_snap"] * nsnap,
            "star": factor * p["seconds_per_star_photon"] * _column(f, "faint_star_photons", 0.0),
            "galaxy": factor * p["seconds_per_galaxy_photon"] * _column(f, "galaxy_photons", 0.0),
            "bright_stars": factor * bright,
            "sky": self.sky_seconds(sky_photons, factor, nsnap),
        }
        return pd.DataFrame(parts, index=features.index)

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """Total CPU seconds on the measuring host [s]."""
        return self.predict_parts(features).sum(axis=1).to_numpy()

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
        on a log scale (positive), and parameters the runs cannot constrain (no run of their
        kind) take the values of :data:`NEUTRAL_PARAMETERS` (or keep their value when it has no
        neutral one, as for the sky costs), so that a fit never borrows from runs it was not given.
        """
        y = np.log10(np.asarray(cpu_seconds, dtype=float))
        cens = np.zeros(len(y), bool) if censored is None else np.asarray(censored, bool)
        free = [n for n in DEFAULT_PARAMETERS if n not in self.fixed]
        names = [n for n in free if self._informed(n, features)]
        for name in set(free) - set(names):
            if name in NEUTRAL_PARAMETERS:
                self.parameters_[name] = NEUTRAL_PARAMETERS[name]
        start = np.array([self._to_free(n, self.parameters_[n]) for n in names])

        def residuals(free: np.ndarray) -> np.ndarray:
            for name, value in zip(names, free, strict=True):
                self.parameters_[name] = self._from_free(name, value)
            pred = np.log10(np.maximum(self.predict(features), 1e-9))
            r = pred - y
            return np.where(cens, np.minimum(r, 0.0), r)

        solution = least_squares(residuals, start, method="trf", loss="soft_l1", f_scale=0.1)
        residuals(solution.x)
        if "seconds_per_galaxy_photon" in free and "seconds_per_galaxy_photon" not in names:
            self.parameters_["seconds_per_galaxy_photon"] = self.parameters_[
                "seconds_per_star_photon"
            ]
        self.n_fit_runs_ = len(y)
        return self

    @staticmethod
    def _to_free(name: str, value: float) -> float:
        return value if name.startswith("log_") else np.log(value)

    @staticmethod
    def _from_free(name: str, value: float) -> float:
        return float(value if name.startswith("log_") else np.exp(value))

    @staticmethod
    def _informed(name: str, features: pd.DataFrame) -> bool:
        """Whether the runs hold anything that constrains a parameter."""
        filters = set(features.get("filter", pd.Series(dtype=float)).dropna().astype(int))
        for code, param in _FITTED_FILTERS.items():
            if name == param:
                return code in filters
        sky = features.get("sky_photons", pd.Series(dtype=float)).fillna(0) > 0
        if name in ("sky_setup_seconds_per_snap", "seconds_per_sky_photon"):
            return int(sky.sum()) >= 2
        if name == "seconds_per_galaxy_photon":
            return bool(
                (features.get("galaxy_photons", pd.Series(dtype=float)).fillna(0) > 0).any()
            )
        if name.startswith("bright_star"):
            return bool(
                features.get("bright_star_mag_1", pd.Series(dtype=float)).notna().sum() >= 2
            )
        return True

    # ----------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-ready description (see :mod:`cputime.modelio`)."""
        return {
            "kind": "phosim_cost",
            "parameters": dict(self.parameters_),
            "fixed": list(self.fixed),
            "n_fit_runs": self.n_fit_runs_,
        }

    @classmethod
    def from_dict(cls, data: dict) -> PhosimCostModel:
        unknown = set(data.get("parameters", {})) - set(DEFAULT_PARAMETERS)
        if unknown:
            raise ValueError(f"unknown cost-model parameters: {sorted(unknown)}")
        model = cls(parameters=data.get("parameters"), fixed=tuple(data.get("fixed", ())))
        model.n_fit_runs_ = int(data.get("n_fit_runs", 0))
        return model


def _column(frame: pd.DataFrame, name: str, default: float) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), default, dtype=float)
    column = frame[name]
    if column.dtype == object:
        column = pd.to_numeric(column, errors="coerce")
    values = column.to_numpy(dtype=float, na_value=np.nan)
    if np.isnan(default):
        return values
    return np.where(np.isnan(values), default, values)
