"""The one GPU entry shape every vendor reader fills, and the small conversions they share.

Clients draw one table for all GPUs of all vendors, so every reader returns exactly these keys.
Unknown is always ``None`` and never 0: a 0 W or 0 % that really means "not reported" is the bug
gpustat, nvitop and nvidia-smi users complain about most (PYNVML_NOTES.md, "NotSupported by device class").
"""
from __future__ import annotations

import math
from typing import Any, Callable

import psutil

#: Every key of a GPU entry, in the order ``flask gpus show`` prints them.
GPU_KEYS = (
    "index", "uuid", "model", "vendor",
    "memoryTotal", "memoryUsed", "memoryFree", "memoryPercent",
    "utilization", "memoryUtilization", "temperature", "powerDraw", "powerLimit",
    "graphicsClock", "smClock", "memoryClock", "fanSpeed",
    "processes", "migDevices", "unsupported", "available", "error",
)

#: The ``unsupported`` reasons; NVML's three codes, plus what the AMD tools print instead.
NOT_SUPPORTED = "not_supported"
NO_PERMISSION = "no_permission"
FUNCTION_NOT_FOUND = "function_not_found"
NOT_REPORTED = "not_reported"  # the tool ran but printed nothing (or "N/A") for this field


def blank_gpu(index: int, vendor: str, uuid: str | None = None, model: str | None = None) -> dict[str, Any]:
    """An entry with every field unknown; readers fill in what the hardware answered."""
    entry: dict[str, Any] = dict.fromkeys(GPU_KEYS)
    entry.update(index=index, vendor=vendor, uuid=uuid, model=model,
                 migDevices=[], unsupported={}, available=True)
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
    for field in fields:
        entry[field] = None
        entry["unsupported"][field] = reason


def number(value: Any) -> float | None:
    """A finite number, or None for anything else ("N/A", NaN, inf, None): JSON has no NaN."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value  # NVML's integers stay integers: 65 °C, as the seed's example shows
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


class FieldCalls:
    """Runs vendor library calls, turning "this GPU cannot tell" errors into per-field reasons.

    ``reason(exc)`` names why a field is missing, or returns None when the error means the GPU as a
    whole failed; those errors propagate so the reader can mark that one GPU unavailable.
    """

    def __init__(self, errors: tuple[type[BaseException], ...], reason: Callable[[BaseException], str | None]) -> None:
        self.errors, self.reason = errors, reason

    def first(self, skip: dict[str, str], fields: tuple[str, ...], *calls: tuple[Any, ...]) -> Any:
        """The answer of the first supported call; when none is, ``fields`` go into ``skip`` for good."""
        if fields[0] in skip:
            return None
        reason = FUNCTION_NOT_FOUND
        for fn, *args in calls:
            try:
                return fn(*args)
            except self.errors as exc:
                reason = self.reason(exc)
                if reason is None:
                    raise
        skip.update(dict.fromkeys(fields, reason))
        return None
