"""The C++ crawler's records and the FastAPI backend's variants, as a user migrating them sends them:
stored, read back in the crawler-ingest API's shape, and GPUs identified without an index."""
from __future__ import annotations

import pytest

from .records import CRAWLER_EXAMPLES, INGEST_EXAMPLES
from .test_bad_input import assert_error_shape

GPU, PROCESS, SELF_TEST = CRAWLER_EXAMPLES["gpu"], CRAWLER_EXAMPLES["process"], CRAWLER_EXAMPLES["self_test"]
UUID = GPU["gpuId"]


def items(client, query: str = "") -> list[dict]:
    body = client.get(f"/metrics?{query}").get_json()
    return body["items"]


def test_a_gpu_record_is_the_five_records_it_carries(client):
    assert client.post("/metrics", json=GPU).get_json() == {"saved": 5, "duplicates": 0, "received": 5}
    stored = {i["metric"]: i for i in items(client)}
    assert {k: v["payload"] for k, v in stored.items()} == {
        "memory": {"totalMiB": 24564, "usedMiB": 1820, "freeMiB": 22744},
        "utilization": {"gpuPercent": 7, "memoryPercent": 3},
        "temperature": {"celsius": 41},
        "power": {"watts": 28.45},
        "clocks": {"graphicsMHz": 210, "memoryMHz": 405, "smMHz": 210}}
    for item in stored.values():
        assert item["timestamp"] == "2025-11-12T18:30:05.123Z"
        assert (item["hostname"], item["gpuId"], item["gpuName"], item["gpuIndex"]) == (
            "DESKTOP-01", UUID, "NVIDIA GeForce RTX 4090", None)
    assert client.post("/metrics", json=GPU).get_json()["duplicates"] == 5  # a retry stores nothing twice


def test_a_process_record_keeps_its_name(client):
    assert client.post("/metrics", json=PROCESS).status_code == 201
    [item] = items(client, "metric=process")
    assert item["payload"] == {"pid": 4242, "name": "python3", "usedMiB": 1536}
    assert item["gpuId"] == UUID


def test_the_self_test_record_is_the_hosts_only_gpu(client):
    assert client.post("/metrics", json=SELF_TEST).status_code == 201
    gpus = client.get("/gpus").get_json()["gpus"]
    assert [(g["hostname"], g["gpuIndex"], g["gpuId"], g["gpuName"], g["recordCount"]) for g in gpus] == [
        ("DESKTOP-01", None, None, "GPU", 1)]


def test_one_window_of_mixed_vocabularies_in_one_batch(client):
    batch = [GPU, PROCESS, dict(PROCESS, pid=4243, processName="C:\\Program Files\\app.exe"),
             dict(INGEST_EXAMPLES["power"], hostname="DESKTOP-01", gpuId=UUID, timestamp="2025-11-12T18:30:06Z")]
    assert client.post("/metrics", json=batch).get_json()["saved"] == 8
    gpus = client.get("/gpus").get_json()["gpus"]
    # The crawler-ingest API's record says gpuIndex 0 of the same UUID: one GPU, the index kept as its label.
    assert [(g["gpuId"], g["gpuIndex"], g["recordCount"]) for g in gpus] == [(UUID, 0, 8)]
    names = sorted(i["payload"]["name"] for i in items(client, "metric=process"))
    assert names == ["C:\\Program Files\\app.exe", "python3"]


def test_gpus_are_identified_by_uuid_else_index_else_host(client):
    example = INGEST_EXAMPLES["temperature"]
    bare = {k: v for k, v in example.items() if k != "gpuIndex"}
    batch = [dict(example, hostname="a", gpuId="GPU-x", gpuIndex=0),
             dict(example, hostname="a", gpuId="GPU-x", gpuIndex=3, timestamp="2025-01-01T00:00:01Z"),  # renumbered
             dict(bare, hostname="a", gpuId="GPU-y", timestamp="2025-01-01T00:00:02Z"),
             dict(example, hostname="a", gpuIndex=1),
             dict(example, hostname="b", gpuIndex=0),
             dict(bare, hostname="c"), dict(bare, hostname="c", timestamp="2025-01-01T00:00:09Z")]
    assert client.post("/metrics", json=batch).get_json()["saved"] == 7
    gpus = client.get("/gpus").get_json()
    assert [(g["hostname"], g["gpuId"], g["gpuIndex"], g["recordCount"]) for g in gpus["gpus"]] == [
        ("a", None, 1, 1), ("a", "GPU-x", 3, 2), ("a", "GPU-y", None, 1), ("b", None, 0, 1), ("c", None, None, 2)]
    assert gpus["count"] == 5
    stats = client.get("/stats?hostname=a&gpuId=GPU-x").get_json()["gpus"]
    assert [(s["gpuId"], s["gpuIndex"], s["metrics"]["temperature"]["count"]) for s in stats] == [("GPU-x", 3, 2)]


def test_filters_by_gpu_name_id_index_and_hostname(client):
    other = dict(GPU, hostname="node-2", gpuId="GPU-other", gpuName="NVIDIA H100", gpuIndex=1)
    assert client.post("/metrics", json=[GPU, other, SELF_TEST]).status_code == 201
    assert {i["hostname"] for i in items(client, "gpuName=NVIDIA H100")} == {"node-2"}
    assert len(items(client, f"gpuId={UUID}")) == 5
    assert len(items(client, "gpuIndex=1&metric=power")) == 1
    assert [i["gpuName"] for i in items(client, "hostname=DESKTOP-01&metric=power")] == [
        "NVIDIA GeForce RTX 4090", "GPU"]
    gpus = client.get("/gpus?gpuName=GPU").get_json()["gpus"]
    assert [(g["gpuId"], g["gpuIndex"]) for g in gpus] == [(None, None)]


@pytest.mark.parametrize("variant, payload", [
    ({k: v for k, v in INGEST_EXAMPLES["memory"].items() if k != "gpuIndex"},
     {"totalMiB": 10240, "usedMiB": 2048, "freeMiB": 8192}),
    ({k: v for k, v in INGEST_EXAMPLES["clocks"].items() if k != "memoryMHz"},
     {"graphicsMHz": 1800, "memoryMHz": None, "smMHz": None}),
    (dict(INGEST_EXAMPLES["clocks"], smMHz=2520), {"graphicsMHz": 1800, "memoryMHz": 7000, "smMHz": 2520}),
    ({"timestamp": "2025-01-01T00:00:00Z", "metric": "clocks", "smMHz": 2100},
     {"graphicsMHz": None, "memoryMHz": None, "smMHz": 2100}),
    ({k: v for k, v in INGEST_EXAMPLES["process"].items() if k != "pid"}, {"pid": None, "name": None, "usedMiB": 512}),
    (dict(INGEST_EXAMPLES["process"], name="trainer"), {"pid": 1234, "name": "trainer", "usedMiB": 512}),
])
def test_the_backends_accepted_variants(client, variant, payload):
    assert client.post("/metrics", json=variant).status_code == 201
    assert items(client)[0]["payload"] == payload


def test_processes_without_pid_of_one_instant_are_kept_apart(client):
    example = {k: v for k, v in INGEST_EXAMPLES["process"].items() if k != "pid"}
    batch = [dict(example, name="a.exe"), dict(example, name="b.exe"), dict(example, name="a.exe")]
    assert client.post("/metrics", json=batch).get_json() == {"saved": 2, "duplicates": 1, "received": 3}
    assert sorted(i["payload"]["name"] for i in items(client)) == ["a.exe", "b.exe"]


def test_averages_of_an_optional_clock_count_only_the_records_that_carry_it(client):
    clocks = INGEST_EXAMPLES["clocks"]  # graphics and memory only
    batch = [clocks, dict(clocks, timestamp="2025-01-01T00:00:01Z", smMHz=2000),
             dict(clocks, timestamp="2025-01-01T00:02:00Z", smMHz=1000)]
    assert client.post("/metrics", json=batch).status_code == 201
    body = client.get("/metrics?metric=clocks&aggregate=avg&field=smMHz").get_json()
    assert (body["value"], body["count"]) == (1500, 2)
    assert client.get("/metrics?metric=clocks&aggregate=count").get_json()["value"] == 3
    partial = client.get("/metrics?metric=clocks&aggregate=avg&field=smMHz&start=2025-01-01T00:00:00.500Z"
                         "&end=2025-01-01T00:03:00Z").get_json()
    assert (partial["value"], partial["count"]) == (1500, 2)
    [stats] = client.get("/stats").get_json()["gpus"]
    assert stats["metrics"]["clocks"]["fields"]["smMHz"] == {"avg": 1500, "min": 1000, "max": 2000}
    assert stats["metrics"]["clocks"]["fields"]["graphicsMHz"]["avg"] == 1800


@pytest.mark.parametrize("record, field", [
    (dict(GPU, powerMilliwatts=-1), "powerMilliwatts"),
    (dict(GPU, powerMilliwatts="28450"), "powerMilliwatts"),
    (dict(GPU, temperatureCelsius=True), "temperatureCelsius"),
    (dict(GPU, gpuUtilPercent=100.5), "gpuUtilPercent"),
    (dict(GPU, smClockMHz=None), "smClockMHz"),
    ({k: v for k, v in GPU.items() if k != "freeMemoryMiB"}, "freeMemoryMiB"),
    (dict(GPU, metricType="fan"), "metricType"),
    (dict(GPU, metricType=["gpu"]), "metricType"),
    (dict(GPU, metric="memory"), "metricType"),
    (dict(GPU, watts=28.45), "watts"),
    (dict(GPU, gpuIndex=-1), "gpuIndex"),
    (dict(GPU, gpuId="g" * 129), "gpuId"),
    (dict(PROCESS, processName=42), "processName"),
    (dict(PROCESS, processName="x" * 1025), "processName"),
    (dict(PROCESS, processName="a\x00b"), "processName"),
    (dict(PROCESS, pid=2 ** 31), "pid"),
    (dict(PROCESS, processUsedMemoryMiB=-1), "processUsedMemoryMiB"),
    (dict(PROCESS, usedMiB=5), "usedMiB"),
    ({"timestamp": "2025-01-01T00:00:00Z", "metric": "clocks"}, "graphicsMHz"),
    (dict(INGEST_EXAMPLES["clocks"], graphicsMHz=None, memoryMHz=None), "graphicsMHz"),
])
def test_invalid_crawler_field_is_named_and_nothing_is_stored(client, record, field):
    body = assert_error_shape(client.post("/metrics", json=[GPU, PROCESS, record]), 422, "invalid_records")
    assert [(p["index"], p["field"]) for p in body["details"]] == [(2, field)]
    assert client.get("/gpus").get_json()["count"] == 0


def test_optional_clocks_merge_across_requests_into_one_minute(client):
    """Stored minutes and totals merged in SQL, where either side may lack a column."""
    clocks = {"timestamp": "2025-01-01T00:00:00Z", "metric": "clocks"}
    for second, values in enumerate([{"graphicsMHz": 1800}, {"smMHz": 2000, "memoryMHz": 7000},
                                     {"graphicsMHz": 1000, "smMHz": 1000}, {"memoryMHz": 5000}]):
        assert client.post("/metrics", json=dict(clocks, timestamp=f"2025-01-01T00:00:{second:02d}Z",
                                                 **values)).status_code == 201
    [stats] = client.get("/stats").get_json()["gpus"]
    assert stats["metrics"]["clocks"]["count"] == 4
    assert stats["metrics"]["clocks"]["fields"] == {
        "graphicsMHz": {"avg": 1400, "min": 1000, "max": 1800},
        "memoryMHz": {"avg": 6000, "min": 5000, "max": 7000},
        "smMHz": {"avg": 1500, "min": 1000, "max": 2000}}
    whole_minute = client.get("/metrics?metric=clocks&aggregate=min&field=memoryMHz&bucket=1m").get_json()
    assert [(b["value"], b["count"]) for b in whole_minute["buckets"]] == [(5000, 2)]
