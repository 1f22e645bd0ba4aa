"""Live snapshot -> records in the crawler-ingest API's format, shared by the local recorder and the push agent.

Pure functions: no Flask, no database. A value the hardware did not report stays absent: a kind whose
required fields are not all known is left out rather than stored with a 0, and a GPU that is
unavailable or stale (its reader missed two reads, so its numbers are old) contributes nothing.
"""
from __future__ import annotations

import logging
from typing import Any

from ..ingest.validation import Rejected, fast_load, marshmallow_errors

log = logging.getLogger(__name__)
MIB = 1024 * 1024

#: Record kind -> (crawler-ingest API field, snapshot GPU key, divisor) for the kinds read straight off a GPU entry.
KIND_SOURCES: dict[str, tuple[tuple[str, str, int], ...]] = {
    "memory": (("totalMiB", "memoryTotal", MIB), ("usedMiB", "memoryUsed", MIB), ("freeMiB", "memoryFree", MIB)),
    "utilization": (("gpuPercent", "utilization", 1), ("memoryPercent", "memoryUtilization", 1)),
    "temperature": (("celsius", "temperature", 1),),
    "power": (("watts", "powerDraw", 1),),
    "clocks": (("graphicsMHz", "graphicsClock", 1), ("memoryMHz", "memoryClock", 1)),
}


def _scaled(value: Any, divisor: int) -> Any:
    return value if divisor == 1 or value is None else value / divisor


def gpu_records(gpu: dict[str, Any], timestamp: str, hostname: str) -> list[dict[str, Any]]:
    """One GPU entry's records: up to five gauge kinds plus one record per process with known memory."""
    if not gpu.get("available", True) or gpu.get("stale") or gpu.get("index") is None:
        return []
    labels = {"timestamp": timestamp, "gpuIndex": gpu["index"], "hostname": hostname,
              "gpuId": gpu.get("uuid"), "gpuName": gpu.get("model")}
    records = []
    for kind, sources in KIND_SOURCES.items():
        values = {field: _scaled(gpu.get(key), divisor) for field, key, divisor in sources}
        if None not in values.values():
            records.append({**labels, "metric": kind, **values})
    for process in gpu.get("processes") or ():
        if process.get("pid") is not None and process.get("usedMemory") is not None:
            records.append({**labels, "metric": "process", "pid": process["pid"],
                            "usedMiB": process["usedMemory"] / MIB})
    return records


def snapshot_to_records(snapshot: dict[str, Any], hostname: str) -> list[dict[str, Any]]:
    """Every GPU of a live snapshot (``/api/metrics`` shape) as crawler-ingest API records stamped with its time."""
    return [record for gpu in snapshot.get("gpus") or ()
            for record in gpu_records(gpu, snapshot["timestamp"], hostname)]


def drop_invalid(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records ingest would accept. A reading outside the schema's sane range (a driver
    reporting 101 % or 4,000 °C) would make ingest refuse the whole batch; here only it is dropped."""
    kept = []
    for record in records:
        try:
            fast_load(record)
        except Rejected:
            if errors := marshmallow_errors(record):
                log.warning("local %s record for GPU %s dropped: %s", record.get("metric"), record.get("gpuIndex"),
                            errors)
                continue
        kept.append(record)
    return kept

