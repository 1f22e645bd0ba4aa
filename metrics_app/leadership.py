"""Who runs the background jobs: exactly one process among every worker of every instance.

Two implementations behind one small interface (``poll``, ``leading``, ``current``, ``release``):

- **PostgreSQL**: ``pg_try_advisory_lock`` held on a dedicated connection. The lock lives as long as
  that session, so a leader that dies, hangs up or loses the network loses the lead with it, and
  another instance's next poll takes it. The leader's ``hostname:pid`` is the connection's
  ``application_name``; ``pg_locks`` joined with ``pg_stat_activity`` names the holder, so every
  instance gives the same answer and no table can go stale.
- **SQLite** (one host by nature): an ``flock`` on a file beside the database, which the kernel
  drops when the leader dies; the leader writes its name into the file.

The lock key is derived from the database and schema, so deployments (or test runs) sharing one
PostgreSQL server but not one schema never contend.
"""
from __future__ import annotations

import fcntl
import logging
import os
import platform
import threading
import zlib
from typing import Protocol

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import Engine

from .filelock import FileLock
from .storage.dialect import is_postgresql

log = logging.getLogger(__name__)
#: First half of the advisory lock key: this service's jobs (ASCII "gpum"); the second is per schema.
LOCK_CLASS = 0x6770756D
#: PostgreSQL keeps at most NAMEDATALEN - 1 bytes of application_name.
MAX_NAME = 63


def lock_key(database: str, schema: str) -> tuple[int, int]:
    return LOCK_CLASS, zlib.crc32(f"{database}/{schema}".encode()) & 0x7FFFFFFF


def process_name() -> str:
    return f"{platform.node()}:{os.getpid()}"[:MAX_NAME]


class Leadership(Protocol):
    kind: str

    @property
    def leading(self) -> bool: ...

    def poll(self) -> bool:
        """Take the lead if free, or check it is still held; True while this process leads. Quick."""

    def current(self, engine: Engine) -> str | None:
        """``hostname:pid`` of the process leading now, whichever process asks; None when none does."""

    def release(self) -> None: ...


class FlockLeadership:
    kind = "flock"

    def __init__(self, path: str) -> None:
        self.path = path
        self._file = FileLock(path)
        self._leading = False
        self._mutex = threading.Lock()

    @property
    def leading(self) -> bool:
        return self._leading

    def poll(self) -> bool:
        """Once taken, the lock is kept for the life of the process."""
        with self._mutex:
            if self._leading:
                return True
            if not self._file.acquire(blocking=False):
                return False
            os.ftruncate(self._file.fd, 0)
            os.write(self._file.fd, process_name().encode())
            self._leading = True
            log.info("process %d leads the background jobs as %s (lock %s)", os.getpid(), process_name(), self.path)
            return True

    def current(self, engine: Engine) -> str | None:
        if self._leading:
            return process_name()
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            try:  # a shared lock granted at once means nobody holds the exclusive one: the file is stale
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return os.read(fd, 256).decode(errors="replace") or None
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def release(self) -> None:
        with self._mutex:
            self._file.close()
            self._leading = False


_HOLDER_SQL = text("""
    SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :cls AND l.objid = :obj AND l.objsubid = 2
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
""")


class AdvisoryLockLeadership:
    kind = "postgresql_advisory_lock"

    def __init__(self, conninfo: str, connect_timeout: int = 5) -> None:
        self.conninfo = conninfo
        self.connect_timeout = connect_timeout
        self._conn: psycopg.Connection | None = None
        self._key: tuple[int, int] | None = None
        self._leading = False
        self._mutex = threading.Lock()

    @property
    def leading(self) -> bool:
        return self._leading

    def _connect(self) -> psycopg.Connection:
        # TCP keepalives notice a vanished server within seconds even between polls.
        conn = psycopg.connect(self.conninfo, autocommit=True, application_name=process_name(),
                               connect_timeout=self.connect_timeout, keepalives=1, keepalives_idle=5,
                               keepalives_interval=2, keepalives_count=2)
        self._key = lock_key(*conn.execute("SELECT current_database(), current_schema()").fetchone())
        return conn

    def poll(self) -> bool:
        with self._mutex:
            try:
                if self._conn is None:
                    self._conn = self._connect()
                if self._leading:
                    self._conn.execute("SELECT 1")  # the session, and so the lock, is still there
                else:
                    row = self._conn.execute("SELECT pg_try_advisory_lock(%s, %s)", self._key).fetchone()
                    self._leading = bool(row[0])
                    if self._leading:
                        log.info("process %d leads the background jobs as %s (advisory lock %s)", os.getpid(),
                                 process_name(), self._key)
            except psycopg.Error as exc:
                if self._leading:
                    log.warning("lost the jobs' lead with the database session: %s", exc)
                self._drop()
            return self._leading

    def _drop(self) -> None:
        self._leading = False
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except psycopg.Error:
                pass

    def current(self, engine: Engine) -> str | None:
        if self._key is None:  # not connected yet: the key needs the session's schema
            with engine.connect() as conn:
                self._key = lock_key(*conn.execute(text("SELECT current_database(), current_schema()")).one())
        with engine.connect() as conn:
            return conn.execute(_HOLDER_SQL, {"cls": self._key[0], "obj": self._key[1]}).scalar()

    def release(self) -> None:
        with self._mutex:
            self._drop()


def leadership_for(engine: Engine, lock_path: str) -> Leadership:
    """The advisory lock on PostgreSQL; the ``flock`` at ``lock_path`` otherwise."""
    if is_postgresql(engine):
        url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        return AdvisoryLockLeadership(url)
    return FlockLeadership(lock_path)
