"""Assembling one snapshot, in the live-metrics API's "Metrics Format", from the latest reading of every source."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from .runner import SourceState

#: The live-metrics API's single ``gpu`` object, kept exactly so existing clients keep working.
SINGLE_GPU_FIELDS = (
    "model", "vendor", "memoryTotal", "memoryUsed", "memoryFree", "memoryPercent",
    "utilization", "memoryUtilization", "temperature", "powerDraw", "graphicsClock", "memoryClock",
)


#: An XID this recent makes /api/health degraded: the GPU may be corrupting the jobs on it now.
XID_RECENT = timedelta(minutes=5)


def utc_timestamp(now: datetime | None = None) -> str:
    return (now or datetime.now(timezone.utc)).isoformat(timespec="milliseconds")


def single_gpu(gpu: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if gpu is None else {key: gpu.get(key) for key in SINGLE_GPU_FIELDS}


def compose(states: Iterable[SourceState], now: float, timestamp: str) -> dict[str, Any]:
    """Merge source fragments: scalar sections are taken as-is, ``gpus`` lists are concatenated.

    A source whose last read failed contributes nothing, so its sections stay null. GPUs of a source
    that missed two reads in a row (a hung rocm-smi) are kept but marked ``stale``.
    """
    snapshot: dict[str, Any] = {
        "timestamp": timestamp, "cpu": None, "memory": None, "gpu": None, "battery": None, "gpus": [],
    }
    for state in states:
        reading = state.reading
        if reading is None:
            continue
        stale = state.is_stale(now)
        for key, value in reading.items():
            if key == "gpus":
                snapshot["gpus"].extend({**gpu, "stale": stale} for gpu in value)
            else:
                snapshot[key] = value
    snapshot["gpu"] = single_gpu(snapshot["gpus"][0] if snapshot["gpus"] else None)
    return snapshot


def gpu_problems(gpus: Iterable[dict[str, Any]], now: datetime) -> list[str]:
    """What makes a GPU that still answers unhealthy, one sentence each, naming the GPU.

    A field whose call failed in the latest read (not an unsupported one), and an XID in the last
    five minutes: both are what an operator has to look at, though the GPU is still listed.
    """
    problems = []
    for gpu in gpus:
        name = f"GPU {gpu.get('index')} ({gpu.get('uuid') or gpu.get('model') or gpu.get('vendor')})"
        for field, error in (gpu.get("fieldErrors") or {}).items():
            problems.append(f"{name}: {field} failed: {error}")
        xid = gpu.get("xidErrors") or {}
        if xid.get("lastAt") and now - datetime.fromisoformat(xid["lastAt"]) <= XID_RECENT:
            problems.append(f"{name}: XID {xid['last']} at {xid['lastAt']} ({xid['count']} since start)")
    return problems
