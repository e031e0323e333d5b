"""The registered model as an MLflow Model, written as code (MLflow's models-from-code).

:func:`cputime.runs.registry.log_and_register` hands this file's path to
``mlflow.pyfunc.save_model``, which copies it into the logged model next to the cputime model
folder (XGBoost JSON + JSON metadata, the ``cputime_model`` artifact). MLflow runs it when the
model is loaded (``mlflow.pyfunc.load_model("models:/NAME@champion")``, ``mlflow models serve``);
nothing is pickled. The package never imports this file: it calls ``set_model`` when run.

Input: a DataFrame of planned visits (header keywords, as for ``cputime predict visits.csv``) or
of features (the output of ``cputime features``). Parameters: ``confidence_level`` (0: the model's),
``host_slowdown``, ``threads``, ``queue_max_seconds`` (0: no queue limit). Output: the rows of
:func:`cputime.planning.predictions.predict_jobs`.
"""

from __future__ import annotations

import pandas as pd
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel

from cputime.model.loading import PYFUNC_ARTIFACT


class CPUTimePyfunc(PythonModel):
    """``predict_jobs`` of a cputime model folder, behind MLflow's pyfunc interface."""

    def load_context(self, context):
        from cputime.model.persistence import load_cputime_model

        self.model_, metadata = load_cputime_model(context.artifacts[PYFUNC_ARTIFACT])
        self.version_ = str(metadata.get("version") or "")

    def predict(self, context, model_input, params=None):
        from cputime.physics.features import CATALOG_COLUMNS, visit_features
        from cputime.planning.predictions import predict_jobs

        frame = pd.DataFrame(model_input)
        if not set(CATALOG_COLUMNS) <= set(frame.columns):
            frame = visit_features(frame, source="<model input>")
        params = params or {}
        return predict_jobs(
            self.model_,
            frame,
            # Older registered versions named the first two "confidence" and "host_factor".
            confidence_level=float(_param(params, "confidence_level", "confidence", 0.0)) or None,
            host_slowdown=float(_param(params, "host_slowdown", "host_factor", 1.0)),
            threads=int(params.get("threads", 1)),
            queue_max_seconds=float(params.get("queue_max_seconds") or 0) or None,
            model_version=self.version_,
        )


def _param(params: dict, name: str, old_name: str, default: float) -> float:
    """A request parameter by its name, or by its older spelling."""
    value = params.get(name)
    return params.get(old_name, default) if value is None else value


set_model(CPUTimePyfunc())
