"""Features of many inputs at once: parallel over files, resumable, one table in input order.

A survey is ~12,000 visits x 189 sensors, one instance catalog per visit. :func:`features_of_many`
reads the catalogs in parallel (local processes, or any Parsl configuration), shows a progress bar
on standard error, and, given a ``resume_dir``, keeps one part file per finished input so that a
run that was interrupted (or that met a bad catalog) starts again where it stopped.

A part file is named by a hash of everything its rows depend on: the input's absolute path, size
and modification time, the sensors, the commands overrides, ``allow_outside`` and
:data:`cputime.physics.features.FEATURE_CODE_VERSION`. Beside it, ``<part>.files.json`` lists
every file the reader opened for it (the ``includeobj`` files, wherever their lines stand), with
size and modification time as they were when opened
(:func:`cputime.inputs.catalog.recording_reads`): a part is reused only while those files are
unchanged too. Checking costs a ``stat`` per file, not a second read of the catalog. Changing
any of them recomputes the input; stale parts are simply never read again.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import json
import os
import runpy
import sys
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cputime.errors import InputError
from cputime.inputs.catalog import MAX_INCLUDED_BYTES

__all__ = [
    "EXECUTORS",
    "BatchFeatures",
    "FailedInput",
    "features_of_many",
    "load_parsl_config",
    "part_is_current",
    "part_path",
]

#: Ways to run the work: local processes, or a Parsl configuration.
EXECUTORS = ("local", "parsl")


@dataclass(frozen=True)
class FailedInput:
    """An input skipped with ``keep_going=True``: its path and the one-line error."""

    path: str
    message: str


@dataclass(frozen=True)
class BatchFeatures:
    """What :func:`features_of_many` read: the features of the inputs that could be read, in
    input order, and the inputs it skipped (``keep_going=True``), in input order."""

    table: pd.DataFrame
    failures: list[FailedInput]


def features_of_many(
    inputs: Sequence[str | Path],
    sensors: Sequence[str] | None,
    *,
    commands=None,
    allow_outside: bool = False,
    max_included_bytes: int = MAX_INCLUDED_BYTES,
    jobs: int = 1,
    executor: str = "local",
    parsl_config=None,
    progress: bool = True,
    resume_dir: str | Path | None = None,
    keep_going: bool = False,
) -> BatchFeatures:
    """Features of many catalogs or visit tables, as one table in input order.

    Parameters
    ----------
    inputs : sequence of str or Path
        Instance catalogs (plain or gzipped) and/or CSV/Parquet visit tables.
    sensors : sequence of str, optional
        Sensors to report (catalogs default to all 189; visit tables to one row per visit).
    commands : PhosimCommands, optional
        PhoSim commands-file overrides applied to every input.
    allow_outside : bool, default False
        Follow ``includeobj`` files outside each catalog's folder.
    max_included_bytes : int, default :data:`cputime.inputs.catalog.MAX_INCLUDED_BYTES`
        Most decompressed text of each catalog's ``includeobj`` files in all [bytes]. Not part
        of a part file's key: a catalog within the cap has the same rows whatever the cap.
    jobs : int, default 1
        Local worker processes (``executor="local"``); 1 reads the inputs in this process.
    executor : {"local", "parsl"}
        Where the inputs are read.
    parsl_config : str, Path or parsl.config.Config, optional
        With ``executor="parsl"``: a Config, or a Python file that defines ``config``.
    progress : bool, default True
        Show a progress bar on standard error (when it is a terminal).
    resume_dir : str or Path, optional
        Work folder for per-input part files; inputs whose part exists are not read again.
    keep_going : bool, default False
        Skip inputs that fail with :class:`~cputime.errors.InputError` instead of stopping; the
        skipped inputs are listed in the result's ``failures``.

    Returns
    -------
    BatchFeatures
        ``table``: the rows of :func:`cputime.physics.features.features_of_inputs` for every
        input read, in input order; ``failures``: the inputs skipped (:class:`FailedInput`).

    Raises
    ------
    cputime.errors.InputError
        For the first bad input (its message names the input), unless ``keep_going``.
    """
    if executor not in EXECUTORS:
        raise InputError(f"executor: {executor!r} is not one of {', '.join(EXECUTORS)}")
    if jobs < 1:
        raise InputError(f"jobs: {jobs} must be 1 or more")
    if executor == "parsl" and parsl_config is None:
        raise InputError("parsl_config: needed for the parsl executor (a Python file defining "
                         "`config`, see examples/parsl_local.py)")
    paths = [str(Path(p)) for p in inputs]
    sensors = list(sensors) if sensors else None
    parts = None
    if resume_dir is not None:
        Path(resume_dir).mkdir(parents=True, exist_ok=True)
        parts = [
            str(part_path(resume_dir, p, sensors, commands, allow_outside)) for p in paths
        ]
    todo = [i for i in range(len(paths)) if parts is None or not part_is_current(parts[i])]
    tasks = [
        (paths[i], sensors, commands, allow_outside, max_included_bytes,
         None if parts is None else parts[i])
        for i in todo
    ]

    results: dict[int, pd.DataFrame | None] = {}
    failed: dict[int, FailedInput] = {}
    stream = _run(tasks, jobs, executor, parsl_config, keep_going)
    # closing(): a failure stops the workers now, not when the generator is collected.
    bar = _progress_bar(len(paths), len(paths) - len(todo), progress)
    with contextlib.closing(stream), bar:
        for position, (status, value) in stream:
            index = todo[position]
            if status == "error":
                if not keep_going:
                    raise InputError(value)
                failed[index] = FailedInput(paths[index], value)
            else:
                results[index] = value
            bar.update(1)

    frames = []
    for i in range(len(paths)):
        if i in failed:
            continue
        frame = results.get(i)
        frames.append(pd.read_parquet(parts[i]) if frame is None else frame)
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return BatchFeatures(table, [failed[i] for i in sorted(failed)])


def part_path(
    resume_dir: str | Path,
    path: str | Path,
    sensors: Sequence[str] | None,
    commands=None,
    allow_outside: bool = False,
) -> Path:
    """Part file of one input in ``resume_dir``, keyed by everything its rows depend on besides
    the files it includes (those are checked by :func:`part_is_current`)."""
    from cputime.physics.features import FEATURE_CODE_VERSION

    path = Path(path).absolute()
    key = json.dumps(
        {
            "path": str(path),
            "file": _size_and_time(path),
            "sensors": sensors,
            "commands": None if commands is None else [commands.overrides(),
                                                      commands.unrecognised()],
            "allow_outside": allow_outside,
            "features": FEATURE_CODE_VERSION,
        },
        sort_keys=True,
        default=str,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return Path(resume_dir) / f"{digest}.parquet"


def part_is_current(part: str | Path) -> bool:
    """Whether a part file exists and every file read for it (its ``.files.json``) still has the
    size and modification time it had when read."""
    try:
        files = json.loads(Path(f"{part}.files.json").read_text())
        return Path(part).exists() and all(
            list(_size_and_time(Path(name)) or ()) == [size, mtime] for name, size, mtime in files)
    except (OSError, ValueError, TypeError):
        return False  # no list, or not one this code wrote: recompute


def _size_and_time(path: Path) -> tuple[int, int] | None:
    """Size [bytes] and modification time [ns] of a file; None when it cannot be looked at."""
    try:
        stat = path.stat()
    except OSError:  # missing or unreadable: the input fails when read
        return None
    return stat.st_size, stat.st_mtime_ns


def load_parsl_config(spec):
    """A Parsl ``Config``: ``spec`` itself, or the ``config`` set by the Python file ``spec``."""
    from parsl.config import Config

    if isinstance(spec, Config):
        return spec
    path = Path(spec)
    if not path.is_file():
        raise InputError(f"parsl_config {path}: no such file")
    namespace = runpy.run_path(str(path))
    config = namespace.get("config")
    if not isinstance(config, Config):
        raise InputError(f"parsl_config {path}: defines no `config = parsl.config.Config(...)`")
    return config


# -------------------------------------------------------------------------------------- work


def _features_task(path: str, sensors, commands, allow_outside: bool, max_included_bytes: int,
                   part: str | None):
    """Features of one input, run in a worker: ``("ok", table or None)`` or ``("error", msg)``.

    With a part file the table is written there and not sent back (it can be large); errors are
    returned rather than raised so that every executor reports them the same way.
    """
    from cputime.inputs.catalog import recording_reads
    from cputime.physics.features import features_of_inputs

    try:
        _check_regular_file(Path(path))
        with recording_reads() as files:
            table = features_of_inputs([path], sensors, commands=commands,
                                       allow_outside=allow_outside,
                                       max_included_bytes=max_included_bytes)
    except InputError as err:
        message = str(err)
        return "error", message if path in message else f"{path}: {message}"
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as err:
        return "error", f"{path}: cannot be read ({type(err).__name__}: {err})"
    if part is None:
        return "ok", table
    tmp = f"{part}.{os.getpid()}.tmp"
    table.to_parquet(tmp, index=False)
    os.replace(tmp, part)  # atomic: a part file is complete or absent
    # Written after the part: a part with the list of an earlier run fails the check.
    Path(tmp).write_text(json.dumps(files))
    os.replace(tmp, f"{part}.files.json")
    return "ok", None


def _check_regular_file(path: Path) -> None:
    """A pipe or device as input would block for ever or never end: refuse it."""
    if path.exists() and not path.is_file() and not path.is_dir():
        raise InputError(f"{path}: not a regular file (a pipe or device cannot be an input; "
                         "save it to a file first)")


def _run(tasks, jobs: int, executor: str, parsl_config, keep_going: bool):
    """Yield ``(task position, result)`` as tasks finish."""
    if not tasks:
        return
    if executor == "parsl":
        yield from _run_parsl(tasks, parsl_config, keep_going)
    elif jobs == 1:
        for position, task in enumerate(tasks):
            yield position, _features_task(*task)
    else:
        with concurrent.futures.ProcessPoolExecutor(max_workers=jobs) as pool:
            yield from _as_completed(
                {pool.submit(_features_task, *t): k for k, t in enumerate(tasks)},
                keep_going,
                cancel=lambda: pool.shutdown(wait=False, cancel_futures=True),
            )


def _run_parsl(tasks, parsl_config, keep_going: bool):
    import parsl
    from parsl.dataflow.dflow import DataFlowKernel

    config = load_parsl_config(parsl_config)
    # A DataFlowKernel of our own, not parsl.load(): a caller may have loaded another config.
    with DataFlowKernel(config) as dfk:
        app = parsl.python_app(_features_task, data_flow_kernel=dfk)
        futures = {app(*t): k for k, t in enumerate(tasks)}
        # Parsl futures cannot be cancelled; leaving the DataFlowKernel shuts its executors down.
        yield from _as_completed(futures, keep_going, cancel=lambda: None)


def _as_completed(futures: dict, keep_going: bool, cancel: Callable[[], object]):
    try:
        for future in concurrent.futures.as_completed(futures):
            result = future.result()
            yield futures[future], result
            if result[0] == "error" and not keep_going:
                return
    finally:
        cancel()


def _progress_bar(total: int, done: int, progress: bool):
    from tqdm.auto import tqdm

    # disable=None: shown only when standard error is a terminal, so logs stay clean.
    return tqdm(total=total, initial=done, unit="input", file=sys.stderr,
                disable=None if progress else True, desc="features")
