"""The header of a PhoSim instance catalog: its keywords, their aliases, and their values.

A header is ``keyword value`` lines before the first object line. Keywords are read under
today's names and under the 2016 OpSim/CatSim ones (``Opsim_moonalt``, ``SIM_VISTIME``), are
matched case-insensitively, and must agree when given twice; their values are checked against
:data:`cputime.inputs.validation.RANGES`. The keywords were read from PhoSim's
``PhosimFocalplane.loadInstanceCatalog`` (``phosim.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from cputime.errors import located
from cputime.inputs.lines import NUMBER_RE
from cputime.inputs.validation import check_visit
from cputime.inputs.visit_time import vistime_seconds

__all__ = [
    "REQUIRED_KEYWORDS",
    "CatalogHeader",
    "HeaderLines",
    "canonical_keyword",
    "check_late_keyword",
]

# Canonical keyword -> other names it is written under (today's and the 2016 OpSim/CatSim style).
_KEYWORD_ALIASES = {
    "obshistid": ("opsim_obshistid", "obsid"),
    "rightascension": ("unrefracted_ra", "pointingra"),
    "declination": ("unrefracted_dec", "pointingdec"),
    "mjd": ("opsim_expmjd", "expmjd"),
    "altitude": ("opsim_altitude",),
    "azimuth": ("opsim_azimuth",),
    "filter": ("opsim_filter",),
    "rotskypos": ("opsim_rotskypos", "camskyangle"),
    "rottelpos": ("opsim_rottelpos", "camtelangle"),
    "dist2moon": ("opsim_dist2moon",),
    "moonalt": ("opsim_moonalt",),
    "moondec": ("opsim_moondec",),
    "moonphase": ("opsim_moonphase",),
    "moonra": ("opsim_moonra",),
    "nsnap": ("sim_nsnap", "numexp"),
    "seed": ("sim_seed",),
    "seeing": ("rawseeing", "opsim_rawseeing"),
    "sunalt": ("opsim_sunalt",),
    "vistime": ("sim_vistime", "obstime"),
    "exptime": ("sim_exptime",),
    "airmass": ("opsim_airmass",),
    "minsource": ("sim_minsource",),
    "camconfig": ("sim_camconfig",),
}
_CANONICAL = {alias: name for name, aliases in _KEYWORD_ALIASES.items() for alias in aliases}
_CANONICAL.update({name: name for name in _KEYWORD_ALIASES})


def canonical_keyword(name: str) -> str | None:
    """The canonical name of a header keyword in either style (``Opsim_moonalt`` -> ``moonalt``),
    or None for a keyword that is not a known alias."""
    return _CANONICAL.get(name.strip().lower())


_INT_KEYWORDS = ("obshistid", "filter", "nsnap", "seed", "minsource", "camconfig")
REQUIRED_KEYWORDS = ("rightascension", "declination", "rotskypos", "filter", "obshistid",
                     "vistime")
_FILTER_LETTERS = "ugrizy"


@dataclass(frozen=True)
class CatalogHeader:
    """Header of an instance catalog, keywords under their canonical names.

    Angles are in [degrees], times in [s], ``moonphase`` in [percent], ``filter`` 0..5 =
    u g r i z y. Optional keywords that are absent are None.

    Attributes
    ----------
    vistime : float
        Total visit time over all snaps [s]. When the catalog gives only ``exptime`` (one
        snap's exposure), ``vistime = nsnap * exptime + (nsnap - 1) * 3 s`` (PhoSim's rule read
        backwards, :func:`cputime.inputs.visit_time.vistime_seconds`), with ``nsnap = 1`` when
        the catalog does not give it.
    raw : dict of str to str
        Every header keyword as written (first occurrence) and its value text.
    includes : tuple of Path
        ``includeobj`` files named in the header block, resolved against the catalog's folder.
    source : str
        The catalog's path as given.
    """

    obshistid: int
    rightascension: float
    declination: float
    rotskypos: float
    filter: int
    vistime: float
    mjd: float | None = None
    altitude: float | None = None
    azimuth: float | None = None
    rottelpos: float | None = None
    dist2moon: float | None = None
    moonalt: float | None = None
    moondec: float | None = None
    moonphase: float | None = None
    moonra: float | None = None
    nsnap: int | None = None
    seed: int | None = None
    seeing: float | None = None
    sunalt: float | None = None
    airmass: float | None = None
    minsource: int | None = None
    camconfig: int | None = None
    raw: dict[str, str] = field(default_factory=dict)
    includes: tuple[Path, ...] = ()
    source: str = ""


class HeaderLines:
    """Collects header keyword lines, checks duplicates, builds a :class:`CatalogHeader`."""

    def __init__(self, source: str):
        self.source = source
        self.values: dict[str, tuple[str, int, str]] = {}  # canonical -> (value, line, keyword)
        self.raw: dict[str, str] = {}
        self.includes: list[Path] = []

    def add(self, keyword: str, value: str, line: int) -> None:
        """Record ``keyword value`` from 1-based ``line``; disagreeing duplicates are an error."""
        self.raw.setdefault(keyword, value)
        name = _CANONICAL.get(keyword.lower(), keyword.lower())
        if name in self.values:
            self.check_agrees(name, keyword, value, line)
        else:
            self.values[name] = (value, line, keyword)

    def check_agrees(self, name: str, keyword: str, value: str, line: int) -> None:
        """Raise unless ``value`` equals the value already recorded for canonical ``name``."""
        first_value, first_line, first_keyword = self.values[name]
        if not _same_value(first_value, value):
            raise located(self.source, line, (
                f"'{keyword} {value}' disagrees with '{first_keyword} {first_value}' on line "
                f"{first_line}; keep one of them"))

    def build(self) -> CatalogHeader:
        """The normalised header; raises if a required keyword is missing or a value is bad."""
        missing = [name for name in REQUIRED_KEYWORDS if name not in self.values
                   and not (name == "vistime" and "exptime" in self.values)]
        if missing:
            names = ", ".join("vistime (or exptime)" if m == "vistime" else m for m in missing)
            raise located(self.source, None, f"missing required header keyword(s): {names}")
        known = {name: self._typed(name) for name in self.values if name in _KEYWORD_ALIASES}
        check_visit(known, self.source,
                    {name: f"{self.source}:{self.values[name][1]}" for name in known})
        exptime = known.pop("exptime", None)
        if "vistime" not in known:
            nsnap = known.get("nsnap") or 1
            known["vistime"] = float(vistime_seconds(nsnap * exptime, nsnap))
        return CatalogHeader(**known, raw=dict(self.raw), includes=tuple(self.includes),
                             source=self.source)

    def _typed(self, name: str) -> float | int:
        value, line, keyword = self.values[name]
        if name == "filter" and value.lower() in _FILTER_LETTERS:
            return _FILTER_LETTERS.index(value.lower())
        number = float(value) if NUMBER_RE.fullmatch(value) else math.nan
        if not math.isfinite(number):
            raise located(self.source, line, f"{keyword}: '{value}' is not a number")
        if name in _INT_KEYWORDS:
            if number != int(number):
                raise located(self.source, line, f"{keyword}: '{value}' is not a whole number")
            number = int(number)
        if name == "filter" and not 0 <= number <= 5:
            raise located(self.source, line,
                          f"{keyword}: '{value}' is not a filter (0..5 = u g r i z y)")
        return number


def _same_value(a: str, b: str) -> bool:
    if a == b:
        return True
    if NUMBER_RE.fullmatch(a) and NUMBER_RE.fullmatch(b):
        return float(a) == float(b)
    return False


def check_late_keyword(header: HeaderLines, tokens: list[str], number: int) -> None:
    """A keyword after object lines must repeat a header value (PhoSim would apply it)."""
    name = _CANONICAL.get(tokens[0].lower(), tokens[0].lower())
    if name not in header.values:
        raise located(header.source, number, (
            f"header keyword '{tokens[0]}' after the object lines; move it into the header "
            "(PhoSim applies it, but the header read for prediction ends at the first object)"))
    header.check_agrees(name, tokens[0], " ".join(tokens[1:]), number)
