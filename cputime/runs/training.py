"""Training tables, and training and saving a model from them.

Two kinds of measured data train a :class:`~cputime.model.composite.CPUTimeModel`:

- *production jobs* (e.g. Twinkles Run 1): a table of visits (header-keyword or feature columns)
  with the CPU each job used, its host and whether it was killed at its limit;
- *catalog runs* (``features/phosim_runs.csv``): PhoSim runs of one host that vary catalog content,
  which fit the cost parts of the model.

:func:`build_default` rebuilds both feature tables from the raw data in ``../shared/data`` and the
shipped model from them (``cputime build-default``).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from cputime.deprecation import renamed_keywords
from cputime.errors import InputError
from cputime.model.composite import CPUTimeModel, MeasuredRuns
from cputime.physics.features import CATALOG_COLUMNS, FEATURE_CODE_VERSION, FEATURE_COLUMNS
from cputime.runs.hosts import read_host_slowdowns
from cputime.shipped import shipped_path

__all__ = [
    "TARGET_COLUMN",
    "CENSORED_COLUMN",
    "load_training_table",
    "load_runs_table",
    "phosim_runs_table",
    "train_model",
    "build_default",
]

#: Columns of a training table made by :func:`load_training_table`.
TARGET_COLUMN = "cpu_seconds_ref"
CENSORED_COLUMN = "censored"

#: The sensor every shipped training job simulated.
TRAINING_SENSOR = "R22_S11"


def _read_table(path: Path) -> pd.DataFrame:
    from cputime.physics.features import read_visit_table

    return read_visit_table(Path(path))


def _truthy(values: pd.Series, column: str, source: str) -> np.ndarray:
    text = values.astype(str).str.strip().str.lower()
    known = {
        "1": True,
        "1.0": True,
        "true": True,
        "yes": True,
        "0": False,
        "0.0": False,
        "false": False,
        "no": False,
        "": False,
        "nan": False,
    }
    bad = ~text.isin(list(known))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 2
        raise InputError(
            f"{source}:{row}: {column}: {values.iloc[row - 2]!r} is not 0/1 or true/false"
        )
    return text.map(known).to_numpy(dtype=bool)


@renamed_keywords(host_factors="host_slowdowns")
def load_training_table(
    path: str | Path,
    *,
    target: str = TARGET_COLUMN,
    censored_col: str | None = CENSORED_COLUMN,
    host_col: str | None = None,
    host_slowdowns: str | Path | None = None,
) -> pd.DataFrame:
    """Read a table of production jobs into features plus reference-host CPU.

    Parameters
    ----------
    path : path
        CSV or Parquet. Either feature columns (as written by ``cputime features``) or header
        keyword columns of the visits (``filter``, ``moonalt``, ... in degrees), plus the outcome.
    target : str
        Column of CPU seconds used by each job [s].
    censored_col : str, optional
        Column that is 1/true where the job was killed at its limit (then ``target`` is the CPU it
        had used: a lower bound). Ignored when the table has no such column and it is the default.
    host_col, host_slowdowns : optional
        Column naming each job's host and a host-slowdowns CSV (see :mod:`cputime.runs.hosts`;
        the older ``host,factor`` files are read too): the CPU is divided by the host's slowdown
        to get reference-host seconds.

    Returns
    -------
    pandas.DataFrame
        ``obshistid``, ``sensor``, :data:`cputime.physics.features.FEATURE_COLUMNS`,
        :data:`TARGET_COLUMN` [s on the reference host], :data:`CENSORED_COLUMN`, and ``expmjd``
        when the table has it.
    """
    from cputime.physics.features import visit_features

    path = Path(path)
    raw = _read_table(path)
    source = str(path)
    if target not in raw.columns:
        raise InputError(f"{source}: target: no column {target!r}; columns: {list(raw.columns)}")
    seconds = pd.to_numeric(raw[target], errors="coerce").to_numpy(dtype=float)
    bad = ~(np.isfinite(seconds) & (seconds > 0))
    if bad.any():
        row = int(np.flatnonzero(bad)[0]) + 2
        raise InputError(
            f"{source}:{row}: {target}: {raw[target].iloc[row - 2]!r} is not a CPU time > 0"
        )
    if (host_col is None) != (host_slowdowns is None):
        raise InputError("host_col, host_slowdowns: give both or neither")
    if host_col is not None:
        if host_col not in raw.columns:
            raise InputError(f"{source}: host_col: no column {host_col!r}")
        slowdowns = read_host_slowdowns(host_slowdowns)
        seconds = seconds / np.array([slowdowns.slowdown(h) for h in raw[host_col]])
    if censored_col is not None and censored_col in raw.columns:
        censored = _truthy(raw[censored_col], censored_col, source)
    elif censored_col is not None and censored_col != CENSORED_COLUMN:
        raise InputError(f"{source}: censored_col: no column {censored_col!r}")
    else:
        censored = np.zeros(len(raw), dtype=bool)

    if all(c in raw.columns for c in FEATURE_COLUMNS):
        table = raw[["obshistid", "sensor", *FEATURE_COLUMNS]].copy()
        table["sensor"] = table["sensor"].fillna("").astype(str)
    else:
        table = visit_features(raw, source=source)
        table["sensor"] = TRAINING_SENSOR
    table[TARGET_COLUMN] = seconds
    table[CENSORED_COLUMN] = censored
    if "expmjd" in raw.columns:
        table["expmjd"] = pd.to_numeric(raw["expmjd"], errors="coerce").to_numpy()
    return table


def load_runs_table(path: str | Path, *, segments: bool = False) -> MeasuredRuns:
    """Read a catalog-runs table (``features/phosim_runs.csv``) into :class:`MeasuredRuns`.

    Parameters
    ----------
    path : path
        Written by :func:`phosim_runs_table`.
    segments : bool, default False
        False: the whole jobs, which fit the cost model. True: the runs that are one checkpoint
        segment of a job (``checkpointtotal > 0``), which check checkpoint plans.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(
            f"{path}: no such file (the catalog-runs table; rebuild it with "
            "'cputime build-default --data ../shared/data' or give another one)"
        )
    table = pd.read_csv(path)
    needed = [*FEATURE_COLUMNS, "cpu_seconds", "censored", "group"]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise InputError(f"{path}: missing columns {missing}")
    total = table.get("checkpointtotal", pd.Series(0, index=table.index)).fillna(0)
    table = table[(total > 0) == segments].reset_index(drop=True)
    extra = [c for c in ("run_id", "checkpointtotal", "checkpointcount") if c in table.columns]
    return MeasuredRuns(
        features=table[["obshistid", "sensor", *FEATURE_COLUMNS, *extra]],
        cpu_seconds=table["cpu_seconds"].to_numpy(dtype=float),
        censored=table["censored"].astype(bool).to_numpy(),
        groups=table["group"].astype(str).to_numpy(),
    )


def phosim_runs_table(runs_dir: str | Path) -> pd.DataFrame:
    """Features and measured CPU of a folder of PhoSim runs (one sub-folder per run).

    Each run folder is read by :func:`cputime.runs.phosim_run.read_phosim_run` (``phosim.stdout``,
    its time output or kill note, ``catalog.txt`` and ``commands.txt``) and optionally holds
    ``meta.json`` with its ``group``. CPU is user + system time; a run killed at its limit is
    censored at the CPU it had used; a run that crashed is no CPU observation and is left out
    (with a warning); folders without a catalog cannot give features and are skipped.

    A ``runs.csv`` beside the run folders may give a ``slowdown`` per run (a busy host: its
    seconds per photon of reference sources over the same on the quiet host); the run's CPU is
    divided by it, so that every run is on the quiet host's footing (``cpu_seconds_measured``
    keeps what was measured).
    """
    from cputime.physics.features import catalog_features
    from cputime.runs.phosim_run import read_phosim_run

    runs_dir = Path(runs_dir)
    slowdown = _slowdowns(runs_dir / "runs.csv")
    rows = []
    for folder in sorted(p for p in runs_dir.iterdir() if (p / "phosim.stdout").exists()):
        run = read_phosim_run(folder)
        if run.catalog is None:
            continue
        if run.outcome == "failed":
            warnings.warn(
                f"{folder}: the run crashed (exit status {run.timing.exit_status}, signal "
                f"{run.timing.signal}); left out of the catalog runs", stacklevel=2
            )
            continue
        features = catalog_features(
            run.catalog, [run.sensor or TRAINING_SENSOR], commands=run.commands
        )
        meta_path = folder / "meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        factor = slowdown.get(folder.name, 1.0)
        record = features.iloc[0].to_dict()
        record.update(
            run_id=folder.name,
            group=meta.get("group", folder.name),
            cpu_seconds=run.cpu_seconds / factor,
            cpu_seconds_measured=run.cpu_seconds,
            slowdown=factor,
            wall_seconds=run.timing.wall_s,
            censored=run.censored,
            checkpointtotal=run.commands.checkpointtotal or 0,
            checkpointcount=run.commands.checkpointcount or 0,
        )
        rows.append(record)
    if not rows:
        raise InputError(f"{runs_dir}: no run folders with phosim.stdout and a catalog")
    return pd.DataFrame(rows)


def _slowdowns(path: Path) -> dict[str, float]:
    """``run_id -> slowdown`` from a runs.csv, where given (empty means 1)."""
    if not path.exists():
        return {}
    table = pd.read_csv(path)
    if "slowdown" not in table.columns:
        return {}
    factors = pd.to_numeric(table["slowdown"], errors="coerce")
    bad = factors.notna() & ~(factors > 0)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 2
        raise InputError(f"{path}:{row}: slowdown: {table['slowdown'].iloc[row - 2]!r} is not > 0")
    return {
        str(run): float(f) for run, f in zip(table["run_id"], factors, strict=True) if f == f
    }


def _hash_frame(frame: pd.DataFrame) -> str:
    data = pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()
    return hashlib.sha256(data).hexdigest()


def train_model(
    table: pd.DataFrame,
    runs: MeasuredRuns,
    *,
    out: str | Path | None = None,
    confidence_level: float = 0.95,
    regressor_params: dict | None = None,
    source: str = "",
) -> dict:
    """Fit a :class:`CPUTimeModel` on a training table and catalog runs, and save it.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`load_training_table`.
    runs : MeasuredRuns
        From :func:`load_runs_table`.
    out : path, optional
        Model folder to write (XGBoost JSON + JSON metadata).
    confidence_level : float
        Default coverage of the upper bound.
    regressor_params : dict, optional
        Parameters of the sky correction's regressor.
    source : str
        Name of the training data, recorded in the metadata.

    Returns
    -------
    dict
        Summary: rows, censored rows, fitted cost parameters, the runs' host slowdown, data hash,
        folder.
    """
    from cputime.model.persistence import save_cputime_model

    X = table[["obshistid", "sensor", *FEATURE_COLUMNS]]
    y = table[TARGET_COLUMN].to_numpy(dtype=float)
    censored = table[CENSORED_COLUMN].to_numpy(dtype=bool)
    model = CPUTimeModel(confidence_level=confidence_level, regressor_params=regressor_params)
    model.fit(X, y, censored, runs=runs)
    summary = {
        "training_source": source,
        "training_rows": int(len(table)),
        "training_censored_rows": int(censored.sum()),
        "training_data_sha256": _hash_frame(table),
        "catalog_runs": int(len(runs.cpu_seconds)),
        "catalog_runs_censored": int(runs.censored.sum()),
        "catalog_runs_sha256": _hash_frame(runs.features),
        "feature_code_version": FEATURE_CODE_VERSION,
        "runs_host_slowdown": model.runs_host_slowdown_,
        "cost_parameters": model.cost_model_.parameters_,
        "confidence_level": confidence_level,
        "feature_summary": _feature_summary(X),
    }
    if out is not None:
        save_cputime_model(model, out, training=summary)
        summary["model_dir"] = str(out)
    return summary


def _feature_summary(X: pd.DataFrame) -> dict:
    """Drift reference of each condition feature: quantiles, or category shares for discrete
    ones (:func:`cputime.runs.monitor.feature_reference`)."""
    from cputime.runs.monitor import feature_reference

    return feature_reference(X, [c for c in FEATURE_COLUMNS if c not in CATALOG_COLUMNS])


def build_default(
    data_dir: str | Path | None,
    *,
    features_dir: str | Path = "features",
    out: str | Path = "models/default",
) -> dict:
    """Rebuild the shipped feature tables (when ``data_dir`` is given) and the default model.

    Parameters
    ----------
    data_dir : path, optional
        The shared data folder (``twinkles_run1/`` and ``phosim_runs/``). Without it the feature
        tables already in ``features_dir`` are used.
    features_dir : path
        Where ``twinkles_run1.csv`` and ``phosim_runs.csv`` are written / read.
    out : path
        Model folder.
    """
    features_dir = Path(features_dir)
    twinkles_path = features_dir / "twinkles_run1.csv"
    runs_path = features_dir / "phosim_runs.csv"
    if data_dir is not None:
        data_dir = Path(data_dir)
        features_dir.mkdir(parents=True, exist_ok=True)
        twinkles = load_training_table(
            data_dir / "twinkles_run1" / "run1_metadata_v6_train.csv",
            target="cputime",
            censored_col="runlimit",
            host_col="hostname",
            host_slowdowns=shipped_path("twinkles_host_factors"),
        )
        twinkles.to_csv(twinkles_path, index=False)
        phosim_runs_table(data_dir / "phosim_runs").to_csv(runs_path, index=False)
    table = load_training_table(twinkles_path)
    runs = load_runs_table(runs_path)
    return train_model(table, runs, out=out, source=str(twinkles_path))
