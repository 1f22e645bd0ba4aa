"""INGEST_TOKEN and READ_TOKEN (issue 6, item 6): every protected endpoint refuses a missing or wrong
bearer token with a 401 and takes each configured token; a refused write stores nothing; health and
documents stay open; with no token configured nothing changes."""
from __future__ import annotations

import orjson
import pytest
import websocket
from openapi_spec_validator import validate

from metrics_app.agent.client import IngestClient, Outcome
from metrics_app.auth import token_matches

from ..ingest.records import SEED_EXAMPLES, utilization
from ..live.conftest import live  # noqa: F401 - a ticked hub, so the live reads answer 200
from ..server import GunicornServer

INGEST_TOKENS = ["ingest-one", "ingest-two"]
READ_TOKENS = ["read-one", "read-two"]
READS = ["/metrics", "/gpus", "/stats", "/api/metrics", "/api/metrics/history", "/api/prometheus"]
OPEN = ["/health", "/api/health", "/", "/openapi.json", "/docs", "/redoc", "/test_websocket.html"]


def bearer(token: str, scheme: str = "Bearer") -> dict[str, str]:
    return {"Authorization": f"{scheme} {token}"}


@pytest.fixture
def secured(app, live):  # noqa: F811 - live is the fixture
    app.config.update(INGEST_TOKEN=INGEST_TOKENS, READ_TOKEN=READ_TOKENS)
    return app


def assert_unauthorized(response, invalid_token: bool) -> None:
    assert response.status_code == 401, response.get_data(as_text=True)
    assert set(response.get_json()) == {"error", "message", "details"}
    assert response.get_json()["error"] == "unauthorized"
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
    response = client.post("/metrics", json=SEED_EXAMPLES["memory"], headers=bearer(token, "bearer"))
    assert response.status_code == 201 and response.get_json()["saved"] == 1
    assert stored_count(client) == 1


@pytest.mark.parametrize("path", READS)
def test_reads_need_the_read_token(secured, client, path):
    assert_unauthorized(client.get(path), invalid_token=False)
    assert_unauthorized(client.get(path, headers=bearer("wrong")), invalid_token=True)
    assert_unauthorized(client.get(path, headers=bearer(INGEST_TOKENS[0])), invalid_token=True)
    assert_unauthorized(client.get(f"{path}?token={READ_TOKENS[0]}"), invalid_token=False)  # header only on HTTP
    for token in READ_TOKENS:
        assert client.get(path, headers=bearer(token)).status_code == 200


def test_the_live_stream_handshake_needs_the_read_token(secured, client):
    assert_unauthorized(client.get("/ws/metrics"), invalid_token=False)
    assert client.get("/ws/metrics", headers=bearer(READ_TOKENS[1])).status_code == 426  # past auth: not an upgrade


@pytest.mark.parametrize("path", OPEN)
def test_health_and_documents_stay_open(secured, client, path):
    assert client.get(path).status_code == 200


def test_cors_preflight_needs_no_token(secured, client):
    response = client.options("/metrics", headers={"Origin": "http://x", "Access-Control-Request-Method": "POST"})
    assert response.status_code == 200


@pytest.mark.parametrize("path", READS + OPEN)
def test_without_tokens_everything_is_open(app, client, live, path):  # noqa: F811
    assert client.get(path).status_code == 200
    assert client.post("/metrics", json=SEED_EXAMPLES["power"]).status_code == 201


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
    try:
        websocket.create_connection(url, timeout=5, **kwargs).close()
    except websocket.WebSocketBadStatusException as exc:
        return exc.status_code
    return 101


def test_ws_ingest_is_refused_at_the_handshake_without_the_token(server, app):  # app: empties the tables after
    url = server.url("/ws/ingest", "ws")
    assert handshake_status(url) == 401
    assert handshake_status(url, header=bearer("wrong")) == 401
    assert handshake_status(f"{url}?token={INGEST_TOKENS[0]}") == 401  # crawlers can send the header
    assert handshake_status(url, header={"X-API-Key": "wrong"}) == 401
    assert handshake_status(url, header={"X-API-Key": INGEST_TOKENS[0]}) == 101  # the C++ crawler's header
    ws = websocket.create_connection(url, timeout=5, header=bearer(INGEST_TOKENS[1]))
    try:
        ws.send(orjson.dumps(SEED_EXAMPLES["memory"]).decode())
        assert orjson.loads(ws.recv())["type"] == "ack"
    finally:
        ws.close()


def test_the_live_stream_takes_the_header_or_a_query_token(server):
    url = server.url("/ws/metrics", "ws")
    assert handshake_status(url) == 401
    assert handshake_status(f"{url}?token=wrong") == 401
    assert handshake_status(url, header=bearer(READ_TOKENS[0])) == 101
    assert handshake_status(f"{url}?token={READ_TOKENS[1]}") == 101  # browsers cannot set WebSocket headers


def test_the_push_agent_authenticates_with_its_token(server, app):  # app: empties the tables after
    records = utilization(5, host="agent-auth")
    assert IngestClient(server.url(), INGEST_TOKENS[0]).post(records).outcome is Outcome.SENT
    refused = IngestClient(server.url(), "wrong").post(records)
    assert refused.outcome is not Outcome.SENT and "HTTP 401" in refused.detail


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
