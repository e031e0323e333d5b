"""The service in-process: the app built from a settings object, run by FastAPI's TestClient,
with dependencies overridden (the end-to-end tests in test_service.py start the real server)."""

import dataclasses

import pytest
from fastapi.testclient import TestClient
from test_service import CATALOG, VISITS

import cputime
from cputime.frontends.service import (
    ServedModel,
    ServiceSettings,
    create_app,
    get_settings,
    served_model,
)
from cputime.model.loading import LoadedModel
from cputime.planning.predictions import predict_visits


@pytest.fixture(scope="module")
def shipped():
    return cputime.load_model()


@pytest.fixture(scope="module")
def test_model(shipped):
    """The shipped model under another name and version, served without loading anything."""
    loaded = LoadedModel(model=shipped, metadata={}, source="test", version="test/7", name="test")
    return ServedModel.of(loaded)


@pytest.fixture(scope="module")
def client(test_model):
    # A model spec that cannot load: the override must be what is served.
    app = create_app(ServiceSettings(model="/nonexistent/model", max_rows=500))
    app.dependency_overrides[served_model] = lambda: test_model
    with TestClient(app) as c:
        yield c


def test_the_overridden_model_is_served(client):
    assert client.get("/healthz").json() == {"status": "ok", "model": "test", "version": "test/7",
                                             "last_load_error": None}
    body = client.post("/v1/predict", json={"visits": VISITS}).json()
    assert body["model"]["version"] == "test/7"
    assert {row["model_version"] for row in body["predictions"]} == {"test/7"}


def test_settings_come_from_the_object_not_the_environment(client, monkeypatch):
    monkeypatch.setenv("CPUTIME_MAX_ROWS", "1000000")
    response = client.post("/v1/predict", json={"visits": VISITS[:1] * 3, "sensors": ["all"]})
    assert response.status_code == 413
    assert "500 rows per request (max_rows)" in response.json()["detail"]
    assert client.app.dependency_overrides[get_settings]().max_rows == 500


def test_rows_are_those_of_the_library_with_the_filter_letter(client, shipped):
    options = {"confidence_level": 0.9, "queue_max_seconds": 3600.0, "host_slowdown": 1.6,
               "threads": 4}
    rows = client.post("/v1/predict", json={"visits": VISITS, **options}).json()["predictions"]
    expected = predict_visits(shipped, VISITS, confidence_level=0.9, queue_max_seconds=3600.0,
                              host_slowdown=1.6, threads=4, model_version="test/7")
    assert len(rows) == len(expected)
    for row, want in zip(rows, expected, strict=True):
        want = {**want, "filter": "ugrizy"[int(want["filter"])]}
        assert list(row) == list(want)
        for key, value in want.items():
            if isinstance(value, float) and value != value:
                assert row[key] is None, key  # NaN is null in JSON
            elif isinstance(value, float):
                assert row[key] == pytest.approx(value, rel=1e-9), key  # 10 digits written
            else:
                assert row[key] == value, key
    assert [row["filter"] for row in rows] == ["r", "y", "u"]


@pytest.mark.parametrize(
    ("new", "old"),
    [({"confidence_level": 0.8}, {"confidence": 0.8}),
     ({"threads": 8, "queue_max_seconds": 7200}, {"cores": 8, "queue_max_seconds": 7200}),
     ({"host_slowdown": 2.5}, {"host_factor": 2.5})],
)
def test_old_option_names_are_accepted(client, new, old):
    answers = [client.post("/v1/predict", json={"visits": VISITS, **names}).json()
               for names in (new, old, {})]
    assert answers[0] == answers[1] != answers[2]
    query = "&".join(f"{k}={v}" for k, v in new.items())
    old_query = "&".join(f"{k}={v}" for k, v in old.items())
    catalog = CATALOG.read_bytes()
    by_catalog = [client.post(f"/v1/predict/catalog?sensors=R22_S11&{q}", content=catalog).json()
                  for q in (query, old_query)]
    assert by_catalog[0] == by_catalog[1]
    assert by_catalog[0]["predictions"][0]["filter"] in "ugrizy"


def test_bad_visits_are_named_by_their_place_in_the_request(client):
    visits = [VISITS[0]] * 70 + [{**VISITS[0], "moonphase": 500}]  # the bulk lane, in slices
    response = client.post("/v1/predict", json={"visits": visits})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("visits.70.moonphase: ")
    both = client.post("/v1/predict", json={"visits": VISITS, "confidence": 0.9,
                                            "confidence_level": 0.9})
    assert both.status_code == 422


def test_a_bad_visit_in_a_later_slice_is_named_by_its_place_in_the_request(test_model):
    app = create_app(ServiceSettings(model="/nonexistent/model"))
    app.dependency_overrides[served_model] = lambda: test_model
    visits = [VISITS[0]] * 1050
    visits[1040] = {**VISITS[0], "altitude": 200}  # the second slice of the bulk lane
    with TestClient(app) as c:
        response = c.post("/v1/predict", json={"visits": visits})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("visits.1040.altitude: ")


def test_settings_default_to_the_environment(monkeypatch):
    monkeypatch.setenv("CPUTIME_MAX_ROWS", "12")
    monkeypatch.setenv("CPUTIME_REQUEST_SECONDS", "2.5")
    settings = ServiceSettings.from_env()
    assert (settings.max_rows, settings.request_seconds) == (12, 2.5)
    assert dataclasses.replace(settings, max_rows=3).max_rows == 3


def test_predict_bodies_over_the_limit_are_413_naming_it(test_model):
    """``POST /v1/predict`` is answered before FastAPI's layers, with the same body limit."""
    app = create_app(ServiceSettings(model="/nonexistent/model", max_body_bytes=2000))
    app.dependency_overrides[served_model] = lambda: test_model
    body = ('{"visits": ' + str(VISITS * 20).replace("'", '"') + "}").encode()

    def pieces():  # no Content-Length: the bytes read are counted
        yield from (body[i:i + 500] for i in range(0, len(body), 500))

    with TestClient(app) as c:
        for content in (body, pieces()):
            response = c.post("/v1/predict", content=content,
                              headers={"content-type": "application/json"})
            assert response.status_code == 413, response.text
            assert response.json() == {
                "detail": "request: body over the limit of 2000 bytes (max_body_bytes)"}
        assert c.post("/v1/predict", json={"visits": VISITS[:1]}).status_code == 200


def test_the_fast_predict_route_is_documented(client):
    operation = client.get("/openapi.json").json()["paths"]["/v1/predict"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert {"visits", "sensors", "confidence_level"} <= set(schema["properties"])
    assert "200" in operation["responses"]


def test_the_alias_is_resolved_by_the_loader_and_a_gone_store_is_not_recreated(tmp_path):
    from cputime.errors import InputError
    from cputime.frontends.service.model import _alias_target
    from cputime.model.loading import default_model_dir
    from cputime.runs.registry import log_and_register, set_champion

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = log_and_register(default_model_dir(), name="cputime", tracking_uri=uri)
    set_champion("cputime", first.version, tracking_uri=uri)
    settings = ServiceSettings(model="models:/cputime@champion", tracking_uri=uri)
    assert _alias_target(settings) == f"cputime/{first.version}"
    # A store removed while serving: the poll says so in one line and creates no empty store.
    gone = tmp_path / "gone.db"
    with pytest.raises(InputError, match=r"models:/cputime@champion: no MLflow store"):
        _alias_target(dataclasses.replace(settings, tracking_uri=f"sqlite:///{gone}"))
    assert not gone.exists()
