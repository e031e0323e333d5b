"""cputime: predict the CPU time of PhoSim jobs and turn it into walltimes.

The public API mirrors the command line:

- :func:`read_catalog`, :func:`read_header` — instance catalogs (plain, gzipped, ``includeobj``);
- :func:`catalog_features`, :func:`visit_features` — per-(visit, sensor) features;
- :class:`CPUTimeModel` — median and calibrated upper bound of the CPU time;
- :func:`load_model` — the shipped model, a model folder or ``models:/NAME@ALIAS``;
- :func:`predict_jobs` — predictions with walltimes and checkpoint plans;
- :func:`plan_walltime` — the walltime policy alone.
"""

from cputime.catalog import read_catalog, read_header
from cputime.errors import InputError
from cputime.features import catalog_features, visit_features
from cputime.model import CPUTimeModel
from cputime.policy import plan_walltime
from cputime.predictions import predict_jobs

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


def load_model(spec: str | None = None, *, tracking_uri: str | None = None) -> CPUTimeModel:
    """Load a model: None for the shipped default, a folder, or ``models:/NAME@ALIAS``."""
    from cputime.registry import resolve_model

    return resolve_model(spec, tracking_uri=tracking_uri).model
