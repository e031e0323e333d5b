"""LSST focal plane as PhoSim 3.4 sees it: sensor layout, sky-to-focal-plane projection, lookup.

Conventions (checked against PhoSim 3.4, commit 3b262a41, the version that produced our timing
data; public snapshot github.com/enhsin/diagrid-phosim @ 6f5d6e7):

* Projection. ``src/source/trim/trim.cpp`` (``Trim::xyPosition``) maps each catalog object with a
  gnomonic (tangent-plane) projection about the pointing::

      xp = F cos(dec) sin(ra - ra0) / cos(c)                          # +xp towards +RA (east)
      yp = F (cos(dec0) sin(dec) - sin(dec0) cos(dec) cos(ra - ra0)) / cos(c)   # +yp north
      x  =  xp cos(rotskypos) + yp sin(rotskypos)
      y  = -xp sin(rotskypos) + yp cos(rotskypos)

  with ``F = platescale / (pi/180)`` and platescale 180000 um/deg (``data/lsst/
  central_wavelengths.txt``, every filter); ``rotationangle`` there is the catalog's
  ``rotskypos`` (``src/tobin/phosim.py``). So at rotskypos 0, +x is east and +y is north, and a
  positive rotskypos turns the sky offsets *clockwise* on the focal plane. The raytrace uses the
  same convention (``raytrace/observation.cpp`` stores ``-rotskypos`` and rotates the tangent
  vector of ``raytrace.cpp:tangent``, whose x axis points to ra0 + 90 deg). PhoSim 3.4's trim has
  no guard for objects 90 deg or more away (cos c <= 0); here they get NaN and a False mask.
* Layout. ``data/lsst/focalplanelayout.txt`` puts the 189 science sensors on a regular grid:
  sensor ``Rab_Scd`` is centred at x = 127 (a - 2) + 42.25 (c - 1) mm, y = 127 (b - 2) +
  42.25 (d - 1) mm (all 189 rows match exactly); the first digit of the raft and of the sensor
  runs along x. Each has 4000 x 4072 pixels of 10 um, the 4000 along x (``pixelsx``, 40.00 mm)
  and the 4072 along y (40.72 mm), as trim.cpp and raytrace/observation.cpp read the columns.
  Gaps: 2.25 mm (x) and 1.53 mm (y) between sensors of a raft, 2.50 mm and 1.78 mm between rafts.
* Not modelled: the file also gives each science sensor a small rotation (|angle| <= 0.03 deg)
  and decentre (|dx|, |dy| <= 0.10 mm, i.e. <= 10 pixels), which trim.cpp applies. Ignoring them
  moves a sensor edge by at most 0.11 mm, well inside the 100-pixel trim buffer; it only matters
  for sources within ~0.1 mm of an edge. The real optics' distortion (used by the raytrace, not by
  trim) is also ignored.
* Trim margin. trim.cpp keeps an object for a sensor when, in the sensor frame,
  ``|x| <= width/2 + B`` and ``|y| <= height/2 + B`` with ``B = 100 pixel + 0.2 arcsec x
  2.5**(17 - magnorm)``: a per-axis (square-cornered) margin from the sensor edge, no cap (the cap
  in the code needs ``strayLight == 0``, but setup sets it to 1). At 10 um pixels and
  0.2 arcsec/pixel that is ``100 + 2.5**(17 - magnorm)`` pixels. Later PhoSim releases changed
  this rule (buffer 20 pixels, no magnitude term), so it is PhoSim 3.4 specific.

References
----------
.. [1] Peterson, J. R. et al. 2015, "Simulation of Astronomical Images from Optical Survey
   Telescopes Using a Comprehensive Photon Monte Carlo Approach", ApJS 218, 14,
   doi:10.1088/0067-0049/218/1/14
.. [2] Calabretta, M. R. & Greisen, E. W. 2002, "Representations of celestial coordinates in
   FITS", A&A 395, 1077, doi:10.1051/0004-6361:20021327 (TAN projection)
"""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from cputime.errors import located

if TYPE_CHECKING:  # only sensor_table() needs pandas; the command line's parsing does not
    import pandas as pd

__all__ = [
    "MM_PER_ARCMIN",
    "PIXEL_SIZE_MM",
    "PLATE_SCALE_MM_PER_DEG",
    "SENSOR_HEIGHT_MM",
    "SENSOR_NAMES",
    "SENSOR_WIDTH_MM",
    "depth_inside_sensor_mm",
    "distance_to_sensor_mm",
    "focal_plane_xy_mm",
    "gnomonic_project",
    "gnomonic_unproject",
    "parse_sensors",
    "rotate",
    "sensor_index",
    "sensor_table",
    "trim_margin_pixels",
]

PLATE_SCALE_MM_PER_DEG = 180.0
MM_PER_ARCMIN = PLATE_SCALE_MM_PER_DEG / 60.0
PIXEL_SIZE_MM = 0.010
N_PIXELS_X = 4000
N_PIXELS_Y = 4072
SENSOR_WIDTH_MM = N_PIXELS_X * PIXEL_SIZE_MM  # along focal-plane x
SENSOR_HEIGHT_MM = N_PIXELS_Y * PIXEL_SIZE_MM  # along focal-plane y
RAFT_PITCH_MM = 127.0
SENSOR_PITCH_MM = 42.25
CORNER_RAFTS = ("R00", "R04", "R40", "R44")

# PhoSim 3.4 trim.cpp: buffer = 100 pixels, plus 0.2 arcsec (= 1 LSST pixel) x 2.5**(17 - m).
TRIM_BUFFER_PIXELS = 100.0
TRIM_REFERENCE_MAG = 17.0

DISTANCE_METRICS = ("chebyshev", "euclidean")

_HALF_WIDTH_MM = SENSOR_WIDTH_MM / 2.0
_HALF_HEIGHT_MM = SENSOR_HEIGHT_MM / 2.0
_MM_PER_RADIAN = PLATE_SCALE_MM_PER_DEG * 180.0 / np.pi
# cos(90 deg) is 6e-17 in floating point, not 0: treat objects within ~1e-10 rad of 90 deg as
# behind the plane too (their projection would be ~1e10 focal lengths away anyway).
_MIN_COS_C = 1e-10
_NAME_PATTERN = re.compile(r"R([0-4])([0-4])_S([0-2])([0-2])")


def _science_grid() -> tuple[tuple[str, ...], np.ndarray]:
    """Sorted science-sensor names and the (raft x, raft y, sensor x, sensor y) -> index table."""
    digits = [
        (a, b, c, d)
        for a in range(5)
        for b in range(5)
        for c in range(3)
        for d in range(3)
        if f"R{a}{b}" not in CORNER_RAFTS
    ]
    # Digits in this nested order give lexicographically sorted names.
    names = tuple(f"R{a}{b}_S{c}{d}" for a, b, c, d in digits)
    lookup = np.full((5, 5, 3, 3), -1, dtype=np.int64)
    for i, key in enumerate(digits):
        lookup[key] = i
    return names, lookup


SENSOR_NAMES, _LOOKUP = _science_grid()
_INDEX = {name: i for i, name in enumerate(SENSOR_NAMES)}
_DIGITS = np.array([[int(ch) for ch in (n[1], n[2], n[5], n[6])] for n in SENSOR_NAMES])
_X_CENTER_MM = RAFT_PITCH_MM * (_DIGITS[:, 0] - 2) + SENSOR_PITCH_MM * (_DIGITS[:, 2] - 1)
_Y_CENTER_MM = RAFT_PITCH_MM * (_DIGITS[:, 1] - 2) + SENSOR_PITCH_MM * (_DIGITS[:, 3] - 1)


@cache
def _sensor_frame() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(
        {
            "sensor": SENSOR_NAMES,
            "raft": [name[:3] for name in SENSOR_NAMES],
            "x_center_mm": _X_CENTER_MM,
            "y_center_mm": _Y_CENTER_MM,
            "width_mm": SENSOR_WIDTH_MM,
            "height_mm": SENSOR_HEIGHT_MM,
            "n_pixels_x": N_PIXELS_X,
            "n_pixels_y": N_PIXELS_Y,
            "pixel_size_mm": PIXEL_SIZE_MM,
        }
    )


def sensor_table() -> pd.DataFrame:
    """The 189 LSST science sensors, one row each, in ``SENSOR_NAMES`` order.

    Returns
    -------
    pandas.DataFrame
        Columns ``sensor``, ``raft``, ``x_center_mm`` and ``y_center_mm`` [mm on the focal plane],
        ``width_mm`` (extent along x, 4000 pixels) and ``height_mm`` (along y, 4072 pixels) [mm],
        ``n_pixels_x``, ``n_pixels_y`` and ``pixel_size_mm`` [mm]. A fresh copy on every call.

    Notes
    -----
    Nominal positions of PhoSim 3.4's ``data/lsst/focalplanelayout.txt``; the per-sensor
    rotations and decentres of that file (<= 0.03 deg, <= 0.1 mm) are left out.
    """
    return _sensor_frame().copy()


def gnomonic_project(
    ra: np.ndarray, dec: np.ndarray, ra0: float, dec0: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gnomonic (tangent-plane) projection about ``(ra0, dec0)``.

    .. warning:: All angles, in and out, are in radians.

    Parameters
    ----------
    ra, dec : array_like
        Positions to project [radians].
    ra0, dec0 : float
        Tangent point [radians].

    Returns
    -------
    xi, eta : numpy.ndarray
        Standard coordinates [radians of the tangent plane]: ``xi`` towards increasing RA (east),
        ``eta`` towards the north pole. NaN where ``in_front`` is False.
    in_front : numpy.ndarray of bool
        False for positions 90 deg or more from the tangent point, which the projection would
        put behind the plane (mirrored through the centre).

    See Also
    --------
    gnomonic_unproject : the inverse.
    """
    ra = np.asarray(ra, dtype=float)
    dec = np.asarray(dec, dtype=float)
    cos_dec = np.cos(dec)
    sin_dec = np.sin(dec)
    cos_dra = np.cos(ra - ra0)
    cos_c = np.sin(dec0) * sin_dec + np.cos(dec0) * cos_dec * cos_dra
    in_front = cos_c > _MIN_COS_C
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_cos_c = np.where(in_front, 1.0 / cos_c, np.nan)
    xi = cos_dec * np.sin(ra - ra0) * inv_cos_c
    eta = (np.cos(dec0) * sin_dec - np.sin(dec0) * cos_dec * cos_dra) * inv_cos_c
    return xi, eta, in_front


def gnomonic_unproject(
    xi: np.ndarray, eta: np.ndarray, ra0: float, dec0: float
) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`gnomonic_project`.

    .. warning:: All angles, in and out, are in radians.

    Parameters
    ----------
    xi, eta : array_like
        Standard coordinates [radians of the tangent plane], ``xi`` east, ``eta`` north.
    ra0, dec0 : float
        Tangent point [radians].

    Returns
    -------
    ra : numpy.ndarray
        Right ascension in [0, 2 pi) [radians].
    dec : numpy.ndarray
        Declination [radians].
    """
    xi = np.asarray(xi, dtype=float)
    eta = np.asarray(eta, dtype=float)
    denominator = np.cos(dec0) - eta * np.sin(dec0)
    ra = np.mod(ra0 + np.arctan2(xi, denominator), 2.0 * np.pi)
    dec = np.arctan2(np.sin(dec0) + eta * np.cos(dec0), np.hypot(xi, denominator))
    return ra, dec


def rotate(x: np.ndarray, y: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate points counter-clockwise (from +x towards +y) about the origin.

    .. warning:: ``angle`` is in radians.

    Parameters
    ----------
    x, y : array_like
        Coordinates [any length unit].
    angle : float
        Counter-clockwise rotation [radians].

    Returns
    -------
    x_rotated, y_rotated : numpy.ndarray
        Rotated coordinates [same unit as ``x``, ``y``].
    """
    cos_a = np.cos(angle)
    sin_a = np.sin(angle)
    return x * cos_a - y * sin_a, x * sin_a + y * cos_a


def focal_plane_xy_mm(
    ra_deg: np.ndarray,
    dec_deg: np.ndarray,
    pointing_ra_deg: float,
    pointing_dec_deg: float,
    rotskypos_deg: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Focal-plane position of sky objects, as PhoSim 3.4's trim step computes it.

    Parameters
    ----------
    ra_deg, dec_deg : array_like
        Object positions [degrees].
    pointing_ra_deg, pointing_dec_deg : float
        Boresight, the centre of R22_S11 [degrees].
    rotskypos_deg : float
        Instance-catalog ``rotskypos`` [degrees].

    Returns
    -------
    x_mm, y_mm : numpy.ndarray
        Focal-plane position [mm]; at rotskypos 0, +x is east (increasing RA) and +y north.
        NaN where ``in_front`` is False.
    in_front : numpy.ndarray of bool
        False for objects 90 deg or more from the boresight.

    Notes
    -----
    Gnomonic projection, then a clockwise rotation by rotskypos (``rotate`` by
    ``-rotskypos``), then the plate scale 180000 um/deg applied to the tangent-plane radians,
    exactly as ``Trim::xyPosition`` in PhoSim 3.4's ``src/source/trim/trim.cpp`` [1]_.

    References
    ----------
    .. [1] Peterson, J. R. et al. 2015, ApJS 218, 14, doi:10.1088/0067-0049/218/1/14
    """
    xi, eta, in_front = gnomonic_project(
        np.radians(ra_deg),
        np.radians(dec_deg),
        np.radians(pointing_ra_deg),
        np.radians(pointing_dec_deg),
    )
    x, y = rotate(xi, eta, -np.radians(rotskypos_deg))
    return x * _MM_PER_RADIAN, y * _MM_PER_RADIAN, in_front


def _grid_cell(position_mm: np.ndarray, half_size_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Raft digit (0..4) and sensor digit (0..2) along one axis; -1 where in a gap or outside."""
    raft = np.floor(position_mm / RAFT_PITCH_MM + 2.5)
    local = position_mm - RAFT_PITCH_MM * (raft - 2.0)
    # Sensors are narrower than their pitch, so the nearest centre is the only candidate.
    sensor = np.clip(np.rint(local / SENSOR_PITCH_MM), -1.0, 1.0)
    on_silicon = (
        (raft >= 0) & (raft <= 4) & (np.abs(local - SENSOR_PITCH_MM * sensor) <= half_size_mm)
    )  # NaN positions compare False
    raft_digit = np.where(on_silicon, raft, -1).astype(np.int64)
    sensor_digit = np.where(on_silicon, sensor + 1, -1).astype(np.int64)
    return raft_digit, sensor_digit


def sensor_index(x_mm: np.ndarray, y_mm: np.ndarray) -> np.ndarray:
    """Which science sensor each focal-plane position falls on.

    Parameters
    ----------
    x_mm, y_mm : array_like
        Focal-plane positions [mm], as from :func:`focal_plane_xy_mm`.

    Returns
    -------
    numpy.ndarray of int64
        Index into ``SENSOR_NAMES``; -1 in a gap, on a corner raft, outside the focal plane, or
        where the position is NaN. Sensor edges count as on the sensor.

    Notes
    -----
    Integer arithmetic on the regular raft/sensor grid, O(n) with no loop over sensors.
    """
    with np.errstate(invalid="ignore"):
        raft_x, sensor_x = _grid_cell(np.asarray(x_mm, dtype=float), _HALF_WIDTH_MM)
        raft_y, sensor_y = _grid_cell(np.asarray(y_mm, dtype=float), _HALF_HEIGHT_MM)
    on_grid = (raft_x >= 0) & (raft_y >= 0)
    # Off-grid positions index a harmless cell, then are overwritten with -1.
    index = _LOOKUP[raft_x * on_grid, raft_y * on_grid, sensor_x * on_grid, sensor_y * on_grid]
    return np.where(on_grid, index, -1)


def depth_inside_sensor_mm(x_mm: np.ndarray, y_mm: np.ndarray, index: np.ndarray) -> np.ndarray:
    """How far inside its sensor each position is: the distance to the nearest edge.

    Parameters
    ----------
    x_mm, y_mm : array_like
        Focal-plane positions [mm].
    index : array_like of int
        Their sensors, as from :func:`sensor_index` (-1: not on a sensor).

    Returns
    -------
    numpy.ndarray
        Distance to the nearest edge of the sensor [mm], ``min`` over the x and y edges; 0 on
        an edge, -inf where ``index`` is -1.
    """
    index = np.asarray(index)
    on = index >= 0
    i = np.where(on, index, 0)
    depth_x = _HALF_WIDTH_MM - np.abs(np.asarray(x_mm, dtype=float) - _X_CENTER_MM[i])
    depth_y = _HALF_HEIGHT_MM - np.abs(np.asarray(y_mm, dtype=float) - _Y_CENTER_MM[i])
    return np.where(on, np.minimum(depth_x, depth_y), -np.inf)


def distance_to_sensor_mm(
    x_mm: np.ndarray, y_mm: np.ndarray, sensor: str, metric: str = "chebyshev"
) -> np.ndarray:
    """Distance of focal-plane positions from the edge of one sensor, 0 on or inside it.

    Parameters
    ----------
    x_mm, y_mm : array_like
        Focal-plane positions [mm].
    sensor : str
        A name from ``SENSOR_NAMES``.
    metric : {"chebyshev", "euclidean"}, default="chebyshev"
        ``"chebyshev"`` is the larger of the x and y distances beyond the edges, the rule of
        PhoSim's trim step (its margin is a box with square corners); ``"euclidean"`` is the
        straight-line distance to the rectangle.

    Returns
    -------
    numpy.ndarray
        Distance [mm]; NaN where the position is NaN.

    Notes
    -----
    PhoSim 3.4 keeps an object for a sensor when
    ``distance_to_sensor_mm(x, y, sensor) <= trim_margin_pixels(magnorm) * PIXEL_SIZE_MM``.
    """
    if metric not in DISTANCE_METRICS:
        raise ValueError(f"metric must be one of {DISTANCE_METRICS}, got {metric!r}")
    try:
        i = _INDEX[sensor]
    except KeyError:
        raise ValueError(f"unknown sensor {sensor!r}") from None
    beyond_x = np.abs(np.asarray(x_mm, dtype=float) - _X_CENTER_MM[i]) - _HALF_WIDTH_MM
    beyond_y = np.abs(np.asarray(y_mm, dtype=float) - _Y_CENTER_MM[i]) - _HALF_HEIGHT_MM
    if metric == "chebyshev":
        return np.maximum(np.maximum(beyond_x, beyond_y), 0.0)
    return np.hypot(np.maximum(beyond_x, 0.0), np.maximum(beyond_y, 0.0))


def trim_margin_pixels(magnorm: np.ndarray) -> np.ndarray:
    """How far beyond a sensor's edge PhoSim 3.4 still keeps an object for that sensor.

    Parameters
    ----------
    magnorm : array_like
        Catalog ``magnorm`` of the object [mag].

    Returns
    -------
    numpy.ndarray
        Margin [pixels of 10 um], per axis from the sensor edge: ``100 + 2.5**(17 - magnorm)``.
        No cap: 1626 pixels (16 mm) at magnorm 9, 9637 pixels (96 mm) at magnorm 7.

    Notes
    -----
    ``Trim::readCatalog`` in PhoSim 3.4's ``src/source/trim/trim.cpp`` uses the buffer
    ``100 * pixelSize + scale * pow(2.5, 17 - mag)`` [um] with ``scale`` = 0.2 arcsec at
    180000 um/deg = 10 um, one LSST pixel. Its cap (60 arcsec) applies only when
    ``strayLight == 0``, and ``Trim::setup`` sets ``strayLight = 1``. The test is per axis
    (``|dx| <= half width + buffer`` and ``|dy| <= half height + buffer``); see
    :func:`distance_to_sensor_mm`. Checked against the trim output of our PhoSim 3.4 runs
    (a 9 mag star 0.5' and 10' beyond R22_S11's edge).
    """
    return TRIM_BUFFER_PIXELS + 2.5 ** (TRIM_REFERENCE_MAG - np.asarray(magnorm, dtype=float))


def parse_sensors(spec: str, field: str = "sensors") -> list[str]:
    """Science-sensor names from a user's option value.

    Parameters
    ----------
    spec : str
        ``"all"`` or names separated by commas (or ``|``, as PhoSim's ``-s`` option takes them),
        e.g. ``"R22_S11,R01_S00"``. Case and spaces around names are ignored; repeats are dropped.
    field : str, default="sensors"
        Name of the option or field, used in error messages.

    Returns
    -------
    list of str
        Names from ``SENSOR_NAMES``: all 189 in order for ``"all"``, else in the order given.

    Raises
    ------
    cputime.errors.InputError
        Naming the first bad sensor (unknown, a corner raft, or empty).
    """
    if spec.strip().lower() == "all":
        return list(SENSOR_NAMES)
    names: list[str] = []
    for item in re.split(r"[,|]", spec):
        name = item.strip().upper()
        if name not in _INDEX:
            raise located(field, None, _bad_sensor_message(item.strip()))
        if name not in names:
            names.append(name)
    return names


def _bad_sensor_message(item: str) -> str:
    if not item:
        return "empty sensor name; give 'all' or names like R22_S11,R01_S00"
    if _NAME_PATTERN.fullmatch(item.upper()):
        return (
            f"sensor {item!r} is on a corner raft ({', '.join(CORNER_RAFTS)}), "
            "not one of the 189 science sensors"
        )
    return (
        f"unknown sensor {item!r}; expected 'all' or names like R22_S11 "
        "(rafts R01..R43 without corners, sensors S00..S22)"
    )
