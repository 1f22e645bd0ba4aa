"""An invalid record gets a 422 naming the record and the field, and stores nothing; configured
limits are honoured. Hostile bodies (unparseable, top-level scalars, wrong content types, sizes at
the real limits) are tests/reliability/test_hostile_input.py's, on both ingest paths."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from metrics_app.extensions import db
from metrics_app.storage.models import Record

from .records import INGEST_EXAMPLES, utilization

MEMORY = INGEST_EXAMPLES["memory"]
PROCESS = INGEST_EXAMPLES["process"]


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
    (dict(INGEST_EXAMPLES["utilization"], gpuPercent=100.5), "gpuPercent"),
    (dict(INGEST_EXAMPLES["temperature"], celsius=500), "celsius"),
    (dict(INGEST_EXAMPLES["power"], watts=False), "watts"),
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


def test_more_than_max_batch_records_is_413(client, app):
    app.config["MAX_BATCH"] = 10
    assert_error_shape(client.post("/metrics", json=utilization(11)), 413, "batch_too_large")


def test_body_over_max_content_length_is_413(client, app):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    assert_error_shape(client.post("/metrics", json=utilization(50)), 413)
