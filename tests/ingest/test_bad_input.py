"""Every kind of bad input gets a 4xx in the one error shape and stores nothing; never a 500."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from metrics_app.extensions import db
from metrics_app.storage.models import Record

from .records import SEED_EXAMPLES, utilization

MEMORY = SEED_EXAMPLES["memory"]
PROCESS = SEED_EXAMPLES["process"]


def assert_error_shape(response, status: int, error: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error", "message", "details"}
    if error:
        assert body["error"] == error
    return body


@pytest.fixture(autouse=True)
def nothing_stored(app):
    yield
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Record)) == 0


@pytest.mark.parametrize("record, field", [
    (dict(MEMORY, usedMiB=-1), "usedMiB"),
    (dict(MEMORY, usedMiB="2048"), "usedMiB"),
    (dict(MEMORY, totalMiB=1e308), "totalMiB"),          # finite, but beyond any GPU: range error
    (dict(MEMORY, gpuIndex=True), "gpuIndex"),
    (dict(MEMORY, gpuIndex=-1), "gpuIndex"),
    (dict(MEMORY, gpuIndex=1.5), "gpuIndex"),
    (dict(MEMORY, gpuIndex="0"), "gpuIndex"),
    (dict(MEMORY, freeMiB=None), "freeMiB"),
    (dict(MEMORY, freeMiB=[1]), "freeMiB"),
    (dict(MEMORY, freeMiB={"a": {"b": 1}}), "freeMiB"),
    (dict(MEMORY, extra=1), "extra"),
    (dict(MEMORY, pid=5), "pid"),
    (dict(MEMORY, timestamp="yesterday"), "timestamp"),
    (dict(MEMORY, timestamp=1735689600), "timestamp"),
    (dict(MEMORY, hostname=5), "hostname"),
    (dict(MEMORY, hostname="x" * 256), "hostname"),
    ({k: v for k, v in MEMORY.items() if k != "usedMiB"}, "usedMiB"),
    (dict(MEMORY, metric="fanspeed"), "metric"),
    (dict(MEMORY, metric=None), "metric"),
    ({k: v for k, v in MEMORY.items() if k != "metric"}, "metric"),
    (dict(SEED_EXAMPLES["utilization"], gpuPercent=100.5), "gpuPercent"),
    (dict(SEED_EXAMPLES["temperature"], celsius=500), "celsius"),
    (dict(SEED_EXAMPLES["power"], watts=False), "watts"),
    (dict(PROCESS, pid=-5), "pid"),
    (dict(PROCESS, pid=12.0), "pid"),
])
def test_invalid_field_is_named(client, record, field):
    body = assert_error_shape(client.post("/metrics", json=[MEMORY, record]), 422, "invalid_records")
    assert {(d["index"], d["field"]) for d in body["details"]} >= {(1, field)}
    assert all(d["index"] == 1 for d in body["details"])


def test_unknown_metric_message_names_it(client):
    body = assert_error_shape(client.post("/metrics", json=dict(MEMORY, metric="fanspeed")), 422)
    assert "fanspeed" in body["details"][0]["message"]


@pytest.mark.parametrize("raw", [
    b'{"timestamp":"2025-01-01T00:00:00Z","gpuIndex":0,"metric":"power","watts":NaN}',
    b'{"timestamp":"2025-01-01T00:00:00Z","gpuIndex":0,"metric":"power","watts":Infinity}',
    b'{"timestamp":"2025-01-01T00:00:00Z","gpuIndex":0,"metric":"power","watts":-Infinity}',
    b'{"timestamp":"2025-01-01T00:00:00Z","gpuIndex":0,"metric":"power","watts":1e400}',
    b'{"timestamp":"2025-01-01T00:00:00Z","gpuIndex":0,"metric":"power","hostname":"\xff\xfe"}',
    b"not json",
    b"",
    b"[" * 5000 + b"]" * 5000,
    b'{"a":1',
])
def test_unparseable_body_is_400(client, raw):
    assert_error_shape(client.post("/metrics", data=raw, content_type="application/json"), 400, "invalid_json")


def test_huge_integer_is_rejected_not_overflowed(client):
    raw = b'{"timestamp":"2025-01-01T00:00:00Z","gpuIndex":0,"metric":"power","watts":' + b"9" * 400 + b"}"
    response = client.post("/metrics", data=raw, content_type="application/json")
    assert response.status_code in (400, 422)
    assert_error_shape(response, response.status_code)


@pytest.mark.parametrize("raw", [b'"a string"', b"5", b"null", b"true"])
def test_wrong_top_level_type_is_400(client, raw):
    assert_error_shape(client.post("/metrics", data=raw, content_type="application/json"), 400, "invalid_body")


def test_more_than_max_batch_records_is_413(client, app):
    app.config["MAX_BATCH"] = 10
    assert_error_shape(client.post("/metrics", json=utilization(11)), 413, "batch_too_large")


def test_body_over_max_content_length_is_413(client, app):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    assert_error_shape(client.post("/metrics", json=utilization(50)), 413)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_non_json_content_type_is_415(client, content_type):
    assert_error_shape(client.post("/metrics", data=b"{}", content_type=content_type), 415)
