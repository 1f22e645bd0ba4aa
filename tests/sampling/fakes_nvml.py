"""A fake ``pynvml`` that fails the way the real one does, built on the real module's exception classes.

Everything that is not an ``nvml*`` function (error classes, codes, constants, structs,
``nvmlMemory_v2``, ``NVMLLibraryMismatchError``) is taken from the installed nvidia-ml-py, so the
code under test catches exactly what it would catch on a GPU machine. ``nvml_captures`` builds GPUs
from the nvidia-smi XML captures in ``../shared/fixtures/nvidia-smi``.
"""
from __future__ import annotations

import types
from dataclasses import dataclass, field
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
    # -- depth: by default the GPU answers every call (so a test's unsupported set is only its own)
    pcie: tuple[int, int, int, int] = (4, 4, 16, 16)  # gen, max gen, width, max width
    pcie_kb: tuple[int, int] = (1066699, 14742333)  # tx, rx KB/s
    replay: int = 0
    ecc_mode: int | None = 1  # None: NotSupported; 0 disabled, 1 enabled
    #: field id -> value for nvmlDeviceGetFieldValues; an id not here answers NotSupported in its entry.
    fields: dict[int, int] = field(default_factory=lambda: {
        real.NVML_FI_DEV_ECC_SBE_VOL_TOTAL: 0, real.NVML_FI_DEV_ECC_DBE_VOL_TOTAL: 0,
        real.NVML_FI_DEV_ECC_SBE_AGG_TOTAL: 0, real.NVML_FI_DEV_ECC_DBE_AGG_TOTAL: 0,
        real.NVML_FI_DEV_MEMORY_TEMP: 44, real.NVML_FI_DEV_POWER_AVERAGE: 139620,
        real.NVML_FI_DEV_POWER_INSTANT: 142330})
    #: field id -> NVML return code of that one entry (the call as a whole succeeds).
    field_errors: dict[int, int] = field(default_factory=dict)
    remapped: tuple[int, int, int, int] | None = (0, 0, 0, 0)  # corr, unc, pending, failure; None: NotSupported
    retired: tuple[int, int, int] | None = (0, 0, 0)  # single-bit pages, double-bit pages, pending
    clock_events: int = 0
    energy_mj: int | None = 123456789
    codecs: tuple[int, int, int] = (0, 0, 0)  # encoder %, decoder %, encoder sessions
    pstate: int = 2
    #: (pid, timeStamp µs, smUtil, memUtil) samples held by the driver.
    samples: list[tuple[int, int, int, int]] = field(default_factory=list)
    events: int = real.nvmlEventTypeXidCriticalError | real.nvmlEventTypeSingleBitEccError


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
        #: (gpu, xid) events waiting in the event set; an empty queue makes the wait time out.
        self.pending_events: list[tuple[FakeGpu, int]] = []
        self.registered: list[tuple[FakeGpu, int]] = []
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

    # -- depth ---------------------------------------------------------------------------------
    def _answer(self, fn: str, h: FakeGpu, value: Any) -> Any:
        self._enter(fn, h)
        if value is None:
            raise nvml_error(real.NVML_ERROR_NOT_SUPPORTED)
        return value

    def nvmlDeviceGetCurrPcieLinkGeneration(self, h: FakeGpu) -> int:
        return self._answer("nvmlDeviceGetCurrPcieLinkGeneration", h, h.pcie[0])

    def nvmlDeviceGetMaxPcieLinkGeneration(self, h: FakeGpu) -> int:
        return self._answer("nvmlDeviceGetMaxPcieLinkGeneration", h, h.pcie[1])

    def nvmlDeviceGetCurrPcieLinkWidth(self, h: FakeGpu) -> int:
        return self._answer("nvmlDeviceGetCurrPcieLinkWidth", h, h.pcie[2])

    def nvmlDeviceGetMaxPcieLinkWidth(self, h: FakeGpu) -> int:
        return self._answer("nvmlDeviceGetMaxPcieLinkWidth", h, h.pcie[3])

    def nvmlDeviceGetPcieReplayCounter(self, h: FakeGpu) -> int:
        return self._answer("nvmlDeviceGetPcieReplayCounter", h, h.replay)

    def nvmlDeviceGetPcieThroughput(self, h: FakeGpu, counter: int) -> int:
        return self._answer("nvmlDeviceGetPcieThroughput", h, h.pcie_kb[counter])

    def nvmlDeviceGetEccMode(self, h: FakeGpu) -> list[int]:
        mode = self._answer("nvmlDeviceGetEccMode", h, h.ecc_mode)
        return [mode, mode]

    def nvmlDeviceGetFieldValues(self, h: FakeGpu, field_ids: list[int]) -> Any:
        self._enter("nvmlDeviceGetFieldValues", h)
        values = (real.c_nvmlFieldValue_t * len(field_ids))()
        for slot, fid in zip(values, field_ids):
            slot.fieldId = fid
            if fid in h.field_errors:
                slot.nvmlReturn = h.field_errors[fid]
            elif fid in h.fields:
                slot.nvmlReturn, slot.valueType = real.NVML_SUCCESS, real.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG
                slot.value.ullVal = h.fields[fid]
            else:
                slot.nvmlReturn = real.NVML_ERROR_NOT_SUPPORTED
        return values

    def nvmlDeviceGetRemappedRows(self, h: FakeGpu) -> tuple[int, int, int, int]:
        return self._answer("nvmlDeviceGetRemappedRows", h, h.remapped)

    def nvmlDeviceGetRetiredPages(self, h: FakeGpu, cause: int) -> list[int]:
        count = self._answer("nvmlDeviceGetRetiredPages", h, h.retired and h.retired[cause])
        return [0x1000 * (i + 1) for i in range(count)]

    def nvmlDeviceGetRetiredPagesPendingStatus(self, h: FakeGpu) -> int:
        return self._answer("nvmlDeviceGetRetiredPagesPendingStatus", h, h.retired and h.retired[2])

    def nvmlDeviceGetCurrentClocksEventReasons(self, h: FakeGpu) -> int:
        return self._answer("nvmlDeviceGetCurrentClocksEventReasons", h, h.clock_events)

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, h: FakeGpu) -> int:
        return self._answer("nvmlDeviceGetCurrentClocksThrottleReasons", h, h.clock_events)

    def nvmlDeviceGetTotalEnergyConsumption(self, h: FakeGpu) -> int:
        return self._answer("nvmlDeviceGetTotalEnergyConsumption", h, h.energy_mj)

    def nvmlDeviceGetEncoderUtilization(self, h: FakeGpu) -> list[int]:
        return [self._answer("nvmlDeviceGetEncoderUtilization", h, h.codecs[0]), 167000]

    def nvmlDeviceGetDecoderUtilization(self, h: FakeGpu) -> list[int]:
        return [self._answer("nvmlDeviceGetDecoderUtilization", h, h.codecs[1]), 167000]

    def nvmlDeviceGetEncoderStats(self, h: FakeGpu) -> tuple[int, int, int]:
        return (self._answer("nvmlDeviceGetEncoderStats", h, h.codecs[2]), 0, 0)

    def nvmlDeviceGetPerformanceState(self, h: FakeGpu) -> int:
        return self._answer("nvmlDeviceGetPerformanceState", h, h.pstate)

    def nvmlDeviceGetProcessUtilization(self, h: FakeGpu, since_us: int) -> list[Any]:
        self._enter("nvmlDeviceGetProcessUtilization", h)
        newer = [s for s in h.samples if s[1] > since_us]
        if not newer:
            raise nvml_error(real.NVML_ERROR_NOT_FOUND)  # as the C library: no sample since that time
        return [real.c_nvmlProcessUtilizationSample_t(pid=pid, timeStamp=ts, smUtil=sm, memUtil=mem, encUtil=0,
                                                      decUtil=0) for pid, ts, sm, mem in newer]

    # -- events --------------------------------------------------------------------------------
    def nvmlEventSetCreate(self) -> object:
        self._enter("nvmlEventSetCreate")
        return object()

    def nvmlEventSetFree(self, event_set: object) -> None:
        self._enter("nvmlEventSetFree")

    def nvmlDeviceGetSupportedEventTypes(self, h: FakeGpu) -> int:
        self._enter("nvmlDeviceGetSupportedEventTypes", h)
        return h.events

    def nvmlDeviceRegisterEvents(self, h: FakeGpu, types_: int, event_set: object) -> None:
        self._enter("nvmlDeviceRegisterEvents", h)
        self.registered.append((h, types_))

    def nvmlEventSetWait_v2(self, event_set: object, timeout_ms: int) -> Any:
        self._enter("nvmlEventSetWait_v2")
        if not self.pending_events:
            raise nvml_error(real.NVML_ERROR_TIMEOUT)
        gpu, xid = self.pending_events.pop(0)
        return types.SimpleNamespace(device=gpu, eventType=real.nvmlEventTypeXidCriticalError, eventData=xid,
                                     gpuInstanceId=0xFFFFFFFF, computeInstanceId=0xFFFFFFFF)
