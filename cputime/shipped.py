"""Data shipped inside the package: the default model and the tables commands default to.

The files are kept at the repository's top (``models/default``, ``features/``), where
``cputime build-default`` rewrites them; ``cputime/data`` holds symbolic links to them, so that a
wheel built from the repository carries real copies and an installed package finds them through
:mod:`importlib.resources`, from any working directory.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["SHIPPED", "shipped_path"]

#: What the package ships: name -> path inside ``cputime/data``.
SHIPPED = {
    "default_model": "default_model",  # booster.json + metadata.json of models/default
    "phosim_runs": "phosim_runs.csv",  # features/phosim_runs.csv: catalog runs
    "twinkles_run1": "twinkles_run1.csv",  # features/twinkles_run1.csv: Twinkles training table
    "twinkles_run1_train": "twinkles_run1_train.csv",  # the 2016 table as published
    "twinkles_host_factors": "twinkles_host_factors.csv",
    "probe_visits": "probe_visits.csv",  # the service's trial prediction of a new champion
}


def shipped_path(name: str) -> Path:
    """Path of a shipped file or folder, by its name in :data:`SHIPPED`.

    Raises
    ------
    KeyError
        For a name not in :data:`SHIPPED`.
    RuntimeError
        When the package is not installed as files (e.g. imported from a zip archive).
    """
    resource = files("cputime").joinpath("data", SHIPPED[name])
    if not isinstance(resource, Path):
        raise RuntimeError(
            f"cputime's shipped data ({SHIPPED[name]}) is not a file: install the package "
            "unpacked (pip install)"
        )
    return resource
