"""Parsers of finished PhoSim job logs: PhoSim's stdout, ``/usr/bin/time -v``, Slurm ``sacct``
and a plain runs table.

Pure parsing, no database: every function takes a path (or the text itself) and returns
dataclasses. A file that is not what it claims to be raises :class:`~cputime.errors.InputError`
naming ``file:line``. Table-like inputs with many independent lines (sacct, runs tables) skip a
bad line, keep the good ones and report each skipped line in ``.errors``.

Formats, as read from the real files in ``tests/data`` and from PhoSim's source
(``raytrace/counter.cpp``, ``raytrace/photonloop.cpp``):

- PhoSim prints, per raytrace (one per sensor and snap), a table
  ``Type Sources Photons (Sat,Rem,Rej,Acc)% Time (s) Photons/s`` with one row per source group:
  ``Dome Light`` / ``Dark Sky`` / ``Moon`` (one row per tenth of the background sources),
  ``Astrophysical m=NN`` (one row per integer-magnitude bin, ``m>40`` and ``m<0`` at the ends)
  and ``Cosmic Rays`` last. ``Time (s)`` is the process CPU time (``clock()``) spent on the row.
  PhoSim prints no other timing lines.
- A complete stdout ends with the table; a killed job's stdout stops anywhere, possibly in the
  middle of a line.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cputime.durations import parse_clock
from cputime.errors import InputError, located

__all__ = [
    "LineProblem",
    "TimeV",
    "parse_time_v",
    "RaytraceRow",
    "PhosimLog",
    "parse_phosim_stdout",
    "SacctJob",
    "SacctResult",
    "DEFAULT_JOB_NAME_REGEX",
    "parse_sacct",
    "RunRecord",
    "RunsTable",
    "parse_runs_csv",
    "state_outcome",
]


# --------------------------------------------------------------------------------------------
# shared helpers


@dataclass(frozen=True)
class LineProblem:
    """A skipped input line: where it is and why it was skipped."""

    source: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        return str(located(self.source, self.line, self.reason))


def _read_source(path_or_text: str | Path, source: str | None) -> tuple[str, str]:
    """Return (text, name for messages). A str with a newline is text, otherwise a path."""
    if isinstance(path_or_text, str) and "\n" in path_or_text:
        return path_or_text, source or "<text>"
    path = Path(path_or_text)
    name = source or path.name
    try:
        return path.read_text(encoding="utf-8", errors="replace"), name
    except OSError as exc:
        raise located(name, None, f"cannot read: {exc.strerror or exc}") from exc


def _to_float(text: str, what: str) -> float:
    """A finite float (thousands commas allowed), or a ValueError naming the field."""
    try:
        value = float(text.replace(",", ""))
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(f"{what}: {text.strip()!r} is not a number")
    return value


def _number(text: str, what: str, source: str, line: int | None) -> float:
    """:func:`_to_float`, failing with an InputError naming file:line."""
    try:
        return _to_float(text, what)
    except ValueError as exc:
        raise located(source, line, str(exc)) from None


# --------------------------------------------------------------------------------------------
# /usr/bin/time -v


@dataclass(frozen=True)
class TimeV:
    """Resource use of one job as GNU ``/usr/bin/time -v`` (or a kill note) reported it.

    Attributes
    ----------
    user_s, system_s : float or None
        User and system CPU time [s]; None for a kill note.
    cpu_s : float
        ``user_s + system_s`` [s]; for a killed job the CPU sampled at the kill, a lower bound
        of what the job would have needed.
    wall_s : float or None
        Elapsed wall-clock time [s].
    max_rss_kb : int or None
        Peak resident set size [kB].
    exit_status : int or None
        Exit status of the command; None for a kill note.
    command : str or None
        The command that was timed.
    timed_out : bool
        True for a job killed at its time limit (the ``TIMED OUT`` note).
    signal : int or None
        Signal that terminated the command, when time reports one.
    """

    user_s: float | None
    system_s: float | None
    cpu_s: float
    wall_s: float | None
    max_rss_kb: int | None
    exit_status: int | None
    command: str | None
    timed_out: bool = False
    signal: int | None = None


_TIME_V_KEYS = {
    "Command being timed": "command",
    "User time (seconds)": "user_s",
    "System time (seconds)": "system_s",
    "Elapsed (wall clock) time (h:mm:ss or m:ss)": "wall_s",
    "Maximum resident set size (kbytes)": "max_rss_kb",
    "Exit status": "exit_status",
}
_TIMED_OUT_RE = re.compile(
    r"TIMED OUT after (?P<wall>\S+) s wall\b.*\bCPU\b[^:]*:\s*(?P<cpu>\S+) s\b"
)
_SIGNAL_RE = re.compile(r"Command terminated by signal (\d+)")


def _time_v_from_lines(lines: Iterable[tuple[int, str]], source: str) -> TimeV | None:
    """Read time -v key lines or a TIMED OUT note out of numbered lines; None if neither."""
    found: dict[str, tuple[int, str]] = {}
    signal = None
    for number, raw in lines:
        line = raw.strip()
        note = _TIMED_OUT_RE.search(line)
        if note:
            return TimeV(
                user_s=None,
                system_s=None,
                cpu_s=_number(note["cpu"], "CPU at kill", source, number),
                wall_s=_number(note["wall"], "wall at kill", source, number),
                max_rss_kb=None,
                exit_status=None,
                command=None,
                timed_out=True,
            )
        if match := _SIGNAL_RE.match(line):
            signal = int(match[1])
            continue
        key, sep, value = line.partition(": ")
        if sep and key in _TIME_V_KEYS:
            found[_TIME_V_KEYS[key]] = (number, value.strip())
    if not found:
        return None
    for needed in ("user_s", "system_s"):
        if needed not in found:
            key = next(k for k, v in _TIME_V_KEYS.items() if v == needed)
            raise located(source, None, f"/usr/bin/time -v output without {key!r}")
    values: dict[str, object] = {}
    for name, (number, text) in found.items():
        if name == "command":
            values[name] = text.strip('"')
        elif name == "wall_s":
            try:
                values[name] = parse_clock(text, field="Elapsed (wall clock) time")
            except InputError as exc:
                raise located(source, number, str(exc)) from None
        elif name in ("max_rss_kb", "exit_status"):
            values[name] = int(_number(text, name, source, number))
        else:
            values[name] = _number(text, name, source, number)
    user, system = values["user_s"], values["system_s"]
    return TimeV(
        user_s=user,
        system_s=system,
        cpu_s=user + system,
        wall_s=values.get("wall_s"),
        max_rss_kb=values.get("max_rss_kb"),
        exit_status=values.get("exit_status"),
        command=values.get("command"),
        signal=signal,
    )


def parse_time_v(path_or_text: str | Path, *, source: str | None = None) -> TimeV:
    """Parse GNU ``/usr/bin/time -v`` output, or the note left for a job killed at its limit.

    The time output may be a sidecar file or appended to the end of a job's stdout. A killed
    job's note reads ``# TIMED OUT after 600.1 s wall; ...; CPU of live tree at kill
    (...): 594.01 s (lower bound)`` and gives ``timed_out=True``, ``cpu_s`` and ``wall_s``.

    Parameters
    ----------
    path_or_text : str or Path
        A file, or the text itself (a str containing a newline).
    source : str, optional
        Name used in error messages (default: the file name, or ``<text>``).

    Returns
    -------
    TimeV

    Raises
    ------
    InputError
        When there is neither time output nor a kill note, or a value is not a number.
    """
    text, name = _read_source(path_or_text, source)
    result = _time_v_from_lines(enumerate(text.splitlines(), start=1), name)
    if result is None:
        raise located(name, 1, "neither /usr/bin/time -v output nor a 'TIMED OUT' note")
    return result


# --------------------------------------------------------------------------------------------
# PhoSim stdout


@dataclass(frozen=True)
class RaytraceRow:
    """One row of PhoSim's raytrace table.

    Attributes
    ----------
    label : str
        The type as printed: ``Astrophysical m=22``, ``Dark Sky``, ``Cosmic Rays``, ...
    key : str
        Short name as in runs.csv's ``raytrace_types``: ``m22``, ``DarkSky``, ``CosmicRays``,
        ``DomeLight``, ``Moon``, ``m>40``, ``m<0``.
    magnitude : int or None
        The magnitude bin of an ``Astrophysical m=NN`` row.
    sources : int
        Sources traced in the row (cosmic rays: number of rays).
    photons : int
        Photons traced.
    sat_pct, rem_pct, rej_pct, acc_pct : float
        The four percentages of the ``(Sat,Rem,Rej,Acc)%`` column, in printed order [%]
        (NaN when PhoSim printed ``nan``).
    time_s : float
        CPU time PhoSim spent on the row [s].
    photons_per_s : int
        PhoSim's rate column [photons/s].
    raytrace : int
        0-based index of the raytrace (table) the row belongs to (one per sensor and snap).
    line : int
        1-based line number in the stdout.
    """

    label: str
    key: str
    magnitude: int | None
    sources: int
    photons: int
    sat_pct: float
    rem_pct: float
    rej_pct: float
    acc_pct: float
    time_s: float
    photons_per_s: int
    raytrace: int
    line: int


_GROUP = r"\d{1,3}(?:,\d{3})*"
_PCT = r"-?(?:\d+|nan|inf)"
_ROW_LABEL_RE = re.compile(
    r"^(?P<label>Dome Light|Dark Sky|Moon|Cosmic Rays|Astrophysical m(?:=\s*-?\d+|>40|<0))\s"
)
_ROW_RE = re.compile(
    rf"^(?P<label>Dome Light|Dark Sky|Moon|Cosmic Rays|Astrophysical m(?:=\s*-?\d+|>40|<0))"
    rf"\s+(?P<sources>{_GROUP})\s+(?P<photons>{_GROUP})"
    rf"\s+\(\s*(?P<p0>{_PCT}),\s*(?P<p1>{_PCT}),\s*(?P<p2>{_PCT}),\s*(?P<p3>{_PCT})\)"
    rf"\s+(?P<time>-?\d+\.\d+)\s+(?P<rate>-?{_GROUP})\s*$"
)
_TABLE_HEADER_RE = re.compile(r"^Type\s+Sources\s+Photons\s+\(Sat,Rem,Rej,Acc\)%")
_SECTIONS = (
    "Atmosphere Creator",
    "Instrument Configuration",
    "Trim Catalog",
    "Photon Raytrace",
    "E2ADC",
)
_SETTING_RE = re.compile(r"^\[(?P<key>\w+)\][^:]*:\s*(?P<value>\S.*?)\s*$")
_FOUND_RE = re.compile(r"^Found (?P<n>\d+) source\(s\) for chip (?P<chip>\S+)\.$")
_NSOURCES_RE = re.compile(r"^Number of Sources:\s*(?P<n>\S+)")
_PHOTONS_RE = re.compile(r"^Photons:\s*(?P<n>\S+)")
_COMMIT_RE = re.compile(r"^commit\s+(?P<hash>[0-9a-f]{7,40})\s*$")
_OUTPUT_NAME_RE = re.compile(r"_e_(?P<obshistid>\d+)_f(?P<filter>\d+)_(?P<chip>.+)_E(?P<exp>\d+)$")
_KEY_BY_LABEL = {
    "Dome Light": "DomeLight",
    "Dark Sky": "DarkSky",
    "Moon": "Moon",
    "Cosmic Rays": "CosmicRays",
}


def _row_key(label: str) -> tuple[str, int | None]:
    """runs.csv-style key and magnitude bin of a row label."""
    if label in _KEY_BY_LABEL:
        return _KEY_BY_LABEL[label], None
    bin_text = label.removeprefix("Astrophysical ").replace(" ", "")
    if bin_text.startswith("m="):
        magnitude = int(bin_text[2:])
        return f"m{magnitude}", magnitude
    return bin_text, None


def _parse_row(match: re.Match[str], raytrace: int, line: int) -> RaytraceRow:
    key, magnitude = _row_key(match["label"])

    def integer(text: str) -> int:
        return int(text.replace(",", ""))

    return RaytraceRow(
        label=match["label"],
        key=key,
        magnitude=magnitude,
        sources=integer(match["sources"]),
        photons=integer(match["photons"]),
        sat_pct=float(match["p0"]),
        rem_pct=float(match["p1"]),
        rej_pct=float(match["p2"]),
        acc_pct=float(match["p3"]),
        time_s=float(match["time"]),
        photons_per_s=integer(match["rate"]),
        raytrace=raytrace,
        line=line,
    )


@dataclass
class PhosimLog:
    """What a PhoSim stdout says about one job.

    Attributes
    ----------
    source : str
        File name.
    command : str or None
        The command line, from a ``# cmd:`` header written by the job wrapper, when present.
    obshistid : int or None
        Visit id, from the output file name (``lsst_e_9003_f2_R22_S11_E000``) or ``[obshistid]``.
    chip : str or None
        Sensor id (``R22_S11``), from ``[chipid]`` or the output file name.
    filter : int or None
        Filter 0..5 = u g r i z y.
    exptime_s : float or None
        Exposure time of one snap [s] (``[exptime]``).
    nsnap : int or None
        Number of snaps (``[nsnap]``).
    seed : int or None
        PhoSim's random seed.
    n_trim_sources : int or None
        Catalog sources the trim step kept for ``chip`` (``Found 50 source(s) for chip ...``).
    trim_sources : dict[str, int]
        The same for every chip trim reported (a bright star is also kept for neighbours).
    n_sources : int or None
        Sources the raytrace set up (``Number of Sources:``): the trimmed catalog sources plus
        PhoSim's background (sky, moon, dome light) sources. Summed over raytraces.
    total_photons_setup : float or None
        Photons PhoSim planned to trace (``Photons:``), summed over raytraces.
    commit : str or None
        PhoSim's commit hash.
    rows : list of RaytraceRow
        Every raytrace table row, in printed order (all ``Dark Sky`` chunks kept).
    completed : bool
        True when every raytrace table accounts for all ``Number of Sources`` and there are at
        least ``nsnap`` tables: the job ran to its end. False for a truncated (killed) stdout.
        A checkpointed partial run (``checkpointcount < checkpointtotal``) traces only part of
        its sources and is reported as not completed.
    steps : list of str
        PhoSim steps that started (``Atmosphere Creator``, ``Trim Catalog``, ...), in order.
    settings : dict[str, str]
        The ``[key] Description: value`` lines of the first raytrace, as printed.
    time_v : TimeV or None
        ``/usr/bin/time -v`` output appended to the stdout, when present.
    """

    source: str
    command: str | None = None
    obshistid: int | None = None
    chip: str | None = None
    filter: int | None = None
    exptime_s: float | None = None
    nsnap: int | None = None
    seed: int | None = None
    n_trim_sources: int | None = None
    trim_sources: dict[str, int] = field(default_factory=dict)
    n_sources: int | None = None
    total_photons_setup: float | None = None
    commit: str | None = None
    rows: list[RaytraceRow] = field(default_factory=list)
    completed: bool = False
    steps: list[str] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)
    time_v: TimeV | None = None

    @property
    def raytrace_total_photons(self) -> int:
        """Photons traced over all rows, cosmic rays included [photons]."""
        return sum(row.photons for row in self.rows)

    @property
    def raytrace_total_s(self) -> float:
        """CPU time over all raytrace rows [s]."""
        return sum(row.time_s for row in self.rows)

    def table(self) -> pd.DataFrame:
        """The raytrace rows as a DataFrame, one row per printed row."""
        columns = list(RaytraceRow.__dataclass_fields__)
        frame = pd.DataFrame([vars(row) for row in self.rows], columns=columns)
        return frame.astype({"magnitude": "Int64"})

    def raytrace_by_type(self) -> dict[str, dict[str, float]]:
        """Per-type totals, as runs.csv's ``raytrace_types`` JSON.

        Returns
        -------
        dict
            ``{key: {"sources": int, "photons": float, "time_s": float}}`` in order of first
            appearance; repeated rows (the ``Dark Sky`` chunks, several raytraces) are summed.
            ``time_s`` is rounded to 0.01 s like PhoSim's column.
        """
        totals: dict[str, dict[str, float]] = {}
        for row in self.rows:
            entry = totals.setdefault(row.key, {"sources": 0, "photons": 0.0, "time_s": 0.0})
            entry["sources"] += row.sources
            entry["photons"] += float(row.photons)
            entry["time_s"] += row.time_s
        for entry in totals.values():
            entry["time_s"] = round(entry["time_s"], 2)
        return totals


def _is_complete(rows: list[RaytraceRow], expected: list[int], nsnap: int | None) -> bool:
    """Each table's non-cosmic-ray sources add up to its ``Number of Sources``."""
    n_tables = max((row.raytrace for row in rows), default=-1) + 1
    if n_tables == 0 or n_tables < (nsnap or 1) or len(expected) < n_tables:
        return False
    traced = [0] * n_tables
    for row in rows:
        if row.key != "CosmicRays":
            traced[row.raytrace] += row.sources
    return all(traced[i] == expected[i] for i in range(n_tables))


def parse_phosim_stdout(path: str | Path, *, source: str | None = None) -> PhosimLog:
    """Parse PhoSim's stdout (any of its steps; complete or cut short by a kill).

    Parameters
    ----------
    path : str or Path
        The stdout file (or its text, a str containing a newline).
    source : str, optional
        Name used in error messages (default: the file name).

    Returns
    -------
    PhosimLog
        ``completed=False`` for a stdout that stops before the raytrace finished; an
        unterminated last line (the process was killed while writing it) is ignored.

    Raises
    ------
    InputError
        ``file:1`` when the text shows none of PhoSim's steps; ``file:line`` for a raytrace
        table row that cannot be read (a garbled row in the middle of the file).
    """
    text, name = _read_source(path, source)
    lines = text.splitlines()
    if lines and not text.endswith("\n"):
        lines = lines[:-1]  # cut mid-line by a kill: a partial number would mislead
    log = PhosimLog(source=name)
    expected_sources: list[int] = []
    photons_setup: list[float] = []
    raytrace = -1
    in_table = False
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if in_table:
            if line.startswith("---"):
                continue
            row = _ROW_RE.match(line)
            if row:
                log.rows.append(_parse_row(row, raytrace, number))
                continue
            if _ROW_LABEL_RE.match(line):
                raise located(name, number, f"unreadable raytrace table row: {line!r}")
            in_table = False
        if line in _SECTIONS:
            if line not in log.steps:
                log.steps.append(line)
        elif _TABLE_HEADER_RE.match(line):
            raytrace += 1
            in_table = True
        elif match := _SETTING_RE.match(line):
            log.settings.setdefault(match["key"], match["value"])
        elif match := _FOUND_RE.match(line):
            log.trim_sources[match["chip"]] = int(match["n"])
        elif match := _NSOURCES_RE.match(line):
            expected_sources.append(int(_number(match["n"], "Number of Sources", name, number)))
        elif match := _PHOTONS_RE.match(line):
            photons_setup.append(_number(match["n"], "Photons", name, number))
        elif match := _COMMIT_RE.match(line):
            log.commit = log.commit or match["hash"]
        elif line.startswith("Filter (number starting with 0):") and log.filter is None:
            log.filter = int(_number(line.rpartition(":")[2], "Filter", name, number))
        elif line.startswith("Random seed:") and log.seed is None:
            log.seed = int(_number(line.rpartition(":")[2], "Random seed", name, number))
        elif line.startswith("# cmd:") and log.command is None:
            log.command = line.removeprefix("# cmd:").strip()
    if not log.steps and raytrace < 0:
        raise located(name, 1, f"not a PhoSim stdout (none of the steps {', '.join(_SECTIONS)})")
    _fill_from_settings(log, name)
    log.n_trim_sources = log.trim_sources.get(log.chip) if log.chip else None
    if log.n_trim_sources is None and len(log.trim_sources) == 1:
        log.n_trim_sources = next(iter(log.trim_sources.values()))
    log.n_sources = sum(expected_sources) if expected_sources else None
    log.total_photons_setup = sum(photons_setup) if photons_setup else None
    log.completed = _is_complete(log.rows, expected_sources, log.nsnap)
    log.time_v = _time_v_from_lines(enumerate(lines, start=1), name)
    return log


def _fill_from_settings(log: PhosimLog, source: str) -> None:
    """Header values from the ``[key]`` settings and the output file name."""
    settings = log.settings
    output = _OUTPUT_NAME_RE.search(settings.get("outputfilename", ""))
    log.chip = settings.get("chipid") or (output["chip"] if output else None)
    if "obshistid" in settings:
        log.obshistid = int(_number(settings["obshistid"], "obshistid", source, None))
    elif output:
        log.obshistid = int(output["obshistid"])
    if log.filter is None and output:
        log.filter = int(output["filter"])
    if "exptime" in settings:
        log.exptime_s = _number(settings["exptime"], "exptime", source, None)
    if "nsnap" in settings:
        log.nsnap = int(_number(settings["nsnap"], "nsnap", source, None))


# --------------------------------------------------------------------------------------------
# Slurm states

_FINISHED_STATES = frozenset({"COMPLETED"})
# Killed at a time limit: the CPU used so far is a lower bound of the job's need.
_CENSORED_STATES = frozenset({"TIMEOUT", "DEADLINE"})
_ACTIVE_STATES = frozenset(
    {
        "PENDING", "RUNNING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESIZING",
        "SUSPENDED", "SIGNALING", "STAGE_OUT", "STOPPED", "CONFIGURING", "COMPLETING",
    }
)
_FAILED_STATES = frozenset(
    {
        "FAILED", "CANCELLED", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "PREEMPTED",
        "REVOKED", "SPECIAL_EXIT",
    }
)


def state_outcome(state: str) -> str | None:
    """What a Slurm job state means for training.

    Parameters
    ----------
    state : str
        As sacct prints it (``COMPLETED``, ``TIMEOUT``, ``CANCELLED by 1234``, ...),
        case-insensitive.

    Returns
    -------
    str or None
        ``'finished'`` (COMPLETED: a measurement), ``'censored'`` (TIMEOUT, DEADLINE: killed
        at a limit, true CPU >= CPU used), ``'failed'`` (FAILED, CANCELLED, OUT_OF_MEMORY,
        NODE_FAIL, ...: recorded, not a training example), ``'active'`` (PENDING, RUNNING, ...),
        or None for a state Slurm does not have.
    """
    word = state.strip().split(" ")[0].rstrip("+").upper() if state.strip() else ""
    if word in _FINISHED_STATES:
        return "finished"
    if word in _CENSORED_STATES:
        return "censored"
    if word in _FAILED_STATES:
        return "failed"
    if word in _ACTIVE_STATES:
        return "active"
    return None


# --------------------------------------------------------------------------------------------
# sacct --parsable2

#: Default job-name pattern: ``phosim_<obshistid>_<sensor>``, e.g. ``phosim_230_R22_S11``.
DEFAULT_JOB_NAME_REGEX = r"^phosim_(?P<obshistid>\d+)_(?P<sensor>R\d\d_S\d\d)(?!\d)"

_JOB_ID_RE = re.compile(
    r"^(?P<job>(?P<base>\d+)(?:_(?P<task>\d+|\[[^\]]*\]))?(?:\+\d+)?)(?:\.(?P<step>[\w-]+))?$"
)
_RSS_UNITS = {"": 1 / 1024, "K": 1.0, "M": 1024.0, "G": 1024.0**2, "T": 1024.0**3}


@dataclass(frozen=True)
class SacctJob:
    """One Slurm job, its steps folded in.

    Attributes
    ----------
    job_id : str
        ``123``, or ``123_4`` for task 4 of array job 123.
    array_job_id : str or None
        ``123`` for an array task.
    array_task_id : int or None
        ``4`` for ``123_4``.
    name : str
        JobName of the job line.
    state : str
        The state word: ``COMPLETED``, ``TIMEOUT``, ``CANCELLED``, ...
    state_detail : str
        The state as printed (``CANCELLED by 1234``).
    outcome : str
        ``finished``, ``censored``, ``failed`` or ``active`` (see :func:`state_outcome`).
    cpu_s : float or None
        CPU time [s]: the job line's TotalCPU (sacct already sums the steps into it); the sum
        of the steps' TotalCPU when the job line has none; None when neither has one.
    cpu_from : str or None
        ``'job'`` or ``'steps'``: where ``cpu_s`` came from.
    elapsed_s : float or None
        Wall time [s] (Elapsed).
    ncpus : int or None
        Allocated CPUs (NCPUS or AllocCPUS).
    nodelist, start, end, exit_code : str or None
        As printed.
    max_rss_kb : float or None
        Largest MaxRSS over the steps [kB], when sacct printed MaxRSS.
    obshistid : int or None, sensor : str or None
        From the job name by the name pattern; None when the name does not match.
    line : int
        Line of the job in the sacct output.
    steps : tuple of str
        Step names seen (``batch``, ``extern``, ``0``, ...).
    """

    job_id: str
    array_job_id: str | None
    array_task_id: int | None
    name: str
    state: str
    state_detail: str
    outcome: str
    cpu_s: float | None
    cpu_from: str | None
    elapsed_s: float | None
    ncpus: int | None
    nodelist: str | None
    start: str | None
    end: str | None
    exit_code: str | None
    max_rss_kb: float | None
    obshistid: int | None
    sensor: str | None
    line: int
    steps: tuple[str, ...] = ()

    @property
    def is_training_example(self) -> bool:
        """True for a finished job or one censored at its time limit."""
        return self.outcome in ("finished", "censored")

    @property
    def timed_out(self) -> bool:
        """True when the job was killed at its time limit (``cpu_s`` is a lower bound)."""
        return self.outcome == "censored"


@dataclass
class SacctResult:
    """Jobs read from sacct output, and the lines that were skipped."""

    jobs: list[SacctJob]
    errors: list[LineProblem]


@dataclass
class _SacctLine:
    number: int
    fields: dict[str, str]
    job: str
    base: str
    task: str | None
    step: str | None


def _optional(fields: dict[str, str], *names: str) -> str | None:
    for name in names:
        value = fields.get(name, "").strip()
        if value:
            return value
    return None


def _max_rss_kb(text: str | None) -> float | None:
    if not text:
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]?)", text.strip(), re.IGNORECASE)
    if match is None:
        raise ValueError(f"MaxRSS {text!r} is not a size")
    return float(match[1]) * _RSS_UNITS[match[2].upper()]


def parse_sacct(
    path_or_text: str | Path,
    *,
    name_regex: str = DEFAULT_JOB_NAME_REGEX,
    source: str | None = None,
) -> SacctResult:
    """Parse ``sacct --parsable2`` output (``|``-separated, header line first).

    Columns may come in any order and are matched by name, case-insensitively; ``JobID`` and
    ``State`` are required, ``JobName``, ``TotalCPU``, ``Elapsed``, ``NCPUS``/``AllocCPUS``,
    ``NodeList``, ``Start``, ``End``, ``ExitCode``, ``MaxRSS`` are used when present.
    ``--parsable`` output (a trailing ``|``) is read too.

    Step lines (``123.batch``, ``123.extern``, ``123.0``, ``123_4.batch``) are folded into
    their job so that nothing is counted twice: sacct's TotalCPU of the job line is already the
    sum of its steps' user + system CPU, so it is used as is; only when the job line has no
    TotalCPU are the steps' TotalCPU summed. When a job id appears on several job lines
    (``--duplicates``, requeued jobs) the last one wins.

    Parameters
    ----------
    path_or_text : str or Path
        A file, or the text itself (a str containing a newline).
    name_regex : str
        Pattern searched in JobName, with named groups ``obshistid`` and ``sensor``; jobs whose
        name does not match get ``obshistid=None``. Default :data:`DEFAULT_JOB_NAME_REGEX`.
    source : str, optional
        Name used in messages (default: the file name, or ``<text>``).

    Returns
    -------
    SacctResult
        ``.jobs`` in order of first appearance; ``.errors``: one :class:`LineProblem` per
        skipped line (wrong field count, unreadable id, time or state, a step without its job).

    Raises
    ------
    InputError
        When the header lacks JobID or State, or ``name_regex`` lacks the named groups.
    """
    pattern = re.compile(name_regex)
    if not {"obshistid", "sensor"} <= set(pattern.groupindex):
        raise InputError(f"name_regex: {name_regex!r} needs groups (?P<obshistid>) (?P<sensor>)")
    text, name = _read_source(path_or_text, source)
    numbered = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not numbered:
        raise located(name, 1, "empty sacct output (expected a header line)")
    header_number, header_line = numbered[0]
    trailing_bar = header_line.rstrip().endswith("|")
    header = [h.strip().lower() for h in _split_bar(header_line, trailing_bar)]
    missing = {"jobid", "state"} - set(header)
    if missing:
        raise located(
            name, header_number,
            f"sacct header lacks {', '.join(sorted(missing))} (use sacct --parsable2 "
            "--format=JobID,JobName,State,Elapsed,TotalCPU,...)",
        )
    errors: list[LineProblem] = []
    records: list[_SacctLine] = []
    for number, line in numbered[1:]:
        values = _split_bar(line, trailing_bar)
        if len(values) != len(header):
            errors.append(LineProblem(
                name, number, f"{len(values)} fields, the header has {len(header)}"
            ))
            continue
        fields = dict(zip(header, values, strict=True))
        match = _JOB_ID_RE.match(fields["jobid"].strip())
        if match is None:
            errors.append(LineProblem(name, number, f"JobID {fields['jobid']!r} is not a job id"))
            continue
        records.append(_SacctLine(
            number, fields, match["job"], match["base"], match["task"], match["step"]
        ))
    steps: dict[str, list[_SacctLine]] = {}
    for record in records:
        if record.step is not None:
            steps.setdefault(record.job, []).append(record)
    job_lines = {r.job: r for r in records if r.step is None}  # last duplicate wins
    jobs: list[SacctJob] = []
    for job_id, record in job_lines.items():
        try:
            jobs.append(_sacct_job(record, steps.get(job_id, []), pattern))
        except (InputError, ValueError) as exc:
            errors.append(LineProblem(name, record.number, str(exc)))
    for job_id, orphan in steps.items():
        if job_id not in job_lines:
            errors.extend(
                LineProblem(name, r.number, f"step of job {job_id} without its job line")
                for r in orphan
            )
    errors.sort(key=lambda e: e.line or 0)
    return SacctResult(jobs=jobs, errors=errors)


def _split_bar(line: str, trailing_bar: bool) -> list[str]:
    line = line.rstrip("\r\n")
    if trailing_bar and line.endswith("|"):
        line = line[:-1]
    return line.split("|")


def _sacct_job(record: _SacctLine, steps: list[_SacctLine], pattern: re.Pattern) -> SacctJob:
    """Build one job from its job line and step lines (ValueError/InputError on bad values)."""
    fields = record.fields
    state_detail = fields["state"].strip()
    outcome = state_outcome(state_detail)
    if outcome is None:
        raise ValueError(f"State {state_detail!r} is not a Slurm job state")
    cpu_text = _optional(fields, "totalcpu")
    if cpu_text is not None:
        cpu_s, cpu_from = parse_clock(cpu_text, field="TotalCPU"), "job"
    else:
        step_cpu = [_optional(s.fields, "totalcpu") for s in steps]
        known = [parse_clock(t, field="TotalCPU") for t in step_cpu if t is not None]
        cpu_s, cpu_from = (sum(known), "steps") if known else (None, None)
    elapsed_text = _optional(fields, "elapsed")
    ncpus_text = _optional(fields, "ncpus", "alloccpus")
    rss = [_max_rss_kb(_optional(r.fields, "maxrss")) for r in (record, *steps)]
    rss = [r for r in rss if r is not None]
    job_name = fields.get("jobname", "").strip()
    tie = pattern.search(job_name)
    return SacctJob(
        job_id=record.job,
        array_job_id=record.base if record.task is not None else None,
        array_task_id=int(record.task) if record.task and record.task.isdigit() else None,
        name=job_name,
        state=state_detail.split(" ")[0].rstrip("+").upper(),
        state_detail=state_detail,
        outcome=outcome,
        cpu_s=cpu_s,
        cpu_from=cpu_from,
        elapsed_s=parse_clock(elapsed_text, field="Elapsed") if elapsed_text else None,
        ncpus=int(_to_float(ncpus_text, "NCPUS")) if ncpus_text else None,
        nodelist=_optional(fields, "nodelist"),
        start=_optional(fields, "start"),
        end=_optional(fields, "end"),
        exit_code=_optional(fields, "exitcode"),
        max_rss_kb=max(rss) if rss else None,
        obshistid=int(tie["obshistid"]) if tie else None,
        sensor=tie["sensor"] if tie else None,
        line=record.number,
        steps=tuple(s.step for s in steps if s.step is not None),
    )


# --------------------------------------------------------------------------------------------
# plain runs table

_SENSOR_RE = re.compile(r"^R\d\d_S[\dGW]\d$")
_RUNS_REQUIRED = ("obshistid", "sensor", "cpu_seconds")


@dataclass(frozen=True)
class RunRecord:
    """One row of a plain runs table.

    Attributes
    ----------
    obshistid : int
        Visit id.
    sensor : str
        Sensor id, e.g. ``R22_S11``.
    cpu_s : float or None
        CPU time [s]; a lower bound when ``outcome == 'censored'``; may be empty for a
        failed job.
    wall_s : float or None
        Wall time [s].
    host : str or None
        Host (class) name.
    threads : int
        Threads the job used (default 1).
    state : str
        Slurm-style state word (default ``COMPLETED``).
    outcome : str
        ``finished``, ``censored``, ``failed`` or ``active`` (see :func:`state_outcome`).
    line : int
        Line in the file.
    """

    obshistid: int
    sensor: str
    cpu_s: float | None
    wall_s: float | None
    host: str | None
    threads: int
    state: str
    outcome: str
    line: int


@dataclass
class RunsTable:
    """Rows read from a runs table, and the lines that were skipped."""

    runs: list[RunRecord]
    errors: list[LineProblem]


def parse_runs_csv(path_or_text: str | Path, *, source: str | None = None) -> RunsTable:
    """Parse a plain runs table: CSV with a header naming its columns.

    Columns: ``obshistid``, ``sensor``, ``cpu_seconds`` (required), ``wall_seconds``, ``host``,
    ``threads`` (default 1), ``state`` (default ``COMPLETED``; Slurm's state words, any case).
    Other columns are ignored. ``cpu_seconds`` may be empty only for a failed or active job.

    Parameters
    ----------
    path_or_text : str or Path
        A file, or the text itself (a str containing a newline).
    source : str, optional
        Name used in messages (default: the file name, or ``<text>``).

    Returns
    -------
    RunsTable
        ``.runs`` for the good rows; ``.errors`` one :class:`LineProblem` per skipped row.

    Raises
    ------
    InputError
        When the file is empty or its header lacks a required column.
    """
    text, name = _read_source(path_or_text, source)
    reader = csv.reader(io.StringIO(text))
    header_line = 0
    header: list[str] = []
    for row in reader:
        header_line = reader.line_num
        if any(cell.strip() for cell in row):
            header = [cell.strip().lower() for cell in row]
            break
    if not header:
        raise located(name, 1, "empty runs table (expected a header line)")
    missing = [c for c in _RUNS_REQUIRED if c not in header]
    if missing:
        raise located(name, header_line, f"header lacks column(s) {', '.join(missing)}")
    runs: list[RunRecord] = []
    errors: list[LineProblem] = []
    for row in reader:
        number = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            errors.append(LineProblem(name, number, f"{len(row)} fields, the header has "
                                      f"{len(header)}"))
            continue
        try:
            runs.append(_run_record(dict(zip(header, row, strict=True)), number))
        except ValueError as exc:
            errors.append(LineProblem(name, number, str(exc)))
    return RunsTable(runs=runs, errors=errors)


def _run_record(cells: dict[str, str], line: int) -> RunRecord:
    """One runs-table row; ValueError naming the column when a value is bad."""

    def value(column: str) -> str:
        return cells.get(column, "").strip()

    def seconds(column: str) -> float | None:
        if not value(column):
            return None
        number = _to_float(value(column), column)
        if number < 0:
            raise ValueError(f"{column}: {value(column)!r} is negative")
        return number

    obshistid = _to_float(value("obshistid"), "obshistid")
    if obshistid < 0 or obshistid != int(obshistid):
        raise ValueError(f"obshistid: {value('obshistid')!r} is not a visit id")
    sensor = value("sensor")
    if not _SENSOR_RE.match(sensor):
        raise ValueError(f"sensor: {sensor!r} is not a sensor id like R22_S11")
    state = value("state").upper() or "COMPLETED"
    outcome = state_outcome(state)
    if outcome is None:
        raise ValueError(f"state: {value('state')!r} is not a Slurm job state")
    cpu_s = seconds("cpu_seconds")
    if cpu_s is None and outcome in ("finished", "censored"):
        raise ValueError(f"cpu_seconds: empty for a {state} job")
    threads = int(_to_float(value("threads"), "threads")) if value("threads") else 1
    if threads < 1:
        raise ValueError(f"threads: {value('threads')!r} is not >= 1")
    return RunRecord(
        obshistid=int(obshistid),
        sensor=sensor,
        cpu_s=cpu_s,
        wall_s=seconds("wall_seconds"),
        host=value("host") or None,
        threads=threads,
        state=state.split(" ")[0],
        outcome=outcome,
        line=line,
    )
