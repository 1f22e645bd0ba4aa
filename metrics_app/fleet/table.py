"""The fleet's live state in one process: the latest record per (host, GPU, metric) and the recent
change frames that ``/ws/fleet`` handlers read.

Committed batches are applied at once (``GET /fleet`` and new clients see them) and gathered until
``flush`` turns everything applied since the previous flush into one ``Frame``: the newest record
per key, each serialized once, joined once per distinct filter. So a client without a filter is sent
the very same text as every other, the way ``/ws/metrics`` shares its snapshot frame, and the number of sends per
client is bounded by the flush rate, not by the commit rate (one frame per commit cost every client
a frame encode and a send per batch). A handler remembers the ``seq`` it last sent: a slow one that missed several frames
gets them merged newest-per-key, and one that fell off the ring gets the table itself.

Thread safety: ``apply`` and ``flush`` may run on any thread; every mutation and every read of the
ring happens under one ``Condition``, and waiting handlers are woken through it. An entry's text and
a frame's messages are made outside it, by the first reader that asks: two readers racing there
make the same text twice, which costs time but never changes what is sent.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Protocol, Sequence

import orjson

from ..storage.kinds import KINDS, KINDS_BY_CODE, NO_PID
from ..storage.models import identity_key
from ..storage.timefmt import iso_utc
from ..storage.writer import Row

#: (hostname, GPU identity as gpu_series keys it: its UUID, else its index; metric code, pid): a
#: process record is one row per process of a GPU.
Key = tuple[str, str, int, int]
PROCESS = KINDS["process"].code
#: Entries the frame ring may hold, all frames together (the newest frame stays whatever its size).
#: Bounded by frames alone, the ring kept every entry of the last 512 flushes: with 16 hosts posting
#: single records it held 44,000 entries (~1.5 KB each with their texts) and grew a worker by 100 MB;
#: a 100-host fleet would have held millions. A reader that falls further behind gets the table.
RING_ENTRIES = 20_000
#: How strongly a host's interval estimate follows the newest gap between two of its records.
_INTERVAL_WEIGHT = 0.2


class Entry:
    """The latest row of one key. Its record shape and JSON text are made the first time a reader
    asks: with no fleet client and no ``GET /fleet`` nothing is encoded at all. Encoding every
    applied row at once cost each worker ~5 % of its CPU under single-record ingest, twice over with
    two workers (each applies its sibling's commits too)."""

    __slots__ = ("key", "ts_ms", "row", "_record", "_text")

    def __init__(self, key: Key, row: Row) -> None:
        self.key, self.ts_ms, self.row = key, row.ts_ms, row
        self._record: dict[str, Any] | None = None
        self._text: str | None = None

    @property
    def record(self) -> dict[str, Any]:
        if self._record is None:
            self._record = to_record(self.row)
        return self._record

    @property
    def text(self) -> str:
        """``record`` as JSON, serialized once however many clients are sent it."""
        if self._text is None:
            self._text = orjson.dumps(self.record).decode()
        return self._text


class Frame:
    """What changed in one flush. The message a client is sent is made once per distinct filter
    (and once for every unfiltered client), not once per client; a client that follows some hosts
    looks only at their entries (``by_host``), not at the whole frame. Measured with 1,000 clients
    each following one of 100 hosts: each client scanning every entry of every frame took more
    than half the CPU that ingest had without them."""

    __slots__ = ("seq", "entries", "_by_host", "_texts")

    def __init__(self, seq: int, entries: tuple[Entry, ...]) -> None:
        self.seq, self.entries = seq, entries
        self._by_host: dict[str, list[Entry]] | None = None
        self._texts: dict[Any, str | None] = {}

    @property
    def text(self) -> str:
        """The whole ``update`` message for a client without a filter."""
        return self.text_for(None)

    def by_host(self) -> dict[str, list[Entry]]:
        if self._by_host is None:
            index: dict[str, list[Entry]] = {}
            for entry in self.entries:
                index.setdefault(entry.key[0], []).append(entry)
            self._by_host = index
        return self._by_host

    def matching(self, keep: "Filter | None") -> list[Entry] | tuple[Entry, ...]:
        if keep is None or keep.empty:
            return self.entries
        if keep.hostnames:
            index = self.by_host()
            candidates: Iterable[Entry] = [e for host in keep.hostnames for e in index.get(host, ())]
        else:
            candidates = self.entries
        return [entry for entry in candidates if keep(entry)]

    def text_for(self, keep: "Filter | None") -> str | None:
        """The ``update`` message for clients with filter ``keep`` (None: nothing of it matches)."""
        cache_key = None if keep is None or keep.empty else keep
        if cache_key not in self._texts:
            entries = self.matching(keep)
            self._texts[cache_key] = message("update", (e.text for e in entries)) if entries else None
        return self._texts[cache_key]


def to_record(row: Row) -> dict[str, Any]:
    """A stored row back in the crawler-ingest API's record shape (what ``POST /metrics`` takes);
    a record sent without a hostname is stored under '' and shown as null, as on the history side."""
    kind = KINDS_BY_CODE[row.metric]
    record: dict[str, Any] = {"timestamp": iso_utc(row.ts_ms), "hostname": row.hostname or None,
                              "gpuIndex": row.gpu_index, "gpuId": row.gpu_uuid, "gpuName": row.gpu_name,
                              "metric": kind.name}
    record.update(zip(kind.fields, (row.v1, row.v2, row.v3)))
    if row.pid != NO_PID:
        record["pid"] = row.pid
    return record


def message(kind: str, texts: Iterable[str]) -> str:
    return f'{{"type":"{kind}","records":[{",".join(texts)}]}}'


class Filter(Protocol):
    """What a fleet client asked for (``filters.FleetFilter``): hashable, so clients asking alike share texts."""

    hostnames: frozenset[str]

    @property
    def empty(self) -> bool: ...

    def __call__(self, entry: Entry) -> bool: ...


@dataclass(slots=True)
class Span:
    """One key's records in one batch: the newest, how many, and the oldest time. What the table
    keeps of a batch, and what the fleet buses send: a 1,000-record batch from one host is a few
    dozen spans, and sending, decoding and applying every row had cost a sibling worker as much
    CPU as storing them."""

    row: Row
    count: int
    oldest_ms: int


def key_of(row: Row) -> Key:
    return row.hostname, identity_key(row.gpu_uuid, row.gpu_index), row.metric, row.pid


def _merge(into: dict[Key, Span], row: Row, count: int, oldest_ms: int) -> None:
    key = key_of(row)
    span = into.get(key)
    if span is None:
        into[key] = Span(row, count, oldest_ms)
        return
    span.count += count
    if oldest_ms < span.oldest_ms:
        span.oldest_ms = oldest_ms
    if row.ts_ms > span.row.ts_ms:
        span.row = row


def spans_of(rows: Iterable[Row]) -> dict[Key, Span]:
    into: dict[Key, Span] = {}
    for row in rows:
        _merge(into, row, 1, row.ts_ms)
    return into


def merged(spans: Iterable[Span]) -> dict[Key, Span]:
    """Spans of several batches (a bus message gathers them) as one batch's."""
    into: dict[Key, Span] = {}
    for span in spans:
        _merge(into, span.row, span.count, span.oldest_ms)
    return into


@dataclass(slots=True)
class _Host:
    #: Smoothed gap between two records of the same key, in ms; None until one key has repeated.
    interval_ms: float | None = None


class FleetTable:
    """``forget_processes_ms``: a process not reported for that long has ended; its entry goes (pids
    churn with every job, so keeping them would grow the table for ever)."""

    def __init__(self, ring_frames: int = 512, forget_processes_ms: float = 300_000,
                 ring_entries: int = RING_ENTRIES) -> None:
        self.forget_processes_ms = forget_processes_ms
        self.ring_entries = ring_entries
        self._ring_entries_held = 0
        self._latest: dict[Key, Entry] = {}
        self._hosts: dict[str, _Host] = {}
        self._frames: deque[Frame] = deque(maxlen=ring_frames)
        self._pending: dict[Key, Entry] = {}
        self._cond = threading.Condition()
        #: Set while applied entries wait for ``flush``.
        self.has_pending = threading.Event()
        self._seq = 0

    def apply(self, rows: Sequence[Row]) -> int:
        return self.apply_spans(spans_of(rows))

    def apply_spans(self, fresh: dict[Key, Span]) -> int:
        """Keep what is newer than the table (by record time, so a replayed or imported old batch
        changes nothing) until the next ``flush``; returns how many keys changed."""
        with self._cond:
            changed = 0
            for key, span in fresh.items():
                row, old = span.row, self._latest.get(key)
                if old is not None and row.ts_ms <= old.ts_ms:
                    continue
                entry = Entry(key, row)
                self._latest[key] = self._pending[key] = entry
                self._learn_interval(key, old, span)
                changed += 1
            if changed:
                self.has_pending.set()
            return changed

    def forget_ended_processes(self, now_ms: int) -> int:
        cutoff = now_ms - self.forget_processes_ms
        with self._cond:
            ended = [key for key, entry in self._latest.items() if key[2] == PROCESS and entry.ts_ms < cutoff]
            for key in ended:
                del self._latest[key]
                self._pending.pop(key, None)
        return len(ended)

    def flush(self) -> Frame | None:
        """One frame of what changed since the last flush; wakes every waiting handler."""
        with self._cond:
            self.has_pending.clear()
            if not self._pending:
                return None
            entries, self._pending = tuple(self._pending.values()), {}
            self._seq += 1
            frame = Frame(self._seq, entries)
            frames = self._frames
            if len(frames) == frames.maxlen:
                self._ring_entries_held -= len(frames[0].entries)
            frames.append(frame)
            self._ring_entries_held += len(entries)
            while self._ring_entries_held > self.ring_entries and len(frames) > 1:
                self._ring_entries_held -= len(frames.popleft().entries)
            self._cond.notify_all()
            return frame

    def _learn_interval(self, key: Key, old: Entry | None, span: Span) -> None:
        """From the gaps inside a batch (an agent sending its spool) and since the previous record."""
        host = self._hosts.setdefault(key[0], _Host())
        if span.count > 1:
            self._feed(host, (span.row.ts_ms - span.oldest_ms) / (span.count - 1))
        elif old is not None and span.oldest_ms > old.ts_ms:
            self._feed(host, span.oldest_ms - old.ts_ms)

    @staticmethod
    def _feed(host: "_Host", gap_ms: float) -> None:
        if gap_ms > 0:
            host.interval_ms = gap_ms if host.interval_ms is None else (
                (1 - _INTERVAL_WEIGHT) * host.interval_ms + _INTERVAL_WEIGHT * gap_ms)

    def snapshot(self, keep: Callable[[Entry], bool]) -> tuple[int, list[Entry]]:
        """The current seq and every latest entry ``keep`` accepts, in key order."""
        with self._cond:
            seq, entries = self._seq, [e for e in self._latest.values() if keep(e)]
        entries.sort(key=lambda e: e.key)
        return seq, entries

    def host_intervals(self) -> dict[str, float | None]:
        with self._cond:
            return {name: host.interval_ms for name, host in self._hosts.items()}

    def wait_after(self, seq: int, timeout: float) -> list[Frame] | None:
        """Frames newer than ``seq``, oldest first, once there is one (``[]`` on timeout); None when
        some of them already left the ring (the caller resends from the table)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._seq > seq, timeout):
                return []
            frames, missed = self._frames, self._seq - seq
            if missed > len(frames):
                return None
            return [frames[-i] for i in range(missed, 0, -1)]  # deque indexing is cheap near its ends
