"""Durations as people and batch systems write them.

``parse_duration`` reads what a user types (``48h``, ``90m``, ``2-00:00:00``, ``HH:MM:SS``,
``MM:SS``, plain seconds) and what Slurm and GNU time print (``[D-][HH:]MM:SS[.fff]``);
``format_slurm_time`` writes the ``D-HH:MM:SS`` form that ``sbatch --time`` accepts.
"""

from __future__ import annotations

import math
import re

from cputime.errors import InputError

__all__ = ["parse_duration", "parse_slurm_time", "parse_clock", "format_slurm_time"]

_UNIT_SECONDS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_NUMBER = r"\d+(?:\.\d*)?|\.\d+"
# One or more number+unit parts: "48h", "1h30m", "2d 12h", "1.5h".
_UNITS_RE = re.compile(rf"^(?:\s*(?:{_NUMBER})\s*[dhms]\s*)+$", re.IGNORECASE)
_UNIT_PART_RE = re.compile(rf"({_NUMBER})\s*([dhms])", re.IGNORECASE)
# [D-][HH:]MM:SS[.fff], also D-HH and D-HH:MM as sbatch --time accepts them.
_CLOCK_RE = re.compile(
    r"^(?:(?P<days>\d+)-)?(?P<fields>\d+(?::\d+){0,2}(?:\.\d*)?)$"
)
_HELP = "use e.g. 48h, 90m, 2-00:00:00, HH:MM:SS, MM:SS or seconds"


def parse_clock(text: str, *, field: str = "duration") -> float:
    """Read a clock-style duration ``[D-][HH:]MM:SS[.fff]`` in seconds.

    This is the form of Slurm's ``Elapsed`` and ``TotalCPU`` fields and of GNU time's
    ``Elapsed (wall clock)`` line (``h:mm:ss`` or ``m:ss.ss``). With a day prefix, Slurm's
    ``D-HH`` and ``D-HH:MM`` are accepted too.

    Parameters
    ----------
    text : str
        The duration as printed.
    field : str
        Name used in the error message.

    Returns
    -------
    float
        Duration [s].

    Raises
    ------
    InputError
        When ``text`` is not in that form.
    """
    match = _CLOCK_RE.match(text.strip())
    if match is None or (":" not in text and match.group("days") is None):
        raise InputError(f"{field}: {text!r} is not a [D-][HH:]MM:SS duration")
    parts = match.group("fields").split(":")
    days = int(match.group("days") or 0)
    numbers = [float(p) for p in parts]
    if match.group("days") is not None:
        # After "D-" Slurm reads HH, HH:MM or HH:MM:SS.
        numbers = numbers + [0.0] * (3 - len(numbers))
    elif len(numbers) == 2:
        numbers = [0.0, *numbers]
    hours, minutes, seconds = numbers
    if any(not math.isclose(n, int(n)) for n in (hours, minutes)):
        raise InputError(f"{field}: {text!r}: only the seconds may have a fraction")
    return days * 86400.0 + hours * 3600.0 + minutes * 60.0 + seconds


def parse_duration(text: str | float | int, *, field: str = "duration") -> float:
    """Read a duration in seconds from any of the usual spellings.

    Accepted: plain seconds (``3600``, ``90.5``); number+unit parts with units d, h, m, s
    (``48h``, ``90m``, ``1h30m``, ``2d``); clock forms ``MM:SS``, ``HH:MM:SS``,
    ``D-HH:MM:SS`` (and Slurm's ``D-HH``, ``D-HH:MM``), with an optional fraction of a second.

    Note that a plain number means *seconds* here, whereas ``sbatch --time`` reads a plain
    number as minutes (:func:`parse_slurm_time` reads it that way); write ``90m`` to be
    unambiguous.

    Parameters
    ----------
    text : str or float or int
        The duration; a number is taken as seconds.
    field : str
        Name used in the error message (e.g. ``--queue-max``).

    Returns
    -------
    float
        Duration [s], finite and >= 0.

    Raises
    ------
    InputError
        When the text is in none of these forms, or is negative or not finite.
    """
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    else:
        stripped = str(text).strip()
        if re.fullmatch(_NUMBER, stripped):
            seconds = float(stripped)
        elif _UNITS_RE.match(stripped):
            seconds = sum(
                float(number) * _UNIT_SECONDS[unit.lower()]
                for number, unit in _UNIT_PART_RE.findall(stripped)
            )
        elif _CLOCK_RE.match(stripped):
            seconds = parse_clock(stripped, field=field)
        else:
            raise InputError(f"{field}: {str(text)!r} is not a duration ({_HELP})")
    if not math.isfinite(seconds) or seconds < 0:
        raise InputError(f"{field}: {text!r} is not a duration >= 0 ({_HELP})")
    return seconds


def format_slurm_time(seconds: float) -> str:
    """Write a duration as Slurm's ``D-HH:MM:SS``, rounded up to a whole second.

    Rounding up keeps a walltime request from ending just before the job does.

    Parameters
    ----------
    seconds : float
        Duration [s], finite and >= 0.

    Returns
    -------
    str
        E.g. ``'2-00:00:00'`` for 172800 s, ``'0-01:30:00'`` for 5400 s.

    Raises
    ------
    InputError
        When ``seconds`` is negative or not finite.
    """
    if not math.isfinite(seconds) or seconds < 0:
        raise InputError(f"walltime: {seconds!r} s is not a duration >= 0")
    # 1e-9: do not round 3600.0000000001 (float noise) up to a whole extra second.
    total = math.ceil(seconds - 1e-9) if seconds > 1e-9 else 0
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}"


def parse_slurm_time(text: str | float | int, *, field: str = "--time") -> float:
    """Read a time limit as ``sbatch --time`` does, in seconds.

    Slurm reads a bare number as *minutes* (``2880`` is two days) and ``MM:SS``, ``HH:MM:SS``,
    ``D-HH``, ``D-HH:MM``, ``D-HH:MM:SS`` as clock forms; the unit forms of
    :func:`parse_duration` (``48h``, ``90m``) are accepted too, as they are unambiguous.

    Parameters
    ----------
    text : str or float or int
        The limit; a number is taken as minutes.
    field : str
        Name used in the error message (e.g. ``--queue-max``).

    Returns
    -------
    float
        Duration [s], finite and >= 0.

    Raises
    ------
    InputError
        As :func:`parse_duration`.
    """
    stripped = str(text).strip()
    if isinstance(text, int | float) or re.fullmatch(_NUMBER, stripped):
        return parse_duration(stripped + "m", field=field)
    return parse_duration(stripped, field=field)
