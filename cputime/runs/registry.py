"""Writes to the MLflow model registry: log a model folder, register it, move the champion.

Retraining logs each challenger as an MLflow run whose ``model`` artifact is an MLflow Model
(:func:`save_mlflow_model`: a ``python_function`` model written as code, with the model folder
as its artifact, so that ``mlflow.pyfunc.load_model`` and ``mlflow models serve`` can use it),
registers it as a new version (source: that artifact's URI), and moves the :data:`CHAMPION`
alias when the promotion gate (:mod:`cputime.runs.promotion`) lets it. Reading a version back is
:mod:`cputime.model.loading`'s job.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import version as installed_version
from pathlib import Path

from cputime.model.loading import (
    PYFUNC_ARTIFACT,
    mlflow_client,
    sqlite_database,
    tracking_uri_or_default,
)

__all__ = [
    "CHAMPION",
    "RegisteredVersion",
    "save_mlflow_model",
    "champion_version",
    "log_and_register",
    "set_champion",
]

#: The alias of the version that ``predict`` and the service use.
CHAMPION = "champion"


def save_mlflow_model(model_dir: str | Path, path: str | Path) -> Path:
    """Write a model folder as an MLflow Model (``python_function``, models-from-code).

    The model's code is :mod:`cputime.frontends.mlflow_pyfunc` (copied into the MLflow Model, run
    by MLflow
    when loading); the model folder is its ``cputime_model`` artifact. Nothing is pickled.

    Parameters
    ----------
    model_dir : path
        A folder written by :func:`cputime.model.persistence.save_cputime_model`.
    path : path
        The MLflow Model folder to create (must not exist).

    Returns
    -------
    Path
        ``path``.
    """
    import mlflow.pyfunc
    from mlflow.models import ModelSignature
    from mlflow.types import ParamSchema, ParamSpec

    params = ParamSchema([
        ParamSpec("confidence_level", "double", 0.0),  # 0: the model's own level
        ParamSpec("host_slowdown", "double", 1.0),
        ParamSpec("threads", "long", 1),
        ParamSpec("queue_max_seconds", "double", 0.0),  # 0: no queue limit
    ])  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="cputime-model-") as tmp:
        # A copy with real files: MLflow refuses symbolic links (the shipped model has them).
        folder = shutil.copytree(model_dir, Path(tmp) / PYFUNC_ARTIFACT)
        mlflow.pyfunc.save_model(
            path=str(path),
            python_model=str(Path(__file__).parents[1] / "frontends" / "mlflow_pyfunc.py"),
            artifacts={PYFUNC_ARTIFACT: str(folder)},
            signature=ModelSignature(inputs=None, params=params),
            # Explicit, so that MLflow does not load the model to infer them.
            pip_requirements=[f"cputime=={installed_version('cputime')}", "mlflow-skinny"],
        )
    return Path(path)


def champion_version(name: str, tracking_uri: str | None = None) -> str | None:
    """Version the :data:`CHAMPION` alias of ``name`` points to; None if none does."""
    from mlflow.exceptions import MlflowException

    client = mlflow_client(tracking_uri)
    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


@dataclass(frozen=True)
class RegisteredVersion:
    """A model version created by :func:`log_and_register`."""

    name: str
    version: str
    run_id: str
    source: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def _artifact_location(tracking_uri: str, experiment: str) -> str | None:
    """For a SQLite tracking store, artifacts go next to the database file."""
    db = sqlite_database(tracking_uri)
    if db is None:
        return None
    return (db.resolve().parent / "mlartifacts" / experiment).as_uri()


def _experiment_id(client, tracking_uri: str, experiment: str) -> str:
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(experiment)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(
            experiment, artifact_location=_artifact_location(tracking_uri, experiment)
        )
    except MlflowException:  # another writer created it meanwhile
        found = client.get_experiment_by_name(experiment)
        if found is None:
            raise
        return found.experiment_id


def log_and_register(
    model_dir: str | Path,
    *,
    name: str,
    tracking_uri: str | None = None,
    params: Mapping[str, object] | None = None,
    metrics: Mapping[str, float] | None = None,
    artifacts: Mapping[str, str | Path] | None = None,
    tags: Mapping[str, str] | None = None,
    experiment: str | None = None,
) -> RegisteredVersion:
    """Log a model folder and its evaluation to MLflow and register it as a new version.

    Parameters
    ----------
    model_dir : path
        A folder written by :func:`cputime.model.persistence.save_cputime_model`; logged, as an
        MLflow
        Model (:func:`save_mlflow_model`), as the run's ``model`` artifact, which the new version
        points to.
    name : str
        Registered model name (created when missing).
    tracking_uri : str, optional
        Tracking and registry store (default: :func:`tracking_uri_or_default`).
    params, metrics, tags : mapping
        Logged on the run; the metrics are also set as tags of the version.
    artifacts : mapping
        ``{artifact folder: local file}`` (plots, tables) logged next to the model.
    experiment : str, optional
        MLflow experiment (default: ``name``).

    Returns
    -------
    RegisteredVersion
    """
    from mlflow.entities import Metric, Param, RunTag

    params, metrics, artifacts, tags = params or {}, metrics or {}, artifacts or {}, tags or {}
    uri = tracking_uri_or_default(tracking_uri)
    client = mlflow_client(uri)
    experiment_id = _experiment_id(client, uri, experiment or name)
    run = client.create_run(experiment_id, tags={"mlflow.runName": f"retrain {name}", **tags})
    run_id = run.info.run_id
    try:
        timestamp = run.info.start_time
        finite = {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(v)}
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, timestamp, 0) for k, v in finite.items()],
            params=[Param(k, str(v)[:6000]) for k, v in params.items()],
            tags=[RunTag(k, str(v)) for k, v in tags.items()],
        )
        for folder, path in artifacts.items():
            client.log_artifact(run_id, str(path), artifact_path=folder)
        with tempfile.TemporaryDirectory(prefix="cputime-mlflow-model-") as tmp:
            mlflow_model = save_mlflow_model(model_dir, Path(tmp) / "model")
            client.log_artifacts(run_id, str(mlflow_model), artifact_path="model")
        source = f"{client.get_run(run_id).info.artifact_uri.rstrip('/')}/model"
        _ensure_registered_model(client, name)
        version = client.create_model_version(
            name, source=source, run_id=run_id,
            tags={k: str(v) for k, v in finite.items()},
            description=f"cputime model trained by run {run_id}",
        )
        client.set_terminated(run_id, "FINISHED")
    except Exception:
        client.set_terminated(run_id, "FAILED")
        raise
    return RegisteredVersion(name, str(version.version), run_id, source)


def _ensure_registered_model(client, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        try:
            client.create_registered_model(
                name, description="cputime: PhoSim CPU time per sensor-visit"
            )
        except MlflowException:  # another writer created it meanwhile
            client.get_registered_model(name)


def set_champion(name: str, version: str, tracking_uri: str | None = None) -> None:
    """Point the :data:`CHAMPION` alias of ``name`` at ``version``."""
    mlflow_client(tracking_uri).set_registered_model_alias(
        name, CHAMPION, str(version)
    )
