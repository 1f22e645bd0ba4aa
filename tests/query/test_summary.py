"""/gpus, /stats and /health, all answered from the summary tables."""
from __future__ import annotations

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from metrics_app.extensions import db

from .conftest import T0, row


def test_gpus_lists_every_gpu_with_first_last_and_count(client, populated):
    body = client.get("/gpus").get_json()
    assert body["count"] == 3
    assert body["gpus"][0] == {"hostname": "h1", "gpuIndex": 0, "gpuId": "GPU-a", "gpuName": "A100",
                               "firstSeen": "2025-01-01T00:00:00.000Z", "lastSeen": "2025-01-01T00:59:00.000Z",
                               "recordCount": 360}
    assert [(g["hostname"], g["gpuIndex"]) for g in body["gpus"]] == [("h1", 0), ("h1", 1), ("h2", 0)]
    assert client.get("/gpus?hostname=h2").get_json()["count"] == 1


def test_gpus_is_empty_before_any_record(client):
    assert client.get("/gpus").get_json() == {"gpus": [], "count": 0}
    assert client.get("/stats").get_json() == {"gpus": [], "count": 0}


def test_stats_per_gpu_and_metric(client, populated, store):
    store([row("power", T0 + 30_000, 1000.0, gpu=1)])
    body = client.get("/stats?hostname=h1&gpuIndex=1").get_json()
    assert body["count"] == 1
    gpu = body["gpus"][0]
    assert (gpu["gpuId"], gpu["recordCount"], gpu["firstSeen"]) == ("GPU-b", 361, "2025-01-01T00:00:00.000Z")
    assert set(gpu["metrics"]) == {"memory", "utilization", "temperature", "power", "clocks", "process"}
    watts = [100 + m for m in range(60)] + [1000]
    assert gpu["metrics"]["power"] == {"count": 61, "fields": {
        "watts": {"avg": sum(watts) / 61, "min": 100, "max": 1000}}}
    assert gpu["metrics"]["memory"]["fields"]["usedMiB"] == {"avg": 2048 + 29.5, "min": 2048, "max": 2107}
    assert gpu["metrics"]["process"]["fields"] == {"usedMiB": {"avg": 512, "min": 512, "max": 512}}


def test_health_reports_database_and_counts(client, populated):
    response = client.get("/health")
    body = response.get_json()
    assert response.status_code == 200 and body["status"] == "ok"
    assert body["database"]["reachable"] is True
    assert body["counts"] == {"records": 1080, "gpus": 3}
    assert body["jobs"]["runs"] == {} and body["tailers"] == []


def test_health_is_503_degraded_when_the_database_fails(app, client, monkeypatch):
    def broken(*_args, **_kwargs):
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    with app.app_context():
        monkeypatch.setattr(db.session, "execute", broken)
        response = client.get("/health")
    body = response.get_json()
    assert response.status_code == 503
    assert body["status"] == "degraded" and body["database"]["reachable"] is False
    assert "connection refused" in body["database"]["reason"]


@pytest.mark.parametrize("url", ["/gpus", "/stats", "/health"])
def test_summary_endpoints_do_not_scan_records(app, client, populated, url):
    """Every statement these endpoints run must leave the records table alone."""
    statements: list[str] = []
    with app.app_context():
        engine = db.engine

    def listener(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", listener)
    try:
        assert client.get(url).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert statements and not any("records" in s for s in statements)
