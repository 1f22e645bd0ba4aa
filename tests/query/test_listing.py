"""GET /metrics as a listing: the documented example, filters, order and keyset paging."""
from __future__ import annotations

from .conftest import T0, row

DOCUMENTED_EXAMPLE = "/metrics?gpuIndex=0&metric=memory&start=2025-01-01T00:00:00Z&end=2025-01-01T01:00:00Z"


def test_documented_example_lists_memory_of_gpu_0_in_the_hour(client, populated):
    body = client.get(DOCUMENTED_EXAMPLE).get_json()
    assert body["count"] == 120 and body["next_cursor"] is None
    assert {(i["hostname"], i["gpuIndex"], i["metric"]) for i in body["items"]} == {("h1", 0, "memory"),
                                                                                   ("h2", 0, "memory")}
    first = body["items"][0]
    assert first["timestamp"] == "2025-01-01T00:00:00.000Z"
    assert first["payload"] == {"totalMiB": 10240, "usedMiB": 2048, "freeMiB": 8192}
    assert {first["gpuId"], first["gpuName"]} <= {"GPU-a", "GPU-c", "A100", "H100"}


def test_item_shape_matches_the_documented_payloads(client, store):
    store([row("process", T0, 512, pid=1234), row("power", T0, 115.2)])
    items = client.get("/metrics").get_json()["items"]
    by_metric = {i["metric"]: i for i in items}
    assert by_metric["process"]["payload"] == {"usedMiB": 512, "pid": 1234, "name": None}
    assert by_metric["power"]["payload"] == {"watts": 115.2}
    assert set(by_metric["power"]) == {"timestamp", "metric", "gpuIndex", "hostname", "gpuId", "gpuName",
                                       "payload"}


def test_absent_hostname_is_null(client, store):
    store([row("temperature", T0, 65)._replace(hostname="")])
    assert client.get("/metrics").get_json()["items"][0]["hostname"] is None


def test_filters_by_hostname_gpu_id_and_time(client, populated):
    body = client.get("/metrics?hostname=h2&metric=power&start=2025-01-01T00:10:00&end=2025-01-01T00:12:00Z").get_json()
    assert [(i["hostname"], i["timestamp"], i["payload"]["watts"]) for i in body["items"]] == [
        ("h2", "2025-01-01T00:10:00.000Z", 110), ("h2", "2025-01-01T00:11:00.000Z", 111),
        ("h2", "2025-01-01T00:12:00.000Z", 112)]
    by_uuid = client.get("/metrics?gpuId=GPU-b&metric=clocks").get_json()["items"]
    assert len(by_uuid) == 60 and {(i["hostname"], i["gpuIndex"]) for i in by_uuid} == {("h1", 1)}


def test_offset_timestamps_are_converted_to_utc(client, populated):
    body = client.get("/metrics?hostname=h1&gpuIndex=0&metric=power"
                      "&start=2025-01-01T02:05:00%2B02:00&end=2025-01-01T02:05:00%2B02:00").get_json()
    assert [i["timestamp"] for i in body["items"]] == ["2025-01-01T00:05:00.000Z"]


def test_filters_that_match_no_gpu_return_an_empty_page(client, populated):
    assert client.get("/metrics?hostname=nowhere").get_json() == {"items": [], "count": 0, "next_cursor": None}


def test_desc_order_starts_with_the_newest(client, populated):
    items = client.get("/metrics?metric=power&hostname=h1&gpuIndex=0&order=desc&limit=2").get_json()["items"]
    assert [i["timestamp"] for i in items] == ["2025-01-01T00:59:00.000Z", "2025-01-01T00:58:00.000Z"]


def _identity(item: dict) -> tuple:
    """What identifies a record: its labels, metric, time and pid."""
    return item["hostname"], item["gpuIndex"], item["metric"], item["timestamp"], item["payload"].get("pid")


def _walk(client, query: str) -> tuple[list[tuple], list[str]]:
    ids, timestamps, cursor, pages = [], [], None, 0
    while True:
        body = client.get(query + (f"&cursor={cursor}" if cursor else "")).get_json()
        ids += [_identity(i) for i in body["items"]]
        timestamps += [i["timestamp"] for i in body["items"]]
        pages, cursor = pages + 1, body["next_cursor"]
        if cursor is None:
            return ids, timestamps
        assert pages < 10


def test_cursor_pages_through_three_pages_without_gaps_or_repeats(client, populated):
    everything = client.get("/metrics?metric=power&limit=10000").get_json()["items"]
    assert len(everything) == 180
    for order in ("asc", "desc"):
        ids, timestamps = _walk(client, f"/metrics?metric=power&limit=70&order={order}")
        assert len(ids) == 180 and len(set(ids)) == 180
        assert set(ids) == {_identity(i) for i in everything}
        assert timestamps == sorted(timestamps, reverse=order == "desc")


def test_cursor_pages_split_records_that_share_a_timestamp(client, populated):
    """Three GPUs write at each timestamp: pages of 2 cut through equal timestamps, ordered by GPU."""
    ids, _ = _walk(client, "/metrics?metric=temperature&end=2025-01-01T00:02:00Z&limit=2")
    assert len(ids) == 9 and len(set(ids)) == 9


def test_default_limit_is_500(client, populated):
    body = client.get("/metrics").get_json()
    assert body["count"] == 500 and body["next_cursor"]


def test_a_cursor_of_the_old_shape_is_a_clean_400(client, populated):
    """Cursors issued before records lost their surrogate id carried (order, time, id)."""
    import base64

    old = base64.urlsafe_b64encode(b"asc:1735689600000:42").decode().rstrip("=")
    response = client.get(f"/metrics?cursor={old}")
    assert response.status_code == 400 and response.get_json()["details"] == {"cursor": ["malformed"]}


def test_pages_cross_gaps_in_the_history(client, store):
    """Records a month apart across GPUs and metrics: the time windows widen over the gap."""
    month = 30 * 86_400_000
    store([row("power", T0 + i, 100 + i) for i in range(3)] + [row("temperature", T0 + month + i, 60, host="h2")
                                                               for i in range(3)])
    ids, timestamps = _walk(client, "/metrics?limit=2")
    assert len(set(ids)) == 6 and timestamps == sorted(timestamps)
    ids, timestamps = _walk(client, "/metrics?limit=4&order=desc")
    assert len(set(ids)) == 6 and timestamps == sorted(timestamps, reverse=True)
