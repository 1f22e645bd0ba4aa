"""INGEST_TOKEN and READ_TOKEN: every protected endpoint refuses a missing or wrong
bearer token with a 401 and takes each configured token; a refused write stores nothing; health and
documents stay open; with no token configured nothing changes."""
from __future__ import annotations

import orjson
import pytest
import websocket
from openapi_spec_validator import validate

from metrics_app import create_app
from metrics_app.agent.client import IngestClient, Outcome
from metrics_app.auth import token_matches
from metrics_app.auth_groups import INGEST, declared_group, requires
from metrics_app.extensions import hub

from ..ingest.records import INGEST_EXAMPLES, utilization
from ..live.conftest import live  # noqa: F401 - a ticked hub, so the live reads answer 200
from ..dbsetup import config_for, dispose
from ..server import GunicornServer

INGEST_TOKENS = ["ingest-one", "ingest-two"]
READ_TOKENS = ["read-one", "read-two"]
READS = ["/metrics", "/gpus", "/stats", "/api/metrics", "/api/metrics/history", "/api/prometheus"]
#: What each open endpoint serves without a token: (JSON key, or text in the page).
OPEN = {"/health": "counts", "/api/health": "sampler", "/": "service", "/openapi.json": "paths",
        "/docs": "swagger-ui", "/redoc": "redoc", "/test_websocket.html": "WebSocket"}
#: A stored record's hostname and a live GPU's UUID: what a refused read must not show.
PRIVATE_HOST = "private-node"
LIVE_GPU = "GPU-00000000"


def bearer(token: str, scheme: str = "Bearer") -> dict[str, str]:
    return {"Authorization": f"{scheme} {token}"}


@pytest.fixture
def secured(app, live):  # noqa: F811 - live is the fixture
    app.config.update(INGEST_TOKEN=INGEST_TOKENS, READ_TOKEN=READ_TOKENS)
    return app


def assert_unauthorized(response, invalid_token: bool) -> None:
    """A 401 in the one error shape that says what to send and shows no data."""
    assert response.status_code == 401, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error", "message", "details"} and body["error"] == "unauthorized"
    assert body["details"] is None
    assert ("not valid" if invalid_token else "Authorization: Bearer <token>") in body["message"]
    assert PRIVATE_HOST not in response.get_data(as_text=True) and LIVE_GPU not in response.get_data(as_text=True)
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ") and ('error="invalid_token"' in challenge) == invalid_token


def stored_count(client) -> int:
    return client.get("/gpus", headers=bearer(READ_TOKENS[0])).get_json()["count"]


@pytest.mark.parametrize("headers, invalid_token", [
    ({}, False), (bearer(""), False), (bearer(INGEST_TOKENS[0], "Basic"), False), (bearer("nope"), True),
    (bearer(READ_TOKENS[0]), True), (bearer(INGEST_TOKENS[0] + "x"), True), (bearer(INGEST_TOKENS[0][:-1]), True),
])
def test_ingest_without_the_ingest_token_is_401_and_stores_nothing(secured, client, headers, invalid_token):
    assert_unauthorized(client.post("/metrics", json=utilization(3), headers=headers), invalid_token)
    assert stored_count(client) == 0


@pytest.mark.parametrize("token", INGEST_TOKENS)
def test_each_ingest_token_is_accepted(secured, client, token):
    response = client.post("/metrics", json=INGEST_EXAMPLES["memory"], headers=bearer(token, "bearer"))
    assert response.status_code == 201 and response.get_json()["saved"] == 1
    assert stored_count(client) == 1


@pytest.mark.parametrize("path", READS)
def test_reads_need_the_read_token(secured, client, path):
    posted = client.post("/metrics", json=dict(INGEST_EXAMPLES["memory"], hostname=PRIVATE_HOST),
                         headers=bearer(INGEST_TOKENS[0]))
    assert posted.status_code == 201
    assert_unauthorized(client.get(path), invalid_token=False)
    assert_unauthorized(client.get(path, headers=bearer("wrong")), invalid_token=True)
    assert_unauthorized(client.get(path, headers=bearer(INGEST_TOKENS[0])), invalid_token=True)
    assert_unauthorized(client.get(f"{path}?token={READ_TOKENS[0]}"), invalid_token=False)  # header only on HTTP
    for token in READ_TOKENS:
        allowed = client.get(path, headers=bearer(token))
        assert allowed.status_code == 200
        text = allowed.get_data(as_text=True)
        assert PRIVATE_HOST in text or LIVE_GPU in text  # the data the refusals kept back


def test_the_live_stream_handshake_needs_the_read_token(secured, client):
    assert_unauthorized(client.get("/ws/metrics"), invalid_token=False)
    assert client.get("/ws/metrics", headers=bearer(READ_TOKENS[1])).status_code == 426  # past auth: not an upgrade


@pytest.mark.parametrize("path", OPEN)
def test_health_and_documents_stay_open(secured, client, path):
    response = client.get(path)
    assert response.status_code == 200 and "WWW-Authenticate" not in response.headers
    assert OPEN[path] in (response.get_json() if response.is_json else response.get_data(as_text=True))


def test_cors_preflight_needs_no_token(secured, client):
    response = client.options("/metrics", headers={"Origin": "http://x", "Access-Control-Request-Method": "POST"})
    assert response.status_code == 200 and response.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert stored_count(client) == 0


@pytest.mark.parametrize("path", READS + list(OPEN))
def test_without_tokens_everything_is_open(app, client, live, path):  # noqa: F811
    assert client.post("/metrics", json=dict(INGEST_EXAMPLES["power"], hostname=PRIVATE_HOST)).get_json()["saved"] == 1
    response = client.get(path)
    assert response.status_code == 200
    if path in READS:
        text = response.get_data(as_text=True)
        assert PRIVATE_HOST in text or LIVE_GPU in text


def test_token_matches_any_configured_token_exactly():
    assert token_matches("b", ["a", "b", "c"]) and token_matches("a", ["a"])
    assert not token_matches("ab", ["a", "b"]) and not token_matches("", ["a"]) and not token_matches("a", [])
    assert not token_matches("é", ["e"]) and token_matches("é", ["é"])


@pytest.fixture(scope="module")
def server(tmp_path_factory, database_url):
    with GunicornServer(tmp_path_factory.mktemp("auth"), DATABASE_URL=database_url, SAMPLERS_ENABLED="false",
                        BACKGROUND_JOBS_ENABLED="false", INGEST_TOKEN=",".join(INGEST_TOKENS),
                        READ_TOKEN=" , ".join(READ_TOKENS)) as srv:
        yield srv


def handshake_status(url: str, **kwargs) -> int:
    """The handshake's HTTP status; a refusal must be a 401 in the one error shape."""
    try:
        websocket.create_connection(url, timeout=5, **kwargs).close()
    except websocket.WebSocketBadStatusException as exc:
        assert exc.status_code == 401 and orjson.loads(exc.resp_body)["error"] == "unauthorized", exc.resp_body
        return exc.status_code
    return 101


@pytest.mark.slow
def test_ws_ingest_is_refused_at_the_handshake_without_the_token(server, app):  # app: empties the tables after
    url = server.url("/ws/ingest", "ws")
    assert handshake_status(url) == 401
    assert handshake_status(url, header=bearer("wrong")) == 401
    assert handshake_status(f"{url}?token={INGEST_TOKENS[0]}") == 401  # crawlers can send the header
    assert handshake_status(url, header={"X-API-Key": "wrong"}) == 401
    assert handshake_status(url, header={"X-API-Key": INGEST_TOKENS[0]}) == 101  # the C++ crawler's header
    assert app.test_client().get("/gpus").get_json()["count"] == 0
    ws = websocket.create_connection(url, timeout=5, header=bearer(INGEST_TOKENS[1]))
    try:
        ws.send(orjson.dumps(INGEST_EXAMPLES["memory"]).decode())
        assert orjson.loads(ws.recv())["type"] == "ack"
    finally:
        ws.close()
    assert app.test_client().get("/gpus").get_json()["count"] == 1


@pytest.mark.slow
def test_the_live_stream_takes_the_header_or_a_query_token(server):
    url = server.url("/ws/metrics", "ws")
    assert handshake_status(url) == 401
    assert handshake_status(f"{url}?token=wrong") == 401
    assert handshake_status(url, header=bearer(READ_TOKENS[0])) == 101
    assert handshake_status(f"{url}?token={READ_TOKENS[1]}") == 101  # browsers cannot set WebSocket headers


@pytest.mark.slow
def test_the_push_agent_authenticates_with_its_token(server, app):  # app: empties the tables after
    assert IngestClient(server.url(), INGEST_TOKENS[0]).post(utilization(5, host="agent-auth")).outcome is Outcome.SENT
    refused = IngestClient(server.url(), "wrong").post(utilization(5, host="agent-refused"))
    assert refused.outcome is not Outcome.SENT and "HTTP 401" in refused.detail
    hosts = {gpu["hostname"]: gpu["recordCount"] for gpu in app.test_client().get("/gpus").get_json()["gpus"]}
    assert hosts == {"agent-auth": 5}


def test_the_api_document_marks_what_the_tokens_protect(secured, client):
    document = client.get("/openapi.json").get_json()
    validate(document)
    assert document["components"]["securitySchemes"] == {
        "bearerAuth": {"type": "http", "scheme": "bearer"},
        "apiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}
    for path, method in [("/metrics", "post"), ("/metrics", "get"), ("/gpus", "get"), ("/api/metrics", "get")]:
        assert document["paths"][path][method]["security"] == [{"bearerAuth": []}, {"apiKeyAuth": []}]
        assert "401" in document["paths"][path][method]["responses"]
    for path in ["/health", "/api/health", "/"]:
        assert "security" not in document["paths"][path]["get"]


def test_without_tokens_the_document_has_no_security(app, client):
    assert "securitySchemes" not in client.get("/openapi.json").get_json()["components"]


def undeclared_routes(app) -> list[str]:
    return sorted(rule.rule for rule in app.url_map.iter_rules() if declared_group(rule.endpoint, app) is None)


def test_every_route_declares_its_token_group(app):
    assert undeclared_routes(app) == []


def test_a_route_that_declares_nothing_is_found_and_still_needs_the_read_token(app):
    app.add_url_rule("/forgotten", "forgotten", lambda: "private")
    app.add_url_rule("/declared", "declared", requires(INGEST)(lambda: "written"))
    assert undeclared_routes(app) == ["/forgotten"]
    app.config.update(READ_TOKEN=READ_TOKENS, INGEST_TOKEN=INGEST_TOKENS)
    assert app.test_client().get("/forgotten").status_code == 401
    assert app.test_client().get("/forgotten", headers=bearer(READ_TOKENS[0])).status_code == 200
    assert app.test_client().get("/declared", headers=bearer(READ_TOKENS[0])).status_code == 401
    assert app.test_client().get("/declared", headers=bearer(INGEST_TOKENS[0])).status_code == 200


def test_a_refused_first_request_still_starts_the_samplers_outside_gunicorn(database_url):
    """``flask run`` and other servers start the samplers on the first request; when that request is
    a 401 (or a crawler whose POSTs then take the ingest lane), they must have started all the same."""
    config = type("Sampling", (config_for(database_url),), {"SAMPLERS_ENABLED": True, "ENABLE_NVIDIA": False,
                                                            "ENABLE_AMD": False, "INGEST_TOKEN": ["k"]})
    app = create_app(config)
    try:
        assert not hub.state(app).started
        assert app.test_client().post("/metrics", json={}).status_code == 401
        assert hub.state(app).started
    finally:
        hub.state(app).stop()
        dispose(app)
