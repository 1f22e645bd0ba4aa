"""Hostile variants of the C++ crawler's shapes and of the Windows-path repair: each a 4xx in the one
error shape that stores nothing, or stored exactly as sent; never a 500."""
from __future__ import annotations

import time

import orjson
import pytest

from .records import CRAWLER_EXAMPLES
from .test_bad_input import assert_error_shape
from .test_windows_paths import RAW_PROCESS, repaired

GPU, PROCESS = CRAWLER_EXAMPLES["gpu"], CRAWLER_EXAMPLES["process"]


def gpu_count(client) -> int:
    return client.get("/gpus").get_json()["count"]


@pytest.mark.parametrize("record, field", [
    (dict(GPU, metricType=5), "metricType"),
    (dict(GPU, metricType={"gpu": True}), "metricType"),
    (dict(GPU, metricType="gpu" * 10_000), "metricType"),
    (dict(GPU, metricType="GPU"), "metricType"),
    (dict(GPU, metricType="process"), "processUsedMemoryMiB"),
    (dict(GPU, metric=None), "metricType"),
    (dict(GPU, powerMilliwatts=1e308), "powerMilliwatts"),
    (dict(GPU, powerMilliwatts=[28450]), "powerMilliwatts"),
    (dict(GPU, totalMemoryMiB={"value": 1}), "totalMemoryMiB"),
    (dict(GPU, gpuIndex=65_536), "gpuIndex"),
    (dict(GPU, gpuIndex=2 ** 70), "gpuIndex"),
    (dict(GPU, hostname="h\x00"), "hostname"),
    (dict(GPU, gpuId=["GPU-1"]), "gpuId"),
    (dict(GPU, timestamp="2025-11-12T18:30:05.123+25:00"), "timestamp"),
    (dict(PROCESS, pid=True), "pid"),
    (dict(PROCESS, pid="4242"), "pid"),
    (dict(PROCESS, processName={"path": "C:\\"}), "processName"),
])
def test_hostile_crawler_fields_are_422_naming_the_field(client, record, field):
    body = assert_error_shape(client.post("/metrics", json=record), 422, "invalid_records")
    assert field in {p["field"] for p in body["details"]}
    assert gpu_count(client) == 0


def test_one_bad_gpu_record_in_a_thousand_stores_nothing(client):
    batch = [dict(GPU, timestamp=f"2025-11-12T18:{m // 60:02d}:{m % 60:02d}Z") for m in range(1000)]
    batch[737] = dict(batch[737], memUtilPercent=-3)
    body = assert_error_shape(client.post("/metrics", json=batch), 422, "invalid_records")
    assert body["details"] == [{"index": 737, "field": "memUtilPercent",
                                "message": "Must be greater than or equal to 0 and less than or equal to 100."}]
    assert gpu_count(client) == 0


def test_max_batch_gpu_records_are_five_times_as_many_rows(app, client):
    app.config["MAX_BATCH"] = 2_000
    batch = [dict(GPU, timestamp=f"2025-11-12T{m // 3600:02d}:{m // 60 % 60:02d}:{m % 60:02d}Z") for m in range(2_000)]
    assert client.post("/metrics", json=batch).get_json()["saved"] == 10_000
    assert_error_shape(client.post("/metrics", json=batch + [GPU]), 413, "batch_too_large")


def test_the_longest_labels_fit_the_identity(client):
    record = dict(GPU, gpuId="G" * 128, hostname="h" * 255, gpuName="n" * 255)
    assert client.post("/metrics", json=dict(PROCESS, **{k: record[k] for k in ("gpuId", "hostname", "gpuName")},
                                             processName="p" * 1024)).status_code == 201
    assert client.post("/metrics", json=record).get_json()["saved"] == 5
    [gpu] = client.get("/gpus").get_json()["gpus"]
    assert (gpu["gpuId"], gpu["recordCount"]) == ("G" * 128, 6)


@pytest.mark.parametrize("body", [
    b'"\\ud800"',                                          # a lone surrogate escape: valid-looking, not JSON
    b"[" * 2000 + b'"C:\\x"' + b"]" * 2000,               # too deep even once repaired
    b'{"processName":"C:\\x' + b"\\" * 100_000,            # never closed
    b'{"a":"\\x"}' + b"\x80",                              # invalid UTF-8 after the repairable part
    b'{"processName":"C:\\x", "pid": NaN}',                # NaN stays refused
])
def test_hostile_bodies_with_backslashes_stay_400(client, body):
    assert_error_shape(client.post("/metrics", data=body), 400, "invalid_json")
    assert repaired(client) == 0 and gpu_count(client) == 0


def test_a_large_body_full_of_windows_paths_is_repaired_in_linear_time(client):
    batch = b"[" + b",".join(RAW_PROCESS.replace(b"4242", str(pid).encode()) for pid in range(10_000)) + b"]"
    began = time.perf_counter()
    response = client.post("/metrics", data=batch)
    assert response.status_code == 201 and response.get_json()["saved"] == 10_000
    assert time.perf_counter() - began < 30  # about 0.5 s here; a quadratic repair would take minutes
    assert repaired(client) == 1


def test_a_repaired_record_that_is_invalid_is_still_a_422(client):
    body = RAW_PROCESS.replace(b'"pid":4242', b'"pid":-1')
    response = assert_error_shape(client.post("/metrics", data=body), 422, "invalid_records")
    assert response["details"][0]["field"] == "pid"
    assert gpu_count(client) == 0


def test_ndjson_is_not_a_body(client):
    body = orjson.dumps(GPU) + b"\n" + orjson.dumps(PROCESS)
    assert_error_shape(client.post("/metrics", data=body), 400, "invalid_json")
