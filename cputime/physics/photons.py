"""Photon counts PhoSim draws: from sources (magnorm and exposure) and from the sky.

PhoSim's CPU time is, to first order, the number of photons it traces; these functions give
the expected counts that the features and the cost model are built on.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "PHOTONS_PER_SECOND_AT_MAG20",
    "SENSOR_AREA_ARCSEC2",
    "BRIGHT_STAR_MAG",
    "N_BRIGHT_STAR_SLOTS",
    "DEFAULT_STRAYLIGHT_CUT_MAG",
    "source_photons",
    "sky_photons_per_sensor",
]

#: Photons PhoSim draws per second of open shutter for a source of magnorm 20 with a flat
#: f_lambda SED [photons/s]. Measured on the project's PhoSim 3.4 runs: the ``Photons:`` total
#: PhoSim prints divided by sum(10**(-0.4*(m - 20))) * t is 5.078e4 for every run and filter
#: (7.617e5 per 15 s exposure), see ``cputime/data/phosim_runs/README.md``.
PHOTONS_PER_SECOND_AT_MAG20 = 5.078e4

#: Sensor area on the sky [arcsec^2]: 4000 x 4072 pixels of 0.2 arcsec.
SENSOR_AREA_ARCSEC2 = 4000 * 4072 * 0.2**2

#: Stars brighter than this [mag] are tracked one by one (their cost is not proportional to their
#: photons: they saturate, and PhoSim keeps them even when they are off the sensor).
BRIGHT_STAR_MAG = 16.0

#: PhoSim's default ``straylightcut`` [mag]: stars brighter than this have their photons traced
#: again through the stray-light path (``photonloop.cpp``; ``straylight 0`` turns it off).
DEFAULT_STRAYLIGHT_CUT_MAG = 10.0

#: How many of the brightest stars kept for a sensor are reported individually.
N_BRIGHT_STAR_SLOTS = 5


def source_photons(magnorm: np.ndarray, exposure_s: float | np.ndarray) -> np.ndarray:
    """Photons PhoSim draws for a source.

    Parameters
    ----------
    magnorm : array_like
        The catalog's magnorm: AB magnitude at 500 nm of the SED [mag].
    exposure_s : float or array_like
        Open-shutter time [s] (:func:`cputime.inputs.visit_time.open_shutter_seconds`).

    Returns
    -------
    numpy.ndarray
        Expected photon count [photons].

    Notes
    -----
    ``N = 5.078e4 * 10**(-0.4 (magnorm - 20)) * t``, measured for a flat f_lambda SED; it does not
    depend on the filter for such an SED. Real SEDs shift it by their colour, which the catalog
    does not give without reading every SED file, so it is ignored.
    """
    magnorm = np.asarray(magnorm, dtype=float)
    return PHOTONS_PER_SECOND_AT_MAG20 * np.power(10.0, -0.4 * (magnorm - 20.0)) * exposure_s


def sky_photons_per_sensor(
    sky_mag_per_arcsec2: np.ndarray | float, exposure_s: np.ndarray | float
) -> np.ndarray:
    """Sky photons PhoSim draws over one sensor.

    Parameters
    ----------
    sky_mag_per_arcsec2 : array_like
        Sky surface brightness in the visit's filter [mag/arcsec^2]; ``inf`` means no sky.
    exposure_s : array_like
        Open-shutter time [s].

    Returns
    -------
    numpy.ndarray
        Expected sky photons on one sensor [photons], the source photon rate per arcsec^2 times the
        sensor's area. PhoSim's sky SED differs from a flat one, so the cost model fits its own
        cost per sky photon rather than trusting this normalisation.
    """
    mag = np.asarray(sky_mag_per_arcsec2, dtype=float)
    return source_photons(mag, exposure_s) * SENSOR_AREA_ARCSEC2
