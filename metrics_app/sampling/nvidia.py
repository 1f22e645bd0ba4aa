"""NVIDIA GPUs through NVML (``pynvml`` from nvidia-ml-py): one init, about ten cheap calls per GPU per read.

nvidia-smi is never spawned: NVML is the library nvidia-smi itself reads, at microseconds per call.
Every call can fail on some GPU for a reason that only means "this GPU has no such sensor"; those
become a null field plus an ``unsupported`` reason. Any other NVML error fails that one GPU (kept in
the list with ``available: false``) and the next read tries it again.
"""
from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable

from .gpu_fields import (FUNCTION_NOT_FOUND, NO_PERMISSION, NOT_SUPPORTED, Every, blank_gpu, failed_gpu,
                         fill_memory, mark_unsupported, number, process_name)
from .nvidia_extras import NvmlCalls, mig_devices, processes

VENDOR = "NVIDIA"
#: NVML answers these per field; anything else means the GPU as a whole is in trouble.
_REASON_BY_CODE_NAME = {
    "NVML_ERROR_NOT_SUPPORTED": NOT_SUPPORTED,
    "NVML_ERROR_NO_PERMISSION": NO_PERMISSION,
    "NVML_ERROR_FUNCTION_NOT_FOUND": FUNCTION_NOT_FOUND,
}


@dataclass
class _Device:
    """What stays true about one GPU between reads, so each read only asks for what changes."""

    handle: Any
    uuid: str | None
    model: str | None
    #: Fields NVML said it cannot give: asked once, never again (a T4 will not grow a fan).
    unsupported: dict[str, str] = field(default_factory=dict)
    processes: list[dict[str, Any]] | None = None
    #: False once NVML said this GPU has no MIG mode at all (every GeForce): no need to ask again.
    mig_capable: bool = True


class NvidiaSource:
    blocks_in_c = True  # see source.py: read on a native thread
    name = "nvidia"
    vendor = VENDOR

    def __init__(self, interval_sec: float, process_interval_sec: float = 5.0, init_retry_sec: float = 60.0,
                 nvml: ModuleType | None = None, clock: Callable[[], float] = time.monotonic,
                 name_of_pid: Callable[[int], str | None] = process_name) -> None:
        self.interval_sec = interval_sec
        self.available = False
        self.unavailable_reason: str | None = "NVML not initialised yet"
        self._nvml = nvml  # None: import pynvml on the first read, never at import time
        self._calls: NvmlCalls | None = None
        self._name_of_pid = name_of_pid
        self._init_due, self._processes_due = Every(init_retry_sec, clock), Every(process_interval_sec, clock)
        self._devices: dict[int, _Device] = {}

    # -- lifecycle ---------------------------------------------------------------------------
    def _try_init(self) -> bool:
        """Init, at most once per ``init_retry_sec``: a driver installed or reloaded later is picked up."""
        if not self._init_due.due():
            return False
        try:
            nvml = self._nvml or importlib.import_module("pynvml")
        except ImportError:
            self.unavailable_reason = "pynvml is not installed (pip install nvidia-ml-py)"
            return False
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            # LibraryNotFound on hosts without the driver (gpustat #90), DriverNotLoaded after a
            # kernel upgrade (gpustat #110): the service runs on without NVIDIA.
            self.unavailable_reason = f"NVML init failed: {exc}"
            return False
        reasons = {getattr(nvml, code): reason for code, reason in _REASON_BY_CODE_NAME.items()}
        self._nvml, self._calls = nvml, NvmlCalls(nvml, reasons)
        self.available, self.unavailable_reason = True, None
        return True

    def _lose_library(self, exc: Exception) -> None:
        """The driver went away under us (unloaded, or the library itself): start over later."""
        self.available, self.unavailable_reason = False, f"NVML stopped answering: {exc}"
        self._calls, self._devices = None, {}
        try:
            self._nvml.nvmlShutdown()
        except Exception:  # noqa: BLE001 - shutting down a library that is already gone may fail any way
            pass

    # -- reading -----------------------------------------------------------------------------
    def read(self) -> dict[str, Any]:
        if self._calls is None and not self._try_init():
            return {"gpus": []}
        nvml = self._nvml
        try:
            count = nvml.nvmlDeviceGetCount()
        except nvml.NVMLError as exc:
            self._lose_library(exc)
            return {"gpus": []}
        if count == 0:
            self.available, self.unavailable_reason = False, "NVML found no GPU"
            return {"gpus": []}
        self.available, self.unavailable_reason = True, None
        refresh_processes = self._processes_due.due()
        return {"gpus": [self._read_one(index, refresh_processes) for index in range(count)]}

    def _read_one(self, index: int, refresh_processes: bool) -> dict[str, Any]:
        nvml = self._nvml
        known = self._devices.get(index)
        try:
            device = known or self._open(index)
            self._devices[index] = device
            return self._fill(index, device, refresh_processes)
        except nvml.NVMLError as exc:
            # GpuIsLost, Unknown, ...: this GPU only. Forget its handle so the next read reopens it.
            self._devices.pop(index, None)
            return failed_gpu(index, VENDOR, known and known.uuid, known and known.model, f"NVML: {exc}")

    def _open(self, index: int) -> _Device:
        nvml, calls = self._nvml, self._calls
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        device = _Device(handle, None, None)
        device.uuid = calls.text(device.unsupported, "uuid", nvml.nvmlDeviceGetUUID, handle)
        device.model = calls.text(device.unsupported, "model", nvml.nvmlDeviceGetName, handle)
        return device

    def _fill(self, index: int, device: _Device, refresh_processes: bool) -> dict[str, Any]:
        nvml, calls, h, skip = self._nvml, self._calls, device.handle, device.unsupported
        entry = blank_gpu(index, VENDOR, device.uuid, device.model)

        memory = calls.first(skip, ("memoryTotal", "memoryUsed", "memoryFree", "memoryPercent"),
                             *calls.memory_getters(h))
        if memory is not None:
            fill_memory(entry, memory.total, memory.used, memory.free)
        # Utilization is NotSupported on a MIG-enabled parent (nvitop #5) and on old GeForce (nvtop #13).
        rates = calls.first(skip, ("utilization", "memoryUtilization"), (nvml.nvmlDeviceGetUtilizationRates, h))
        if rates is not None:
            entry["utilization"], entry["memoryUtilization"] = number(rates.gpu), number(rates.memory)
        entry["temperature"] = number(calls.first(
            skip, ("temperature",), (nvml.nvmlDeviceGetTemperature, h, nvml.NVML_TEMPERATURE_GPU)))
        # Power draw is NotSupported on many GeForce and laptop GPUs (codecarbon #295, nviwatch PR #28).
        entry["powerDraw"] = _watts(calls.first(skip, ("powerDraw",), (nvml.nvmlDeviceGetPowerUsage, h)))
        # The management limit is NotSupported on an RTX 4080 Mobile while the enforced one works
        # (nvidia_oc PR #22), so the enforced limit comes first.
        entry["powerLimit"] = _watts(calls.first(
            skip, ("powerLimit",), (nvml.nvmlDeviceGetEnforcedPowerLimit, h),
            (nvml.nvmlDeviceGetPowerManagementLimit, h)))
        for key, clock_type in (("graphicsClock", nvml.NVML_CLOCK_GRAPHICS), ("smClock", nvml.NVML_CLOCK_SM),
                                ("memoryClock", nvml.NVML_CLOCK_MEM)):
            entry[key] = number(calls.first(skip, (key,), (nvml.nvmlDeviceGetClockInfo, h, clock_type)))
        # Passively cooled datacenter GPUs have no fan to report (gpustat #138 V100, #161 H100).
        entry["fanSpeed"] = number(calls.first(skip, ("fanSpeed",), (nvml.nvmlDeviceGetFanSpeed, h)))
        if device.mig_capable:
            found = mig_devices(calls, h)
            device.mig_capable = found is not None
            entry["migDevices"] = found or []

        if refresh_processes or device.processes is None:
            device.processes = processes(calls, skip, h, entry["memoryTotal"], self._name_of_pid)
        entry["processes"] = device.processes
        for key, reason in skip.items():
            mark_unsupported(entry, reason, key)
        return entry


def _watts(milliwatts: Any) -> float | None:
    value = number(milliwatts)
    return None if value is None else round(value / 1000.0, 1)
