"""A psutil stand-in with exact, settable readings (only what HostSource calls)."""
from __future__ import annotations

from collections import namedtuple
from types import SimpleNamespace

scpufreq = namedtuple("scpufreq", "current min max")
svmem = namedtuple("svmem", "total available percent used free")
sswap = namedtuple("sswap", "total used free percent sin sout")
sbattery = namedtuple("sbattery", "percent secsleft power_plugged")

POWER_TIME_UNKNOWN = -1
POWER_TIME_UNLIMITED = -2


def make_psutil(**overrides) -> SimpleNamespace:
    state = {
        "cpu_percent": [0.0, 37.5],
        "cpu_count": 8,
        "cpu_freq": scpufreq(3200.0, 800.0, 4200.0),
        "virtual_memory": svmem(17179869184, 8589934592, 50.0, 8589934592, 4294967296),
        "swap_memory": sswap(8589934592, 0, 8589934592, 0.0, 0, 0),
        "battery": sbattery(85.0, 7200, False),
    }
    state.update(overrides)
    percents = list(state["cpu_percent"])

    def cpu_percent(interval=None):
        assert interval is None, "HostSource must never block the tick measuring CPU"
        return percents.pop(0) if len(percents) > 1 else percents[0]

    return SimpleNamespace(
        cpu_percent=cpu_percent,
        cpu_count=lambda logical=True: state["cpu_count"],
        cpu_freq=lambda: state["cpu_freq"],
        virtual_memory=lambda: state["virtual_memory"],
        swap_memory=lambda: state["swap_memory"],
        sensors_battery=lambda: state["battery"],
        POWER_TIME_UNKNOWN=POWER_TIME_UNKNOWN,
        POWER_TIME_UNLIMITED=POWER_TIME_UNLIMITED,
    )
