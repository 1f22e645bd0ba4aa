"""Runs one source on its own thread, on a drift-free monotonic schedule, and survives its errors."""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from ..native import NativeEvent, NativeThread
from .source import Source

log = logging.getLogger(__name__)


def next_deadline(start: float, interval: float, now: float) -> float:
    """The first instant ``start + k * interval`` strictly after ``now``.

    Scheduling on multiples of the start time keeps the rhythm exact over hours (no drift from the
    time each read takes), and a read that overruns skips the missed ticks instead of bunching them.
    """
    k = int((now - start) // interval) + 1
    return start + k * interval


class SourceState:
    """What the hub knows about one source: its latest good reading and its error history."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.reading: dict[str, Any] | None = None
        self.read_at: float | None = None  # monotonic time of the latest successful read
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.failing = False
        self._logged_error: str | None = None

    def record_success(self, reading: dict[str, Any], now: float) -> None:
        if self.failing:
            log.info("source %s recovered", self.source.name)
        self.reading, self.read_at, self.failing = reading, now, False
        self._logged_error = None

    def record_failure(self, exc: BaseException, now: float) -> None:
        message = f"{type(exc).__name__}: {exc}"
        self.failing, self.last_error, self.last_error_at = True, message, now
        self.reading = None  # a failed source's fields become null, never stale numbers
        if message != self._logged_error:  # log each distinct error once, not every tick
            log.warning("source %s failed: %s", self.source.name, message, exc_info=exc)
            self._logged_error = message

    def is_stale(self, now: float) -> bool:
        """Stale when two scheduled reads in a row have been missed (a hung rocm-smi, say)."""
        return self.read_at is not None and now - self.read_at > 2 * self.source.interval_sec + 0.5

    def status(self, now: float) -> dict[str, Any]:
        if self.failing:
            state = "error"
        elif self.read_at is None:
            state = "starting"
        elif self.is_stale(now):
            state = "stale"
        else:
            state = "ok"
        return {
            "status": state,
            "interval_sec": self.source.interval_sec,
            "last_read_age_sec": None if self.read_at is None else round(now - self.read_at, 3),
            "last_error": self.last_error,
            "last_error_age_sec": None if self.last_error_at is None else round(now - self.last_error_at, 3),
        }

    def poll(self, clock: Callable[[], float]) -> None:
        try:
            reading = self.source.read()
        except Exception as exc:  # noqa: BLE001 - any reader error must not kill its thread
            self.record_failure(exc, clock())
        else:
            self.record_success(reading, clock())


class PeriodicThread:
    """A daemon thread calling ``fn`` at ``start + k * interval`` until stopped.

    ``native=True`` puts it on a real OS thread even under gevent, for calls that block in C (NVML,
    amdsmi, psutil): on the event loop a 100-600 ms NVML call would delay every frame and request.
    """

    def __init__(self, name: str, interval: float, fn: Callable[[], None],
                 clock: Callable[[], float] = time.monotonic, delay: float = 0.0, native: bool = False) -> None:
        if interval <= 0:  # refused here rather than killing the thread at its first deadline (÷ 0)
            raise ValueError(f"{name}: interval must be > 0, not {interval}")
        self.interval, self._fn, self._clock, self._delay = interval, fn, clock, delay
        self.name = name
        self._new_event: Callable[[], Any] = NativeEvent if native else threading.Event
        self._stop: Any = self._new_event()
        self._wakeup: Any = self._new_event()  # set by wake() and stop(): ends the current sleep
        self._thread: Any = (NativeThread(self._run, name) if native
                             else threading.Thread(target=self._run, name=name, daemon=True))

    def start(self) -> None:
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def wake(self) -> None:
        """Call ``fn`` now rather than at its next deadline; the schedule then starts again from now."""
        self._wakeup.set()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._wakeup.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _sleep(self, seconds: float) -> bool:
        """Until ``seconds`` have passed (False) or ``wake``/``stop`` was called (True)."""
        if not self._wakeup.wait(max(0.0, seconds)):
            return False
        # A NativeEvent cannot be cleared: the next sleep waits on a fresh event. A wake arriving
        # between the wait and this line is not lost: fn is about to run anyway.
        self._wakeup = self._new_event()
        return True

    def _run(self) -> None:
        self._sleep(self._delay)
        start = self._clock()
        while not self._stop.is_set():
            try:
                self._fn()
            except Exception:  # noqa: BLE001 - a bug in one tick must not end sampling
                log.exception("periodic task %s failed", self.name)
            now = self._clock()
            if self._sleep(next_deadline(start, self.interval, now) - now):
                start = self._clock()
