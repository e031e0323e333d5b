"""Shared fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory):
    """A real MLflow SQLite tracking/registry store, created once per session (it is slow)."""
    from mlflow import MlflowClient

    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    MlflowClient(tracking_uri=uri, registry_uri=uri).search_experiments()  # creates the tables
    return uri
