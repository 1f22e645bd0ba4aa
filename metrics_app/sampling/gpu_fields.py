"""The one GPU entry shape every vendor reader fills, and the small conversions they share.

Clients draw one table for all GPUs of all vendors, so every reader returns exactly these keys.
Unknown is always ``None`` and never 0: a 0 W or 0 % that really means "not reported" is the bug
gpustat, nvitop and nvidia-smi users complain about most (PYNVML_NOTES.md, "NotSupported by device class").
"""
from __future__ import annotations

import math
from typing import Any, Callable

import psutil

#: The health and depth fields the best exporters show first (throttling, ECC, row remapping, XIDs,
#: PCIe links), the same for every vendor; units are in the names where the name alone is not enough.
DEPTH_KEYS = (
    "pcieLinkGen", "pcieLinkGenMax", "pcieLinkWidth", "pcieLinkWidthMax",
    "pcieTxBytesPerSec", "pcieRxBytesPerSec", "pcieReplayCount",
    "eccEnabled", "eccCorrectedVolatile", "eccUncorrectedVolatile", "eccCorrectedAggregate",
    "eccUncorrectedAggregate",
    "remappedRowsCorrectable", "remappedRowsUncorrectable", "remappedRowsPending", "remappedRowsFailure",
    "retiredPagesSingleBit", "retiredPagesDoubleBit", "retiredPagesPending",
    "throttleReasons", "throttled", "powerDrawAverageWatts", "powerDrawInstantWatts", "energyJoules",
    "encoderUtilization", "decoderUtilization", "encoderSessions", "performanceState",
    "memoryTemperatureCelsius", "xidErrors",
)

#: Every key of a GPU entry, in the order ``flask gpus show`` prints them.
GPU_KEYS = (
    "index", "uuid", "model", "vendor",
    "memoryTotal", "memoryUsed", "memoryFree", "memoryPercent",
    "utilization", "memoryUtilization", "temperature", "powerDraw", "powerLimit",
    "graphicsClock", "smClock", "memoryClock", "fanSpeed",
    *DEPTH_KEYS,
    "processes", "migDevices", "unsupported", "fieldErrors", "available", "error",
)

#: The ``unsupported`` reasons; NVML's three codes, plus what the AMD tools print instead.
NOT_SUPPORTED = "not_supported"
NO_PERMISSION = "no_permission"
FUNCTION_NOT_FOUND = "function_not_found"
NOT_REPORTED = "not_reported"  # the tool ran but printed nothing (or "N/A") for this field
ECC_DISABLED = "ecc_disabled"  # ECC is off on this GPU: its error counts do not exist, they are not 0


def blank_gpu(index: int, vendor: str, uuid: str | None = None, model: str | None = None) -> dict[str, Any]:
    """An entry with every field unknown; readers fill in what the hardware answered."""
    entry: dict[str, Any] = dict.fromkeys(GPU_KEYS)
    entry.update(index=index, vendor=vendor, uuid=uuid, model=model,
                 migDevices=[], unsupported={}, fieldErrors={}, available=True)
    return entry


def failed_gpu(index: int, vendor: str, uuid: str | None, model: str | None, error: str) -> dict[str, Any]:
    """A GPU that failed as a whole stays in the list, so a lost GPU is visible, not silently gone."""
    entry = blank_gpu(index, vendor, uuid, model)
    entry.update(available=False, error=error)
    return entry


def fill_memory(entry: dict[str, Any], total: float | None, used: float | None, free: float | None = None) -> None:
    """Set the four memory fields from whatever two of total/used/free the tool gave, in bytes."""
    total, used, free = number(total), number(used), number(free)
    if free is None and total is not None and used is not None:
        free = max(total - used, 0.0)
    entry["memoryTotal"] = None if total is None else int(total)
    entry["memoryUsed"] = None if used is None else int(used)
    entry["memoryFree"] = None if free is None else int(free)
    entry["memoryPercent"] = percent(used, total)


def mark_unsupported(entry: dict[str, Any], reason: str, *fields: str) -> None:
    """Null each field and say why; a reason for a part of a field (``processUtilization``) adds no key."""
    for field in fields:
        if field in entry:
            entry[field] = None
        entry["unsupported"][field] = reason


def finish(entry: dict[str, Any], ledger: FieldLedger) -> dict[str, Any]:
    """Copy the ledger's reasons and this read's errors into the entry; a GPU that answered nothing failed."""
    if ledger.errors and not ledger.answered:
        return failed_gpu(entry["index"], entry["vendor"], entry["uuid"], entry["model"],
                          next(iter(ledger.errors.values())))
    for key, reason in ledger.unsupported.items():
        mark_unsupported(entry, reason, key)
    for key, error in ledger.errors.items():
        if key in entry:
            entry[key] = None
        entry["fieldErrors"][key] = error
    return entry


def from_table(entry: dict[str, Any], table: dict[str, Any], names: dict[str, tuple[str, ...]]) -> None:
    """Fields from a firmware metrics table (amdsmi): the first name holding a number; "N/A" is a reason."""
    for key, candidates in names.items():
        entry[key] = next((v for v in map(number, map(table.get, candidates)) if v is not None), None)
        if entry[key] is None and table:
            entry["unsupported"][key] = NOT_REPORTED


#: PCIe transfer rate (GT/s) of each generation: AMD tools give the rate, NVML the generation.
_PCIE_GEN_BY_GTS = {2.5: 1, 5.0: 2, 8.0: 3, 16.0: 4, 32.0: 5, 64.0: 6}


def pcie_generation(gigatransfers: float | None) -> int | None:
    return None if gigatransfers is None else _PCIE_GEN_BY_GTS.get(round(float(gigatransfers), 1))


def number(value: Any) -> float | None:
    """A finite number, or None for anything else ("N/A", NaN, inf, None): JSON has no NaN."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value  # NVML's integers stay integers: 65 °C, as the live-metrics API's example shows
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def percent(part: float | None, whole: float | None) -> float | None:
    if part is None or not whole:
        return None
    return round(100.0 * part / whole, 1)


def text(value: Any) -> str | None:
    """Names come back as bytes from old bindings and as str from new ones (PYNVML_NOTES: bytes vs str)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace").strip("\x00").strip()
    return str(value).strip()


def process_name(pid: int) -> str | None:
    """The process name when this process can see it; a GPU process in another container is just a pid."""
    try:
        return psutil.Process(pid).name()
    except (psutil.Error, OSError):
        return None


class Every:
    """True at most once per ``interval`` seconds (first call included): init retries, process refreshes."""

    def __init__(self, interval: float, clock: Callable[[], float]) -> None:
        self.interval, self._clock = interval, clock
        self._next: float | None = None

    def due(self) -> bool:
        now = self._clock()
        if self._next is not None and now < self._next:
            return False
        self._next = now + self.interval
        return True


class FieldLedger:
    """What one GPU's calls said: fields it cannot give (kept for good, never asked again) and fields
    whose call failed in this read (retried next read, shown in ``fieldErrors`` and ``/api/health``)."""

    def __init__(self) -> None:
        self.unsupported: dict[str, str] = {}
        self.errors: dict[str, str] = {}
        self.answered = 0
        #: (first field, position) of fallback calls that said "unsupported" while a later one answers.
        self.dead_calls: set[tuple[str, int]] = set()

    def begin(self) -> None:
        self.errors, self.answered = {}, 0

    def fail(self, fields: tuple[str, ...], error: str) -> None:
        self.errors.update(dict.fromkeys(fields, error))


class FieldCalls:
    """Runs vendor library calls, turning "this GPU cannot tell" errors into per-field reasons.

    ``reason(exc)`` names why a field is missing, or returns None for a real failure: that failure is
    this field's error for this read, unless ``fatal(exc)`` says the GPU as a whole is gone ("GPU is
    lost"), which propagates so the reader marks that one GPU unavailable. One optional call never
    takes the other fields of its GPU down with it.
    """

    def __init__(self, errors: tuple[type[BaseException], ...], reason: Callable[[BaseException], str | None],
                 label: str, fatal: Callable[[BaseException], bool] = lambda exc: False) -> None:
        self.errors, self.reason, self.label, self.fatal = errors, reason, label, fatal

    def first(self, ledger: FieldLedger, fields: tuple[str, ...], *calls: tuple[Any, ...]) -> Any:
        """The answer of the first supported call; when none is, ``fields`` are unsupported for good."""
        if fields[0] in ledger.unsupported:
            return None
        reason = FUNCTION_NOT_FOUND
        for position, (fn, *args) in enumerate(calls):
            if (fields[0], position) in ledger.dead_calls:
                continue
            try:
                answer = fn(*args)
            except self.errors as exc:
                reason = self.reason(exc)
                if reason is None:
                    if self.fatal(exc):
                        raise
                    ledger.fail(fields, f"{self.label}: {exc}")
                    return None
                if position + 1 < len(calls):
                    ledger.dead_calls.add((fields[0], position))  # e.g. a pre-535 driver's missing call
            else:
                ledger.answered += 1
                return answer
        ledger.answered += 1  # "this GPU cannot tell" is an answer too: the GPU is there
        ledger.unsupported.update(dict.fromkeys(fields, reason))
        return None
