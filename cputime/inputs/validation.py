"""Physical ranges of the visit inputs, one table for every reader.

The catalog header reader, the visit tables, the commands file and the service all check a
value against :data:`RANGES` through :func:`check_value`, so a ``vistime`` of -30 s or a
``moonphase`` of 500 % is refused with the same words wherever it comes from, instead of giving
a silently wrong walltime. The ranges are what a PhoSim visit can physically be, wide enough
for every real catalog and OpSim table seen (Twinkles, DC2, the PhoSim examples); they are not
PhoSim's own checks (PhoSim checks almost nothing and runs for days on nonsense).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from cputime.errors import InputError
from cputime.inputs.visit_time import READOUT_SECONDS

__all__ = [
    "Range",
    "RANGES",
    "OBJECT_RANGES",
    "check_value",
    "range_problem",
    "check_visit",
    "BRIGHTEST_MAGNORM",
    "closest",
]


@dataclass(frozen=True)
class Range:
    """Allowed values of one input: ``low`` (exclusive when ``low_open``) to ``high``.

    Attributes
    ----------
    low, high : float or None
        Bounds in ``unit``; None for no bound.
    unit : str
        Unit of the value, for messages (``deg``, ``s``, ``mag`` ...); ``""`` for a count.
    low_open : bool
        True when ``low`` itself is not allowed (``vistime > 0``).
    integer : bool
        True for counts and identifiers.
    """

    low: float | None
    high: float | None
    unit: str = ""
    low_open: bool = False
    integer: bool = False

    def describe(self) -> str:
        """The range in words, e.g. ``> 0 and <= 86400 s``."""
        unit = f" {self.unit}" if self.unit else ""
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"<= {self.high:g}")
        kind = "a whole number " if self.integer else "a number "
        return kind + " and ".join(parts) + unit

    def contains(self, value: float) -> bool:
        """True when ``value`` is finite, whole if it must be, and within the bounds."""
        if not math.isfinite(value) or (self.integer and value != int(value)):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or value <= self.high

    def mask(self, values: np.ndarray) -> np.ndarray:
        """:meth:`contains` on every element of ``values``, without a loop (NaN is outside)."""
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(values)
            if self.integer:
                ok &= values == np.trunc(values)
            if self.low is not None:
                ok &= (values > self.low) if self.low_open else (values >= self.low)
            if self.high is not None:
                ok &= values <= self.high
        return ok


_DAY_S = 86400.0

#: Allowed values of each input, by canonical header keyword or commands-file key. Angles in
#: [deg]: positions 0..360 (RA) and -90..90 (Dec, altitudes), rotations -360..360.
RANGES: dict[str, Range] = {
    "obshistid": Range(0, 2**62, integer=True),
    "filter": Range(0, 5, integer=True),
    "rightascension": Range(0, 360, "deg"),
    "declination": Range(-90, 90, "deg"),
    "rotskypos": Range(-360, 360, "deg"),
    "rottelpos": Range(-360, 360, "deg"),
    # A telescope points above the horizon; at 0 deg the airmass (and PhoSim's cost) diverges.
    "altitude": Range(0, 90, "deg", low_open=True),
    "azimuth": Range(-360, 360, "deg"),
    "moonalt": Range(-90, 90, "deg"),
    "moondec": Range(-90, 90, "deg"),
    "moonra": Range(0, 360, "deg"),
    "dist2moon": Range(0, 180, "deg"),
    "sunalt": Range(-90, 90, "deg"),
    "moonphase": Range(0, 100, "percent"),
    # Seeing FWHM: the worst nights give ~5 arcsec; beyond 20 the value is not in arcsec.
    "seeing": Range(0, 20, "arcsec", low_open=True),
    # Airmass 1 at the zenith, about 40 at the horizon.
    "airmass": Range(1, 40),
    "mjd": Range(0, 100_000, "day"),
    "vistime": Range(0, _DAY_S, "s", low_open=True),
    "exptime": Range(0, _DAY_S, "s", low_open=True),
    "nsnap": Range(1, 100, integer=True),
    "seed": Range(None, None, integer=True),
    "minsource": Range(0, None, integer=True),
    "camconfig": Range(0, None, integer=True),
    # Sky and dome brightness [mag/arcsec^2, mag]; PhoSim reads 1000 as "off".
    "zenith_v": Range(10, 1000, "mag/arcsec^2"),
    "domelight": Range(0, 1000, "mag"),
    # Stray-light tracing of bright stars: on/off, and the magnorm below which it is done.
    "straylight": Range(0, 1, integer=True),
    "straylightcut": Range(-30, 100, "mag"),
    "checkpointtotal": Range(0, 10_000, integer=True),
    "checkpointcount": Range(0, 10_000, integer=True),
}


def check_value(name: str, value: float | int, where: str, written: object = None) -> None:
    """Raise unless ``value`` is in the range of input ``name`` (a name without a range passes).

    Parameters
    ----------
    name : str
        Canonical keyword (``vistime``, ``moonphase`` ...).
    value : float or int
        The value, in the unit of :data:`RANGES`.
    where : str
        ``file:line`` (or field) for the message.
    written : object, optional
        The value as the user wrote it, for the message (default: ``value``).

    Raises
    ------
    InputError
        ``where: name: 'value' is not <range>``.
    """
    problem = range_problem(name, value, written)
    if problem is not None:
        raise InputError(f"{where}: {name}: {problem}")


def range_problem(name: str, value: float | int, written: object = None,
                  ranges: Mapping[str, Range] = RANGES) -> str | None:
    """What is wrong with ``value`` for input ``name`` (``'-30' is not a number > 0 ...``), or
    None when it is in range or ``name`` has no range in ``ranges``."""
    allowed = ranges.get(name)
    if allowed is None or allowed.contains(float(value)):
        return None
    shown = f"{value:g}" if written is None else str(written)
    return f"{shown!r} is not {allowed.describe()}"


def check_visit(values: Mapping[str, float | int | None], where: str,
                lines: Mapping[str, str] | None = None) -> None:
    """Check every known value of one visit, then the ones that must agree with each other.

    Parameters
    ----------
    values : mapping of str to number or None
        Canonical keyword -> value; None (absent) is skipped.
    where : str
        Where the visit comes from, for messages.
    lines : mapping of str to str, optional
        Keyword -> a more precise place (``file:line``) than ``where``.

    Raises
    ------
    InputError
        The first value out of range, or ``vistime`` too short for its ``nsnap`` snaps.
    """
    lines = lines or {}
    for name, value in values.items():
        if value is not None:
            check_value(name, value, lines.get(name, where))
    vistime, nsnap = values.get("vistime"), values.get("nsnap")
    if vistime is not None and nsnap is not None and vistime <= (nsnap - 1) * READOUT_SECONDS:
        raise InputError(
            f"{lines.get('vistime', where)}: vistime: {vistime:g} s leaves no exposure for "
            f"{nsnap} snaps ({READOUT_SECONDS:g} s readout between snaps)"
        )


#: Brightest ``magnorm`` an object may have [mag]: the Sun is -26.7 in V; brighter is a damaged
#: line (a magnorm of -1e30 on a sensor overflowed the walltime to -2^63 s).
BRIGHTEST_MAGNORM = -30.0

#: Allowed values of the object-line fields the predictions read, by field name. Positions in
#: [deg], as PhoSim reads them (``Observation::addSource`` multiplies them by DEGREE, with no
#: wrapping): RA 0..360 like the header's pointing, Dec -90..90.
OBJECT_RANGES: dict[str, Range] = {
    "ra": Range(0, 360, "deg"),
    "dec": Range(-90, 90, "deg"),
    "magnorm": Range(BRIGHTEST_MAGNORM, None, "mag"),
}


def closest(word: str, known: Iterable[str]) -> str | None:
    """The known word closest to ``word`` (case and ``_`` ignored), or None when none is close."""
    def norm(text: str) -> str:
        return text.lower().replace("_", "")

    by_norm = {norm(k): k for k in known}
    if norm(word) in by_norm:
        return by_norm[norm(word)]
    match = difflib.get_close_matches(norm(word), list(by_norm), n=1, cutoff=0.6)
    return by_norm[match[0]] if match else None
