"""The sampler hub: a small Flask extension owning the sources, their threads and the ring buffer.

State lives in ``app.extensions["sampler_hub"]`` (one per app), so several apps in one process
(tests) never share threads. Threads start explicitly: from gunicorn's ``post_worker_init`` after the
fork, or on the first request for any other server; never at import or in ``create_app``.
"""
from __future__ import annotations

import math
import os
import platform
import threading
import time
from typing import Any, Callable

from flask import Flask, current_app

from ..once import start_once
from .buffer import Frame, RingBuffer
from .runner import PeriodicThread, SourceState
from .snapshot import compose, gpu_problems, utc_timestamp
from .source import Source
from .sources import build_sources
from .xid import utc_now

EXTENSION_KEY = "sampler_hub"


class HubState:
    def __init__(self, sources: list[Source], interval_sec: float, history_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_sec = interval_sec
        self.states = [SourceState(source) for source in sources]
        self.buffer = RingBuffer(max(1, math.ceil(history_seconds / interval_sec)))
        self.clock = clock
        self.last_tick_at: float | None = None
        self._threads: list[PeriodicThread] = []
        self._start_lock = threading.Lock()

    # -- running -------------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        return bool(self._threads)

    @start_once
    def start(self) -> None:
        """Read every source once, publish the first frame, then hand each source its own thread."""
        for state in self.states:
            state.poll(self.clock)
        self.tick()
        threads = [
            PeriodicThread(f"sampler-{s.source.name}", s.source.interval_sec,
                           lambda s=s: s.poll(self.clock), self.clock,
                           native=getattr(s.source, "blocks_in_c", False))
            for s in self.states
        ]
        # The tick runs half an interval after the sources so it merges fresh readings, not ones
        # being taken at the same instant.
        threads.append(PeriodicThread("sampler-tick", self.interval_sec, self.tick, self.clock,
                                      delay=self.interval_sec / 2))
        # Reads that block (PCIe throughput, XID events) run beside their source, never in its read.
        for s in self.states:
            threads.extend(getattr(s.source, "helper_threads", list)())
        for thread in threads:
            thread.start()
        self._threads = threads

    def stop(self) -> None:
        for thread in self._threads:
            thread.stop()
        self._threads = []

    def tick(self) -> Frame:
        """Compose the latest readings into one snapshot, serialize it once and publish it."""
        now = self.clock()
        frame = self.buffer.publish(compose(self.states, now, utc_timestamp()), now)
        self.last_tick_at = now
        return frame

    # -- reading -------------------------------------------------------------------------------
    @property
    def frame_wait_sec(self) -> float:
        """How long a reader waits for a frame: two intervals, so one late tick is not taken for a
        stopped sampler, and at least a second, so short intervals do not spin the live streams."""
        return max(2 * self.interval_sec, 1.0)

    def latest(self, wait_sec: float = 0.0) -> Frame | None:
        frame = self.buffer.latest()
        if frame is None and wait_sec > 0:
            frame = self.buffer.wait_newer(0, wait_sec)
        return frame

    def first_frame(self) -> Frame | None:
        """The latest frame; a reader arriving before the first tick of a started sampler (the
        server just started) waits for it briefly rather than getting nothing."""
        return self.latest(wait_sec=self.frame_wait_sec if self.started else 0.0)

    def history(self, seconds: float) -> list[Frame]:
        return self.buffer.since(self.clock() - seconds)

    def gpu_sources(self) -> list[SourceState]:
        return [s for s in self.states if hasattr(s.source, "vendor")]

    def vendor_available(self, vendor: str) -> bool:
        return any(s.source.available for s in self.gpu_sources() if s.source.vendor == vendor)

    def health(self) -> dict[str, Any]:
        now = self.clock()
        nvidia, rocm = self.vendor_available("NVIDIA"), self.vendor_available("AMD")
        tick_age = None if self.last_tick_at is None else round(now - self.last_tick_at, 3)
        sources = {s.source.name: s.status(now) for s in self.states}
        for s in self.gpu_sources():
            sources[s.source.name].update(available=s.source.available, reason=s.source.unavailable_reason)
        latest = self.buffer.latest()
        gpus = latest.snapshot["gpus"] if latest else []
        problems = gpu_problems(gpus, utc_now())
        if self.started and (tick_age is None or tick_age > 3 * self.interval_sec + 1):
            status = "unhealthy"  # the tick thread itself is not running
        elif any(st["status"] in ("error", "stale") for st in sources.values()) or any(
                not g.get("available", True) for g in gpus) or problems:
            status = "degraded"
        else:
            status = "healthy"
        return {
            "status": status,
            "nvidia_available": nvidia,
            "rocm_available": rocm,
            "gpu_support": "NVIDIA" if nvidia else "AMD/ROCm" if rocm else "None",
            "platform": platform.system(),
            "sampler": {
                "running": self.started,
                "worker_pid": os.getpid(),  # which gunicorn worker answered (each samples on its own)
                "interval_sec": self.interval_sec,
                "last_tick_age_sec": tick_age,
                "sources": sources,
            },
            "gpus": [
                {"index": g.get("index"), "uuid": g.get("uuid"), "model": g.get("model"),
                 "vendor": g.get("vendor"), "available": g.get("available", True),
                 "stale": g.get("stale", False), "error": g.get("error"),
                 "fieldErrors": g.get("fieldErrors") or {}, "xidErrors": g.get("xidErrors")}
                for g in gpus
            ],
            "problems": problems,
        }


class SamplerHub:
    """Extension object created once in ``extensions.py``; per-app state in ``app.extensions``."""

    def init_app(self, app: Flask, sources: list[Source] | None = None) -> HubState:
        state = HubState(
            sources if sources is not None else build_sources(app.config),
            interval_sec=app.config["SAMPLE_INTERVAL_SEC"],
            history_seconds=app.config["HISTORY_SECONDS"],
        )
        app.extensions[EXTENSION_KEY] = state
        if app.config["SAMPLERS_ENABLED"]:
            # Servers other than gunicorn (flask run, waitress...) get the threads on first request;
            # under gunicorn, post_worker_init has started them already and this is a no-op.
            app.before_request(state.start)
        return state

    @staticmethod
    def state(app: Flask | None = None) -> HubState:
        return (app or current_app).extensions[EXTENSION_KEY]
