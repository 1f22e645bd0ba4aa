"""SQLite connection settings applied to every new DB-API connection (PostgreSQL needs none), and
the writers' transactions and savepoints.

- WAL lets readers run while one writer commits, so queries never wait on ingest.
- ``busy_timeout`` makes a second writer (another gunicorn worker, a tailer) wait for the lock
  instead of failing at once with "database is locked".
- ``synchronous``: FULL (default) fsyncs the WAL on every commit, so a record acknowledged with 201
  survives a power cut; NORMAL survives a process crash but may lose the last commits on power loss.
  Set ``SQLITE_SYNCHRONOUS=NORMAL`` to trade that for fewer fsyncs.
- Writers open ``BEGIN IMMEDIATE`` (see ``write_tx``): a deferred transaction that reads before it
  writes can fail with SQLITE_BUSY at the upgrade without ever honouring the busy timeout.
- Writers keep temporary storage in memory (``temp_store``), readers the default. Every page a
  writer's savepoints or multi-row statements change is first copied to a sub-journal, which SQLite
  otherwise writes to a temp file once past 64 KiB: a 1,000-row insert in two savepoints took 2.1
  ms so and 1.6 ms in memory, a 16-row one 84 and 32 us. The copies live until the savepoint ends
  (a few MB for the biggest group); a reader's large sort still spills to disk instead of growing
  in memory.
- Writers of this service also queue on an ``flock`` beside the database file. SQLite's busy handler
  polls with sleeps growing to 100 ms, which under 4 concurrent 1,000-record batches gave a p99 of
  ~320 ms; a kernel lock wakes the next writer the moment the previous one commits.
"""
from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from typing import Any, Iterator

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from ..filelock import FileLock
from ..native import allocate_lock
from .state import state_of

#: Execution option marking a connection as a writer (``BEGIN IMMEDIATE`` on SQLite, ignored elsewhere).
WRITE_OPTION = "metrics_write"
#: Whether a pooled SQLite connection keeps temporary storage in memory (its ``info`` key).
_TEMP_STORE = "metrics_temp_store_memory"

_SYNCHRONOUS = {"OFF", "NORMAL", "FULL", "EXTRA"}
#: Read pages through the shared OS page cache: each worker's own page cache is dropped whenever
#: another worker commits, and re-reading through mmap was ~7 % faster in bench/ingest.py (2 workers).
MMAP_BYTES = 1 << 30


class WriterLock:
    """One writer at a time: a thread lock within the process, an ``flock`` across processes.

    The thread lock is a native one: the writer thread (write_queue.py) is a real OS thread, and a
    gevent lock shared between it and the event loop would not be."""

    def __init__(self, database: str | None) -> None:
        self._thread_lock = allocate_lock()
        self._file = FileLock(f"{database}.writelock") if database and database != ":memory:" else None

    @contextmanager
    def hold(self) -> Iterator[None]:
        with self._thread_lock:
            if self._file is None:
                yield
                return
            self._file.acquire()
            try:
                yield
            finally:
                self._file.release()


def configure_engine(app: Flask, engine: Engine) -> WriterLock | None:
    """Install the SQLite pragmas on ``engine``; returns its writer lock (None for other databases)."""
    if engine.dialect.name != "sqlite":
        return None
    install_sqlite_settings(app, engine)
    return WriterLock(engine.url.database)


def install_sqlite_settings(app: Flask, engine: Engine) -> None:
    """The pragmas on each new connection, and ``BEGIN IMMEDIATE`` for writers (module docstring)."""
    synchronous = app.config["SQLITE_SYNCHRONOUS"].upper()
    if synchronous not in _SYNCHRONOUS:
        raise ValueError(f"SQLITE_SYNCHRONOUS must be one of {sorted(_SYNCHRONOUS)}, not {synchronous!r}")
    busy_ms = int(app.config["SQLITE_BUSY_TIMEOUT_MS"])

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        if not isinstance(dbapi_connection, sqlite3.Connection):
            return
        # Let SQLAlchemy's "begin" event (below) issue BEGIN, not the sqlite3 module's own heuristics.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        immediate = bool(connection.get_execution_options().get(WRITE_OPTION))
        _temp_store_in_memory(connection, immediate)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _temp_store_in_memory(connection: Connection, memory: bool) -> None:
    """Set where temporary storage lives, only when this pooled connection changes role (the pragma
    cannot change inside a transaction, and most connections keep theirs)."""
    pooled = connection.connection
    if pooled.info.get(_TEMP_STORE, False) != memory:
        pooled.driver_connection.execute(f"PRAGMA temp_store={'MEMORY' if memory else 'DEFAULT'}")
        pooled.info[_TEMP_STORE] = memory


@contextmanager
def savepoint(conn: Connection, name: str) -> Iterator[None]:
    """``conn.begin_nested()``, in the statements both databases share, on the driver's cursor:
    SQLAlchemy's nested transaction cost ~100 us of Python per use, half of what the writer spends
    on a single-record request before its commit. Rolled back (and released) when the block raises;
    a statement of its own that fails raises SQLAlchemy's exception, as begin_nested's would."""
    cursor = conn.connection.driver_connection.cursor()
    try:
        _execute(conn, cursor, f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            _execute(conn, cursor, f"ROLLBACK TO SAVEPOINT {name}")
            _execute(conn, cursor, f"RELEASE SAVEPOINT {name}")
            raise
        _execute(conn, cursor, f"RELEASE SAVEPOINT {name}")
    finally:
        cursor.close()


def _execute(conn: Connection, cursor: Any, statement: str) -> None:
    dbapi_error = conn.dialect.loaded_dbapi.Error
    try:
        cursor.execute(statement)
    except dbapi_error as exc:
        raise DBAPIError.instance(statement, None, exc, dbapi_error, dialect=conn.dialect) from exc


@contextmanager
def write_tx(engine: Engine) -> Iterator[Connection]:
    """``with write_tx(db.engine) as conn:`` one write transaction, committed on success."""
    state = state_of(engine)
    with state.exclusive(), state.write_engine.begin() as conn:
        yield conn
