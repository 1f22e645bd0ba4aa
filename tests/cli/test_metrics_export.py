"""flask metrics export: the same bytes as GET /metrics?format=..., to a file or stdout."""
from __future__ import annotations

import csv

import orjson

from ..ingest.records import utilization


def test_export_to_a_file_matches_the_http_export(runner, client, tmp_path):
    client.post("/metrics", json=utilization(10_000))
    client.post("/metrics", json=utilization(2_500, host="node-b"))
    out = tmp_path / "all.csv"
    result = runner.invoke(args=["metrics", "export", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "exported 12500 records" in result.stderr
    assert out.read_bytes() == client.get("/metrics?format=csv").data
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 12_500 and {r["hostname"] for r in rows} == {"node-a", "node-b"}


def test_filters_narrow_an_ndjson_export_to_stdout(runner, client):
    client.post("/metrics", json=utilization(50) + utilization(50, host="node-b"))
    result = runner.invoke(args=["metrics", "export", "--format", "ndjson", "--hostname", "node-b",
                                 "--gpu-index", "0", "--start", "2025-01-01T00:00:10Z", "--order", "desc"])
    items = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [i["payload"]["gpuPercent"] for i in items] == list(range(49, 9, -1))
    assert {i["hostname"] for i in items} == {"node-b"}


def test_a_bad_filter_is_a_usage_error(runner):
    result = runner.invoke(args=["metrics", "export", "--metric", "voltage"])
    assert result.exit_code == 2 and "metric" in result.output
