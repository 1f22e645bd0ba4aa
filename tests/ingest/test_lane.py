"""The crawlers' plain ``POST /metrics`` is answered beneath Flask (ingest/lane.py): exactly as the
Flask route answers it, and every request the lane does not take still reaches the route."""
from __future__ import annotations

import io
from types import SimpleNamespace

import orjson
import pytest
from flask import Response
from werkzeug.test import Client, EnvironBuilder, run_wsgi_app

from metrics_app.storage.write_queue import WriteQueue, WriteUnavailable

from .records import CRAWLER_EXAMPLES, INGEST_EXAMPLES, utilization
from .test_windows_paths import RAW_PROCESS, repaired

JSON = {"Content-Type": "application/json"}


def spy_on_flask(app) -> SimpleNamespace:
    """The paths of the requests the app's lane hands to Flask (``calls``), and a client of Flask's
    own entry (``route``)."""
    lane = app.wsgi_app
    flask, calls = lane.flask, []

    def spied(environ, start_response):
        calls.append(environ["PATH_INFO"])
        return flask(environ, start_response)

    lane.flask = spied
    return SimpleNamespace(calls=calls, route=Client(flask, Response))


@pytest.fixture
def lane(app, client):
    """The spied lane past the first request (which Flask takes)."""
    spy = spy_on_flask(app)
    client.get("/api/health")
    spy.calls.clear()
    return spy


def answer(response) -> tuple[int, dict, list]:
    return response.status_code, response.get_json(), sorted(response.headers.items())


def renamed(record: dict, host: str) -> bytes:
    return orjson.dumps({**record, "hostname": host})


CASES = {
    "one record": lambda host: renamed(INGEST_EXAMPLES["power"], host),
    "a batch": lambda host: orjson.dumps(utilization(3, host=host)),
    "the C++ crawler's gpu record": lambda host: renamed(CRAWLER_EXAMPLES["gpu"], host),
    "a Windows path": lambda host: RAW_PROCESS.replace(b"DESKTOP-01", host.encode()),
    "not JSON": lambda host: b'{"timestamp": ',
    "an invalid record": lambda host: renamed({**INGEST_EXAMPLES["power"], "watts": -1}, host),
    "not records": lambda host: b'"power"',
    "a body of spaces": lambda host: b"   ",
}


@pytest.mark.parametrize("case", CASES)
def test_the_lane_answers_as_the_route_does(lane, client, case):
    through_lane = client.post("/metrics", data=CASES[case]("lane-host"), headers=JSON)
    through_route = lane.route.post("/metrics", data=CASES[case]("route-host"), headers=JSON)
    assert lane.calls == []
    assert answer(through_lane) == answer(through_route)


def test_what_the_lane_stores_is_what_the_route_stores(lane, client):
    client.post("/metrics", data=renamed(CRAWLER_EXAMPLES["gpu"], "lane-host"))
    lane.route.post("/metrics", data=renamed(CRAWLER_EXAMPLES["gpu"], "route-host"))

    def stored(host: str) -> list:
        items = client.get(f"/metrics?hostname={host}&limit=100").get_json()["items"]
        return sorted((item["metric"], orjson.dumps(item["payload"], option=orjson.OPT_SORT_KEYS)) for item in items)

    assert stored("lane-host") == stored("route-host") and len(stored("lane-host")) == 5
    again = client.post("/metrics", data=renamed(CRAWLER_EXAMPLES["gpu"], "lane-host"))
    assert again.get_json() == {"saved": 0, "duplicates": 5, "received": 5}


def test_a_too_large_batch_is_refused_alike(app, lane, client):
    app.config["MAX_BATCH"] = 2
    body = orjson.dumps(utilization(3))
    assert answer(client.post("/metrics", data=body)) == answer(lane.route.post("/metrics", data=body))
    assert lane.calls == [] and client.post("/metrics", data=body).status_code == 413


def test_a_repaired_body_is_counted_once(lane, client):
    before = repaired(client)
    assert client.post("/metrics", data=RAW_PROCESS, headers=JSON).status_code == 201
    assert lane.calls == ["/health"]  # repaired() reads /health, through Flask
    assert repaired(client) == before + 1


def test_a_failed_commit_is_the_same_503(lane, client, monkeypatch):
    def refuse(self, rows, on_commit_tx=None):
        raise WriteUnavailable("database_unavailable", "The database could not take the write; retry later.")

    monkeypatch.setattr(WriteQueue, "submit", refuse)
    body = renamed(INGEST_EXAMPLES["power"], "h")
    through_lane = client.post("/metrics", data=body)
    assert lane.calls == []
    assert answer(through_lane) == answer(lane.route.post("/metrics", data=body))
    assert through_lane.status_code == 503 and through_lane.headers["Retry-After"] == "1"


def test_a_bug_is_the_same_500(lane, client, monkeypatch):
    def broken(payload):
        raise RuntimeError("a bug")

    monkeypatch.setattr("metrics_app.ingest.lane.ingest_payload", broken)
    monkeypatch.setattr("metrics_app.ingest.views.ingest_payload", broken)
    body = renamed(INGEST_EXAMPLES["power"], "h")
    through_lane = client.post("/metrics", data=body)
    assert lane.calls == [] and through_lane.status_code == 500
    assert answer(through_lane) == answer(lane.route.post("/metrics", data=body))
    assert through_lane.get_json()["error"] == "internal_server_error"


@pytest.mark.parametrize(("method", "path", "headers", "status"), [
    ("POST", "/metrics", {"Origin": "http://dashboard.example", **JSON}, 201),  # flask-cors decides
    ("POST", "/metrics", {"Content-Type": "application/vnd.crawler+json"}, 201),
    ("POST", "/metrics", {"Content-Type": "text/plain"}, 415),
    ("POST", "/metrics", {"Content-Type": "application/x-www-form-urlencoded"}, 415),
    ("POST", "/metrics", {"Upgrade": "websocket", **JSON}, 201),
    ("GET", "/metrics", {}, 200),
    ("PUT", "/metrics", JSON, 405),
    ("POST", "/metrics/", JSON, 404),
])
def test_other_requests_reach_the_route(lane, client, method, path, headers, status):
    response = client.open(path, method=method, data=renamed(INGEST_EXAMPLES["power"], "h"), headers=headers)
    assert lane.calls == [path]
    assert response.status_code == status, response.get_json()


def test_a_body_without_a_length_reaches_the_route(app, lane):
    environ = EnvironBuilder("/metrics", method="POST", data=renamed(INGEST_EXAMPLES["power"], "h"),
                             headers={"Transfer-Encoding": "chunked", **JSON}).get_environ()
    del environ["CONTENT_LENGTH"]
    environ["wsgi.input_terminated"] = True  # as gunicorn marks a chunked body
    _, status, _ = run_wsgi_app(app, environ, buffered=True)
    assert lane.calls == ["/metrics"] and status == "201 CREATED"


@pytest.mark.parametrize("length", ["", "-1", "1e3", "²", " 12"])
def test_a_length_that_is_not_digits_reaches_the_route(lane, client, length):
    response = client.post("/metrics", data=renamed(INGEST_EXAMPLES["power"], "h"), headers=JSON,
                           environ_overrides={"CONTENT_LENGTH": length})
    assert lane.calls == ["/metrics"] and response.status_code < 500


def test_a_body_shorter_than_its_length_is_a_400_storing_nothing(lane, client):
    body = renamed(INGEST_EXAMPLES["power"], "cut-short")
    response = client.post("/metrics", data=body, headers=JSON, environ_overrides={"CONTENT_LENGTH": "999"})
    assert lane.calls == [] and response.status_code == 400 and response.get_json()["error"] == "bad_request"
    assert client.get("/metrics?hostname=cut-short").get_json()["items"] == []


def test_a_client_gone_mid_body_is_a_400_without_an_error_logged(lane, client, caplog):
    class Reset(io.BytesIO):
        def read(self, *args):
            raise ConnectionResetError(104, "Connection reset by peer")

    response = client.post("/metrics", input_stream=Reset(b"{}"), headers={**JSON, "Content-Length": "2"})
    assert lane.calls == [] and response.status_code == 400
    assert not [record for record in caplog.records if record.levelname == "ERROR"]


def test_a_body_over_max_content_length_reaches_the_route(app, lane, client):
    app.config["MAX_CONTENT_LENGTH"] = 100
    response = client.post("/metrics", data=orjson.dumps(utilization(5)), headers=JSON)
    assert lane.calls == ["/metrics"] and response.status_code == 413


def test_with_tokens_only_a_valid_one_is_taken_by_the_lane(app, lane, client):
    app.config["INGEST_TOKEN"] = ["crawler-key"]
    body = renamed(INGEST_EXAMPLES["power"], "h")
    assert client.post("/metrics", data=body, headers={"X-API-Key": "crawler-key"}).status_code == 201
    assert client.post("/metrics", data=body, headers={"Authorization": "Bearer crawler-key"}).status_code == 201
    assert lane.calls == []
    for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong", "X-API-Key": "crawler-key"}):
        assert client.post("/metrics", data=body, headers=headers).status_code == 401
    assert lane.calls == ["/metrics"] * 3


def test_a_restricted_origin_is_answered_alike(database_url):
    from metrics_app import create_app
    from tests.dbsetup import config_for

    config = type("Restricted", (config_for(database_url),), {"CORS_ORIGINS": ["http://dashboard.example"]})
    app = create_app(config)
    client, route = app.test_client(), Client(app.wsgi_app.flask, Response)
    client.get("/api/health")
    body = orjson.dumps([])  # stores nothing: valid and empty
    through_lane = client.post("/metrics", data=body, headers=JSON)
    assert answer(through_lane) == answer(route.post("/metrics", data=body, headers=JSON))
    assert through_lane.headers["Access-Control-Allow-Origin"] == "http://dashboard.example"  # flask-cors' choice


def test_the_first_request_of_a_process_goes_through_flask(app, client):
    spy = spy_on_flask(app)
    assert client.post("/metrics", data=renamed(INGEST_EXAMPLES["power"], "h")).status_code == 201
    assert client.post("/metrics", data=renamed(INGEST_EXAMPLES["power"], "i")).status_code == 201
    assert spy.calls == ["/metrics"]
