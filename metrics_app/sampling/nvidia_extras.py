"""The NVML calls that need fallbacks: field calls with per-field reasons, MIG instances, processes.

Each quirk handled here was reported against gpustat, nvitop or pynvml; PYNVML_NOTES.md in the
shared fixtures lists the issues cited below.
"""
from __future__ import annotations

from functools import partial
from types import ModuleType
from typing import Any, Callable

from .gpu_fields import FUNCTION_NOT_FOUND, FieldCalls, fill_memory, number, text

#: Linux's largest possible pid_max. A bigger pid is a misread struct, not a process (nvitop #181).
_PID_MAX = 4_194_304


class NvmlCalls(FieldCalls):
    """NVML's field calls: NotSupported / NoPermission / FunctionNotFound are reasons, not failures."""

    def __init__(self, nvml: ModuleType, reasons: dict[int, str]) -> None:
        self.nvml, self._reasons = nvml, reasons
        # nvidia-ml-py 13.x wraps the unversioned process calls so that a missing ``_v3`` symbol
        # raises NVMLLibraryMismatchError, which is not an NVMLError (gpustat #105, nvitop #181).
        mismatch = getattr(nvml, "NVMLLibraryMismatchError", None)
        super().__init__((nvml.NVMLError,) + ((mismatch,) if mismatch else ()), self._reason)

    def _reason(self, exc: BaseException) -> str | None:
        if not isinstance(exc, self.nvml.NVMLError):
            return FUNCTION_NOT_FOUND
        return self._reasons.get(exc.value)

    def text(self, skip: dict[str, str], key: str, fn: Callable[[Any], Any], handle: Any) -> str | None:
        try:
            value = self.first(skip, (key,), (fn, handle))
        except UnicodeDecodeError as exc:
            # nvidia-ml-py decodes names strictly; on WSL they can be garbage bytes (pynvml #53).
            value = exc.object
        return text(value)

    def memory_getters(self, handle: Any) -> list[tuple[Any, ...]]:
        """``_v2`` first (its "used" leaves out reserved memory, as nvidia-smi does), then v1.

        Unified-memory GB10 answers NotSupported to v1 and, on some drivers, to v2 as well
        (nvitop PR #208, cosmos #180), so both are tried before memory is marked unsupported.
        """
        nvml = self.nvml
        getters: list[tuple[Any, ...]] = []
        if hasattr(nvml, "nvmlMemory_v2"):
            getters.append((partial(nvml.nvmlDeviceGetMemoryInfo, version=nvml.nvmlMemory_v2), handle))
        getters.append((nvml.nvmlDeviceGetMemoryInfo, handle))
        return getters


def mig_devices(calls: NvmlCalls, handle: Any) -> list[dict[str, Any]] | None:
    """The MIG instances of a parent GPU with their memory; None when the GPU has no MIG mode."""
    nvml = calls.nvml
    try:
        current, _pending = nvml.nvmlDeviceGetMigMode(handle)
    except calls.errors as exc:
        if calls.reason(exc) is None:
            raise
        return None
    if current != nvml.NVML_DEVICE_MIG_ENABLE:
        return []
    found = []
    for index in range(nvml.nvmlDeviceGetMaxMigDeviceCount(handle)):
        try:
            mig = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, index)
        except nvml.NVMLError as exc:
            # The max count is how many could exist; the empty slots answer NotFound (go-nvml #60).
            if exc.value == nvml.NVML_ERROR_NOT_FOUND:
                continue
            raise
        skip: dict[str, str] = {}
        entry: dict[str, Any] = {"index": index, "uuid": calls.text(skip, "uuid", nvml.nvmlDeviceGetUUID, mig)}
        memory = calls.first(skip, ("memory",), *calls.memory_getters(mig))
        fill_memory(entry, *((memory.total, memory.used, memory.free) if memory is not None else (None, None)))
        found.append(entry)
    return found


def processes(calls: NvmlCalls, skip: dict[str, str], handle: Any, memory_total: int | None,
              name_of_pid: Callable[[int], str | None]) -> list[dict[str, Any]] | None:
    """Compute and graphics processes merged by pid; None (with a reason) when NVML cannot list them."""
    if "processes" in skip:
        return None
    nvml, merged, failed = calls.nvml, {}, {}
    for kind in ("Compute", "Graphics"):
        # nvidia-ml-py 13.x calls ``_v3`` unconditionally; drivers before ~510 only have ``_v2``
        # or older (pynvml #43, k8s-device-plugin #331), so the versioned call is the fallback.
        base = f"nvmlDeviceGet{kind}RunningProcesses"
        getters = [(getattr(nvml, name), handle) for name in (base, base + "_v2") if hasattr(nvml, name)]
        listed = calls.first(failed, (kind,), *getters)
        for proc in listed or ():
            pid = int(proc.pid)
            if not 0 < pid <= _PID_MAX or pid in merged:
                continue  # a shifted R535 struct reads garbage pids (nvitop PR #79, pynvml #50)
            merged[pid] = {"pid": pid, "name": name_of_pid(pid),
                           "usedMemory": _used_memory(proc.usedGpuMemory, memory_total)}
    if len(failed) == 2:
        skip["processes"] = failed["Compute"]
        return None
    return [merged[pid] for pid in sorted(merged)]


def _used_memory(value: Any, memory_total: int | None) -> int | None:
    """None when NVML could not say (always on Windows/WDDM) or when the number cannot be real.

    The R535 struct change swapped pid and usedGpuMemory in older bindings (pynvml #50), giving
    "used" values larger than the GPU; those are unknown, not huge.
    """
    used = number(value)
    if used is None or used < 0 or (memory_total and used > memory_total):
        return None
    return int(used)
