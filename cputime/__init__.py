"""cputime: predict the CPU time of PhoSim jobs and turn it into walltimes.

The public API mirrors the command line:

- :func:`read_catalog`, :func:`read_header` — instance catalogs (plain, gzipped, ``includeobj``);
- :func:`catalog_features`, :func:`visit_features` — per-(visit, sensor) features;
- :class:`CPUTimeModel` — median and calibrated upper bound of the CPU time;
- :func:`load_model` — the shipped model, a model folder or ``models:/NAME@ALIAS``;
- :func:`predict_jobs` — predictions with walltimes and checkpoint plans;
- :func:`plan_walltime` — the walltime policy alone.

The names are imported on first use (PEP 562), so that ``import cputime`` and the command line's
``--help`` do not pay for pandas, scikit-learn and XGBoost.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from cputime.errors import InputError

if TYPE_CHECKING:
    from cputime.inputs.catalog import read_catalog, read_header
    from cputime.model.composite import CPUTimeModel
    from cputime.physics.features import catalog_features, visit_features
    from cputime.planning.policy import plan_walltime
    from cputime.planning.predictions import predict_jobs

__version__ = "0.1.0"

__all__ = [
    "CPUTimeModel",
    "InputError",
    "catalog_features",
    "load_model",
    "plan_walltime",
    "predict_jobs",
    "read_catalog",
    "read_header",
    "visit_features",
]

#: Public name -> module that defines it, imported when the name is first used.
_LAZY = {
    "read_catalog": "cputime.inputs.catalog",
    "read_header": "cputime.inputs.catalog",
    "catalog_features": "cputime.physics.features",
    "visit_features": "cputime.physics.features",
    "CPUTimeModel": "cputime.model.composite",
    "plan_walltime": "cputime.planning.policy",
    "predict_jobs": "cputime.planning.predictions",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cputime' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


def load_model(spec: str | None = None, *, tracking_uri: str | None = None) -> CPUTimeModel:
    """Load a model: None for the shipped default, a folder, or ``models:/NAME@ALIAS``
    (:func:`cputime.model.loading.resolve_model`)."""
    from cputime.model.loading import resolve_model

    return resolve_model(spec, tracking_uri=tracking_uri).model
