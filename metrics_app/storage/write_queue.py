"""The one writer: every producer's rows reach the database through one native thread, in groups.

POST /metrics, WS /ws/ingest, the JSONL tailers, the local recorder and ``flask metrics import``
validate on their own thread or greenlet, then ``submit`` the rows and wait. The writer thread takes
everything waiting, prepares its rows before it takes the write lock (adding, once it holds it, what
came while it waited), runs each request's store under its own savepoint inside ONE transaction,
commits once (one fsync for the whole group), then wakes every request with its own exact counts.
A request is answered only after the commit that holds its rows; if the transaction or its commit
fails, every request of the group fails (nothing of it is stored) and gets ``WriteUnavailable``
(503). Commit listeners (the fleet fan-out) see each group after its commit.

Why a thread and not a greenlet: sqlite3's commit, its fsync, the writer ``flock`` and psycopg's
round trips block in C; on the event loop they stalled every live client (p99 gap 2.3 s under
51,000 records/s). On a native thread they release the GIL and the loop keeps sending frames.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence, TypeVar

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from ..native import Empty, NativeQueue, NativeThread, allocate_lock, handoff
from .engine import WRITE_OPTION, savepoint
from .state import state_of
from .writer import Prepared, Row, StoreResult, prepare, store_prepared, store_rows

log = logging.getLogger(__name__)
T = TypeVar("T")
EXTENSION_KEY = "write_queue"
#: Rows per transaction: a group bigger than this waits for the next one (bounds a commit's time).
MAX_GROUP_ROWS = 20_000
#: Rows waiting before producers are refused (503) instead of queueing without bound.
MAX_QUEUED_ROWS = 200_000
#: How long a producer waits for its commit before it is told to retry (records are idempotent).
WAIT_TIMEOUT_SEC = 60.0


class WriteUnavailable(Exception):
    """The database did not take the write; the producer should retry later."""

    def __init__(self, error: str, reason: str) -> None:
        super().__init__(reason)
        self.error, self.reason = error, reason


@dataclass(slots=True, eq=False)
class _Request:
    #: The write; None for plain rows, which consecutive requests store together (``store_prepared``).
    work: Callable[[Connection], Any] | None
    rows: Sequence[Row]
    waiter: Any
    result: Any = None
    failure: WriteUnavailable | None = None


@dataclass(slots=True)
class WriterStats:
    """What /health shows about the writer."""

    groups: int = 0
    requests: int = 0
    rows: int = 0
    #: A group whose transaction failed (every request in it got a 503) / one request refused alone.
    failed_groups: int = 0
    failed_requests: int = 0
    last_group_requests: int = 0
    last_commit_ms: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    #: Written by producers only / by the writer only, so neither needs a lock across threads.
    enqueued_rows: int = 0
    finished_rows: int = 0
    listeners_failed: int = 0

    @property
    def queued_rows(self) -> int:
        return self.enqueued_rows - self.finished_rows


_STOP = object()


def _runs(group: list[_Request]) -> list[list[_Request]]:
    """The group in order, consecutive plain-row requests together, every other request alone."""
    runs: list[list[_Request]] = []
    for request in group:
        if request.work is None and runs and runs[-1][-1].work is None:
            runs[-1].append(request)
        else:
            runs.append([request])
    return runs


class WriteQueue:
    def __init__(self, engine: Engine, max_group_rows: int = MAX_GROUP_ROWS,
                 max_queued_rows: int = MAX_QUEUED_ROWS, wait_timeout: float = WAIT_TIMEOUT_SEC) -> None:
        self.engine = engine
        self.max_group_rows, self.max_queued_rows, self.wait_timeout = max_group_rows, max_queued_rows, wait_timeout
        #: Called on the writer thread with the rows of each committed group; must be quick, must not block.
        self.listeners: list[Callable[[list[Row]], None]] = []
        self.stats = WriterStats()
        self._queue: NativeQueue = NativeQueue()
        self._start_lock = allocate_lock()
        self._thread: NativeThread | None = None
        self._handoff: Any = None
        self._closed = False

    # -- producers -----------------------------------------------------------------------------
    def submit(self, rows: Sequence[Row], on_commit_tx: Callable[[Connection], None] | None = None) -> StoreResult:
        """Store ``rows`` (and run ``on_commit_tx`` in the same transaction); returns once committed."""
        def work(conn: Connection) -> StoreResult:
            result = store_rows(conn, rows)
            on_commit_tx(conn)
            return result
        if not rows and on_commit_tx is None:
            return StoreResult(0, 0)
        return self._call(None if on_commit_tx is None else work, rows)

    def run(self, work: Callable[[Connection], T]) -> T:
        """Run any write (a retention chunk) on the writer thread, in a group transaction."""
        return self._call(work, ())

    def _call(self, work: Callable[[Connection], Any] | None, rows: Sequence[Row]) -> Any:
        if self._closed:
            raise WriteUnavailable("shutting_down", "The server is shutting down; retry on another instance.")
        if self.stats.queued_rows + len(rows) > self.max_queued_rows:
            raise WriteUnavailable("write_queue_full", "Too many records are waiting to be written; retry shortly.")
        self._ensure_started()
        request = _Request(work, rows, self._handoff.waiter())
        self.stats.enqueued_rows += len(rows)
        self._queue.put(request)
        if not request.waiter.wait(self.wait_timeout):
            raise WriteUnavailable("write_timeout", "The database did not commit in time; retry (records are "
                                   "stored once however often they are sent).")
        if request.failure is not None:
            raise request.failure
        return request.result

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                self._handoff = handoff()  # built on the producers' thread: the event loop's, under gevent
                self._thread = NativeThread(self._run, "db-writer")
                self._thread.start()

    def close(self, timeout: float = 10.0) -> bool:
        """Refuse new writes, commit everything already queued, stop the thread; True once drained."""
        self._closed = True
        if self._thread is None:
            return True
        self._queue.put(_STOP)
        return self._thread.join(timeout)

    # -- the writer thread ---------------------------------------------------------------------
    def _run(self) -> None:
        conn: Connection | None = None
        stopping = False
        while not stopping:
            group, stopping = self._take_group()
            if group:
                conn = self._commit(conn, group)
        while True:  # raced in after the stop: refuse rather than leave waiting
            try:
                late = self._queue.get_nowait()
            except Empty:
                break
            if late is not _STOP:
                self._finish([late], WriteUnavailable("shutting_down", "The server is shutting down."))
        if conn is not None:
            conn.close()

    def _take_group(self) -> tuple[list[_Request], bool]:
        first = self._queue.get()
        if first is _STOP:
            return [], True
        group = [first]
        return group, self._take_waiting(group)

    def _take_waiting(self, group: list[_Request]) -> bool:
        """Add what is waiting to ``group``, up to ``max_group_rows`` in all; True once the stop is taken."""
        rows = sum(len(request.rows) for request in group)
        while rows < self.max_group_rows:
            try:
                request = self._queue.get_nowait()
            except Empty:
                return False
            if request is _STOP:
                return True
            group.append(request)
            rows += len(request.rows)
        return False

    def _commit(self, conn: Connection | None, group: list[_Request]) -> Connection | None:
        started = time.perf_counter()
        try:
            runs = self._prepare(group)
            if conn is None:
                conn = self.engine.execution_options(**{WRITE_OPTION: True}).connect()
            with state_of(self.engine).exclusive(), conn.begin():
                self._join_late(group, runs)
                self._write(conn, runs)
        except Exception as exc:  # noqa: BLE001 - the group fails, the writer goes on
            reason = f"{type(exc).__name__}: {str(getattr(exc, 'orig', None) or exc)[:200]}"
            if not isinstance(exc, (OperationalError, OSError)):
                log.exception("write group failed")
            self.stats.failed_groups += 1
            self._record_failure(reason)
            if conn is not None:
                conn.close()  # a fresh connection next time: this one may be broken
            self._finish(group, WriteUnavailable("database_unavailable",
                                                 f"The database could not take the write; retry later. ({reason})"))
            return None
        stats = self.stats
        stats.groups += 1
        stats.requests += len(group)
        stats.last_group_requests = len(group)
        stats.last_commit_ms = round((time.perf_counter() - started) * 1000, 3)
        committed = [row for request in group if request.failure is None for row in request.rows]
        stats.rows += len(committed)
        self._finish(group, None)
        if committed:
            self._notify(committed)
        return conn

    def _prepare(self, group: list[_Request]) -> list[tuple[list[_Request], Prepared | None]]:
        """The group's runs (``_runs``), those of plain rows prepared now, before the write lock, which
        other workers hold meanwhile (``writer.prepare``: Python only; late joiners' inside it). None
        for other writes, and for rows that fail to prepare: stored unprepared, they fail in their own
        savepoint, alone."""
        state, runs = state_of(self.engine), []
        for run in _runs(group):
            prepared = None
            if run[0].work is None:
                try:
                    prepared = prepare(state, [request.rows for request in run])
                except Exception:  # noqa: BLE001 - see the docstring
                    log.exception("preparing a write failed")
            runs.append((run, prepared))
        return runs

    def _join_late(self, group: list[_Request], runs: list[tuple[list[_Request], Prepared | None]]) -> None:
        """Once the write lock is held, the requests that came while the writer waited for it join
        this group (``group`` and ``runs`` grow in place) instead of waiting a whole turn of the lock.

        Why: the workers' writers take turns on SQLite's lock, each waiting out the other's write and
        commit; a request that came during that wait used to wait for the next turn as well (under
        100 hosts' 20-record batches with 1,000 fleet clients reading, POST p50 ~110 ms: longer than
        the hosts' 100 ms interval, so they fell behind).

        Not on PostgreSQL, whose writers run at once: nothing was waited for, and a second run in the
        transaction would take row locks out of the key order that keeps concurrent writers from
        deadlocking (``writer.py``).
        """
        if state_of(self.engine).writer_lock is None:
            return
        late = len(group)
        if self._take_waiting(group):
            self._queue.put(_STOP)  # taken again by the next ``_take_group``
        if len(group) > late:
            runs += self._prepare(group[late:])

    def _write(self, conn: Connection, runs: list[tuple[list[_Request], Prepared | None]]) -> None:
        """The group's work inside the write lock."""
        for run, prepared in runs:
            if len(run) > 1:
                self._store_together(conn, run, prepared)
            else:
                self._run_request(conn, run[0], prepared)

    def _store_together(self, conn: Connection, run: list[_Request], prepared: Prepared | None) -> None:
        """Consecutive plain requests as one batch (one insert and one rollup merge for all), each
        with its own exact counts. Should the database refuse the batch, or the batch have failed to
        prepare (it would fail the same way again), each request is tried alone."""
        if prepared is not None:
            try:
                with savepoint(conn, "request"):
                    results = store_prepared(conn, prepared)
            except OperationalError:
                raise
            except Exception:  # noqa: BLE001 - find the one request at fault, store the others
                log.exception("a combined write failed; storing its requests one by one")
            else:
                for request, result in zip(run, results):
                    request.result = result
                return
        for request in run:
            self._run_request(conn, request)

    def _run_request(self, conn: Connection, request: _Request, prepared: Prepared | None = None) -> None:
        """A savepoint each: a request the database refuses (a bug, not bad input: rows arrive
        validated) fails alone. A lost or locked database (OperationalError) fails the group."""
        try:
            with savepoint(conn, "request"):
                if request.work is not None:
                    request.result = request.work(conn)
                else:
                    request.result = (store_prepared(conn, prepared)[0] if prepared is not None
                                      else store_rows(conn, request.rows))
        except OperationalError:
            raise
        except Exception as exc:  # noqa: BLE001 - one request's failure must not undo the others
            log.exception("a write request failed; the rest of its group goes on")
            self.stats.failed_requests += 1
            self._record_failure(f"{type(exc).__name__}: {str(exc)[:200]}")
            request.failure = WriteUnavailable("write_failed", "The write failed; nothing of it was stored.")

    def _record_failure(self, reason: str) -> None:
        log.warning("write failed: %s", reason)
        self.stats.last_error, self.stats.last_error_at = reason, time.time()

    def _finish(self, group: list[_Request], failure: WriteUnavailable | None) -> None:
        """``failure`` fails every request (the transaction is gone); else each keeps its own outcome."""
        for request in group:
            self.stats.finished_rows += len(request.rows)
            if failure is not None:
                request.failure, request.result = failure, None
            self._handoff.wake(request.waiter)

    def _notify(self, rows: list[Row]) -> None:
        for listener in self.listeners:
            try:
                listener(rows)
            except Exception:  # noqa: BLE001 - a listener's bug must not undo or stop writes
                self.stats.listeners_failed += 1
                log.exception("commit listener %r failed", listener)

    def status(self) -> dict[str, Any]:
        s = self.stats
        return {
            "running": self._thread is not None and self._thread.is_alive(),
            "groups_committed": s.groups, "requests_committed": s.requests, "rows_committed": s.rows,
            "failed_groups": s.failed_groups, "failed_requests": s.failed_requests,
            "last_group_requests": s.last_group_requests,
            "last_commit_ms": s.last_commit_ms, "queued_rows": s.queued_rows,
            "last_error": s.last_error,
            "last_error_age_sec": None if s.last_error_at is None else round(time.time() - s.last_error_at, 3),
        }
