"""Finished-job logs into the runs store: one :class:`~cputime.runs.store.RunAttempt` per job
attempt,
with its reference-host CPU and its features.

Formats (:data:`INGEST_FORMATS`):

``sacct``
    Slurm ``sacct --parsable2`` output (see :func:`cputime.runs.logs.parse_sacct`): step lines are
    folded into their job, never counted twice. COMPLETED -> finished; TIMEOUT, DEADLINE ->
    censored at the CPU used; FAILED, CANCELLED, OUT_OF_MEMORY, NODE_FAIL, ... -> failed (stored,
    not a training example). Jobs still PENDING/RUNNING are not stored (their key would keep
    the unfinished state; ingest them once they ended), nor jobs whose name does not match the
    job-name pattern (not PhoSim jobs). Host: NodeList; threads: NCPUS. Start and End are taken
    as UTC. Key: job id + start time.
``phosim``
    PhoSim run folders, read by :func:`cputime.runs.phosim_run.read_phosim_run`: ``phosim.stdout``,
    its ``/usr/bin/time -v`` output (``time.txt`` or one ``*.time`` file in the folder, else
    appended to the stdout), and optionally the catalog and ``commands.txt``, which give the run's
    features. Killed at its limit (the kill note, or a limit signal) -> censored at the CPU used
    so far; crashed (another signal or a non-zero exit status) -> failed; exit status 0 with a
    stdout that ran to its end (or a checkpoint segment) -> finished; see
    :mod:`cputime.runs.phosim_run`. A cut stdout whose time output says it exited 0, or a run
    without time output, is an error (nothing of the call is stored). End time: the stdout's
    modification time. Key: the content of the stdout and the time output.
``time``
    GNU ``/usr/bin/time -v`` files (or a stdout with it appended). The visit and sensor come from
    the job-name pattern searched in the file name, then in the timed command (and the sensor
    from a ``-s R22_S11`` option). The same rule without a stdout: exit status 0 -> finished;
    killed at its limit -> censored; crashed -> failed. Key: the file's content.
``csv``
    A plain table (:func:`cputime.runs.logs.parse_runs_csv`: obshistid, sensor, cpu_seconds,
    wall_seconds, host, threads, state; optional ``started``/``ended`` ISO times, UTC). Key: the
    row's values.

Host slowdowns (``host_slowdowns``, :mod:`cputime.runs.hosts`): ``cpu_seconds_ref = cpu_seconds /
host_slowdown``; a host that no pattern matches is an error naming it (add a ``*`` row for a
default), and a run without a host name matches only ``*``. Without host slowdowns every
slowdown is 1 (the hosts that ran the jobs are the reference).

Features (:class:`FeatureSource`): from instance catalogs under ``catalog_root`` (see
:func:`find_catalogs` for how a visit's catalog is found) or from a table of visits
(``visits``, header-keyword columns, :func:`cputime.physics.features.visit_features`); catalogs
first.
A run whose features cannot be computed is stored without them and cannot train.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from cputime.errors import InputError, located
from cputime.inputs.catalog import MAX_INCLUDED_BYTES
from cputime.inputs.commands import PhosimCommands
from cputime.runs.hosts import HostSlowdowns
from cputime.runs.logs import (
    DEFAULT_JOB_NAME_REGEX,
    LineProblem,
    parse_runs_csv,
    parse_sacct,
    parse_time_v,
)
from cputime.runs.phosim_run import PhosimRun, read_phosim_run, run_outcome, sensor_option
from cputime.runs.store import RunAttempt, RunsStore, attempt_key, features_json

__all__ = [
    "INGEST_FORMATS",
    "IngestReport",
    "FeatureSource",
    "find_catalogs",
    "read_attempts",
    "ingest",
]

INGEST_FORMATS = ("sacct", "phosim", "time", "csv")


@dataclass
class IngestReport:
    """What ingesting one input did.

    Attributes
    ----------
    source : str
        The file or run folder.
    format : str
        Its format.
    read : int
        Job attempts read from it.
    stored : int
        Of those, newly stored.
    already_stored : int
        Of those, already in the store (same attempt key).
    training : int
        Of those read, finished or censored with features: usable for training.
    without_features : int
        Finished or censored but without features (cannot train).
    not_training : int
        Failed attempts (stored, never trained on).
    skipped : dict[str, int]
        Jobs not stored, by reason: deliberately (``active``, ``name does not match``,
        ``never started``) or because their numbers are impossible (``impossible ...``).
    problems : list of LineProblem
        Lines that could not be read (skipped), rows with impossible values (skipped), and runs
        whose features failed.
    """

    source: str
    format: str
    read: int = 0
    stored: int = 0
    already_stored: int = 0
    training: int = 0
    without_features: int = 0
    not_training: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    problems: list[LineProblem] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Summary for printing (problems as ``file:line: why`` strings)."""
        out = {k: v for k, v in vars(self).items() if k != "problems"}
        out["problems"] = len(self.problems)
        return out


# ------------------------------------------------------------------------------------ helpers


def _utc(text: str | None) -> datetime | None:
    """An ISO time as naive UTC (a time without zone is taken as UTC); None if unreadable."""
    if not text or text.strip() in ("Unknown", "None", "N/A"):
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _mtime_utc(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(tzinfo=None)


def _json(value) -> str:
    return json.dumps(value, sort_keys=True, allow_nan=False, default=str)


def _apply_host_slowdowns(
    attempts: list[RunAttempt], slowdowns: HostSlowdowns | None, source: str
) -> None:
    """Fill host_slowdown and cpu_seconds_ref; one error naming every unmatched host."""
    by_host: dict[str | None, float] = {}
    unmatched: list[str] = []
    for host in {a.host for a in attempts}:
        if slowdowns is None:
            by_host[host] = 1.0
            continue
        try:
            by_host[host] = slowdowns.slowdown(host or "")
        except InputError:
            unmatched.append(host or "(no host name)")
    if unmatched:
        raise InputError(
            f"{source}: no pattern in {slowdowns.source} matches host(s) "
            f"{', '.join(sorted(unmatched))} (add rows for them, or a last row '*,1.0')"
        )
    for attempt in attempts:
        attempt.host_slowdown = by_host[attempt.host]
        if attempt.cpu_seconds is not None:
            attempt.cpu_seconds_ref = attempt.cpu_seconds / attempt.host_slowdown


#: Largest CPU or wall time a stored job may have [s] (about 30 years: no PhoSim job).
MAX_JOB_SECONDS = 1e9
#: CPU seconds a job may use per second of wall time and allocated CPU: sacct's rounding and
#: hyper-threads allow a little over 1, a damaged line is far over (3.6e14 s in a 1 h job).
CPU_PER_WALL_AND_CPU = 2.0


def impossible(attempt: RunAttempt) -> tuple[str, str] | None:
    """(category, reason) when an attempt's numbers cannot be real, else None.

    Such a row would be a training example of a job that never existed; it is not stored.
    """
    for name in ("cpu_seconds", "wall_seconds"):
        value = getattr(attempt, name)
        if value is not None and not (math.isfinite(value) and 0 <= value <= MAX_JOB_SECONDS):
            return (f"impossible {name}",
                    f"{name} {value:g} is not a time between 0 and {MAX_JOB_SECONDS:g} s")
    if attempt.threads is not None and attempt.threads < 1:
        return "impossible threads", f"{attempt.threads} CPUs (NCPUS/threads must be >= 1)"
    cpu, wall, threads = attempt.cpu_seconds, attempt.wall_seconds, attempt.threads or 1
    if cpu is not None and wall is not None and cpu > CPU_PER_WALL_AND_CPU * wall * threads + 60:
        return ("impossible cpu_seconds for the wall time",
                f"cpu_seconds {cpu:g} is more than {threads} CPU(s) can use in {wall:g} s")
    return None


def _drop_impossible(attempts: list[RunAttempt], source: str, problems: list[LineProblem],
                     skipped: Counter) -> list[RunAttempt]:
    """The attempts with possible numbers; each other one counted and reported with its line."""
    kept = []
    for attempt in attempts:
        why = impossible(attempt)
        if why is None:
            kept.append(attempt)
        else:
            skipped[why[0]] += 1
            problems.append(LineProblem(source, attempt.source_line, f"not stored: {why[1]}"))
    return kept


def _never_started(job) -> bool:
    """A job cancelled or failed before it ran: no node, no start, no elapsed time."""
    no_node = (job.nodelist or "").strip().lower() in ("", "none assigned", "none")
    no_start = (job.start or "").strip() in ("", "Unknown", "None")
    return job.outcome == "failed" and not job.elapsed_s and (no_node or no_start)


# -------------------------------------------------------------------------------------- sacct


def _sacct_attempts(path: Path, name_regex: str) -> tuple[list[RunAttempt], list, Counter]:
    result = parse_sacct(path, name_regex=name_regex, source=str(path))
    problems = list(result.errors)
    skipped: Counter = Counter()
    attempts = []
    for job in result.jobs:
        if job.outcome == "active":
            skipped["active"] += 1
            continue
        if job.obshistid is None:
            skipped["name does not match"] += 1
            continue
        if _never_started(job):  # nothing to learn, and no host to look a slowdown up for
            skipped["never started"] += 1
            continue
        if job.cpu_s is None and job.outcome != "failed":
            problems.append(LineProblem(str(path), job.line, f"{job.state} job without TotalCPU"))
            continue
        attempts.append(
            RunAttempt(
                attempt_key=attempt_key("sacct", job.job_id, job.start),
                source_format="sacct",
                source_file=str(path),
                source_line=job.line,
                state=job.state,
                outcome=job.outcome,
                obshistid=job.obshistid,
                sensor=job.sensor,
                job_id=job.job_id,
                job_name=job.name,
                cpu_seconds=job.cpu_s,
                host=job.nodelist,
                wall_seconds=job.elapsed_s,
                threads=job.ncpus,
                max_rss_kb=job.max_rss_kb,
                exit_code=job.exit_code,
                started=_utc(job.start),
                ended=_utc(job.end),
                details=_json(
                    {"state_detail": job.state_detail, "steps": list(job.steps),
                     "cpu_from": job.cpu_from}
                ),
            )
        )
    return attempts, problems, skipped


# ---------------------------------------------------------------------------------------- csv


def _csv_times(text: str) -> dict[int, tuple[str | None, str | None]]:
    """Optional ``started``/``ended`` cells of a runs table, by line number."""
    reader = csv.reader(io.StringIO(text))
    header = None
    times: dict[int, tuple[str | None, str | None]] = {}
    for row in reader:
        cells = [c.strip() for c in row]
        if header is None:
            if any(cells):
                header = [c.lower() for c in cells]
                if "started" not in header and "ended" not in header:
                    return times
            continue
        record = dict(zip(header, cells, strict=False))
        times[reader.line_num] = (record.get("started"), record.get("ended"))
    return times


def _csv_attempts(path: Path) -> tuple[list[RunAttempt], list, Counter]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise located(str(path), None, f"cannot read: {exc.strerror or exc}") from None
    table = parse_runs_csv(text if "\n" in text else text + "\n", source=str(path))
    times = _csv_times(text)
    skipped: Counter = Counter()
    attempts = []
    for run in table.runs:
        if run.outcome == "active":
            skipped["active"] += 1
            continue
        started, ended = times.get(run.line, (None, None))
        attempts.append(
            RunAttempt(
                attempt_key=attempt_key(
                    "csv", run.obshistid, run.sensor, run.cpu_s, run.wall_s, run.host,
                    run.threads, run.state, started, ended,
                ),
                source_format="csv",
                source_file=str(path),
                source_line=run.line,
                state=run.state,
                outcome=run.outcome,
                obshistid=run.obshistid,
                sensor=run.sensor,
                cpu_seconds=run.cpu_s,
                host=run.host,
                wall_seconds=run.wall_s,
                threads=run.threads,
                started=_utc(started),
                ended=_utc(ended),
            )
        )
    return attempts, list(table.errors), skipped


# ------------------------------------------------------------------------------ time and phosim

def _visit_and_sensor(
    candidates: Sequence[tuple[re.Pattern, str | None]], command: str | None
) -> tuple[int | None, str | None]:
    """Visit and sensor from the first (pattern, text) that matches; else a ``-s`` sensor."""
    for pattern, text in candidates:
        if text and (match := pattern.search(text)):
            return int(match["obshistid"]), match["sensor"]
    return None, sensor_option(command)


def _time_attempt(path: Path, name_regex: str) -> RunAttempt:
    timing = parse_time_v(path, source=str(path))
    state, outcome = run_outcome(timing, None)
    # The job-name pattern is anchored at the start of a job name; in a command it may be
    # anywhere, so there it is searched unanchored.
    loose = re.compile(name_regex.removeprefix("^"))
    obshistid, sensor = _visit_and_sensor(
        [(re.compile(name_regex), path.name), (loose, timing.command)], timing.command
    )
    return RunAttempt(
        attempt_key=attempt_key("time", path.read_bytes()),
        source_format="time",
        source_file=str(path),
        state=state,
        outcome=outcome,
        obshistid=obshistid,
        sensor=sensor,
        cpu_seconds=timing.cpu_s,
        wall_seconds=timing.wall_s,
        max_rss_kb=timing.max_rss_kb,
        exit_code=None if timing.exit_status is None else str(timing.exit_status),
        ended=_mtime_utc(path),
        details=_json({"command": timing.command, "signal": timing.signal,
                       "timed_out": timing.timed_out}),
    )


def _phosim_attempt(run: PhosimRun) -> RunAttempt:
    """One run folder -> its attempt, without features."""
    log, timing = run.log, run.timing
    table = json.loads(log.table().to_json(orient="records"))
    details = {
        "run": run.folder.name,
        "steps": log.steps,
        "completed": log.completed,
        "raytrace_table": table,
        "raytrace_by_type": log.raytrace_by_type(),
        "raytrace_total_s": round(log.raytrace_total_s, 2),
        "n_trim_sources": log.n_trim_sources,
        "n_sources": log.n_sources,
        "total_photons_setup": log.total_photons_setup,
        "seed": log.seed,
        "commit": log.commit,
        "command": timing.command or log.command,
        "user_s": timing.user_s,
        "system_s": timing.system_s,
        "timed_out": timing.timed_out,
        "signal": timing.signal,
        "commands": {"overrides": run.commands.overrides(),
                     "other": run.commands.unrecognised()},
    }
    time_bytes = run.time_file.read_bytes() if run.time_file is not None else b""
    attempt = RunAttempt(
        attempt_key=attempt_key("phosim", run.stdout.read_bytes(), time_bytes),
        source_format="phosim",
        source_file=str(run.folder),
        state=run.state,
        outcome=run.outcome,
        obshistid=log.obshistid,
        sensor=run.sensor,
        job_name=run.folder.name,
        cpu_seconds=run.cpu_seconds,
        wall_seconds=timing.wall_s,
        threads=int(log.settings["numthreads"]) if log.settings.get("numthreads", "").isdigit()
        else None,
        max_rss_kb=timing.max_rss_kb,
        exit_code=None if timing.exit_status is None else str(timing.exit_status),
        ended=_mtime_utc(run.stdout),
        details=_json(details),
    )
    if attempt.ended is not None and timing.wall_s is not None:
        attempt.started = attempt.ended - pd.Timedelta(seconds=timing.wall_s).to_pytimedelta()
    return attempt


# ------------------------------------------------------------------------------------ features

_CATALOG_FILE_RE = re.compile(
    r"^(?:phosim_cat|instcat|catalog)(?:_(?P<id>\d+))?\.txt(?:\.gz)?$", re.IGNORECASE
)
_WHOLE_NUMBER_RE = re.compile(r"(?<!\d)(\d+)(?!\d)")


def find_catalogs(root: str | Path) -> dict[int, list[Path]]:
    """Instance catalogs under a folder, by visit id.

    A file is a visit's catalog when its name is ``phosim_cat_<id>.txt``, ``instcat_<id>.txt`` or
    ``catalog_<id>.txt`` (optionally ``.gz``), or ``phosim_cat.txt`` / ``instcat.txt`` /
    ``catalog.txt`` inside a folder whose name holds the id as its only number
    (``230/instcat.txt``, ``visit_230/catalog.txt.gz``). Folders are searched recursively.
    Files the catalogs include (``star_cat_230.txt.gz``) do not match these names.

    Parameters
    ----------
    root : path
        The folder.

    Returns
    -------
    dict
        ``{obshistid: [paths]}``; more than one path for a visit is ambiguous.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"catalog_root: {root} is not a folder")
    found: dict[int, list[Path]] = {}
    for path in sorted(root.rglob("*")):
        match = _CATALOG_FILE_RE.match(path.name)
        if match is None or not path.is_file():
            continue
        if match["id"] is not None:
            visit = int(match["id"])
        else:
            numbers = _WHOLE_NUMBER_RE.findall(path.parent.name)
            if len(numbers) != 1:
                continue
            visit = int(numbers[0])
        found.setdefault(visit, []).append(path)
    return found


class FeatureSource:
    """Where the features of ingested runs come from: catalogs, a visit table, or both.

    Parameters
    ----------
    catalog_root : path, optional
        Folder of instance catalogs (see :func:`find_catalogs`).
    visits : path, optional
        CSV/Parquet table of visits with header-keyword columns.
    """

    def __init__(self, *, catalog_root: str | Path | None = None, visits: str | Path | None = None):
        self.catalog_root = catalog_root
        self.visits = visits
        self._catalogs = find_catalogs(catalog_root) if catalog_root is not None else {}
        self._visit_rows = self._read_visits(Path(visits)) if visits is not None else {}

    @staticmethod
    def _read_visits(path: Path) -> dict[int, dict]:
        from cputime.physics.features import read_visit_table, visit_features

        table = visit_features(read_visit_table(path), source=str(path))
        rows = table.drop(columns=["sensor"]).to_dict("records")
        return {int(r["obshistid"]): r for r in rows}

    def attach(self, attempts: Iterable[RunAttempt], *,
               max_included_bytes: int = MAX_INCLUDED_BYTES) -> list[LineProblem]:
        """Set ``features`` and ``feature_code_version`` of attempts whose visit is known
        (``max_included_bytes``: as :func:`catalog_rows`).

        Returns
        -------
        list of LineProblem
            Visits whose catalog could not be read or is ambiguous (their runs get no features).
        """
        problems: list[LineProblem] = []
        todo = [a for a in attempts if a.obshistid is not None and a.sensor]
        by_visit: dict[int, list[RunAttempt]] = {}
        for attempt in todo:
            by_visit.setdefault(attempt.obshistid, []).append(attempt)
        for visit, runs in by_visit.items():
            rows = self._catalog_rows(visit, {r.sensor for r in runs}, problems,
                                      max_included_bytes)
            for run in runs:
                row = rows.get(run.sensor) if rows is not None else self._visit_rows.get(visit)
                if row is not None:
                    _set_features(run, row)
        return problems

    def _catalog_rows(
        self, visit: int, sensors: set[str], problems: list[LineProblem], max_included_bytes: int
    ) -> dict[str, dict] | None:
        paths = self._catalogs.get(visit)
        if not paths:
            return None
        if len(paths) > 1:
            problems.append(LineProblem(
                str(self.catalog_root), None,
                f"visit {visit}: several catalogs ({', '.join(map(str, paths))}); runs of it "
                "stored without features",
            ))
            return {}
        return catalog_rows(paths[0], sensors, None, problems,
                            max_included_bytes=max_included_bytes)


def _set_features(attempt: RunAttempt, row: dict) -> None:
    """Store a features row (a dict with the feature columns) with the run."""
    from cputime.physics.features import FEATURE_CODE_VERSION, FEATURE_COLUMNS

    attempt.features = features_json({c: row.get(c) for c in FEATURE_COLUMNS})
    attempt.feature_code_version = FEATURE_CODE_VERSION


def catalog_rows(
    catalog: Path,
    sensors: set[str],
    commands: PhosimCommands | None,
    problems: list[LineProblem],
    *,
    max_included_bytes: int = MAX_INCLUDED_BYTES,
) -> dict[str, dict]:
    """Features of a catalog by sensor; a failure is added to ``problems`` (empty result).
    ``max_included_bytes``: most decompressed text of its ``includeobj`` files in all [bytes]."""
    from cputime.physics.features import catalog_features

    try:
        table = catalog_features(catalog, sorted(sensors), commands=commands,
                                 max_included_bytes=max_included_bytes)
    except InputError as exc:
        problems.append(LineProblem(str(catalog), None, f"no features: {exc}"))
        return {}
    return {r["sensor"]: r for r in table.to_dict("records")}


# -------------------------------------------------------------------------------------- ingest


@dataclass
class _Parsed:
    source: str
    attempts: list[RunAttempt]
    problems: list[LineProblem]
    skipped: Counter


def read_attempts(
    inputs: Sequence[str | Path],
    fmt: str,
    *,
    name_regex: str = DEFAULT_JOB_NAME_REGEX,
    host_slowdowns: HostSlowdowns | None = None,
    features: FeatureSource | None = None,
    max_included_bytes: int = MAX_INCLUDED_BYTES,
) -> list[_Parsed]:
    """Read every input into attempts (host slowdowns and features attached), storing nothing;
    parameters as :func:`ingest`.

    Raises
    ------
    InputError
        For an input that cannot be read as a whole (wrong format, unmatched hosts, a PhoSim
        run without time output): nothing is stored then.
    """
    if fmt not in INGEST_FORMATS:
        raise InputError(f"fmt: {fmt!r} is not one of {', '.join(INGEST_FORMATS)}")
    parsed: list[_Parsed] = []
    for item in inputs:
        path = Path(item)
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
        problems: list[LineProblem] = []
        skipped: Counter = Counter()
        if fmt == "sacct":
            attempts, problems, skipped = _sacct_attempts(path, name_regex)
        elif fmt == "csv":
            attempts, problems, skipped = _csv_attempts(path)
        elif fmt == "time":
            attempts = [_time_attempt(path, name_regex)]
        else:
            run = read_phosim_run(path)
            attempt = _phosim_attempt(run)
            attempts = [attempt]
            if run.catalog is not None and attempt.sensor:
                rows = catalog_rows(run.catalog, {attempt.sensor}, run.commands, problems,
                                    max_included_bytes=max_included_bytes)
                row = rows.get(attempt.sensor)
                if row is not None:
                    _set_features(attempt, row)
        attempts = _drop_impossible(attempts, str(path), problems, skipped)
        _apply_host_slowdowns(attempts, host_slowdowns, str(path))
        if features is not None:
            problems += features.attach((a for a in attempts if a.features is None),
                                        max_included_bytes=max_included_bytes)
        parsed.append(_Parsed(str(path), attempts, problems, skipped))
    return parsed


def ingest(
    inputs: Sequence[str | Path],
    fmt: str,
    store: RunsStore,
    *,
    name_regex: str = DEFAULT_JOB_NAME_REGEX,
    host_slowdowns: HostSlowdowns | None = None,
    features: FeatureSource | None = None,
    max_included_bytes: int = MAX_INCLUDED_BYTES,
) -> list[IngestReport]:
    """Read logs and store their job attempts; each input in one transaction.

    All inputs are read first, so an input that cannot be read stops the call before anything
    is stored; bad lines inside an input are skipped and reported.

    Parameters
    ----------
    inputs : sequence of path
        Files (sacct, time, csv) or run folders (phosim).
    fmt : str
        One of :data:`INGEST_FORMATS`.
    store : RunsStore
        Where to store.
    name_regex : str
        Job-name pattern with groups ``obshistid`` and ``sensor``.
    host_slowdowns : HostSlowdowns, optional
        Host CPU seconds per reference-host CPU second by host pattern; 1 when None.
    features : FeatureSource, optional
        Catalogs and/or visit table for features.
    max_included_bytes : int, default :data:`cputime.inputs.catalog.MAX_INCLUDED_BYTES`
        Most decompressed text of the ``includeobj`` files of each catalog read for features
        (PhoSim run folders' and ``features``') [bytes].

    Returns
    -------
    list of IngestReport
        One per input.
    """
    reports = []
    for parsed in read_attempts(
        inputs, fmt, name_regex=name_regex, host_slowdowns=host_slowdowns, features=features,
        max_included_bytes=max_included_bytes,
    ):
        stored = store.add(parsed.attempts)
        trainable = [a for a in parsed.attempts if a.outcome in ("finished", "censored")]
        reports.append(
            IngestReport(
                source=parsed.source,
                format=fmt,
                read=len(parsed.attempts),
                stored=stored,
                already_stored=len(parsed.attempts) - stored,
                training=sum(a.is_training_example for a in trainable),
                without_features=sum(a.features is None for a in trainable),
                not_training=len(parsed.attempts) - len(trainable),
                skipped=dict(parsed.skipped),
                problems=parsed.problems,
            )
        )
    return reports
