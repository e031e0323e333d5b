"""One PhoSim run folder read as one job, and the one rule that says what its CPU time measures.

A run folder holds PhoSim's ``phosim.stdout``, the ``/usr/bin/time -v`` output of the run
(``time.txt``, or one ``*.time`` file, else appended to the stdout; for a run killed at its limit,
the kill note with the CPU sampled at the kill), and, when the run's inputs were kept, its
instance catalog (``catalog.txt``, ``catalog.txt.gz``, ``instcat.txt`` or ``instcat.txt.gz``) and
``commands.txt``. :func:`read_phosim_run` reads all of them into a :class:`PhosimRun`; training
(:func:`cputime.runs.training.phosim_runs_table`) and ingestion (:mod:`cputime.runs.ingest`) both
use it.

What the CPU time measures (:func:`run_outcome`), from what ends a process:

- **censored**: the batch system (or a CPU-time limit) killed the job at its limit. The kill note,
  or time's ``Command terminated by signal N`` with a signal a batch system ends jobs with
  (:data:`LIMIT_SIGNALS`: KILL, TERM, XCPU, INT, USR1, USR2), or a shell's exit status
  ``128 + N`` for one of them. The job needed at least the CPU it had used.
- **failed**: the job crashed: another signal (SEGV, ABRT, BUS, ...) or another non-zero exit
  status, whatever the stdout shows. Its CPU is not an observation of what the job needs.
- **finished**: exit status 0 and a stdout that ran to its end (every raytrace table accounts
  for all its sources). A checkpoint segment (``checkpointtotal > 0`` in its commands) traces
  only part of the sources, so there the exit status alone says it finished.

A stdout cut short while the time output reports a normal exit contradicts itself and is an
error, as is a run without any time output (its CPU is unknown).

Linux signal numbers are used: the logs come from Linux batch hosts, whatever machine reads them.
The kernel's out-of-memory killer also sends KILL, which these files cannot tell from a limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from cputime.errors import InputError
from cputime.inputs.commands import PhosimCommands, read_commands
from cputime.runs.logs import PhosimLog, TimeV, parse_phosim_stdout, parse_time_v

__all__ = [
    "LIMIT_SIGNALS",
    "CATALOG_NAMES",
    "PhosimRun",
    "run_outcome",
    "read_phosim_run",
    "sensor_option",
]

#: Signals a batch system sends to end a job at its limit (Linux numbers): INT 2, KILL 9,
#: USR1 10, USR2 12, TERM 15, XCPU 24 (Slurm: TERM then KILL, or its ``--signal`` choice;
#: Grid Engine: USR1/USR2/XCPU before KILL; RLIMIT_CPU: XCPU).
LIMIT_SIGNALS = frozenset({2, 9, 10, 12, 15, 24})

#: Names of a run's instance catalog, in the order they are looked for.
CATALOG_NAMES = ("catalog.txt", "catalog.txt.gz", "instcat.txt", "instcat.txt.gz")

_SENSOR_OPTION_RE = re.compile(r"(?:^|\s)-s\s+(R\d\d_S\d\d)\b")


def _killed_at_limit(timing: TimeV) -> bool:
    """The kill note, a limit signal, or a shell's exit status 128 + a limit signal."""
    if timing.timed_out or timing.signal in LIMIT_SIGNALS:
        return True
    status = timing.exit_status
    return timing.signal is None and status is not None and status - 128 in LIMIT_SIGNALS


def run_outcome(
    timing: TimeV, log_completed: bool | None, *, source: str = "<run>"
) -> tuple[str, str]:
    """(state, outcome) of one PhoSim run: see the module docstring for the rule.

    Parameters
    ----------
    timing : TimeV
        The run's time output (or kill note).
    log_completed : bool or None
        Whether the stdout ran to its end (for a checkpoint segment: True when its time output
        is all there is to go by); None without a stdout (a bare time file).
    source : str
        Name of the stdout, for the error.

    Returns
    -------
    tuple of str
        ``("TIMEOUT", "censored")``, ``("FAILED", "failed")`` or ``("COMPLETED", "finished")``.

    Raises
    ------
    InputError
        For a stdout cut short whose time output reports a normal exit.
    """
    if _killed_at_limit(timing):
        return "TIMEOUT", "censored"
    if timing.signal is not None or timing.exit_status not in (0, None):
        return "FAILED", "failed"
    if log_completed is False:
        raise InputError(
            f"{source}: truncated (the raytrace did not finish) although its time output "
            "reports a normal exit; the stdout is incomplete"
        )
    if timing.exit_status is None and log_completed is None:
        return "FAILED", "failed"  # nothing says the run ended normally
    return "COMPLETED", "finished"


def sensor_option(command: str | None) -> str | None:
    """The sensor of a ``-s R22_S11`` option in a PhoSim command line, if any."""
    match = _SENSOR_OPTION_RE.search(command or "")
    return match[1] if match else None


@dataclass(frozen=True)
class PhosimRun:
    """One PhoSim run folder.

    Attributes
    ----------
    folder : Path
        The run folder.
    stdout : Path
        Its ``phosim.stdout``.
    log : PhosimLog
        What the stdout says.
    timing : TimeV
        The time output (or kill note).
    time_file : Path or None
        The file the time output came from; None when it was appended to the stdout.
    catalog : Path or None
        The run's instance catalog, when kept.
    commands_file : Path or None
        Its ``commands.txt``, when kept.
    commands : PhosimCommands
        The commands (empty without a file; keys PhoSim ignores are kept, not refused: the run
        happened).
    state : str
        ``COMPLETED``, ``TIMEOUT`` or ``FAILED``.
    outcome : str
        ``finished``, ``censored`` or ``failed`` (:func:`run_outcome`).
    """

    folder: Path
    stdout: Path
    log: PhosimLog
    timing: TimeV
    time_file: Path | None
    catalog: Path | None
    commands_file: Path | None
    commands: PhosimCommands
    state: str
    outcome: str

    @property
    def cpu_seconds(self) -> float:
        """User + system CPU of the run on its host [s]; a lower bound when censored."""
        return self.timing.cpu_s

    @property
    def censored(self) -> bool:
        """True when the run was killed at its limit (its need is at least :attr:`cpu_seconds`)."""
        return self.outcome == "censored"

    @property
    def sensor(self) -> str | None:
        """The simulated sensor: from the stdout, else the ``-s`` option of the command."""
        return self.log.chip or sensor_option(self.timing.command or self.log.command)


def _time_file(folder: Path) -> Path | None:
    if (folder / "time.txt").exists():
        return folder / "time.txt"
    sidecars = sorted(folder.glob("*.time"))
    if len(sidecars) > 1:
        names = ", ".join(p.name for p in sidecars)
        raise InputError(f"{folder}: several time files ({names}); keep one or name it time.txt")
    return sidecars[0] if sidecars else None


def read_phosim_run(folder: str | Path) -> PhosimRun:
    """Read one PhoSim run folder (see the module docstring for its files and the rule).

    Parameters
    ----------
    folder : str or Path
        The run folder.

    Returns
    -------
    PhosimRun

    Raises
    ------
    InputError
        Without ``phosim.stdout`` or any time output, with several ``*.time`` files, for an
        unreadable file, or a stdout cut short whose time output reports a normal exit.
    """
    folder = Path(folder)
    stdout = folder / "phosim.stdout"
    if not stdout.exists():
        raise InputError(f"{folder}: no phosim.stdout (a PhoSim run folder holds phosim.stdout "
                         "and time.txt)")
    log = parse_phosim_stdout(stdout, source=str(stdout))
    time_file = _time_file(folder)
    if time_file is not None:
        timing = parse_time_v(time_file, source=str(time_file))
    elif log.time_v is not None:
        timing = log.time_v
    else:
        raise InputError(
            f"{stdout}: no /usr/bin/time -v output (neither time.txt nor appended to the "
            "stdout): the run's CPU time is unknown"
        )
    commands_file = folder / "commands.txt"
    commands_file = commands_file if commands_file.exists() else None
    commands = read_commands(commands_file, allow_unknown=True)
    # A checkpoint segment traces part of the sources: its stdout never accounts for them all.
    segment = (commands.checkpointtotal or 0) > 0
    state, outcome = run_outcome(timing, log.completed or segment, source=str(stdout))
    return PhosimRun(
        folder=folder,
        stdout=stdout,
        log=log,
        timing=timing,
        time_file=time_file,
        catalog=next((folder / n for n in CATALOG_NAMES if (folder / n).exists()), None),
        commands_file=commands_file,
        commands=commands,
        state=state,
        outcome=outcome,
    )
