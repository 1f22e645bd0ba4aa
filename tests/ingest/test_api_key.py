"""``X-API-Key: <token>``, the header the C++ crawler sends, is taken wherever a bearer token is: the
same token lists, the same comparison; without tokens configured it changes nothing."""
from __future__ import annotations

import pytest

from .records import CRAWLER_EXAMPLES, INGEST_EXAMPLES

INGEST_TOKENS = ["crawler-key", "second-key"]
READ_TOKENS = ["reader-key"]


@pytest.fixture
def secured(app):
    app.config.update(INGEST_TOKEN=INGEST_TOKENS, READ_TOKEN=READ_TOKENS)
    return app


def key(token: str) -> dict[str, str]:
    return {"X-API-Key": token}


def gpu_count(client) -> int:
    return client.get("/gpus", headers=key(READ_TOKENS[0])).get_json()["count"]


@pytest.mark.parametrize("token", INGEST_TOKENS)
def test_each_ingest_token_is_accepted_as_api_key(secured, client, token):
    response = client.post("/metrics", json=CRAWLER_EXAMPLES["gpu"], headers=key(token))
    assert response.status_code == 201 and response.get_json()["saved"] == 5
    assert gpu_count(client) == 1


@pytest.mark.parametrize("headers", [key("wrong"), key(READ_TOKENS[0]), key(INGEST_TOKENS[0] + "x"),
                                     {**key("wrong"), "Authorization": "Basic Zm9vOmJhcg=="}])
def test_a_wrong_api_key_is_401_and_stores_nothing(secured, client, headers):
    response = client.post("/metrics", json=CRAWLER_EXAMPLES["gpu"], headers=headers)
    assert response.status_code == 401
    body = response.get_json()
    assert (set(body), body["error"]) == ({"error", "message", "details"}, "unauthorized")
    assert "X-API-Key" in body["message"] and 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert gpu_count(client) == 0


@pytest.mark.parametrize("headers", [{}, key(""), key("   ")])
def test_the_401_without_a_token_names_both_headers(secured, client, headers):
    response = client.post("/metrics", json=INGEST_EXAMPLES["memory"], headers=headers)
    assert response.status_code == 401
    message = response.get_json()["message"]
    assert "Authorization: Bearer <token>" in message and "X-API-Key: <token>" in message


def test_reads_take_the_read_token_as_api_key(secured, client):
    assert client.get("/gpus", headers=key(READ_TOKENS[0])).status_code == 200
    assert client.get("/gpus", headers=key(INGEST_TOKENS[0])).status_code == 401


def test_a_bearer_header_is_checked_before_the_api_key(secured, client):
    both = {"Authorization": "Bearer wrong", **key(INGEST_TOKENS[0])}
    assert client.post("/metrics", json=INGEST_EXAMPLES["memory"], headers=both).status_code == 401


def test_without_tokens_an_api_key_changes_nothing(app, client):
    response = client.post("/metrics", json=CRAWLER_EXAMPLES["gpu"], headers=key("anything"))
    assert response.status_code == 201
