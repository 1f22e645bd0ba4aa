"""What both fleet buses share: the message format, the bounded outbox and the state ``/health``
reports. ``redis_bus.py`` fans committed batches out to every process of every instance,
``worker_bus.py`` to the sibling workers of one gunicorn master; ``Fleet`` treats them alike. A batch
travels as its spans (``table.Span``: per key, the newest row, how many rows and the oldest time),
which is all a fleet table takes from it.

The database stays the truth and a bus is only a relay, so ingest never waits on one: ``publish``
appends the batch to a bounded outbox and returns (the oldest batch is dropped and counted when it
is full), and a sender thread of the bus encodes and sends it. Every loop is a plain thread: under
gunicorn's gevent worker a greenlet on cooperative sockets, so none of them holds up a request.
"""
from __future__ import annotations

import logging
import os
import platform
import threading
import time
import uuid
from collections import deque
from typing import Any, Callable, Iterator, Sequence

import orjson

from ..once import start_once
from ..storage.kinds import KINDS_BY_CODE
from ..storage.timefmt import iso_utc
from ..storage.writer import Row
from .table import Span

log = logging.getLogger(__name__)
#: Batches waiting for the sender; beyond this (the other side slow or down) the oldest are dropped.
OUTBOX_BATCHES = 1024
#: A sender gathers what is committed in this window into one message. Under single-record ingest a
#: worker commits hundreds of groups a second, and a send per group (and a decode and an apply in
#: every receiver) cost more than the rows themselves; 50 ms is a fifth of the stream's flush interval.
GATHER_SEC = 0.05

OnSpans = Callable[[list[Span]], None]


def encode(source: str, spans: Sequence[Span]) -> bytes:
    """Compact: one array per span, the row's fields in ``Row`` order, then count and oldest time."""
    return orjson.dumps({"src": source, "spans": [(*span.row, span.count, span.oldest_ms) for span in spans]})


#: Each field of a sent span (``Row``'s, then count and oldest time): what the types may be. Anything
#: may be published on a Redis channel, and a value of another type would fail later, in the table or
#: in every fleet client's frame, instead of here.
_NUMBER, _TEXT = (int, float, type(None)), (str, type(None))
_SPAN_FIELDS = ((str,), (int, type(None)), _TEXT, _TEXT, (int,), (int,), (int,), _NUMBER, _NUMBER, _NUMBER, _TEXT,
                (int,), (int,))


def _span(fields: list[Any]) -> Span:
    if len(fields) != len(_SPAN_FIELDS) or not all(
            type(value) in kinds for value, kinds in zip(fields, _SPAN_FIELDS)):
        raise ValueError("not a span")
    if fields[4] not in KINDS_BY_CODE or fields[-2] < 1:
        raise ValueError("unknown metric or count")
    return Span(Row(*fields[:-2]), fields[-2], fields[-1])


def decode(data: bytes) -> tuple[str, list[Span]]:
    """Raises ValueError, KeyError or TypeError for anything but a message ``encode`` made."""
    message = orjson.loads(data)
    source = message["src"]
    if not isinstance(source, str):
        raise ValueError("not a source")
    return source, [_span(fields) for fields in message["spans"]]


def encode_chunks(source: str, spans: Sequence[Span], limit: int) -> Iterator[bytes]:
    """``spans`` as messages of at most ``limit`` bytes each (a datagram cannot be split on the way),
    each one decodable alone; a single span longer than ``limit`` still comes out alone."""
    data = encode(source, spans)
    if len(data) <= limit or len(spans) == 1:
        yield data
        return
    step = max(1, len(spans) * (limit - 100) // len(data))  # parts of average spans just under the limit
    for start in range(0, len(spans), step):
        yield from encode_chunks(source, spans[start:start + step], limit)


class Bus:
    """The shared half of a bus; a subclass names its ``mode`` and its loops, and says when it is ready."""

    mode = ""

    def __init__(self, on_spans: OnSpans, outbox_batches: int = OUTBOX_BATCHES) -> None:
        self.on_spans = on_spans
        #: Tells this process's own messages apart when they come back (Redis sends them to all).
        self.source = f"{platform.node()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._outbox: deque[list[Span]] = deque(maxlen=outbox_batches)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._start_lock = threading.Lock()
        self.errors: dict[str, tuple[str, int]] = {}  # part -> (reason, since ms)
        self.counts = {"published": 0, "received": 0, "dropped": 0}

    # -- to be provided by the subclass ---------------------------------------------------------------
    def _loops(self) -> dict[str, Callable[[], None]]:
        """Thread name -> loop, started once by ``start``."""
        raise NotImplementedError

    def _ready(self) -> bool:
        """Whether it hears the others (while not, and nothing failed yet, it is ``starting``)."""
        raise NotImplementedError

    # -- publishing (any thread; never blocks) -------------------------------------------------------
    def publish(self, spans: Sequence[Span]) -> None:
        if len(self._outbox) == self._outbox.maxlen:
            self.counts["dropped"] += 1
        self._outbox.append(list(spans))
        self._wake.set()

    def _gather(self) -> tuple[list[Span], int]:
        """For the sender: waits for a publish (at most a second, so ``stop`` is seen), lets the
        gathering window pass, then takes every waiting span; returns them and how many batches they were."""
        if self._wake.wait(1.0):
            self._stop.wait(GATHER_SEC)
        self._wake.clear()
        batches = [self._outbox.popleft() for _ in range(len(self._outbox))]
        return [span for batch in batches for span in batch], len(batches)

    def _deliver(self, data: bytes) -> None:
        """One message from another process, into the fleet table."""
        try:
            source, spans = decode(data)
        except (ValueError, KeyError, TypeError):
            log.warning("fleet bus: ignored a message that is not a batch of records")
            return
        if source != self.source:
            self.counts["received"] += 1
            try:
                self.on_spans(spans)
            except Exception:  # noqa: BLE001 - a receiver that died here would hear no one until a restart
                log.exception("fleet bus: applying a message failed")

    # -- state ----------------------------------------------------------------------------------------
    def _failed(self, part: str, reason: str) -> None:
        """Logged once per outage of ``part``; ``status`` says why until ``_recovered``."""
        reason = reason[:300]
        if part not in self.errors:
            log.warning("fleet bus %s: %s", part, reason)
            self.errors[part] = (reason, int(time.time() * 1000))
        else:
            self.errors[part] = (reason, self.errors[part][1])

    def _recovered(self, part: str) -> None:
        if self.errors.pop(part, None) is not None:
            log.info("fleet bus %s: recovered", part)

    def status(self) -> dict[str, Any]:
        errors = dict(self.errors)  # a copy: the loops change it on their own threads
        reasons = [f"{part}: {reason}" for part, (reason, _since) in sorted(errors.items())]
        since = min((since for _reason, since in errors.values()), default=None)
        status = "degraded" if errors else "ok" if self._ready() else "starting"
        return {"mode": self.mode, "status": status, "reason": "; ".join(reasons) or None,
                "degraded_since": None if since is None else iso_utc(since), **self.counts}

    # -- life -----------------------------------------------------------------------------------------
    @start_once
    def start(self) -> None:
        """Starts the loops (a no-op once started)."""
        threads = [threading.Thread(target=target, name=name, daemon=True) for name, target in self._loops().items()]
        for thread in threads:
            thread.start()
        self._threads = threads

    def flush(self, timeout: float) -> None:
        """Wait for the outbox to empty (a ``flask`` command publishing before it exits)."""
        deadline = time.monotonic() + timeout
        while self._outbox and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(2.0)
        self._threads = []
