"""The NVML calls that need fallbacks: field calls with per-field reasons, MIG instances, processes.

Each quirk handled here was reported against gpustat, nvitop or pynvml; PYNVML_NOTES.md in the
shared fixtures lists the issues cited below.
"""
from __future__ import annotations

from functools import partial
from types import ModuleType
from typing import Any, Callable

from .gpu_fields import FUNCTION_NOT_FOUND, FieldCalls, FieldLedger, fill_memory, number, text

#: Linux's largest possible pid_max. A bigger pid is a misread struct, not a process (nvitop #181).
_PID_MAX = 4_194_304


class NvmlCalls(FieldCalls):
    """NVML's field calls: NotSupported / NoPermission / FunctionNotFound are reasons, not failures."""

    def __init__(self, nvml: ModuleType, reasons: dict[int, str]) -> None:
        self.nvml, self._reasons = nvml, reasons
        # nvidia-ml-py 13.x wraps the unversioned process calls so that a missing ``_v3`` symbol
        # raises NVMLLibraryMismatchError, which is not an NVMLError (gpustat #105, nvitop #181).
        mismatch = getattr(nvml, "NVMLLibraryMismatchError", None)
        super().__init__((nvml.NVMLError,) + ((mismatch,) if mismatch else ()), self._reason, "NVML", self._fatal)

    def _reason(self, exc: BaseException) -> str | None:
        if not isinstance(exc, self.nvml.NVMLError):
            return FUNCTION_NOT_FOUND
        return self._reasons.get(exc.value)

    def _fatal(self, exc: BaseException) -> bool:
        """"GPU is lost" (fell off the bus): every other call would fail too, so the GPU fails at once."""
        return isinstance(exc, self.nvml.NVMLError) and exc.value == self.nvml.NVML_ERROR_GPU_IS_LOST

    def fn(self, name: str) -> Callable[..., Any]:
        """The binding's function, or one raising FunctionNotFound: pynvml 11.4.1 (still shipped in
        NGC containers, optimum-benchmark PR #240) lacks the newer calls altogether."""
        found = getattr(self.nvml, name, None)
        if found is not None:
            return found

        def missing(*_args: Any) -> Any:
            raise self.nvml.NVMLError(self.nvml.NVML_ERROR_FUNCTION_NOT_FOUND)
        return missing

    def text(self, ledger: FieldLedger, key: str, fn: Callable[[Any], Any], handle: Any) -> str | None:
        try:
            value = self.first(ledger, (key,), (fn, handle))
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


def mig_devices(calls: NvmlCalls, ledger: FieldLedger, handle: Any) -> list[dict[str, Any]] | None:
    """The MIG instances of a parent GPU with their memory; None when the GPU has no MIG mode at all.

    Only the mode's own "not supported" means "no MIG"; anything later that fails (an H100 in MIG
    mode answered NotSupported to the max count) makes ``migDevices`` null with its reason and leaves
    every other field of that GPU as it was.
    """
    nvml = calls.nvml
    try:
        current, _pending = nvml.nvmlDeviceGetMigMode(handle)
    except calls.errors as exc:
        if calls.reason(exc) is not None:
            return None
        if calls.fatal(exc):
            raise
        ledger.fail(("migDevices",), f"NVML: {exc}")
        return []
    if current != nvml.NVML_DEVICE_MIG_ENABLE:
        return []
    slots = calls.first(ledger, ("migDevices",), (nvml.nvmlDeviceGetMaxMigDeviceCount, handle))
    found = []
    for index in range(int(number(slots) or 0)):
        try:
            mig = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, index)
        except calls.errors as exc:
            # The max count is how many could exist; the empty slots answer NotFound (go-nvml #60).
            if getattr(exc, "value", None) == nvml.NVML_ERROR_NOT_FOUND or calls.reason(exc) is not None:
                continue
            if calls.fatal(exc):
                raise
            ledger.fail(("migDevices",), f"NVML: {exc}")
            return []
        probe = FieldLedger()
        entry: dict[str, Any] = {"index": index, "uuid": calls.text(probe, "uuid", nvml.nvmlDeviceGetUUID, mig)}
        memory = calls.first(probe, ("memory",), *calls.memory_getters(mig))
        fill_memory(entry, *((memory.total, memory.used, memory.free) if memory is not None else (None, None)))
        found.append(entry)
    return found


def processes(calls: NvmlCalls, ledger: FieldLedger, handle: Any, memory_total: int | None,
              name_of_pid: Callable[[int], str | None]) -> list[dict[str, Any]] | None:
    """Compute and graphics processes merged by pid; None (with a reason) when NVML cannot list them."""
    if "processes" in ledger.unsupported:
        return None
    nvml, merged, probe = calls.nvml, {}, FieldLedger()
    for kind in ("Compute", "Graphics"):
        # nvidia-ml-py 13.x calls ``_v3`` unconditionally; drivers before ~510 only have ``_v2``
        # or older (pynvml #43, k8s-device-plugin #331), so the versioned call is the fallback.
        base = f"nvmlDeviceGet{kind}RunningProcesses"
        getters = [(getattr(nvml, name), handle) for name in (base, base + "_v2") if hasattr(nvml, name)]
        listed = calls.first(probe, (kind,), *getters)
        for proc in listed or ():
            pid = int(proc.pid)
            if not 0 < pid <= _PID_MAX or pid in merged:
                continue  # a shifted R535 struct reads garbage pids (nvitop PR #79, pynvml #50)
            merged[pid] = {"pid": pid, "name": name_of_pid(pid),
                           "usedMemory": _used_memory(proc.usedGpuMemory, memory_total),
                           "smUtilization": None, "memUtilization": None}
    if len(probe.unsupported) == 2:
        ledger.unsupported["processes"] = probe.unsupported["Compute"]
        return None
    if probe.errors and len(probe.errors) + len(probe.unsupported) == 2:
        # Neither list answered: a failure of this read, tried again at the next refresh.
        ledger.fail(("processes",), next(iter(probe.errors.values())))
        return None
    ledger.answered += 1
    return [merged[pid] for pid in sorted(merged)]


def process_utilization(calls: NvmlCalls, ledger: FieldLedger, handle: Any, procs: list[dict[str, Any]] | None,
                        since_us: int) -> int:
    """Fill each process's SM and memory utilization (%); returns the newest sample time to ask from next.

    NVML only lists processes that had samples since ``since_us`` and raises NotFound when none had
    (nvml-wrapper #56): a known process without a new sample was idle, 0 %. Asking from the last
    timestamp seen, not from 0, keeps the values current (nvtop PR #91).
    """
    if not procs or "processUtilization" in ledger.unsupported:
        return since_us
    nvml = calls.nvml
    try:
        samples = nvml.nvmlDeviceGetProcessUtilization(handle, since_us)
    except calls.errors as exc:
        # pynvml raises a bare NVMLError(0) when the size query itself succeeds (no samples at all).
        if getattr(exc, "value", None) in (nvml.NVML_ERROR_NOT_FOUND, nvml.NVML_SUCCESS):
            samples = []
        elif calls.reason(exc) is not None:
            ledger.unsupported["processUtilization"] = calls.reason(exc)
            return since_us
        elif calls.fatal(exc):
            raise
        else:
            ledger.fail(("processUtilization",), f"NVML: {exc}")
            return since_us
    latest: dict[int, Any] = {}
    for sample in samples or ():
        if int(sample.pid) not in latest or sample.timeStamp > latest[int(sample.pid)].timeStamp:
            latest[int(sample.pid)] = sample
    for proc in procs:
        sample = latest.get(proc["pid"])
        proc["smUtilization"] = number(sample.smUtil) if sample is not None else 0
        proc["memUtilization"] = number(sample.memUtil) if sample is not None else 0
    return max([since_us, *(int(s.timeStamp) for s in latest.values())])


def _used_memory(value: Any, memory_total: int | None) -> int | None:
    """None when NVML could not say (always on Windows/WDDM) or when the number cannot be real.

    The R535 struct change swapped pid and usedGpuMemory in older bindings (pynvml #50), giving
    "used" values larger than the GPU; those are unknown, not huge.
    """
    used = number(value)
    if used is None or used < 0 or (memory_total and used > memory_total):
        return None
    return int(used)
