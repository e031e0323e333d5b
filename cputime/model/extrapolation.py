"""How far a job lies beyond what the model was fitted on.

A prediction inside the measured range is as good as the out-of-sample errors say; beyond it,
the error grows with the distance. This module measures that distance, per driver of the cost,
in decades (dex) beyond the largest value among the *finished* fitting jobs (a killed job only
says the cost is at least something, so it does not extend the range):

- ``brightest_star_photons``: photons of the brightest star PhoSim keeps for the sensor;
- ``source_photons``: photons of all sources; ``n_trimmed_sources``: how many sources;
- ``sky_photons``: sky photons on the sensor; ``exposure_seconds``: open-shutter time;
- ``filter``: for a filter without a measured run, ``|log10(wavelength / nearest measured)|``.

Only growth beyond the range counts (a fainter star or a shorter exposure costs less than the
model's range and is not an extrapolation that can kill a job).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cputime.physics.columns import FeatureColumns, as_columns
from cputime.physics.cost import FILTER_WAVELENGTH_NM
from cputime.physics.photons import source_photons

__all__ = [
    "DIMENSIONS",
    "SOURCE_DIMENSIONS",
    "SKY_DIMENSIONS",
    "range_limits",
    "extrapolation_dex",
    "extrapolation_dex_columns",
    "describe_extrapolation",
]

#: The drivers whose fitted range is checked, in the order they are reported.
DIMENSIONS = (
    "brightest_star_photons",
    "source_photons",
    "n_trimmed_sources",
    "sky_photons",
    "exposure_seconds",
    "filter",
)


#: Drivers of the catalog's cost (the cost model's part) and of the sky's (the sky correction's).
SOURCE_DIMENSIONS = ("brightest_star_photons", "source_photons", "n_trimmed_sources", "filter")
SKY_DIMENSIONS = ("sky_photons", "exposure_seconds")


def _values(columns: FeatureColumns) -> dict[str, np.ndarray]:
    def column(name: str) -> np.ndarray:
        return columns.number(name, np.nan)

    mag = column("bright_star_mag_1")
    return {
        "brightest_star_photons": np.where(
            np.isnan(mag),
            np.nan,
            source_photons(np.nan_to_num(mag, nan=99.0), column("exposure_seconds")),
        ),
        "source_photons": column("source_photons"),
        "n_trimmed_sources": column("n_trimmed_sources"),
        "sky_photons": np.where(column("sky_photons") > 0, column("sky_photons"), np.nan),
        "exposure_seconds": column("exposure_seconds"),
    }


def range_limits(features: pd.DataFrame, finished: np.ndarray) -> dict[str, float]:
    """Largest value of each driver among finished jobs.

    Parameters
    ----------
    features : pandas.DataFrame
        Features of the fitting jobs.
    finished : array_like of bool
        True for jobs that ran to the end.

    Returns
    -------
    dict
        Driver name -> largest value [photons, sources or s]; drivers without any finished value
        are left out (every value is then beyond the range, see :func:`extrapolation_dex`).
    """
    finished = np.asarray(finished, bool)
    limits = {}
    for name, values in _values(as_columns(features)).items():
        kept = values[finished & np.isfinite(values)]
        if kept.size:
            limits[name] = float(kept.max())
    return limits


def extrapolation_dex(
    features: pd.DataFrame, limits: dict[str, float], measured_filters: list[int]
) -> pd.DataFrame:
    """Distance of each job beyond the fitted range, per driver [dex].

    Parameters
    ----------
    features : pandas.DataFrame
        Jobs to predict.
    limits : dict
        From :func:`range_limits`. A driver without a limit is measured against the largest
        source photons of the fit (one bright star is all those photons in one source).
    measured_filters : list of int
        Filters with a fitted photon cost (r always counts as measured).

    Returns
    -------
    pandas.DataFrame
        One column per name of :data:`DIMENSIONS`, 0 inside the range [dex].
    """
    dex = extrapolation_dex_columns(as_columns(features), limits, measured_filters)
    return pd.DataFrame(dex, index=features.index)


def extrapolation_dex_columns(
    columns: FeatureColumns, limits: dict[str, float], measured_filters: list[int]
) -> dict[str, np.ndarray]:
    """:func:`extrapolation_dex` on feature columns: driver name -> distance of each job [dex],
    in the order of :data:`DIMENSIONS`."""
    out = {}
    for name, values in _values(columns).items():
        limit = limits.get(name, limits.get("source_photons", np.nan))
        with np.errstate(divide="ignore", invalid="ignore"):
            dex = np.log10(values / limit)
        out[name] = np.where(
            np.isfinite(values) & (values > 0),
            np.clip(np.nan_to_num(dex, nan=np.inf), 0, None),
            0.0,
        )
    measured = np.log10(FILTER_WAVELENGTH_NM[sorted({2, *measured_filters})])
    index = np.clip(columns.number("filter", 2.0).astype(int), 0, 5)
    wave = np.log10(FILTER_WAVELENGTH_NM[index])
    out["filter"] = np.abs(wave[:, None] - measured[None, :]).min(axis=1)
    return {name: out[name] for name in DIMENSIONS}


def describe_extrapolation(dex: pd.DataFrame | dict[str, np.ndarray]) -> np.ndarray:
    """One text per job naming each driver beyond the range and by how much, '' inside it.

    E.g. ``"brightest_star_photons +1.40 dex; filter +0.11 dex"``.
    """
    text = np.full(len(dex[DIMENSIONS[0]]), "", dtype=object)
    for name in DIMENSIONS:
        values = np.asarray(dex[name])
        beyond = values > 0
        if not beyond.any():
            continue
        item = np.array([f"{name} +{v:.2f} dex" for v in values[beyond]], dtype=object)
        text[beyond] = np.where(text[beyond] == "", item, text[beyond] + "; " + item)
    return text
