"""A fake ``pynvml`` that fails the way the real one does, built on the real module's exception classes.

Everything that is not an ``nvml*`` function (error classes, codes, constants, ``nvmlMemory_v2``,
``NVMLLibraryMismatchError``) is taken from the installed nvidia-ml-py, so the code under test
catches exactly what it would catch on a GPU machine. GPUs can be built from the nvidia-smi XML
captures in ``../shared/fixtures/nvidia-smi``: an "N/A" there becomes NotSupported here.
"""
from __future__ import annotations

import re
import types
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pynvml as real

MIB = 1024 * 1024


def nvml_error(code: int) -> real.NVMLError:
    return real.NVMLError(code)  # the real factory returns the matching subclass


@dataclass
class FakeMig:
    uuid: str
    memory_total: int
    memory_used: int
    memory_free: int


@dataclass
class FakeGpu:
    """One GPU as the C library sees it. ``name`` is what the C call returns (bytes)."""

    name: bytes = b"NVIDIA GeForce RTX 3080"
    uuid: bytes = b"GPU-19d6d965-2acc-f646-00f8-4c76979aabb4"
    memory: tuple[int, int, int] = (10240 * MIB, 9184 * MIB, 660 * MIB)  # total, used, free
    utilization: tuple[int, int] = (65, 9)
    temperature: int = 27
    power_mw: int = 142330
    power_limit_mw: int = 320000
    clocks: tuple[int, int, int] = (1950, 1950, 9251)  # graphics, sm, mem
    fan: int = 0
    processes: list[tuple[int, int | None]] = field(default_factory=list)
    mig_mode: int | None = None  # None: this GPU has no MIG mode (NotSupported)
    mig_slots: int = 7
    migs: dict[int, FakeMig] = field(default_factory=dict)
    #: nvml function name -> NVML error code it raises on this GPU (NotSupported fan, ...).
    errors: dict[str, int] = field(default_factory=dict)
    lost: bool = False


def _num(value: str | None) -> float | None:
    match = re.match(r"\s*([0-9.]+)", value or "")
    return float(match.group(1)) if match else None


def gpus_from_xml(path: Path) -> list[FakeGpu]:
    """Fake GPUs carrying a real nvidia-smi capture's values; its N/A fields answer NotSupported."""
    gpus = []
    for node in ET.parse(path).getroot().findall("gpu"):
        def value(*paths: str) -> float | None:
            return next((_num(node.findtext(p)) for p in paths if _num(node.findtext(p)) is not None), None)

        errors: dict[str, int] = {}
        ns = real.NVML_ERROR_NOT_SUPPORTED
        readings = {
            "nvmlDeviceGetUtilizationRates": (value("utilization/gpu_util"), value("utilization/memory_util")),
            "nvmlDeviceGetPowerUsage": value("power_readings/power_draw", "gpu_power_readings/power_draw",
                                             "gpu_power_readings/instant_power_draw"),
            "nvmlDeviceGetEnforcedPowerLimit": value("power_readings/enforced_power_limit",
                                                     "gpu_power_readings/current_power_limit"),
            "nvmlDeviceGetFanSpeed": value("fan_speed"),
        }
        for fn, reading in readings.items():
            if reading is None or (isinstance(reading, tuple) and None in reading):
                errors[fn] = ns
        if "nvmlDeviceGetEnforcedPowerLimit" in errors:
            errors["nvmlDeviceGetPowerManagementLimit"] = ns
        migs = {int(m.findtext("index")): FakeMig(
                    f"MIG-{node.findtext('uuid')[4:]}-{m.findtext('index')}",
                    *(int(_num(m.findtext(f"fb_memory_usage/{k}")) * MIB) for k in ("total", "used", "free")))
                for m in node.findall("mig_devices/mig_device")}
        procs = [(int(p.findtext("pid")), None if _num(p.findtext("used_memory")) is None
                  else int(_num(p.findtext("used_memory")) * MIB))
                 for p in node.findall("processes/process_info")]
        util = readings["nvmlDeviceGetUtilizationRates"]
        gpus.append(FakeGpu(
            name=node.findtext("product_name").encode(), uuid=node.findtext("uuid").encode(),
            memory=tuple(int(value(f"fb_memory_usage/{k}") * MIB) for k in ("total", "used", "free")),
            utilization=tuple(int(u or 0) for u in util), temperature=int(value("temperature/gpu_temp")),
            power_mw=int((readings["nvmlDeviceGetPowerUsage"] or 0) * 1000),
            power_limit_mw=int((readings["nvmlDeviceGetEnforcedPowerLimit"] or 0) * 1000),
            clocks=tuple(int(value(f"clocks/{k}_clock")) for k in ("graphics", "sm", "mem")),
            fan=int(readings["nvmlDeviceGetFanSpeed"] or 0), processes=procs,
            mig_mode=1 if node.findtext("mig_mode/current_mig") == "Enabled" else None,
            migs=migs, errors=errors))
    return gpus


class FakeNvml(types.ModuleType):
    """The module object handed to NvidiaSource in place of ``pynvml``."""

    def __init__(self, gpus: list[FakeGpu], *, init_error: int | None = None, missing: set[str] = frozenset(),
                 decodes_names: bool = True) -> None:
        super().__init__("pynvml")
        for key, value in vars(real).items():  # errors, codes, constants: the real ones
            if not (key.startswith("nvml") and callable(value)):
                setattr(self, key, value)
        self.gpus, self.init_error, self.missing = gpus, init_error, set(missing)
        #: nvidia-ml-py >= 11.525 decodes names to str (strictly); pynvml 11.4.1 returns bytes.
        self.decodes_names = decodes_names
        self.calls: list[str] = []
        self.inits = 0
        self.count_error: int | None = None  # e.g. DriverNotLoaded once the module is unloaded

    # -- library -------------------------------------------------------------------------------
    def _enter(self, fn: str, handle: Any = None) -> None:
        self.calls.append(fn)
        if fn in self.missing:  # a symbol the installed driver lacks: raised lazily, at first call
            raise nvml_error(real.NVML_ERROR_FUNCTION_NOT_FOUND)
        if isinstance(handle, FakeGpu):
            if handle.lost:
                raise nvml_error(real.NVML_ERROR_GPU_IS_LOST)
            if fn in handle.errors:
                raise nvml_error(handle.errors[fn])

    def nvmlInit(self) -> None:
        self.inits += 1
        self._enter("nvmlInit")
        if self.init_error is not None:
            raise nvml_error(self.init_error)

    def nvmlShutdown(self) -> None:
        self._enter("nvmlShutdown")

    def nvmlDeviceGetCount(self) -> int:
        self._enter("nvmlDeviceGetCount")
        if self.count_error is not None:
            raise nvml_error(self.count_error)
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        gpu = self.gpus[index]
        self._enter("nvmlDeviceGetHandleByIndex", gpu)
        return gpu

    # -- text ----------------------------------------------------------------------------------
    def _text(self, raw: bytes) -> str | bytes:
        return raw.decode() if self.decodes_names else raw  # strict, as convertStrBytes does

    def nvmlDeviceGetName(self, h: FakeGpu) -> str | bytes:
        self._enter("nvmlDeviceGetName", h)
        return self._text(h.name)

    def nvmlDeviceGetUUID(self, h: FakeGpu | FakeMig) -> str | bytes:
        self._enter("nvmlDeviceGetUUID", h)
        return self._text(h.uuid if isinstance(h.uuid, bytes) else h.uuid.encode())

    # -- readings ------------------------------------------------------------------------------
    def nvmlDeviceGetMemoryInfo(self, h: FakeGpu | FakeMig, version: int | None = None) -> Any:
        self._enter("nvmlDeviceGetMemoryInfo_v2" if version else "nvmlDeviceGetMemoryInfo", h)
        total, used, free = h.memory if isinstance(h, FakeGpu) else (h.memory_total, h.memory_used, h.memory_free)
        if version:
            return real.c_nvmlMemory_v2_t(version=version, total=total, reserved=total - used - free,
                                          free=free, used=used)
        return real.c_nvmlMemory_t(total=total, free=free, used=total - free)

    def nvmlDeviceGetUtilizationRates(self, h: FakeGpu) -> Any:
        self._enter("nvmlDeviceGetUtilizationRates", h)
        return real.c_nvmlUtilization_t(gpu=h.utilization[0], memory=h.utilization[1])

    def nvmlDeviceGetTemperature(self, h: FakeGpu, sensor: int) -> int:
        self._enter("nvmlDeviceGetTemperature", h)
        assert sensor == real.NVML_TEMPERATURE_GPU
        return h.temperature

    def nvmlDeviceGetPowerUsage(self, h: FakeGpu) -> int:
        self._enter("nvmlDeviceGetPowerUsage", h)
        return h.power_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, h: FakeGpu) -> int:
        self._enter("nvmlDeviceGetEnforcedPowerLimit", h)
        return h.power_limit_mw

    def nvmlDeviceGetPowerManagementLimit(self, h: FakeGpu) -> int:
        self._enter("nvmlDeviceGetPowerManagementLimit", h)
        return h.power_limit_mw

    def nvmlDeviceGetClockInfo(self, h: FakeGpu, clock_type: int) -> int:
        self._enter("nvmlDeviceGetClockInfo", h)
        return h.clocks[clock_type]

    def nvmlDeviceGetFanSpeed(self, h: FakeGpu) -> int:
        self._enter("nvmlDeviceGetFanSpeed", h)
        return h.fan

    # -- processes: the unversioned call routes to _v3 with no fallback, as in 13.615.71 ----------
    def _procs(self, fn: str, h: FakeGpu) -> list[Any]:
        self._enter(fn, h)
        if "Graphics" in fn:
            return []  # graphics contexts are not modelled; compute carries the processes
        return [types.SimpleNamespace(pid=pid, usedGpuMemory=used, gpuInstanceId=0xFFFFFFFF,
                                      computeInstanceId=0xFFFFFFFF) for pid, used in h.processes]

    def _unversioned(self, kind: str, h: FakeGpu) -> list[Any]:
        try:
            return self._procs(f"nvmlDevice{kind}_v3", h)
        except real.NVMLError_FunctionNotFound:
            raise real.NVMLLibraryMismatchError(f"Unversioned function called ... use nvmlDevice{kind}_v2")

    def nvmlDeviceGetComputeRunningProcesses(self, h: FakeGpu) -> list[Any]:
        return self._unversioned("GetComputeRunningProcesses", h)

    def nvmlDeviceGetGraphicsRunningProcesses(self, h: FakeGpu) -> list[Any]:
        return self._unversioned("GetGraphicsRunningProcesses", h)

    def nvmlDeviceGetComputeRunningProcesses_v2(self, h: FakeGpu) -> list[Any]:
        return self._procs("nvmlDeviceGetComputeRunningProcesses_v2", h)

    def nvmlDeviceGetGraphicsRunningProcesses_v2(self, h: FakeGpu) -> list[Any]:
        return self._procs("nvmlDeviceGetGraphicsRunningProcesses_v2", h)

    # -- MIG -----------------------------------------------------------------------------------
    def nvmlDeviceGetMigMode(self, h: FakeGpu) -> list[int]:
        self._enter("nvmlDeviceGetMigMode", h)
        if h.mig_mode is None:
            raise nvml_error(real.NVML_ERROR_NOT_SUPPORTED)
        return [h.mig_mode, h.mig_mode]

    def nvmlDeviceGetMaxMigDeviceCount(self, h: FakeGpu) -> int:
        self._enter("nvmlDeviceGetMaxMigDeviceCount", h)
        return h.mig_slots

    def nvmlDeviceGetMigDeviceHandleByIndex(self, h: FakeGpu, index: int) -> FakeMig:
        self._enter("nvmlDeviceGetMigDeviceHandleByIndex", h)
        if index not in h.migs:
            raise nvml_error(real.NVML_ERROR_NOT_FOUND)
        return h.migs[index]
