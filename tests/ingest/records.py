"""The crawler-ingest API's example payloads, verbatim, and a generator of distinct valid records."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

INGEST_EXAMPLES: dict[str, dict[str, Any]] = {
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

#: The C++ crawler's records as it sends them (values invented; no gpuIndex), and its --self-test
#: record (the crawler-ingest API's vocabulary, but no gpuIndex and no gpuId).
CRAWLER_EXAMPLES: dict[str, dict[str, Any]] = {
    "gpu": {"timestamp": "2025-11-12T18:30:05.123Z", "hostname": "DESKTOP-01",
            "gpuId": "GPU-5f1c2a3b-9d4e-4c1a-8b7f-0123456789ab", "gpuName": "NVIDIA GeForce RTX 4090",
            "metricType": "gpu", "totalMemoryMiB": 24564, "usedTotalMemoryMiB": 1820, "freeMemoryMiB": 22744,
            "gpuUtilPercent": 7, "memUtilPercent": 3, "temperatureCelsius": 41, "powerMilliwatts": 28450,
            "graphicsClockMHz": 210, "smClockMHz": 210, "memClockMHz": 405},
    "process": {"timestamp": "2025-11-12T18:30:05.123Z", "hostname": "DESKTOP-01",
                "gpuId": "GPU-5f1c2a3b-9d4e-4c1a-8b7f-0123456789ab", "gpuName": "NVIDIA GeForce RTX 4090",
                "metricType": "process", "pid": 4242, "processName": "python3", "processUsedMemoryMiB": 1536},
    "self_test": {"timestamp": "2025-11-12T18:30:10.131Z", "metric": "power", "hostname": "DESKTOP-01",
                  "gpuName": "GPU", "watts": 100.0},
}

START = datetime(2025, 1, 1, tzinfo=timezone.utc)


def utilization(n: int, start: datetime = START, host: str = "node-a", gpu: int = 0) -> list[dict[str, Any]]:
    """``n`` distinct utilization records one second apart."""
    return [{"timestamp": (start + timedelta(seconds=i)).isoformat(), "gpuIndex": gpu, "metric": "utilization",
             "gpuPercent": i % 101, "memoryPercent": 5, "hostname": host} for i in range(n)]
