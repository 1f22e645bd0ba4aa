"""CPU, memory and battery through psutil."""
from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import psutil as _psutil


def _positive_or_none(value: float | None) -> float | None:
    """psutil reports an unknown frequency as 0 (VMs, some ARM boards): that is unknown, not 0 MHz."""
    if value is None or not math.isfinite(value) or value <= 0:
        return None
    return round(float(value), 1)


class HostSource:
    blocks_in_c = True  # see source.py: read on a native thread
    name = "host"

    def __init__(self, interval_sec: float, psutil: ModuleType = _psutil) -> None:
        self.interval_sec = interval_sec
        self._psutil = psutil
        # Prime the CPU counter: cpu_percent(None) measures since the previous call, and the first
        # call has nothing to compare with (it returns a meaningless 0.0).
        self._psutil.cpu_percent(interval=None)

    def read(self) -> dict[str, Any]:
        return {"cpu": self._cpu(), "memory": self._memory(), "battery": self._battery()}

    def _cpu(self) -> dict[str, Any]:
        ps = self._psutil
        freq = ps.cpu_freq()
        return {
            "utilization": round(float(ps.cpu_percent(interval=None)), 1),
            "cores": ps.cpu_count(logical=True),
            "frequency": _positive_or_none(freq.current) if freq else None,
            "maxFrequency": _positive_or_none(freq.max) if freq else None,
        }

    def _memory(self) -> dict[str, Any]:
        vm = self._psutil.virtual_memory()
        sw = self._psutil.swap_memory()
        return {
            "total": vm.total,
            "used": vm.used,
            "available": vm.available,
            "percent": float(vm.percent),
            "swapTotal": sw.total,
            "swapUsed": sw.used,
            "swapPercent": float(sw.percent),
        }

    def _battery(self) -> dict[str, Any] | None:
        ps = self._psutil
        sensors_battery = getattr(ps, "sensors_battery", None)  # absent on some platforms
        battery = sensors_battery() if sensors_battery else None
        if battery is None:
            return None
        secs = battery.secsleft
        known = secs not in (ps.POWER_TIME_UNKNOWN, ps.POWER_TIME_UNLIMITED) and secs is not None and secs >= 0
        return {
            "level": round(float(battery.percent), 1),
            "charging": battery.power_plugged,
            "timeRemaining": int(secs) if known else None,
        }
