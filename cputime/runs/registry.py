"""Models by name: the shipped default, a model folder, or the MLflow model registry.

A model spec (``--model``) is one of

- None: the shipped model (``models/default``, inside the package as ``cputime/data/default_model``;
  the environment variable ``CPUTIME_DEFAULT_MODEL`` names another folder);
- a folder written by :func:`cputime.model.persistence.save_cputime_model`;
- ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``: a version registered in an MLflow registry
  (``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else :data:`DEFAULT_TRACKING_URI`). Its
  artifacts are downloaded and the model folder in them (XGBoost JSON and JSON metadata) is read
  by :func:`cputime.model.persistence.load_cputime_model`; nothing is unpickled and no MLflow
  flavour is
  loaded.

Retraining logs each challenger as an MLflow run whose ``model`` artifact is an MLflow Model
(:func:`save_mlflow_model`: a ``python_function`` model written as code, with the model folder
as its artifact, so that ``mlflow.pyfunc.load_model`` and ``mlflow models serve`` can use it),
registers it as a new version (source: that artifact's URI), and moves the :data:`CHAMPION`
alias when the promotion gate (:func:`promotion_decision`) lets it.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from cputime.errors import InputError

__all__ = [
    "DEFAULT_TRACKING_URI",
    "CHAMPION",
    "LoadedModel",
    "Decision",
    "RegisteredVersion",
    "PYFUNC_ARTIFACT",
    "default_model_dir",
    "save_mlflow_model",
    "sqlite_database",
    "tracking_uri_or_default",
    "resolve_model",
    "champion_version",
    "log_and_register",
    "set_champion",
    "promotion_decision",
]

#: MLflow tracking store used when neither ``--tracking-uri`` nor ``MLFLOW_TRACKING_URI`` is set.
DEFAULT_TRACKING_URI = "sqlite:///mlruns.db"

#: The alias of the version that ``predict`` and the service use.
CHAMPION = "champion"

#: Name of the model folder among the artifacts of the MLflow Model (:func:`save_mlflow_model`).
PYFUNC_ARTIFACT = "cputime_model"

_MODELS_URI_RE = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[\w-]+)|/(?P<version>\d+))$")


@dataclass
class LoadedModel:
    """A model ready to predict, and where it came from.

    Attributes
    ----------
    model : CPUTimeModel
        The fitted model.
    version : str
        ``NAME/VERSION`` for a registered model; the metadata's version or the folder name else.
    name : str
        Registered name, or the folder name.
    metadata : dict
        The model folder's JSON metadata (``training`` holds the training summary).
    """

    model: object
    version: str
    name: str
    metadata: dict


def default_model_dir() -> Path:
    """The shipped model folder (``CPUTIME_DEFAULT_MODEL`` overrides it)."""
    override = os.environ.get("CPUTIME_DEFAULT_MODEL")
    if override:
        return Path(override)
    from cputime.shipped import shipped_path

    return shipped_path("default_model")


def tracking_uri_or_default(tracking_uri: str | None) -> str:
    """``tracking_uri``, else ``MLFLOW_TRACKING_URI``, else :data:`DEFAULT_TRACKING_URI`."""
    return tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def _load_folder(folder: Path, *, what: str) -> tuple[object, dict]:
    if not folder.is_dir():
        raise InputError(f"{what}: {folder} is not a model folder")
    from cputime.model.persistence import load_cputime_model

    return load_cputime_model(folder)


def resolve_model(spec: str | Path | None, tracking_uri: str | None = None) -> LoadedModel:
    """Load the model a ``--model`` spec names (see the module docstring).

    Parameters
    ----------
    spec : str, Path or None
        None (the shipped model), a folder, or ``models:/NAME@ALIAS`` / ``models:/NAME/VERSION``.
    tracking_uri : str, optional
        MLflow tracking (and registry) URI for ``models:/`` specs.

    Returns
    -------
    LoadedModel

    Raises
    ------
    InputError
        When the folder, registered model, alias or version does not exist.
    """
    if spec is None:
        folder = default_model_dir()
        model, metadata = _load_folder(folder, what="default model (CPUTIME_DEFAULT_MODEL)")
        return LoadedModel(model, str(metadata.get("version") or "default"), "default", metadata)
    text = str(spec)
    if text.startswith("models:/"):
        return _load_registered(text, tracking_uri_or_default(tracking_uri))
    folder = Path(text)
    model, metadata = _load_folder(folder, what="spec")
    return LoadedModel(model, str(metadata.get("version") or folder.name), folder.name, metadata)


def _client(tracking_uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _load_registered(spec: str, tracking_uri: str) -> LoadedModel:
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    match = _MODELS_URI_RE.match(spec)
    if match is None:
        raise InputError(f"spec: {spec}: use models:/NAME@ALIAS or models:/NAME/VERSION")
    name = match["name"]
    database = sqlite_database(tracking_uri)
    if database is not None and not database.is_file():
        # Opening it would create an empty store (and leave it behind).
        raise InputError(
            f"spec: {spec}: no MLflow store at {tracking_uri} ({database} does not exist; "
            "give tracking_uri)"
        )
    client = _client(tracking_uri)
    try:
        if match["alias"]:
            version = client.get_model_version_by_alias(name, match["alias"]).version
        else:
            version = client.get_model_version(name, match["version"]).version
        # The version's own artifact URI, not models:/ (whose resolution reads MLflow's global
        # registry URI, not ours); this also pins the version if the alias moves meanwhile.
        source = client.get_model_version_download_uri(name, version)
        with tempfile.TemporaryDirectory(prefix="cputime-model-") as tmp:
            folder = download_artifacts(artifact_uri=source, dst_path=tmp,
                                        tracking_uri=tracking_uri)
            model, metadata = _load_folder(_model_folder(Path(folder)), what=f"spec: {spec}")
    except MlflowException as exc:
        message = str(exc.message if hasattr(exc, "message") else exc).splitlines()[0]
        raise InputError(f"spec: {spec}: not found in {tracking_uri} ({message})") from None
    return LoadedModel(model, f"{name}/{version}", name, metadata)


def _model_folder(downloaded: Path) -> Path:
    """The cputime model folder in a downloaded version: inside an MLflow Model (its
    ``python_function`` artifact), or the download itself (versions logged as a bare folder)."""
    if not (downloaded / "MLmodel").is_file():
        return downloaded
    from mlflow.models import Model

    artifacts = Model.load(str(downloaded)).flavors["python_function"].get("artifacts", {})
    return downloaded / artifacts[PYFUNC_ARTIFACT]["path"]


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

    import cputime

    params = ParamSchema([
        ParamSpec("confidence", "double", 0.0),  # 0: the model's own level
        ParamSpec("host_factor", "double", 1.0),
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
            pip_requirements=[f"cputime=={cputime.__version__}", "mlflow-skinny"],
        )
    return Path(path)


def champion_version(name: str, tracking_uri: str | None = None) -> str | None:
    """Version the :data:`CHAMPION` alias of ``name`` points to; None if none does."""
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri_or_default(tracking_uri))
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


def sqlite_database(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL (MLflow or SQLAlchemy); None for other stores.

    ``sqlite:///relative.db`` names ``relative.db`` in the working directory,
    ``sqlite:////abs/path.db`` the absolute path; in-memory databases give None.
    """
    parsed = urlparse(uri)
    if parsed.scheme != "sqlite" or not parsed.path or parsed.path in ("/", "/:memory:"):
        return None
    return Path(parsed.path[1:])


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
    client = _client(uri)
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
    _client(tracking_uri_or_default(tracking_uri)).set_registered_model_alias(
        name, CHAMPION, str(version)
    )


@dataclass(frozen=True)
class Decision:
    """Outcome of the promotion gate."""

    promote: bool
    reason: str


def promotion_decision(
    challenger: Mapping[str, float],
    champion: Mapping[str, float] | None,
    *,
    max_killed_share_alone: float = 0.10,
) -> Decision:
    """The promotion gate: is the challenger no worse than the champion?

    Compared on the same held-out runs, in order: ``killed_share`` (share of jobs a walltime at
    the upper bound would kill; lower is better), then, when equal, ``mae_dex`` (mean absolute
    log10 error of the median on finished jobs). A lower killed share promotes whatever the MAE;
    a higher one never does.

    Parameters
    ----------
    challenger, champion : mapping
        Metrics with keys ``killed_share`` and ``mae_dex``; ``champion`` None when there is no
        champion yet (or it could not be evaluated).
    max_killed_share_alone : float
        Without a champion to compare with, the challenger is promoted only if it would kill at
        most this share of the held-out jobs (twice the 5 % a 0.95 bound promises), so that a
        first retrain on a few unrepresentative runs cannot become the champion.

    Returns
    -------
    Decision
    """
    if champion is None:
        killed = challenger["killed_share"]
        promote = killed <= max_killed_share_alone
        return Decision(
            promote,
            f"no champion to compare with; killed share {killed:.4f} "
            f"{'<=' if promote else '>'} the floor {max_killed_share_alone:.2f}",
        )
    killed_new, killed_old = challenger["killed_share"], champion["killed_share"]
    if not math.isclose(killed_new, killed_old, rel_tol=0.0, abs_tol=1e-12):
        better = killed_new < killed_old
        return Decision(
            better,
            f"killed share {killed_new:.4f} vs champion's {killed_old:.4f}: "
            f"{'lower' if better else 'higher'}",
        )
    mae_new, mae_old = challenger["mae_dex"], champion["mae_dex"]
    if math.isnan(mae_old) or mae_new <= mae_old:
        return Decision(
            True, f"same killed share {killed_new:.4f}; MAE {mae_new:.4f} dex <= champion's "
            f"{mae_old:.4f} dex",
        )
    return Decision(
        False,
        f"same killed share {killed_new:.4f}; MAE {mae_new:.4f} dex > champion's {mae_old:.4f} dex",
    )
