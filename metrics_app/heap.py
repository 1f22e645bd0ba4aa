"""Giving the memory of departed WebSocket clients back to the operating system.

Measured with bench/ws_cycles.py (5,000 clients connecting and leaving, ten times): the worker's
resident memory rose ~2 MB a cycle although nothing of the clients survived (the garbage
collector's object counts, threads and greenlets were back to their idle values after each
cycle). What stayed was free memory inside glibc's heap: each connection's greenlet stack copies
and buffers are freed in an order that leaves the heap's top in use, so glibc never shrinks it.
``malloc_trim(0)`` returns those free pages. It runs when a wave of departures has halved the
clients (at least ``MIN_CLOSED`` gone since the last trim, at most half of the peak still open),
so a wave trims a few times (each halving), never once per connection.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
from typing import Callable

log = logging.getLogger(__name__)
MIN_CLOSED = 1_000


def _malloc_trim() -> Callable[[], None] | None:
    """glibc's ``malloc_trim``; None where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        fn = getattr(ctypes.CDLL(name), "malloc_trim")
    except (OSError, AttributeError, TypeError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    return lambda: fn(0)


class HeapTrimmer:
    def __init__(self, trim: Callable[[], None] | None = None) -> None:
        self._trim = trim if trim is not None else _malloc_trim()
        self.peak = self.closed = self.trims = 0

    def opened(self, open_now: int) -> None:
        self.peak = max(self.peak, open_now)

    def closed_one(self, open_now: int) -> None:
        self.closed += 1
        if self._trim is None or self.closed < MIN_CLOSED or open_now > self.peak // 2:
            return
        self._trim()
        self.trims += 1
        log.debug("heap trimmed after %d WebSocket clients left (%d still open)", self.closed, open_now)
        self.peak, self.closed = open_now, 0
