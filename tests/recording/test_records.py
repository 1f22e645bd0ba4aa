"""Snapshot -> crawler-ingest API records: exact values and units, and unknown readings never stored as 0."""
from __future__ import annotations

from metrics_app.recording.records import drop_invalid, snapshot_to_records
from metrics_app.ingest.validation import load_batch

from ..fakes import gpu_entry

TS = "2026-01-02T03:04:05.678+00:00"
LABELS = {"timestamp": TS, "gpuIndex": 0, "hostname": "box", "gpuId": "GPU-00000000",
          "gpuName": "NVIDIA GeForce RTX 4090"}


def snapshot(*gpus):
    return {"timestamp": TS, "gpus": list(gpus)}


def test_a_fully_reported_gpu_gives_every_kind_in_the_apis_units():
    gpu = gpu_entry(0, processes=[{"pid": 4242, "name": "python", "usedMemory": 512 * 1024 * 1024},
                                  {"pid": 4243, "name": None, "usedMemory": None}])
    assert snapshot_to_records(snapshot(gpu), "box") == [
        {**LABELS, "metric": "memory", "totalMiB": 24576.0, "usedMiB": 12288.0, "freeMiB": 12288.0},
        {**LABELS, "metric": "utilization", "gpuPercent": 75.0, "memoryPercent": 60.0},
        {**LABELS, "metric": "temperature", "celsius": 65},
        {**LABELS, "metric": "power", "watts": 350.0},
        {**LABELS, "metric": "clocks", "graphicsMHz": 2520, "memoryMHz": 10501},
        {**LABELS, "metric": "process", "pid": 4242, "usedMiB": 512.0},
    ]


def test_the_records_pass_ingest_validation_as_they_are():
    records = snapshot_to_records(snapshot(gpu_entry(0), gpu_entry(1)), "box")
    rows = load_batch(records, 100)
    assert len(rows) == 10 and {r.hostname for r in rows} == {"box"}


def test_a_kind_with_an_unreported_field_is_left_out_not_zeroed():
    gpu = gpu_entry(0, powerDraw=None, memoryUtilization=None, memoryClock=None,
                    unsupported={"powerDraw": "not_supported"})
    kinds = [r["metric"] for r in snapshot_to_records(snapshot(gpu), "box")]
    assert kinds == ["memory", "temperature"]


def test_unavailable_and_stale_gpus_are_skipped():
    lost = gpu_entry(0, available=False, error="NVML: GPU is lost")
    stale = gpu_entry(1, stale=True)
    fresh = gpu_entry(2, stale=False)
    records = snapshot_to_records(snapshot(lost, stale, fresh), "box")
    assert {r["gpuIndex"] for r in records} == {2}


def test_no_gpus_no_records():
    assert snapshot_to_records({"timestamp": TS, "gpus": []}, "box") == []


def test_an_out_of_range_reading_drops_only_its_own_record():
    records = snapshot_to_records(snapshot(gpu_entry(0, utilization=101.0), gpu_entry(1)), "box")
    kept = drop_invalid(records)
    assert len(records) - len(kept) == 1
    assert not [r for r in kept if r["metric"] == "utilization" and r["gpuIndex"] == 0]
