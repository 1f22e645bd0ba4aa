"""The seed's example payloads, verbatim, and a generator of distinct valid records."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

SEED_EXAMPLES: dict[str, dict[str, Any]] = {
    "memory": {"timestamp": "2025-01-01T00:00:00Z", "gpuIndex": 0, "metric": "memory",
               "totalMiB": 10240, "usedMiB": 2048, "freeMiB": 8192},
    "utilization": {"timestamp": "2025-01-01T00:00:00Z", "gpuIndex": 0, "metric": "utilization",
                    "gpuPercent": 55, "memoryPercent": 12},
    "temperature": {"timestamp": "2025-01-01T00:00:00Z", "gpuIndex": 0, "metric": "temperature", "celsius": 65},
    "power": {"timestamp": "2025-01-01T00:00:00Z", "gpuIndex": 0, "metric": "power", "watts": 115.2},
    "clocks": {"timestamp": "2025-01-01T00:00:00Z", "gpuIndex": 0, "metric": "clocks",
               "graphicsMHz": 1800, "memoryMHz": 7000},
    "process": {"timestamp": "2025-01-01T00:00:00Z", "gpuIndex": 0, "metric": "process", "pid": 1234, "usedMiB": 512},
}

START = datetime(2025, 1, 1, tzinfo=timezone.utc)


def utilization(n: int, start: datetime = START, host: str = "node-a", gpu: int = 0) -> list[dict[str, Any]]:
    """``n`` distinct utilization records one second apart."""
    return [{"timestamp": (start + timedelta(seconds=i)).isoformat(), "gpuIndex": gpu, "metric": "utilization",
             "gpuPercent": i % 101, "memoryPercent": 5, "hostname": host} for i in range(n)]
