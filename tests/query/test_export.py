"""GET /metrics?format=csv|ndjson: every matching record, streamed page by page, in the listing's shape."""
from __future__ import annotations

import csv
import io

import orjson

from metrics_app.query import export

from .conftest import T0, row

CSV_HEADER = ("timestamp,hostname,gpuIndex,gpuId,gpuName,metric,totalMiB,usedMiB,freeMiB,gpuPercent,"
              "memoryPercent,celsius,watts,graphicsMHz,memoryMHz,smMHz,pid,name")


def many(n: int, host: str = "h1") -> list:
    return [row("utilization", T0 + i * 1000, i % 101, 5, host=host) for i in range(n)]


def test_csv_streams_every_record_past_the_listing_limit(client, store):
    store(many(25_000))
    response = client.get("/metrics?format=csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="metrics-')
    assert response.headers["Content-Disposition"].endswith('.csv"')
    lines = response.get_data(as_text=True).splitlines()
    assert lines[0] == CSV_HEADER
    rows = list(csv.DictReader(lines))
    assert len(rows) == 25_000 and len({r["timestamp"] for r in rows}) == 25_000
    assert [int(float(r["gpuPercent"])) for r in rows[:102]] == [i % 101 for i in range(102)]
    assert rows[-1]["timestamp"] == "2025-01-01T06:56:39.000Z"


def test_the_first_page_is_sent_before_the_next_is_read(client, store, monkeypatch):
    store(many(1_200))
    monkeypatch.setattr(export, "PAGE_ROWS", 500)
    pages_read = []
    real = export.list_records
    monkeypatch.setattr(export, "list_records", lambda args, series: pages_read.append(1) or real(args, series))
    response = client.get("/metrics?format=ndjson", buffered=False)
    chunks = iter(response.response)
    assert next(chunks).count(b"\n") == 500
    assert len(pages_read) == 1
    rest = b"".join(chunks)
    response.close()
    assert rest.count(b"\n") == 700 and len(pages_read) == 3


def test_ndjson_lines_are_the_json_listing_items(client, populated):
    query = "hostname=h2&start=2025-01-01T00:10:00Z&end=2025-01-01T00:19:00Z"
    listed = client.get(f"/metrics?{query}&limit=10000").get_json()["items"]
    response = client.get(f"/metrics?{query}&format=ndjson")
    assert response.mimetype == "application/x-ndjson"
    assert [orjson.loads(line) for line in response.data.splitlines()] == listed
    assert len(listed) == 60


def test_csv_cells_are_empty_where_a_kind_has_no_such_field(client, store):
    store([row("memory", T0, 10240, 2048, 8192), row("process", T0 + 1, 512, pid=1234),
           row("power", T0 + 2, 115.2)._replace(hostname="")])
    parsed = list(csv.reader(io.StringIO(client.get("/metrics?format=csv").get_data(as_text=True))))
    header, memory, process, power = parsed
    cells = [dict(zip(header, line)) for line in (memory, process, power)]
    assert {k: v for k, v in cells[0].items() if v} == {
        "timestamp": "2025-01-01T00:00:00.000Z", "hostname": "h1", "gpuIndex": "0", "gpuId": "GPU-a",
        "gpuName": "A100", "metric": "memory", "totalMiB": "10240.0", "usedMiB": "2048.0", "freeMiB": "8192.0"}
    assert (cells[1]["usedMiB"], cells[1]["pid"], cells[1]["totalMiB"]) == ("512.0", "1234", "")
    assert (cells[2]["watts"], cells[2]["hostname"], cells[2]["pid"]) == ("115.2", "", "")


def test_filters_and_order_apply_to_exports(client, populated):
    body = client.get("/metrics?format=csv&gpuId=GPU-c&metric=power&order=desc").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == 60 and {(r["hostname"], r["metric"]) for r in rows} == {("h2", "power")}
    assert [float(r["watts"]) for r in rows[:3]] == [159, 158, 157]


def test_an_export_of_nothing_is_just_the_header(client, populated):
    assert client.get("/metrics?format=csv&hostname=nobody").get_data(as_text=True) == CSV_HEADER + "\n"
    assert client.get("/metrics?format=ndjson&hostname=nobody").data == b""


def test_bad_or_conflicting_format_parameters_are_400s(client):
    for query, field in (("format=xml", "format"), ("format=csv&limit=10", "limit"),
                         ("format=ndjson&cursor=abc", "cursor"),
                         ("format=csv&aggregate=avg&metric=power&field=watts", "aggregate")):
        response = client.get(f"/metrics?{query}")
        assert response.status_code == 400, query
        body = response.get_json()
        assert body["error"] == "invalid_parameter" and field in body["details"], query


def test_json_stays_the_default(client, populated):
    assert client.get("/metrics?limit=5").get_json()["count"] == 5
    assert client.get("/metrics?limit=5&format=json").get_json()["count"] == 5
