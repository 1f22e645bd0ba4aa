"""Crawler records for the fleet tests, stamped relative to now so staleness is predictable."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

FIELDS = {"utilization": {"gpuPercent": 50.0, "memoryPercent": 20.0}, "temperature": {"celsius": 61.0},
          "power": {"watts": 210.5}, "memory": {"totalMiB": 81920.0, "usedMiB": 1024.0, "freeMiB": 80896.0},
          "process": {"pid": 4242, "usedMiB": 512.0}}


def stamp(seconds_ago: float = 0.0) -> str:
    moment = datetime.now(timezone.utc) - timedelta(seconds=seconds_ago)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def record(host: str = "node-1", gpu: int = 0, metric: str = "utilization", ago: float = 0.0,
           **fields: Any) -> dict[str, Any]:
    return {"timestamp": stamp(ago), "hostname": host, "gpuIndex": gpu, "gpuId": f"GPU-{host}-{gpu}",
            "gpuName": "NVIDIA H100", "metric": metric, **FIELDS[metric], **fields}
