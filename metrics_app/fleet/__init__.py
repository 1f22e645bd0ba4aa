"""The fleet: every host's latest records live in one place, across instances.

``GET /fleet`` and ``WS /ws/fleet`` read a per-process table (``table.py``) fed by every commit of
crawler records: the writer thread (``storage/write_queue.py``) calls its commit listeners after
each committed group, on its own OS thread. Each process also publishes what it committed and
applies what other processes published: with ``REDIS_URL`` every process of every instance
(``redis_bus.py``); without it, under a gunicorn master with several workers, the workers of that
instance (``worker_bus.py``); otherwise the table holds what this process stored.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Sequence

from flask import Blueprint, Flask
from sqlalchemy.exc import SQLAlchemyError

from ..extensions import db
from ..storage.writer import Row
from .backfill import latest_rows
from .bus import Bus
from .handoff import make_handoff
from .redis_bus import RedisBus
from .table import FleetTable, Key, Span, merged, spans_of
from .worker_bus import join_master

log = logging.getLogger(__name__)
EXTENSION_KEY = "fleet"
LISTENERS_KEY = "commit_listeners"

bp = Blueprint("fleet", __name__)


class Fleet:
    def __init__(self, app: Flask) -> None:
        config = app.config
        self.stale_after_sec = config["FLEET_STALE_AFTER_SEC"]
        self.table = FleetTable(forget_processes_ms=self.stale_after_sec * 1000)
        self.flush_interval = config["FLEET_FLUSH_INTERVAL_SEC"]
        self._handoff = make_handoff()
        self._filled = False
        self._flusher: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.bus: Bus | None = RedisBus(config["REDIS_URL"], config["FLEET_REDIS_CHANNEL"], self.apply_published) \
            if config["REDIS_URL"] else None

    def on_commit(self, rows: Sequence[Row]) -> None:
        """The commit listener: quick, never blocks, never raises (it runs on the writer's thread)."""
        try:
            self._handoff(self._committed_here, list(rows))
        except Exception:  # noqa: BLE001 - the live view must never fail a write
            log.exception("fleet: a committed batch could not be handed to the live table")

    def apply(self, rows: Sequence[Row]) -> None:
        self._apply_spans(spans_of(rows))

    def apply_published(self, spans: list[Span]) -> None:
        """What another process committed (a bus message)."""
        self._apply_spans(merged(spans))

    def _apply_spans(self, spans: dict[Key, Span]) -> None:
        """Into the table; streamed to clients at the next flush (at once when the interval is 0)."""
        if not self.table.apply_spans(spans):
            return
        if self.flush_interval <= 0:
            self.table.flush()
        elif self._flusher is None:
            with self._start_lock:
                if self._flusher is None:
                    self._flusher = threading.Thread(target=self._flush_loop, name="fleet-flusher", daemon=True)
                    self._flusher.start()

    def _flush_loop(self) -> None:
        """A frame at most every ``FLEET_FLUSH_INTERVAL_SEC``, and only when something changed;
        ended processes are forgotten once a minute."""
        swept = time.monotonic()
        while True:
            self.table.has_pending.wait()
            time.sleep(self.flush_interval)
            try:
                self.table.flush()
                if time.monotonic() - swept > 60:
                    swept = time.monotonic()
                    self.table.forget_ended_processes(int(time.time() * 1000))
            except Exception:  # noqa: BLE001 - the stream must outlive a bug in one frame
                log.exception("fleet: flush failed")

    def _committed_here(self, rows: list[Row]) -> None:
        spans = spans_of(rows)
        self._apply_spans(spans)
        if self.bus is not None:
            self.bus.start()
            self.bus.publish(list(spans.values()))

    def start(self) -> None:
        """Starts the bus's loops (a no-op once started)."""
        if self.bus is not None:
            self.bus.start()

    def share_with_workers(self, master_pid: int) -> None:
        """From gunicorn's ``post_worker_init`` when its master runs several workers: without Redis
        (which reaches every process already) this worker and its siblings exchange their commits, so
        a client of any of them sees what all of them stored."""
        if self.bus is None:
            self.bus = join_master(master_pid, self.apply_published)

    def fill_from_database(self) -> None:
        """Before the first fleet request of this process (a no-op after; a database failure is
        retried on the next one)."""
        if self._filled:
            return
        with self._start_lock:
            if self._filled:
                return
            since_ms = int((time.time() - self.stale_after_sec) * 1000)
            try:
                rows = latest_rows(db.engine, since_ms)
            except SQLAlchemyError as exc:
                log.warning("fleet: could not fill the live table from the database yet: %s", exc)
                return
            self._filled = True
        if rows:
            self.apply(rows)

    def status(self) -> dict[str, Any]:
        if self.bus is None:
            return {"mode": "local", "status": "ok", "reason": None}
        return self.bus.status()

    def flush(self, timeout: float = 5.0) -> None:
        if self.bus is not None:
            self.bus.flush(timeout)


def init_app(app: Flask) -> Fleet:
    fleet = Fleet(app)
    app.extensions[EXTENSION_KEY] = fleet
    app.extensions.setdefault(LISTENERS_KEY, []).append(fleet.on_commit)
    app.before_request(fleet.start)  # every instance subscribes, whatever it is asked first
    return fleet


from . import views  # noqa: E402,F401  (routes register themselves on bp)
