"""PhoSim physics-override commands files (``phosim.py catalog -c commands.txt``).

One ``key value...`` per line; ``#`` starts a comment; blank lines are skipped; a key given
twice takes its last value, as PhoSim reads the lines in order. A few keys change what a run
costs and are read with their types; every other line is kept as written, so that callers can
report it rather than silently ignore it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from cputime.errors import located
from cputime.inputs.validation import RANGES, check_value, check_visit, closest

__all__ = ["PhosimCommands", "read_commands", "parse_commands", "COST_KEYS", "KNOWN_PHOSIM_KEYS"]

#: Keys read with their types, because they change what a run costs.
COST_KEYS = (
    "zenith_v",
    "domelight",
    "vistime",
    "nsnap",
    "checkpointtotal",
    "checkpointcount",
    "straylight",
    "straylightcut",
)

#: Keys PhoSim 3.4's raytrace and atmosphere steps read from a commands file (from
#: ``source/raytrace/observation.cpp`` and ``source/atmosphere/atmosphere.cpp``), plus the
#: ``clear*`` commands, which take no value. A key outside this set is most likely a typo that
#: PhoSim ignores.
KNOWN_PHOSIM_KEYS = frozenset(
    """
    aerosolindex aerosoltau airglowvariation airrefraction altitude aperturemode atmdebug
    atmospherefile atmosphericdispcenter atmosphericdispersion azimuth azimuthjitter backalpha
    backbeta backbuffer backdelta backgamma backradius bindir blooming body ccdtemp centerx
    centery centroidfile chargediffusion chargesharing checkpointcount checkpointtotal chipid
    cloudfile cloudmean cloudscreen cloudvary coarse_grid coarse_scale coatingmode
    constrainseeing contaminationmode datadir date deadlayer densityfluc densitymean
    detectormode diffractionmode domelight domeseeing domewave elevationjitter
    eventFitsFileName eventfile exposureid exptime fieldanisotropy filter fine_grid fine_scale
    finitedistance flatdir fringing ghost ghostonly groundlevel height ichebyshev imagedir
    impurityvariation instrdir izernike large_grid large_scale lascatprob latitude longitude
    maxr maxx maxy medium_grid medium_scale minr minx miny monthnum moonalt moondec moondist
    moonra natmospherefile nb nbulk nf np nsnap numlevel obshistid obsseed opdfile outerscale
    outerx outputdir overdepbias phaseang pixelerror pixelsize pixelsx pixelsy platescale
    pointingdec pointingra pressure qevariation raydensity reldensity relh2o relo2 relo3
    rotationangle rotationjitter saturation sb scalenumber screentol seddir seed seeing sf
    shuttererror siliconthickness solaralt solarzen spiderangle straylight straylightcut tai
    tarfile telconfig telescopemode temperature throughputfile timeoffset totalseeing toypsf
    trackingfile trackingmode transtol vistime waterpressure wavelength wellDepth well_depth
    wind winddir windjitter xtellocation ytellocation zenith zenith_v zernikemode
    cleareverything clearperturbations cleartracking clearclouds cleardefects clearopacity
    clearturbulence
    """.split()
)


@dataclass(frozen=True)
class PhosimCommands:
    """A PhoSim commands file.

    Attributes
    ----------
    zenith_v : float or None
        Sky brightness at zenith in V [mag/arcsec^2]; 1000 turns the sky background off.
    domelight : float or None
        Dome-light brightness [mag]; 1000 turns it off.
    vistime : float or None
        Visit time over all snaps [s]; overrides the catalog header.
    nsnap : int or None
        Number of snaps; overrides the catalog header.
    checkpointtotal : int or None
        Number of checkpoints the raytrace is split into (PhoSim splits by source-brightness
        bin, not evenly).
    checkpointcount : int or None
        Which checkpoint (0..checkpointtotal) this run computes.
    straylight : int or None
        0 turns PhoSim's stray-light tracing of bright stars off (PhoSim's default is 1).
    straylightcut : float or None
        Stars brighter than this magnorm get stray-light tracing [mag] (PhoSim's default 10).
    values : dict[str, str]
        Every key with its value text as written (``''`` for a command with no value, such as
        ``cleareverything``), in file order, the last value of a repeated key.
    lines : dict[str, int]
        Line of each key's (last) value, for messages.
    source : str
        File name, for messages.
    """

    zenith_v: float | None = None
    domelight: float | None = None
    vistime: float | None = None
    nsnap: int | None = None
    checkpointtotal: int | None = None
    checkpointcount: int | None = None
    straylight: int | None = None
    straylightcut: float | None = None
    values: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    source: str = "<commands>"

    def overrides(self) -> dict[str, float | int]:
        """The recognised cost-changing keys that the file sets, with their typed values."""
        return {key: getattr(self, key) for key in COST_KEYS if getattr(self, key) is not None}

    def unrecognised(self) -> dict[str, str]:
        """Every other key, with its value as written (these do not enter the cost model)."""
        return {key: value for key, value in self.values.items() if key not in COST_KEYS}

    def unknown_to_phosim(self) -> dict[str, str]:
        """Keys that PhoSim itself does not read (likely typos), with their values."""
        return {key: value for key, value in self.values.items() if key not in KNOWN_PHOSIM_KEYS}


def _number(source: str, line: int, key: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise located(source, line, f"{key}: {text!r} is not a number")
    check_value(key, value, f"{source}:{line}", text)
    return value


def _check_known(source: str, values: dict[str, str], lines: dict[str, int]) -> None:
    """Refuse a key PhoSim does not read: PhoSim ignores it, so a typo changes nothing silently."""
    for key in values:
        if key not in KNOWN_PHOSIM_KEYS:
            near = closest(key, KNOWN_PHOSIM_KEYS)
            hint = f" (did you mean {near}?)" if near else ""
            raise located(source, lines[key], (
                f"{key}: not a key PhoSim reads{hint}; PhoSim would ignore the line (pass "
                "--allow-unknown-commands to accept it)"))


def parse_commands(text: str, *, source: str = "<commands>",
                   allow_unknown: bool = False) -> PhosimCommands:
    """Parse the text of a PhoSim commands file.

    Parameters
    ----------
    text : str
        The file's content.
    source : str
        Name used in error messages.
    allow_unknown : bool, default False
        Accept keys PhoSim does not read (see :meth:`PhosimCommands.unknown_to_phosim`).

    Returns
    -------
    PhosimCommands

    Raises
    ------
    InputError
        ``file:line: key: ...`` for a recognised key with a missing, extra or non-numeric value,
        a value outside its physical range (:data:`cputime.inputs.validation.RANGES`: ``vistime >
        0``,
        ``nsnap >= 1`` ...), ``checkpointcount > checkpointtotal``, or a key PhoSim does not
        read (with the closest one it does) unless ``allow_unknown``.
    """
    values: dict[str, str] = {}
    lines: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        key = words[0]
        values.pop(key, None)  # a repeated key moves to where PhoSim last reads it
        values[key] = " ".join(words[1:])
        lines[key] = number
        if key in COST_KEYS and len(words) != 2:
            problem = "missing value" if len(words) == 1 else f"one value expected, got {raw!r}"
            raise located(source, number, f"{key}: {problem}")
    if not allow_unknown:
        _check_known(source, values, lines)
    typed: dict[str, float | int] = {}
    for key in COST_KEYS:
        if key in values:
            number = _number(source, lines[key], key, values[key])
            typed[key] = int(number) if RANGES[key].integer else number
    for key, text in values.items():  # other keys with a physical range, as PhoSim reads them
        if key not in COST_KEYS and key in RANGES and len(text.split()) == 1:
            _number(source, lines[key], key, text)
    where = {key: f"{source}:{lines[key]}" for key in typed}
    check_visit({k: typed[k] for k in ("vistime", "nsnap") if k in typed}, source, where)
    total = typed.get("checkpointtotal", 0)
    if typed.get("checkpointcount", 0) > total:
        raise located(
            source, lines["checkpointcount"],
            f"checkpointcount: {typed['checkpointcount']} is beyond checkpointtotal {total}",
        )
    return PhosimCommands(**typed, values=values, lines=lines, source=source)


def read_commands(path: str | Path | None, *, allow_unknown: bool = False) -> PhosimCommands:
    """Read a PhoSim commands file.

    Parameters
    ----------
    path : str or Path or None
        The file; None gives the empty set of commands (no ``-c`` option).
    allow_unknown : bool, default False
        Accept keys PhoSim does not read.

    Returns
    -------
    PhosimCommands

    Raises
    ------
    InputError
        When the file cannot be read or a recognised key has a bad value (see
        :func:`parse_commands`).
    """
    if path is None:
        return PhosimCommands()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise located(path.name, None, f"cannot read: {exc.strerror or exc}") from exc
    return parse_commands(text, source=path.name, allow_unknown=allow_unknown)
