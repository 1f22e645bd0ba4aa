"""XID errors (the driver's "this GPU had a fault" codes) from NVML's event set, on a dedicated thread.

``nvmlEventSetWait_v2`` blocks until an event or its timeout, so it cannot share a thread with the
tick. A timeout is the normal case (NVMLError_Timeout), not a failure. Counts cover only what
happened since the service started: NVML cannot replay earlier events. NVML does not deliver every
XID (79, 119 and 120 never arrive, DCGM #162), so a count of 0 is "none seen", not a clean bill.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Callable

from ..native import allocate_lock
from .gpu_fields import text

log = logging.getLogger(__name__)
MAX_EVENTS_PER_STEP = 64
#: What the watcher needs from the NVIDIA reader: (generation, calls, [(index, handle, uuid)]) or None.
Targets = Callable[[], "tuple[int, Any, list[tuple[int, Any, str | None]]] | None"]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class XidLog:
    """Per GPU: whether it is watched (or why not), and its XIDs seen so far. Thread-safe."""

    def __init__(self) -> None:
        self._lock = allocate_lock()
        self._watched: dict[int, str | None] = {}  # index -> None (watched) or the reason it is not
        self._seen: dict[int, dict[str, Any]] = {}

    def watch(self, index: int, reason: str | None) -> None:
        with self._lock:
            self._watched[index] = reason

    def record(self, index: int, xid: int, at: datetime) -> None:
        with self._lock:
            seen = self._seen.setdefault(index, {"count": 0, "last": None, "lastAt": None})
            seen.update(count=seen["count"] + 1, last=xid, lastAt=at.isoformat(timespec="milliseconds"))

    def summary(self, index: int) -> tuple[dict[str, Any] | None, str | None]:
        """({count, last, lastAt}, None) when watched; (None, reason) when it cannot be; (None, None) unknown yet."""
        with self._lock:
            if index not in self._watched:
                return None, None
            reason = self._watched[index]
            if reason is not None:
                return None, reason
            return dict(self._seen.get(index, {"count": 0, "last": None, "lastAt": None})), None


class XidWatcher:
    """Registers every GPU for XID events and waits on the set; re-registers after a driver reload.

    Its thread is a PeriodicThread (1 s): each step takes the events queued in the set, blocking in
    NVML for at most ``wait_ms`` once none is left; events that arrive between steps wait in the set.
    NVML hands out the latest XID code for every XID event queued before a wait (nvml.h), so in a
    burst the count is right and the codes may repeat the last one.
    """

    def __init__(self, targets: Targets, xids: XidLog, wait_ms: int = 1000,
                 now: Callable[[], datetime] = utc_now) -> None:
        self._targets, self.xids, self._wait_ms, self._now = targets, xids, wait_ms, now
        self._generation: int | None = None
        self._event_set: Any = None
        self._calls: Any = None
        self._uuids: dict[str, int] = {}

    def step(self) -> None:
        """What its thread runs over and over; a failure means registering again, never the end."""
        try:
            if not self.run_once():
                return  # NVML not up yet: the thread's schedule waits a little before asking again
        except Exception:  # noqa: BLE001 - the watcher must outlive any NVML surprise
            log.exception("XID watcher failed; registering again")
            self._generation = None

    def run_once(self) -> bool:
        """Register if needed, then take the events waiting; False when there is nothing to wait on."""
        found = self._targets()
        if found is None:
            return False
        generation, calls, devices = found
        if generation != self._generation:
            self._register(generation, calls, devices)
        if self._event_set is None:
            return False
        for _ in range(MAX_EVENTS_PER_STEP):  # an XID storm is drained, not taken one per second
            if not self._take_one(calls):
                break
        return True

    def _take_one(self, calls: Any) -> bool:
        """One event, or False after ``wait_ms`` without one (NVMLError_Timeout: the normal case)."""
        nvml = calls.nvml
        try:
            data = nvml.nvmlEventSetWait_v2(self._event_set, self._wait_ms)
        except nvml.NVMLError as exc:
            if exc.value == nvml.NVML_ERROR_TIMEOUT:
                return False
            raise
        if data.eventType & nvml.nvmlEventTypeXidCriticalError:
            self._record(calls, data)
        return True

    def _register(self, generation: int, calls: Any, devices: list[tuple[int, Any, str | None]]) -> None:
        nvml = calls.nvml
        if self._event_set is not None:
            try:
                self._calls.nvml.nvmlEventSetFree(self._event_set)
            except Exception:  # noqa: BLE001 - the old set belongs to a library that may be gone
                pass
        self._event_set, self._calls, self._generation, self._uuids = nvml.nvmlEventSetCreate(), calls, generation, {}
        xid = nvml.nvmlEventTypeXidCriticalError
        for index, handle, uuid in devices:
            try:
                if not nvml.nvmlDeviceGetSupportedEventTypes(handle) & xid:
                    self.xids.watch(index, "not_supported")  # Windows: events are not supported at all
                    continue
                nvml.nvmlDeviceRegisterEvents(handle, xid, self._event_set)
            except nvml.NVMLError as exc:
                self.xids.watch(index, calls.reason(exc) or f"NVML: {exc}")
                continue
            self.xids.watch(index, None)
            if uuid:
                self._uuids[uuid] = index

    def _record(self, calls: Any, data: Any) -> None:
        uuid = text(calls.nvml.nvmlDeviceGetUUID(data.device))
        index = self._uuids.get(uuid)
        xid = int(data.eventData)
        log.warning("XID %d on NVIDIA GPU %s (%s)", xid, "?" if index is None else index, uuid)
        if index is not None:
            self.xids.record(index, xid, self._now())
