"""Hostile input by hand (issue 6, item 3), on both ingest paths: each gets a clear 4xx in the one
error shape (over WebSocket: an error frame, the socket staying open) and nothing is stored.

Each hostile body is listed once, here, and sent on both paths. tests/ingest/test_bad_input.py checks
which record and field an invalid value is blamed on, and that configured limits are honoured.
"""
from __future__ import annotations

import orjson
import pytest
import websocket
from sqlalchemy import func, select

from metrics_app.extensions import db
from metrics_app.storage.models import Record

from ..ingest.records import SEED_EXAMPLES, utilization
from ..ingest.test_bad_input import assert_error_shape
from ..server import GunicornServer

POWER = SEED_EXAMPLES["power"]
DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECTS = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
#: Just inside the parser's depth limit, inside a record: must reach validation and come back a 422.
DEEP_VALUE = b'{"timestamp":"2025-01-01T00:00:00Z","gpuIndex":0,"metric":"power","watts":' + b"[" * 1000 + b"]" * 1000 + b"}"

#: (body, status, error) sent as application/json to POST /metrics and as a WebSocket message.
HOSTILE = [
    pytest.param(orjson.dumps(dict(POWER, watts="NaN")), 422, "invalid_records", id="NaN-string"),
    pytest.param(orjson.dumps(dict(POWER, watts="Infinity")), 422, "invalid_records", id="Infinity-string"),
    pytest.param(orjson.dumps(dict(POWER, watts="-Infinity")), 422, "invalid_records", id="-Infinity-string"),
    pytest.param(orjson.dumps(dict(POWER, watts="1e3")), 422, "invalid_records", id="number-as-string"),
    pytest.param(orjson.dumps(dict(POWER, watts=True)), 422, "invalid_records", id="boolean-for-number"),
    pytest.param(orjson.dumps(dict(POWER, watts=1e308)), 422, "invalid_records", id="1e308"),
    pytest.param(orjson.dumps(dict(SEED_EXAMPLES["memory"], usedMiB=-1)), 422, "invalid_records", id="negative-size"),
    pytest.param(orjson.dumps(dict(POWER, metric="fanSpeed")), 422, "invalid_records", id="unknown-metric"),
    pytest.param(orjson.dumps(dict(POWER, voltage=1.0)), 422, "invalid_records", id="unknown-field"),
    pytest.param(orjson.dumps(dict(POWER, hostname="a\x00b")), 422, "invalid_records", id="NUL-in-label"),
    pytest.param(b'{"timestamp":"2025-01-01T00:00:00Z","gpuIndex":0,"metric":"power","watts":NaN}', 400,
                 "invalid_json", id="NaN-literal"),
    pytest.param(b'{"timestamp":"2025-01-01T00:00:00Z","gpuIndex":0,"metric":"power","watts":Infinity}', 400,
                 "invalid_json", id="Infinity-literal"),
    pytest.param(b'{"timestamp":"2025-01-01T00:00:00Z","gpuIndex":0,"metric":"power","watts":-Infinity}', 400,
                 "invalid_json", id="-Infinity-literal"),
    pytest.param(b'{"timestamp":"2025-01-01T00:00:00Z","gpuIndex":0,"metric":"power","watts":1e400}', 400,
                 "invalid_json", id="1e400"),
    pytest.param(b'{"timestamp":"2025-01-01T00:00:00Z","gpuIndex":0,"metric":"power","watts":' + b"9" * 400 + b"}",
                 400, "invalid_json", id="400-digit-integer"),
    pytest.param(DEEP, 400, "invalid_json", id="100000-nested-arrays"),
    pytest.param(DEEP_OBJECTS, 400, "invalid_json", id="100000-nested-objects"),
    pytest.param(DEEP_VALUE, 422, "invalid_records", id="1000-nested-value"),
    pytest.param(b"\xff\xfe\xfd", 400, "invalid_json", id="invalid-utf8"),
    pytest.param(b"not json", 400, "invalid_json", id="not-json"),
    pytest.param(b'{"timestamp":"2025-01-01T00:00:00Z"', 400, "invalid_json", id="truncated"),
    pytest.param(b"", 400, "invalid_json", id="empty"),
    pytest.param(b"null", 400, "invalid_body", id="null"),
    pytest.param(b"true", 400, "invalid_body", id="top-level-boolean"),
    pytest.param(b'"records"', 400, "invalid_body", id="top-level-string"),
    pytest.param(b"42", 400, "invalid_body", id="top-level-number"),
    pytest.param(orjson.dumps(utilization(100_000)), 413, "batch_too_large", id="100000-records"),
]


def fifty_mb_batch() -> bytes:
    """Built per test rather than kept at import: 50 MB should not live for the whole session."""
    return b"[" + b",".join([orjson.dumps(POWER)] * 700_000) + b"]"


def record_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Record))


@pytest.mark.parametrize("body, status, error", HOSTILE)
def test_post_is_refused_and_stores_nothing(app, client, body, status, error):
    response = client.post("/metrics", data=body, content_type="application/json")
    assert_error_shape(response, status, error)
    assert record_count(app) == 0
    assert client.get("/gpus").get_json()["count"] == 0


def test_a_50_mb_body_is_413_at_the_default_limit(app, client):
    body = fifty_mb_batch()
    assert len(body) > 50_000_000 > app.config["MAX_CONTENT_LENGTH"]
    assert_error_shape(client.post("/metrics", data=body, content_type="application/json"), 413)
    assert record_count(app) == 0


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_a_valid_record_under_a_wrong_content_type_is_415(app, client, content_type):
    assert_error_shape(client.post("/metrics", data=orjson.dumps(POWER), content_type=content_type), 415,
                       "unsupported_media_type")
    assert record_count(app) == 0


@pytest.fixture(scope="module")
def server(tmp_path_factory, database_url):
    with GunicornServer(tmp_path_factory.mktemp("hostile"), DATABASE_URL=database_url, SAMPLERS_ENABLED="false",
                        BACKGROUND_JOBS_ENABLED="false") as srv:
        yield srv


@pytest.mark.slow
def test_ws_answers_each_with_an_error_frame_and_stays_open(server, app):  # app: empties the tables after
    ws = websocket.create_connection(server.url("/ws/ingest", "ws"), timeout=30)
    try:
        for param in HOSTILE:
            body, status, error = param.values
            if body.startswith(b"\xff"):
                ws.send_binary(body)  # a text frame must be UTF-8 by protocol; bytes arrive as a binary frame
            else:
                ws.send(body.decode())
            frame = orjson.loads(ws.recv())
            assert (frame["type"], frame["error"]) == ("error", error), (param.id, frame)
            assert set(frame) == {"type", "error", "message", "details"}
        assert record_count(app) == 0
        ws.send(orjson.dumps(POWER).decode())
        assert orjson.loads(ws.recv())["type"] == "ack"
    finally:
        ws.close()
    assert record_count(app) == 1


@pytest.mark.slow
def test_ws_message_over_the_limit_closes_only_that_socket(server, app):  # app: empties the tables after
    """A message over MAX_CONTENT_LENGTH cannot be answered in-band: the server gives up the connection
    (WebSocket close 1009) instead of buffering 50 MB; the worker and new connections carry on."""
    ws = websocket.create_connection(server.url("/ws/ingest", "ws"), timeout=30)
    with pytest.raises((websocket.WebSocketException, OSError)):
        ws.send(fifty_mb_batch().decode())
        ws.recv()
    ws.close()
    assert record_count(app) == 0
    fresh = websocket.create_connection(server.url("/ws/ingest", "ws"), timeout=10)
    try:
        fresh.send(orjson.dumps(POWER).decode())
        assert orjson.loads(fresh.recv())["type"] == "ack"
    finally:
        fresh.close()
