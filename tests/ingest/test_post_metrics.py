"""POST /metrics: the documented examples, all-or-nothing batches, idempotent retries, stored values."""
from __future__ import annotations

import orjson
import pytest
from sqlalchemy import func, select

from metrics_app.extensions import db
from metrics_app.storage.models import GpuSeries, Record, Rollup

from .records import INGEST_EXAMPLES, utilization


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize("kind", sorted(INGEST_EXAMPLES))
def test_every_documented_example_is_stored(client, app, kind):
    response = client.post("/metrics", json=INGEST_EXAMPLES[kind])
    assert response.status_code == 201
    assert response.get_json() == {"saved": 1, "duplicates": 0, "received": 1}
    assert count(app, Record) == 1


def test_documented_examples_as_one_batch_store_typed_values(client, app):
    response = client.post("/metrics", json=list(INGEST_EXAMPLES.values()))
    assert response.status_code == 201 and response.get_json()["saved"] == 6
    with app.app_context():
        rows = {r.metric: r for r in db.session.scalars(select(Record))}
        series = db.session.scalars(select(GpuSeries)).one()
    assert (rows[1].v1, rows[1].v2, rows[1].v3) == (10240, 2048, 8192)
    assert rows[4].v1 == 115.2 and rows[4].v2 is None
    assert (rows[6].pid, rows[6].v1) == (1234, 512)
    assert rows[1].pid == -1
    assert rows[1].ts_ms == 1735689600000  # 2025-01-01T00:00:00Z
    assert (series.hostname, series.gpu_index, series.record_count) == ("", 0, 6)


def test_resending_a_batch_stores_nothing_twice(client, app):
    batch = utilization(50)
    assert client.post("/metrics", json=batch).get_json() == {"saved": 50, "duplicates": 0, "received": 50}
    again = client.post("/metrics", json=batch + utilization(1, host="node-b"))
    assert again.status_code == 201
    assert again.get_json() == {"saved": 1, "duplicates": 50, "received": 51}
    assert count(app, Record) == 51
    with app.app_context():
        counts = dict(db.session.execute(select(GpuSeries.hostname, GpuSeries.record_count)).all())
        rollup_n = db.session.scalar(select(func.sum(Rollup.n)))
    assert counts == {"node-a": 50, "node-b": 1}
    assert rollup_n == 51


def test_one_bad_record_rejects_the_whole_batch(client, app):
    batch = utilization(10)
    batch[3]["gpuPercent"] = 101
    batch[7]["bogus"] = 1
    response = client.post("/metrics", json=batch)
    assert response.status_code == 422
    body = response.get_json()
    assert body["error"] == "invalid_records"
    assert [(d["index"], d["field"]) for d in body["details"]] == [(3, "gpuPercent"), (7, "bogus")]
    assert count(app, Record) == 0 and count(app, GpuSeries) == 0


def test_offsets_and_naive_timestamps_are_stored_as_utc(client, app):
    records = [dict(INGEST_EXAMPLES["power"], timestamp="2025-01-01T02:00:00+02:00"),
               dict(INGEST_EXAMPLES["power"], timestamp="2025-01-01T00:00:00", gpuIndex=1)]
    assert client.post("/metrics", json=records).status_code == 201
    with app.app_context():
        assert set(db.session.scalars(select(Record.ts_ms))) == {1735689600000}


def test_labels_are_kept_on_the_series_latest_wins(client, app):
    first = dict(INGEST_EXAMPLES["temperature"], hostname="h1", gpuId="GPU-1", gpuName="A100")
    client.post("/metrics", json=first)
    client.post("/metrics", json=dict(first, timestamp="2025-01-01T00:00:01Z", gpuName="A100 80GB"))
    client.post("/metrics", json=dict(first, timestamp="2025-01-01T00:00:02Z", gpuName=None))
    with app.app_context():
        series = db.session.scalars(select(GpuSeries)).one()
    assert (series.hostname, series.gpu_uuid, series.gpu_name) == ("h1", "GPU-1", "A100 80GB")
    assert (series.first_ts_ms, series.last_ts_ms, series.record_count) == (1735689600000, 1735689602000, 3)


def test_rollups_aggregate_per_minute(client, app):
    client.post("/metrics", json=utilization(90))  # minute 0: 60 records, minute 1: 30
    with app.app_context():
        rollups = db.session.scalars(select(Rollup).order_by(Rollup.minute_ms)).all()
    assert [(r.n, r.min1, r.max1, r.sum1) for r in rollups] == [
        (60, 0, 59, sum(range(60))), (30, 60, 89, sum(range(60, 90)))]
    assert rollups[0].sum3 is None


def test_empty_array_stores_nothing(client):
    assert client.post("/metrics", json=[]).get_json() == {"saved": 0, "duplicates": 0, "received": 0}


def test_missing_content_type_is_accepted(client):
    response = client.post("/metrics", data=orjson.dumps(INGEST_EXAMPLES["memory"]))
    assert response.status_code == 201
