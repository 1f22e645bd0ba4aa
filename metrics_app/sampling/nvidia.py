"""NVIDIA GPUs through NVML (``pynvml`` from nvidia-ml-py): one init, about thirty cheap calls per GPU per read.

nvidia-smi is never spawned: NVML is the library nvidia-smi itself reads, at microseconds per call.
Every call can fail on some GPU for a reason that only means "this GPU has no such sensor"; those
become a null field plus an ``unsupported`` reason, and are not asked again. Any other error of one
call is that field's error for this read (``fieldErrors``, shown in ``/api/health``). Only a GPU
that is lost, or that answers none of its identity calls, fails as a whole (kept in the list with
``available: false``); the next read tries it again. PCIe throughput and XID events, which block,
run on threads of their own (``helper_threads``) and are merged into each read.
"""
from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable

from ..native import allocate_lock
from .gpu_fields import (FUNCTION_NOT_FOUND, NO_PERMISSION, NOT_SUPPORTED, Every, FieldLedger, blank_gpu,
                         failed_gpu, fill_memory, finish, number, process_name)
from .nvidia_extras import NvmlCalls, mig_devices, process_utilization, processes
from .nvidia_health import read_depth
from .pcie import PcieThroughput
from .runner import PeriodicThread
from .xid import XidLog, XidWatcher

VENDOR = "NVIDIA"
#: NVML answers these per field; anything else means the GPU as a whole is in trouble.
_REASON_BY_CODE_NAME = {
    "NVML_ERROR_NOT_SUPPORTED": NOT_SUPPORTED,
    "NVML_ERROR_NO_PERMISSION": NO_PERMISSION,
    "NVML_ERROR_FUNCTION_NOT_FOUND": FUNCTION_NOT_FOUND,
}


class _NoIdentity(Exception):
    """Every identity call of a GPU failed; the message is the first failure."""


@dataclass
class _Device:
    """What stays true about one GPU between reads, so each read only asks for what changes."""

    handle: Any
    uuid: str | None
    model: str | None
    #: Fields NVML said it cannot give (asked once, never again: a T4 will not grow a fan), and this read's errors.
    ledger: FieldLedger = field(default_factory=FieldLedger)
    processes: list[dict[str, Any]] | None = None
    #: False once NVML said this GPU has no MIG mode at all (every GeForce): no need to ask again.
    mig_capable: bool = True
    #: What never changes (maximum PCIe link), read once.
    static: dict[str, Any] = field(default_factory=dict)
    #: Newest process-utilization sample seen (µs), so each refresh asks only for newer ones.
    samples_since_us: int = 0


class NvidiaSource:
    blocks_in_c = True  # see source.py: read on a native thread
    name = "nvidia"
    vendor = VENDOR

    def __init__(self, interval_sec: float, process_interval_sec: float = 5.0, init_retry_sec: float = 60.0,
                 nvml: ModuleType | None = None, clock: Callable[[], float] = time.monotonic,
                 name_of_pid: Callable[[int], str | None] = process_name, pcie_interval_sec: float = 5.0) -> None:
        self.interval_sec, self.pcie_interval_sec = interval_sec, pcie_interval_sec
        self.available = False
        self.unavailable_reason: str | None = "NVML not initialised yet"
        self._nvml = nvml  # None: import pynvml on the first read, never at import time
        self._calls: NvmlCalls | None = None
        self._name_of_pid = name_of_pid
        self._clock = clock
        self._init_due, self._processes_due = Every(init_retry_sec, clock), Every(process_interval_sec, clock)
        self._devices: dict[int, _Device] = {}
        self._identities: dict[int, tuple[str | None, str | None]] = {}  # last seen, kept while a GPU is lost
        self._lock = allocate_lock()  # the helper threads take handles while the tick may replace them
        self._generation = 0  # bumped at every init: handles of an older one are invalid
        self.pcie, self.xids = PcieThroughput(), XidLog()

    # -- helper threads ------------------------------------------------------------------------
    def helper_threads(self) -> list[Any]:
        """The blocking reads, each on its own thread (started and stopped by the hub with the others)."""
        # Both block in C (PCIe throughput ~20 ms a call, the XID wait up to wait_ms): native threads.
        watcher = XidWatcher(self.event_targets, self.xids, wait_ms=500)
        return [PeriodicThread("sampler-nvidia-pcie", self.pcie_interval_sec, self.read_pcie, self._clock,
                               native=True),
                PeriodicThread("sampler-nvidia-xid", 0.5, watcher.step, self._clock, native=True)]

    def _handles(self) -> list[tuple[int, _Device]]:
        with self._lock:
            return list(self._devices.items())

    def read_pcie(self) -> None:
        calls = self._calls
        if calls is not None:
            self.pcie.poll(calls, [(index, device.handle) for index, device in self._handles()])

    def event_targets(self) -> tuple[int, NvmlCalls, list[tuple[int, Any, str | None]]] | None:
        calls = self._calls
        devices = self._handles()
        if calls is None or not devices:
            return None
        return self._generation, calls, [(index, d.handle, d.uuid) for index, d in devices]

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
        self._generation += 1
        self.available, self.unavailable_reason = True, None
        return True

    def _lose_library(self, exc: Exception) -> None:
        """The driver went away under us (unloaded, or the library itself): start over later."""
        self.available, self.unavailable_reason = False, f"NVML stopped answering: {exc}"
        with self._lock:
            self._calls, self._devices = None, {}
        self.pcie.forget()
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
        try:
            device = self._devices.get(index) or self._open(index)
        except (nvml.NVMLError, _NoIdentity) as exc:  # no handle, or neither uuid nor name answered
            return self._failed(index, exc)
        with self._lock:
            self._devices[index] = device
        self._identities[index] = (device.uuid, device.model)
        try:
            return self._fill(index, device, refresh_processes)
        except self._calls.errors as exc:
            # GPU is lost: this GPU only. Forget its handle so the next read reopens it.
            with self._lock:
                self._devices.pop(index, None)
            return self._failed(index, exc)

    def _failed(self, index: int, exc: Exception) -> dict[str, Any]:
        """A GPU failed as a whole keeps the name it last had, and its XIDs (often why it was lost)."""
        uuid, model = self._identities.get(index, (None, None))
        entry = failed_gpu(index, VENDOR, uuid, model, str(exc) if isinstance(exc, _NoIdentity) else f"NVML: {exc}")
        entry["xidErrors"] = self.xids.summary(index)[0]
        return entry

    def _open(self, index: int) -> _Device:
        nvml, calls = self._nvml, self._calls
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        device = _Device(handle, None, None)
        ledger = device.ledger
        device.uuid = calls.text(ledger, "uuid", nvml.nvmlDeviceGetUUID, handle)
        device.model = calls.text(ledger, "model", nvml.nvmlDeviceGetName, handle)
        if ledger.errors and not ledger.answered:
            raise _NoIdentity(next(iter(ledger.errors.values())))
        return device

    def _fill(self, index: int, device: _Device, refresh_processes: bool) -> dict[str, Any]:
        nvml, calls, h, ledger = self._nvml, self._calls, device.handle, device.ledger
        ledger.begin()
        entry = blank_gpu(index, VENDOR, device.uuid, device.model)

        memory = calls.first(ledger, ("memoryTotal", "memoryUsed", "memoryFree", "memoryPercent"),
                             *calls.memory_getters(h))
        if memory is not None:
            fill_memory(entry, memory.total, memory.used, memory.free)
        # Utilization is NotSupported on a MIG-enabled parent (nvitop #5) and on old GeForce (nvtop #13).
        rates = calls.first(ledger, ("utilization", "memoryUtilization"), (nvml.nvmlDeviceGetUtilizationRates, h))
        if rates is not None:
            entry["utilization"], entry["memoryUtilization"] = number(rates.gpu), number(rates.memory)
        entry["temperature"] = number(calls.first(
            ledger, ("temperature",), (nvml.nvmlDeviceGetTemperature, h, nvml.NVML_TEMPERATURE_GPU)))
        # Power draw is NotSupported on many GeForce and laptop GPUs (codecarbon #295, nviwatch PR #28).
        entry["powerDraw"] = _watts(calls.first(ledger, ("powerDraw",), (nvml.nvmlDeviceGetPowerUsage, h)))
        # The management limit is NotSupported on an RTX 4080 Mobile while the enforced one works
        # (nvidia_oc PR #22), so the enforced limit comes first.
        entry["powerLimit"] = _watts(calls.first(
            ledger, ("powerLimit",), (nvml.nvmlDeviceGetEnforcedPowerLimit, h),
            (nvml.nvmlDeviceGetPowerManagementLimit, h)))
        for key, clock_type in (("graphicsClock", nvml.NVML_CLOCK_GRAPHICS), ("smClock", nvml.NVML_CLOCK_SM),
                                ("memoryClock", nvml.NVML_CLOCK_MEM)):
            entry[key] = number(calls.first(ledger, (key,), (nvml.nvmlDeviceGetClockInfo, h, clock_type)))
        # Passively cooled datacenter GPUs have no fan to report (gpustat #138 V100, #161 H100).
        entry["fanSpeed"] = number(calls.first(ledger, ("fanSpeed",), (nvml.nvmlDeviceGetFanSpeed, h)))
        read_depth(calls, ledger, h, entry, device.static)
        self.pcie.fill(index, entry)
        entry["xidErrors"], xid_reason = self.xids.summary(index)
        if xid_reason is not None:
            entry["unsupported"]["xidErrors"] = xid_reason
        if device.mig_capable:
            found = mig_devices(calls, ledger, h)
            device.mig_capable = found is not None
            entry["migDevices"] = found or []

        if refresh_processes or device.processes is None:
            device.processes = processes(calls, ledger, h, entry["memoryTotal"], self._name_of_pid)
            device.samples_since_us = process_utilization(calls, ledger, h, device.processes, device.samples_since_us)
        entry["processes"] = device.processes
        return finish(entry, ledger)


def _watts(milliwatts: Any) -> float | None:
    value = number(milliwatts)
    return None if value is None else round(value / 1000.0, 1)
