"""AMD GPUs through the ``amdsmi`` Python library (ROCm 6+), preferred over spawning rocm-smi.

One ``amdsmi_get_gpu_metrics_info`` call per GPU gives activity, temperature, power and clocks from
the firmware's metrics table, so a read costs a few library calls, not a process. The library
answers "N/A" for what a GPU's firmware does not fill in (see the RX 6600 capture in
``../shared/fixtures/amd-smi``); those fields are null with a reason, as with NVML.
"""
from __future__ import annotations

import importlib
import time
from types import ModuleType
from typing import Any, Callable

from .amdsmi_depth import read_depth
from .gpu_fields import (NO_PERMISSION, NOT_SUPPORTED, Every, FieldCalls, FieldLedger, blank_gpu, failed_gpu,
                         fill_memory, finish, from_table, number, text)

VENDOR = "AMD"
MIB = 1024 * 1024
#: amdsmi_status_t codes that mean "this GPU cannot tell" (amdsmi.h); others fail the GPU.
_REASONS = {2: NOT_SUPPORTED, 3: NOT_SUPPORTED, 10: NO_PERMISSION}  # NOT_SUPPORTED, NOT_YET_IMPLEMENTED, NO_PERM
#: snapshot field -> metrics-table keys, preferred first. RDNA fills "average_socket_power" and
#: leaves "current_socket_power" N/A; MI300 the other way round.
_METRICS = {
    "utilization": ("average_gfx_activity",),
    "memoryUtilization": ("average_umc_activity",),
    "temperature": ("temperature_edge", "temperature_hotspot"),
    "powerDraw": ("current_socket_power", "average_socket_power"),
    "graphicsClock": ("current_gfxclk",),
    "smClock": ("current_gfxclk",),  # one shader clock on AMD: it fills both, as with rocm-smi
    "memoryClock": ("current_uclk",),
}


def _error_code(exc: BaseException) -> int | None:
    get = getattr(exc, "get_error_code", None)
    return get() if get else getattr(exc, "err_code", None)


class AmdSmiSource:
    blocks_in_c = True  # see source.py: read on a native thread
    name = "amd"
    vendor = VENDOR

    def __init__(self, interval_sec: float, process_interval_sec: float = 5.0, init_retry_sec: float = 60.0,
                 amdsmi: ModuleType | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_sec = interval_sec
        self.available = False
        self.unavailable_reason: str | None = "amdsmi not initialised yet"
        self._lib = amdsmi  # None: imported on the first read, never at import time
        self._calls: FieldCalls | None = None
        self._handles: list[Any] = []
        self._static: dict[int, tuple[str | None, str | None]] = {}
        self._ledgers: dict[int, FieldLedger] = {}
        self._processes: dict[int, list[dict[str, Any]] | None] = {}
        self._init_due, self._processes_due = Every(init_retry_sec, clock), Every(process_interval_sec, clock)

    def _try_init(self) -> bool:
        if not self._init_due.due():
            return False
        try:
            lib = self._lib or importlib.import_module("amdsmi")
            lib.amdsmi_init()
            self._handles = list(lib.amdsmi_get_processor_handles())
        except Exception as exc:  # noqa: BLE001 - ImportError, AmdSmiException, a broken ROCm install
            self.unavailable_reason = f"amdsmi init failed: {type(exc).__name__}: {exc}"
            return False
        self._lib = lib
        self._calls = FieldCalls((lib.AmdSmiLibraryException,), lambda exc: _REASONS.get(_error_code(exc)), "amdsmi")
        self.available = bool(self._handles)
        self.unavailable_reason = None if self._handles else "amdsmi found no GPU"
        return True

    def read(self) -> dict[str, Any]:
        if self._calls is None and not self._try_init():
            return {"gpus": []}
        refresh = self._processes_due.due()
        return {"gpus": [self._read_one(index, handle, refresh) for index, handle in enumerate(self._handles)]}

    def _read_one(self, index: int, handle: Any, refresh_processes: bool) -> dict[str, Any]:
        ledger = self._ledgers.setdefault(index, FieldLedger())
        ledger.begin()
        try:
            if index not in self._static:
                identity = self._identity(ledger, handle)
                if {"uuid", "model"} <= set(ledger.errors):  # no identity call answered: not a GPU to read
                    return failed_gpu(index, VENDOR, None, None, ledger.errors["uuid"])
                self._static[index] = identity
            entry = blank_gpu(index, VENDOR, *self._static[index])
            self._fill(entry, ledger, handle)
            if refresh_processes or index not in self._processes:
                self._processes[index] = self._list_processes(ledger, handle)
            entry["processes"] = self._processes[index]
        except self._lib.AmdSmiException as exc:  # not a library status: the binding itself broke
            uuid, model = self._static.pop(index, (None, None))
            return failed_gpu(index, VENDOR, uuid, model, f"amdsmi: {exc}")
        entry = finish(entry, ledger)
        if not entry["available"]:
            self._static.pop(index, None)  # answered nothing: ask for its identity again next time
        return entry

    def _identity(self, ledger: FieldLedger, h: Any) -> tuple[str | None, str | None]:
        lib, calls = self._lib, self._calls
        uuid = calls.first(ledger, ("uuid",), (lib.amdsmi_get_gpu_device_uuid, h))
        asic = calls.first(ledger, ("model",), (lib.amdsmi_get_gpu_asic_info, h)) or {}
        return text(uuid), text(asic.get("market_name"))

    def _fill(self, entry: dict[str, Any], ledger: FieldLedger, h: Any) -> None:
        lib, calls = self._lib, self._calls
        metrics = calls.first(ledger, tuple(_METRICS), (lib.amdsmi_get_gpu_metrics_info, h)) or {}
        from_table(entry, metrics, _METRICS)
        vram = calls.first(ledger, ("memoryTotal", "memoryUsed", "memoryFree", "memoryPercent"),
                           (lib.amdsmi_get_gpu_vram_usage, h))
        if vram is not None:  # the library reports MB
            fill_memory(entry, *(None if number(vram.get(k)) is None else number(vram[k]) * MIB
                                 for k in ("vram_total", "vram_used")))
        cap = calls.first(ledger, ("powerLimit",), (lib.amdsmi_get_power_cap_info, h))
        limit_uw = number(cap.get("power_cap")) if cap else None
        entry["powerLimit"] = None if limit_uw is None else round(limit_uw / 1e6, 1)  # microwatts
        speed = calls.first(ledger, ("fanSpeed",), (lib.amdsmi_get_gpu_fan_speed, h, 0))
        top = calls.first(ledger, ("fanSpeed",), (lib.amdsmi_get_gpu_fan_speed_max, h, 0))
        if number(speed) is not None and number(top):
            entry["fanSpeed"] = round(100.0 * number(speed) / number(top), 1)  # speed is 0..max (255)
        read_depth(lib, calls, ledger, h, entry, metrics)

    def _list_processes(self, ledger: FieldLedger, h: Any) -> list[dict[str, Any]] | None:
        """ROCm 6 lists dicts; ROCm 5 listed handles to pass to ``amdsmi_get_gpu_process_info``."""
        lib, calls = self._lib, self._calls
        listed = calls.first(ledger, ("processes",), (lib.amdsmi_get_gpu_process_list, h))
        if listed is None:
            return None
        infos = [p if isinstance(p, dict) else lib.amdsmi_get_gpu_process_info(h, p) for p in listed]
        found = []
        for info in infos:
            vram = number((info.get("memory_usage") or {}).get("vram_mem"))
            # Per-process busy percents are NVML's; amdsmi gives engine time in ns, not a share.
            found.append({"pid": int(info["pid"]), "name": text(info.get("name")) or None,
                          "usedMemory": None if vram is None else int(vram),
                          "smUtilization": None, "memUtilization": None})
        return sorted(found, key=lambda p: p["pid"])
