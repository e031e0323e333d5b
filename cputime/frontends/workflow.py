"""Predictions in the shape workflow engines take: Parsl app keywords and Slurm options.

- :func:`parsl_app_kwargs`: the keyword arguments of a PhoSim ``bash_app`` call, ``walltime``
  (Parsl's own timeout [s]) and ``parsl_resource_specification`` (``running_time_min``, ``cores``,
  ``memory`` [MB]; used by the WorkQueue and TaskVine executors to size and place tasks).
- :func:`slurm_options` / :func:`format_slurm`: ``sbatch`` options per job, one set per
  checkpoint segment, as ``#SBATCH`` lines or command-line arguments (``cputime slurm``).

Both start from a row of :func:`cputime.planning.predictions.predict_jobs`, so the numbers are the
CLI's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used, so that ``cputime --help`` does not load pandas
    import pandas as pd

from cputime.deprecation import renamed_keywords
from cputime.durations import parse_clock

__all__ = [
    "SLURM_FORMATS",
    "predict_one",
    "parsl_app_kwargs",
    "parsl_kwargs_of_row",
    "slurm_options",
    "format_slurm",
]

#: Output formats of :func:`format_slurm`.
SLURM_FORMATS = ("sbatch", "args")


def _model_and_version(model, tracking_uri: str | None):
    """(CPUTimeModel, version) from None / a spec / a LoadedModel / a fitted model.

    A spec is loaded once per version (:func:`cputime.model.loading.load_cached`): an alias such
    as ``models:/NAME@champion`` is looked up at each call, so a long-running driver predicts
    with the new champion from the first call after a promotion.
    """
    if model is None or isinstance(model, str | Path):
        from cputime.model.loading import load_cached

        loaded = load_cached(model, tracking_uri)
        return loaded.model, str(loaded.version)
    if hasattr(model, "model") and hasattr(model, "version"):
        return model.model, str(model.version)
    return model, ""


@renamed_keywords(cores="threads", host_factor="host_slowdown", confidence="confidence_level")
def predict_one(
    catalog_or_visit: str | Path | Mapping,
    sensor: str,
    *,
    model=None,
    tracking_uri: str | None = None,
    threads: int = 1,
    host_slowdown: float = 1.0,
    confidence_level: float | None = None,
    queue_max_seconds: float | None = None,
    commands=None,
    allow_outside: bool = False,
) -> dict:
    """The ``cputime predict`` row of one (visit, sensor).

    Parameters
    ----------
    catalog_or_visit : path or mapping
        An instance catalog (plain or gzip), or one visit's header keywords
        (``{"obshistid": 230, "filter": 2, "altitude": 70.1, ...}``).
    sensor : str
        Sensor name, e.g. ``"R22_S11"``.
    model : str, Path, LoadedModel or CPUTimeModel, optional
        Model folder or ``models:/NAME@ALIAS``, a loaded model, or None for the shipped model.
    tracking_uri : str, optional
        MLflow tracking URI for ``models:/`` specs.
    threads : int
        PhoSim threads (``-t``) and cores of the task.
    host_slowdown, confidence_level, queue_max_seconds
        As in :func:`cputime.planning.predictions.predict_jobs` [unitless, unitless, s]. The
        older keywords ``cores``, ``host_factor`` and ``confidence`` are accepted with a
        DeprecationWarning.
    commands : PhosimCommands, optional
        PhoSim commands-file overrides.
    allow_outside : bool
        Follow ``includeobj`` files outside the catalog's folder.

    Returns
    -------
    dict
        One row of :data:`cputime.planning.predictions.PREDICTION_COLUMNS` and features.
    """
    import pandas as pd

    from cputime.inputs.focalplane import parse_sensors
    from cputime.physics.features import catalog_features, visit_features
    from cputime.planning.predictions import predict_jobs

    sensors = parse_sensors(sensor, field="sensor")[:1]
    if isinstance(catalog_or_visit, Mapping):
        features = visit_features(
            pd.DataFrame([dict(catalog_or_visit)]), sensors, commands=commands, source="visit"
        )
    else:
        features = catalog_features(
            catalog_or_visit, sensors, commands=commands, allow_outside=allow_outside
        )
    fitted, version = _model_and_version(model, tracking_uri)
    table = predict_jobs(
        fitted,
        features,
        confidence_level=confidence_level,
        host_slowdown=host_slowdown,
        threads=threads,
        queue_max_seconds=queue_max_seconds,
        model_version=version,
    )
    return table.iloc[0].to_dict()


def parsl_kwargs_of_row(
    row: Mapping, *, memory_mb: float | None = None, segment: int | None = None
) -> dict:
    """Parsl app keywords from a prediction row (see :func:`parsl_app_kwargs`).

    ``segment`` (0-based ``checkpointcount``) gives that checkpoint segment's own walltime;
    None, the longest segment's. Parsl's HighThroughput and ThreadPool executors refuse
    resource-specification keys other than ``priority``: drop ``parsl_resource_specification``
    for them and keep ``walltime``.
    """
    if segment is None:
        walltime = int(row["walltime_seconds"])
    else:
        times = str(row["segment_slurm_times"]).split(";")
        walltime = int(parse_clock(times[segment], field="segment_slurm_times"))
    spec = {"running_time_min": math.ceil(walltime / 60), "cores": int(row["threads"])}
    if memory_mb is not None:
        spec["memory"] = int(math.ceil(memory_mb))
    return {"walltime": walltime, "parsl_resource_specification": spec}


@renamed_keywords(cores="threads", host_factor="host_slowdown", confidence="confidence_level")
def parsl_app_kwargs(
    catalog_or_visit: str | Path | Mapping,
    sensor: str,
    *,
    model=None,
    threads: int = 1,
    memory_mb: float | None = None,
    host_slowdown: float = 1.0,
    confidence_level: float | None = None,
    queue_max_seconds: float | None = None,
    tracking_uri: str | None = None,
    commands=None,
    allow_outside: bool = False,
) -> dict:
    """Keyword arguments of a Parsl PhoSim app call for one (visit, sensor).

    Parameters
    ----------
    catalog_or_visit, sensor, model, threads, host_slowdown, confidence_level, tracking_uri, \
commands, allow_outside
        As in :func:`predict_one`.
    memory_mb : float, optional
        Memory of the task [MB], passed on as ``memory`` (the model does not predict memory).
    queue_max_seconds : float, optional
        Queue limit [s]; when the job must be split, ``walltime`` is that of one segment and the
        caller runs ``segments`` apps one after another (see :func:`predict_one`).

    Returns
    -------
    dict
        ``{"walltime": seconds, "parsl_resource_specification": {"running_time_min": minutes,
        "cores": threads[, "memory": MB]}}``: ``walltime`` is Parsl's timeout for the app [s],
        ``running_time_min`` the same walltime in whole minutes (WorkQueue / TaskVine).

    Examples
    --------
    >>> @bash_app
    ... def phosim(catalog, sensor, walltime=None, parsl_resource_specification=None):
    ...     return f"phosim {catalog} -s {sensor}"
    >>> phosim("visit230.txt", "R22_S11", **parsl_app_kwargs("visit230.txt", "R22_S11"))
    """
    row = predict_one(
        catalog_or_visit,
        sensor,
        model=model,
        tracking_uri=tracking_uri,
        threads=threads,
        host_slowdown=host_slowdown,
        confidence_level=confidence_level,
        queue_max_seconds=queue_max_seconds,
        commands=commands,
        allow_outside=allow_outside,
    )
    return parsl_kwargs_of_row(row, memory_mb=memory_mb)


# ---------------------------------------------------------------------------------------- Slurm


def slurm_options(row: Mapping, *, job_name: str = "phosim") -> list[list[str]]:
    """``sbatch`` options of one (visit, sensor), one list per checkpoint segment.

    Parameters
    ----------
    row : mapping
        A row of :func:`cputime.planning.predictions.predict_jobs`.
    job_name : str
        Prefix of ``--job-name``; ``_{obshistid}_{sensor}`` (and ``_seg{k}``) are appended.

    Returns
    -------
    list of list of str
        For segment ``k`` (0-based): ``--job-name``, ``--time`` (each segment its own: PhoSim
        splits a job by source type, not evenly), ``--signal`` (USR1 to the batch
        shell ahead of the limit, for PhoSim to checkpoint), ``--cpus-per-task`` and, for segmented
        jobs, ``--export=ALL,PHOSIM_CHECKPOINTCOUNT=k,PHOSIM_CHECKPOINTTOTAL=n`` for the job script
        to write into PhoSim's commands file. Segments must run in order: submit segment ``k+1``
        with ``--dependency=afterok:<job id of segment k>``.
    """
    # Imported here: the policy loads numpy, and ``cputime --help`` imports this module.
    from cputime.planning.policy import signal_lead_seconds

    segments = int(row["segments"])
    name = f"{job_name}_{int(row['obshistid'])}_{row['sensor']}"
    times = str(row["segment_slurm_times"]).split(";")
    sets = []
    for k in range(segments):
        walltime = parse_clock(times[k], field="segment_slurm_times")
        options = [
            f"--job-name={name}" + (f"_seg{k}" if segments > 1 else ""),
            f"--time={times[k]}",
            f"--signal=B:USR1@{signal_lead_seconds(walltime)}",
            f"--cpus-per-task={int(row['threads'])}",
        ]
        if segments > 1:
            options.append(
                f"--export=ALL,PHOSIM_CHECKPOINTCOUNT={k},"
                f"PHOSIM_CHECKPOINTTOTAL={int(row['checkpointtotal'])}"
            )
        sets.append(options)
    return sets


def format_slurm(table: pd.DataFrame, fmt: str = "sbatch", *, job_name: str = "phosim") -> str:
    """Slurm options of every row of a prediction table, as text.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`cputime.planning.predictions.predict_jobs`.
    fmt : {"sbatch", "args"}
        ``sbatch``: a commented block of ``#SBATCH`` lines per job segment, blank-line separated;
        ``args``: one line of ``sbatch`` arguments per job segment.
    job_name : str
        Prefix of ``--job-name``.
    """
    if fmt not in SLURM_FORMATS:
        raise ValueError(f"unknown Slurm format {fmt!r}; use one of {', '.join(SLURM_FORMATS)}")
    lines: list[str] = []
    for row in table.to_dict("records"):
        sets = slurm_options(row, job_name=job_name)
        for k, options in enumerate(sets):
            if fmt == "args":
                lines.append(" ".join(options))
                continue
            lines.append(
                f"# obshistid {int(row['obshistid'])} sensor {row['sensor']}: CPU p50 "
                f"{row['cpu_seconds_p50']:.0f} s, upper {row['cpu_seconds_upper']:.0f} s "
                f"at {row['confidence_level']:g}, model {row['model_version'] or '-'}"
                + (f"; segment {k + 1} of {len(sets)}" if len(sets) > 1 else "")
            )
            if not row["fits_queue"]:
                lines.append(f"# WARNING: {row.get('plan_note') or 'does not fit the queue limit'}")
            if k > 0:
                lines.append(f"# after segment {k}: sbatch --dependency=afterok:<its job id>")
            lines.extend(f"#SBATCH {option}" for option in options)
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n" if lines else ""
