"""One way from a model spec to a model ready to predict.

A model spec (the CLI's ``--model``, the service's ``CPUTIME_MODEL``, ``cputime.load_model``'s
argument) is one of

- None: the shipped model (``models/default``, inside the package as ``cputime/data/default_model``;
  the environment variable ``CPUTIME_DEFAULT_MODEL`` names another folder);
- a folder written by :func:`cputime.model.persistence.save_cputime_model`;
- ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``: a version registered in an MLflow registry
  (the tracking URI given, else ``MLFLOW_TRACKING_URI``, else :data:`DEFAULT_TRACKING_URI`). Its
  artifacts are downloaded and the model folder in them is read by
  :func:`~cputime.model.persistence.load_cputime_model`; nothing is unpickled and no MLflow
  flavour is loaded. MLflow is imported only for these specs.

:func:`resolve_model` loads a spec every time it is called; :func:`load_cached` loads it once per
thing the spec names *now*: an alias is resolved to its version at each call (one registry
query) and a folder is re-read when its files change, so a long-running process follows a
promotion without reloading an unchanged model.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from cputime.errors import InputError

if TYPE_CHECKING:
    from cputime.model.composite import CPUTimeModel

__all__ = [
    "DEFAULT_TRACKING_URI",
    "PYFUNC_ARTIFACT",
    "LoadedModel",
    "default_model_dir",
    "load_cached",
    "mlflow_client",
    "pin_spec",
    "resolve_model",
    "sqlite_database",
    "tracking_uri_or_default",
]

#: MLflow tracking store used when neither a URI nor ``MLFLOW_TRACKING_URI`` is given.
DEFAULT_TRACKING_URI = "sqlite:///mlruns.db"

#: Name of the model folder among the artifacts of a registered MLflow Model
#: (:func:`cputime.runs.registry.save_mlflow_model`).
PYFUNC_ARTIFACT = "cputime_model"

_MODELS_URI_RE = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[\w-]+)|/(?P<version>\d+))$")


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to predict, and where it came from.

    Attributes
    ----------
    model : CPUTimeModel
        The fitted model.
    metadata : dict
        The model folder's ``metadata.json`` (:mod:`cputime.model.persistence`).
    source : str
        What was loaded: the folder, or ``models:/NAME/VERSION`` (an alias resolved).
    version : str
        ``NAME/VERSION`` for a registered model; else the metadata's ``version``, or the folder's
        name (``default`` for the shipped model).
    name : str
        Registered name, the folder's name, or ``default``.
    """

    model: CPUTimeModel
    metadata: dict[str, Any] = field(repr=False)
    source: str
    version: str
    name: str

    @property
    def training(self) -> dict[str, Any]:
        """How the model was trained (data, hashes, ``feature_summary``); {} if not recorded."""
        return self.metadata.get("training") or {}

    @property
    def metrics(self) -> dict[str, Any]:
        """Evaluation numbers saved with the model; {} if none."""
        return self.metadata.get("metrics") or {}


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


def sqlite_database(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL (MLflow or SQLAlchemy); None for other stores.

    ``sqlite:///relative.db`` names ``relative.db`` in the working directory,
    ``sqlite:////abs/path.db`` the absolute path; in-memory databases give None.
    """
    parsed = urlparse(uri)
    if parsed.scheme != "sqlite" or not parsed.path or parsed.path in ("/", "/:memory:"):
        return None
    return Path(parsed.path[1:])


# ------------------------------------------------------------------------------------ loading
def resolve_model(spec: str | Path | None, tracking_uri: str | None = None) -> LoadedModel:
    """Load the model a spec names (see the module docstring).

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
        One line, when the folder, registered model, alias or version does not exist or the
        model in it cannot be read.
    """
    if spec is None:
        folder = default_model_dir()
        model, metadata = _load_folder(folder, what="default model (CPUTIME_DEFAULT_MODEL)")
        version = str(metadata.get("version") or "default")
        return LoadedModel(model, metadata, str(folder), version, "default")
    text = str(spec)
    if text.startswith("models:/"):
        return _load_registered(text, tracking_uri_or_default(tracking_uri))
    folder = Path(text)
    model, metadata = _load_folder(folder, what=f"model {text}")
    version = str(metadata.get("version") or folder.name)
    return LoadedModel(model, metadata, str(folder), version, folder.name)


def pin_spec(spec: str | Path | None, tracking_uri: str | None = None) -> str | None:
    """The spec with an alias replaced by the version it points to now (``models:/NAME/VERSION``,
    one registry query); other specs unchanged.

    Raises
    ------
    InputError
        When the store, the registered model or the alias does not exist.
    """
    if spec is None or not str(spec).startswith("models:/"):
        return None if spec is None else str(spec)
    text = str(spec)
    name, alias, version = _parse_registered(text)
    if alias is None:
        return text
    uri = tracking_uri_or_default(tracking_uri)
    with _registry_errors(text, uri):
        version = mlflow_client(uri).get_model_version_by_alias(name, alias).version
    return f"models:/{name}/{version}"


def load_cached(spec: str | Path | None, tracking_uri: str | None = None) -> LoadedModel:
    """:func:`resolve_model`, loaded once per version or folder content.

    An alias is pinned to its version at every call (:func:`pin_spec`), and a registered version
    never changes, so a promotion is seen at the next call; a folder is keyed by its files'
    modification times and sizes, so rewriting it (``cputime build-default``) is seen too.
    """
    pinned = pin_spec(spec, tracking_uri)
    if pinned is not None and pinned.startswith("models:/"):
        return _load_pinned(pinned, tracking_uri_or_default(tracking_uri), None)
    folder = default_model_dir() if pinned is None else Path(pinned)
    return _load_pinned(pinned, None, (str(folder), _folder_stamp(folder)))


@lru_cache(maxsize=8)
def _load_pinned(spec: str | None, tracking_uri: str | None, stamp: tuple | None) -> LoadedModel:
    """``stamp`` only keys the cache: a folder rewritten is a new entry."""
    return resolve_model(spec, tracking_uri)


def _folder_stamp(folder: Path) -> tuple:
    from cputime.model.persistence import BOOSTER_FILE, METADATA_FILE

    stamp = []
    for name in (METADATA_FILE, BOOSTER_FILE):
        try:
            status = (folder / name).stat()
        except OSError:
            return ()  # missing: resolve_model says so
        stamp.append((status.st_mtime_ns, status.st_size))
    return tuple(stamp)


def _load_folder(folder: Path, *, what: str) -> tuple[CPUTimeModel, dict[str, Any]]:
    if not folder.is_dir():
        raise InputError(f"{what}: {folder} is not a model folder")
    from cputime.model.persistence import load_cputime_model

    return load_cputime_model(folder)


def _parse_registered(spec: str) -> tuple[str, str | None, str | None]:
    match = _MODELS_URI_RE.match(spec)
    if match is None:
        raise InputError(f"model {spec}: use models:/NAME@ALIAS or models:/NAME/VERSION")
    return match["name"], match["alias"], match["version"]


def mlflow_client(tracking_uri: str | None):
    """An ``MlflowClient`` whose tracking and registry store are both
    :func:`tracking_uri_or_default` of ``tracking_uri``."""
    from mlflow import MlflowClient

    uri = tracking_uri_or_default(tracking_uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@contextmanager
def _registry_errors(spec: str, tracking_uri: str) -> Iterator[None]:
    """Turn MLflow's errors into one-line :class:`InputError` naming the spec and the store;
    refuse a SQLite store that does not exist (opening it would create an empty one)."""
    from mlflow.exceptions import MlflowException

    database = sqlite_database(tracking_uri)
    if database is not None and not database.is_file():
        raise InputError(
            f"model {spec}: no MLflow store at {tracking_uri} ({database} does not exist; "
            "give the tracking URI)"
        )
    try:
        yield
    except MlflowException as exc:
        message = str(getattr(exc, "message", exc)).splitlines()[0]
        raise InputError(f"model {spec}: not found in {tracking_uri} ({message})") from None


def _load_registered(spec: str, tracking_uri: str) -> LoadedModel:
    from mlflow.artifacts import download_artifacts

    name, alias, version = _parse_registered(spec)
    with _registry_errors(spec, tracking_uri):
        client = mlflow_client(tracking_uri)
        if alias is not None:
            version = client.get_model_version_by_alias(name, alias).version
        else:
            version = client.get_model_version(name, version).version
        # The version's own artifact URI, not models:/ (whose resolution reads MLflow's global
        # registry URI, not ours); this also pins the version if the alias moves meanwhile.
        source = client.get_model_version_download_uri(name, version)
        with tempfile.TemporaryDirectory(prefix="cputime-model-") as tmp:
            folder = download_artifacts(artifact_uri=source, dst_path=tmp,
                                        tracking_uri=tracking_uri)  # fmt: skip
            model, metadata = _load_folder(_model_folder(Path(folder)), what=f"model {spec}")
    return LoadedModel(model, metadata, f"models:/{name}/{version}", f"{name}/{version}", name)


def _model_folder(downloaded: Path) -> Path:
    """The cputime model folder in a downloaded version: inside an MLflow Model (its
    ``python_function`` artifact), or the download itself (versions logged as a bare folder)."""
    if not (downloaded / "MLmodel").is_file():
        return downloaded
    from mlflow.models import Model

    artifacts = Model.load(str(downloaded)).flavors["python_function"].get("artifacts", {})
    return downloaded / artifacts[PYFUNC_ARTIFACT]["path"]
