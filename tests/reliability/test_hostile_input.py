"""Hostile input by hand, on every ingest path: each gets a clear 4xx in the one
error shape (over WebSocket: an error frame, the socket staying open) and nothing is stored.

Each hostile body is listed once, here, and sent on both paths. tests/ingest/test_bad_input.py checks
which record and field an invalid value is blamed on, and that configured limits are honoured.
"""
from __future__ import annotations

import base64
import urllib.error
import urllib.request

import orjson
import pytest
import websocket
from sqlalchemy import func, select

from metrics_app.extensions import db
from metrics_app.storage import write_queue
from metrics_app.storage.models import Record

from metrics_app.ingest.tailer import FileTailer

from ..cli.test_metrics_import import write_jsonl
from ..ingest.records import INGEST_EXAMPLES, utilization
from ..ingest.test_bad_input import assert_error_shape
from ..server import GunicornServer

POWER = INGEST_EXAMPLES["power"]
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
    pytest.param(orjson.dumps(dict(INGEST_EXAMPLES["memory"], usedMiB=-1)), 422, "invalid_records", id="negative-size"),
    pytest.param(orjson.dumps(dict(POWER, metric="fanSpeed")), 422, "invalid_records", id="unknown-metric"),
    pytest.param(orjson.dumps(dict(POWER, voltage=1.0)), 422, "invalid_records", id="unknown-field"),
    pytest.param(orjson.dumps(dict(POWER, hostname="a\x00b")), 422, "invalid_records", id="NUL-in-label"),
    # Valid ISO 8601 whose UTC instant is in year 10000 or year 0: no reader could write it back out.
    pytest.param(orjson.dumps(dict(POWER, timestamp="9999-12-31T23:59:59-14:00")), 422, "invalid_records",
                 id="after-year-9999-in-UTC"),
    pytest.param(orjson.dumps(dict(POWER, timestamp="0001-01-01T00:00:00+14:00")), 422, "invalid_records",
                 id="before-year-1-in-UTC"),
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


OUT_OF_RANGE = [dict(POWER, timestamp="9999-12-31T23:59:59-14:00"), dict(POWER, timestamp="0001-01-01T00:00:00+14:00")]


def test_the_tailer_skips_out_of_range_timestamps(app, tmp_path):
    path = write_jsonl(tmp_path / "ws_out.jsonl", [*OUT_OF_RANGE, POWER])
    tailer = FileTailer("ws", path, 100)
    with app.app_context():
        assert tailer.poll(write_queue(app)) == 1
    assert tailer.malformed == 2 and "outside years 0001-9999" in tailer.last_error
    assert record_count(app) == 1


def test_the_import_skips_out_of_range_timestamps(app, runner, tmp_path):
    result = runner.invoke(args=["metrics", "import", write_jsonl(tmp_path / "old.jsonl", [*OUT_OF_RANGE, POWER])])
    assert "3 lines, 1 records loaded, 0 duplicates, 2 lines skipped" in result.stdout, result.output
    assert "is outside years 0001-9999 in UTC" in result.stdout
    assert record_count(app) == 1


#: The edges of what can be stored, and a year below 1000 (strftime writes it with three digits).
EDGE_TIMES = {"0001-01-01T00:00:00.000Z": 0, "0999-06-01T12:00:00.000Z": 1, "9999-12-31T23:59:59.999Z": 2}


def test_edge_years_are_read_back_as_rfc3339_and_post_back(client):
    body = [dict(POWER, timestamp=stamp, gpuIndex=gpu) for stamp, gpu in EDGE_TIMES.items()]
    assert client.post("/metrics", json=body).status_code == 201
    assert client.get("/metrics?metric=power&aggregate=max&field=watts&bucket=9999999d").status_code == 200
    for path in ("/gpus", "/stats", "/metrics", "/metrics?format=ndjson", "/metrics?format=csv"):
        response = client.get(path)
        assert response.status_code == 200, (path, response.get_data(as_text=True))
        text = response.get_data(as_text=True)
        assert "0001-01-01T00:00:00.000Z" in text and "9999-12-31T23:59:59.999Z" in text, path  # all came out
    gpus = client.get("/gpus").get_json()["gpus"]
    assert sorted(g["firstSeen"] for g in gpus) == sorted(EDGE_TIMES)
    items = client.get("/metrics").get_json()["items"]
    assert sorted(i["timestamp"] for i in items) == sorted(EDGE_TIMES)
    again = [dict(POWER, timestamp=i["timestamp"], gpuIndex=i["gpuIndex"]) for i in items]
    response = client.post("/metrics", json=again)
    assert response.status_code == 201 and response.get_json()["saved"] == 0  # the same instants, not new ones


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize("cursor", [
    _cursor("asc:99999999999999999999999:1"), _cursor("asc:1:99999999999999999999"),
    _cursor("asc:-99999999999999999999:1"), _cursor("asc:253402300800000:1"), _cursor("asc:1:0"),
    _cursor("asc:1:-5"), _cursor("asc:1"), _cursor("asc:1:2:3"), _cursor("asc:x:1"), "!!!", "YXNj",
    "YXNjOjk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OjE",
])
def test_malformed_or_out_of_range_cursors_are_400(client, cursor):
    client.post("/metrics", json=POWER)
    body = assert_error_shape(client.get(f"/metrics?cursor={cursor}"), 400, "invalid_parameter")
    assert "cursor" in body["details"]


def test_plain_get_on_ws_ingest_is_426(client):
    response = client.get("/ws/ingest")
    assert_error_shape(response, 426, "websocket_required")
    assert response.headers["Upgrade"] == "websocket"


def test_plain_get_on_ws_ingest_without_a_token_is_401_first(app, client):
    app.config["INGEST_TOKEN"] = ["s3cret"]
    assert_error_shape(client.get("/ws/ingest"), 401, "unauthorized")
    assert_error_shape(client.get("/ws/ingest", headers={"Authorization": "Bearer wrong"}), 401, "unauthorized")
    assert_error_shape(client.get("/ws/ingest", headers={"Authorization": "Bearer s3cret"}), 426, "websocket_required")


def test_plain_get_on_ws_ingest_is_426_from_the_real_server(server):
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(server.url("/ws/ingest"), timeout=10)
    assert refused.value.code == 426
    assert orjson.loads(refused.value.read())["error"] == "websocket_required"
