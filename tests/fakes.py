"""Fakes shared by several test packages."""
from __future__ import annotations

from typing import Any

from metrics_app.sampling.gpu_fields import blank_gpu


class StaticSource:
    """A source that returns a fixed fragment, or raises what it is told to."""

    def __init__(self, name: str, fragment: dict[str, Any], interval_sec: float = 0.1) -> None:
        self.name, self.fragment, self.interval_sec = name, fragment, interval_sec
        self.error: Exception | None = None
        self.calls = 0

    def read(self) -> dict[str, Any]:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.fragment


class StaticGpuSource(StaticSource):
    """A GPU source with fixed GPUs and a settable vendor availability."""

    def __init__(self, name: str, vendor: str, gpus: list[dict[str, Any]], available: bool = True,
                 unavailable_reason: str | None = None, interval_sec: float = 0.1) -> None:
        super().__init__(name, {"gpus": gpus}, interval_sec)
        self.vendor, self.available, self.unavailable_reason = vendor, available, unavailable_reason


HOST_FRAGMENT = {
    "cpu": {"utilization": 45.2, "cores": 8, "frequency": 3200.0, "maxFrequency": 4200.0},
    "memory": {"total": 17179869184, "used": 8589934592, "available": 8589934592, "percent": 50.0,
               "swapTotal": 8589934592, "swapUsed": 0, "swapPercent": 0.0},
    "battery": {"level": 85.0, "charging": False, "timeRemaining": 7200},
}


def gpu_entry(index: int, **fields: Any) -> dict[str, Any]:
    """A GPU entry as the readers produce it: every key, the health and depth ones unknown (null)."""
    entry = blank_gpu(index, "NVIDIA")
    entry |= {
        "index": index, "uuid": f"GPU-{index:08d}", "model": "NVIDIA GeForce RTX 4090", "vendor": "NVIDIA",
        "memoryTotal": 25769803776, "memoryUsed": 12884901888, "memoryFree": 12884901888,
        "memoryPercent": 50.0, "utilization": 75.0, "memoryUtilization": 60.0, "temperature": 65,
        "powerDraw": 350.0, "powerLimit": 450.0, "graphicsClock": 2520, "smClock": 2520,
        "memoryClock": 10501, "fanSpeed": 30, "processes": [], "unsupported": {}, "available": True,
        "error": None,
    }
    entry.update(fields)
    return entry
