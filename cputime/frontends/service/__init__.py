"""HTTP service: the CLI's predictions over HTTP (FastAPI).

Routes (OpenAPI docs at ``/docs``):

- ``GET /healthz``: 200 once a model is loaded: the version serving and the last version refused.
- ``GET /v1/model``: name, version, features, calibration and training summary of the model.
- ``POST /v1/predict``: planned visits as JSON (header keywords) -> one prediction per visit, or
  per (visit, sensor) with ``sensors``.
- ``POST /v1/predict/catalog?sensors=R22_S11,...``: an instance catalog as the body (plain or
  gzip) -> one prediction per sensor. ``includeobj`` is refused: an upload cannot name files on
  the server.

Predictions go through :func:`cputime.planning.predictions.predict_visits` (visits) and
:func:`cputime.physics.features.catalog_features` then
:func:`cputime.planning.predictions.predict_jobs` (catalogs), as the command line does, and are
serialised as ``cputime predict --format json`` writes them, so both give the same rows.

One module per concern:

- :mod:`.settings`: :class:`ServiceSettings`, what is served and the limits;
- :mod:`.model`: the served model, its trial prediction, following a registry alias;
- :mod:`.schemas`: request and response schemas;
- :mod:`.batcher`: the prediction loop (batches, a small and a bulk lane, fair slices);
- :mod:`.bulkworker`: the child process that predicts the bulk lane's slices;
- :mod:`.uploads`: uploaded catalogs, gunzipped as they arrive with limits;
- :mod:`.timeouts`: slow clients (header and body deadlines);
- :mod:`.errors`: the errors and their one-line answers;
- :mod:`.hotroute`: ``POST /v1/predict`` answered before FastAPI's layers;
- :mod:`.app`: routes, :func:`create_app` (from a settings object) and :func:`serve`.

Work per request is bounded (see :class:`ServiceSettings`): uploads are gunzipped as they arrive
with byte and line limits, a request may produce at most ``max_rows`` rows and compute for at
most ``request_seconds``, a client that disconnects stops its work, slow clients are cut off,
and big requests are predicted in slices taken in turn, in a child process (:mod:`.bulkworker`)
so that they do not hold the interpreter that answers single visits. Every error body is
``{"detail": "<one line>"}``.
"""

from cputime.frontends.service.app import create_app, serve
from cputime.frontends.service.model import ServedModel, served_model, trial_prediction
from cputime.frontends.service.settings import ServiceSettings, get_settings

__all__ = ["ServedModel", "ServiceSettings", "create_app", "get_settings", "serve",
           "served_model", "trial_prediction"]
