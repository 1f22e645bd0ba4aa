"""The writer thread's own engine: it shares no SQLAlchemy pool, and no lock, with the event loop.

A pool guards its queue of connections, and the setup of its first connection, with ``threading``
locks, which under gevent are the event loop's locks. One of them released by a native thread does
not wake the greenlet waiting for it (gevent/gevent#2013): with the writer thread and the retention
job opening the pool's first connections at the same moment, the job, and every later request that
needed a connection (``/health`` among them), waited forever. So the writer (``write_queue.py``)
connects through an engine of its own, without a pool (NullPool): it keeps its one connection for
life and opens another only after a failure. Only a SQLite database held in this process's memory,
whose one connection *is* the database, is shared.

On PostgreSQL that connection also waits for the server the native way. psycopg chooses its wait
function once, at import: after gevent's patching, a poll on the patched ``select``, which on a
native thread runs a gevent hub of its own for every round trip. ``NativeWaitConnection`` waits
with psycopg's C poll instead (``wait_c``), releasing the GIL like any blocking C call.
"""
from __future__ import annotations

from typing import Any

import psycopg
from flask import Flask
from psycopg import waiting
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from .dialect import is_postgresql, sqlite_file
from .engine import install_sqlite_settings
from .state import share_state, state_of


class NativeWaitConnection(psycopg.Connection):
    """A psycopg connection for a native thread: its round trips wait in C, not on gevent."""

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        return waiting.wait_c(gen, self.pgconn.socket, interval, timeout)


def writer_engine(app: Flask, engine: Engine) -> Engine:
    """An engine like ``engine`` for the writer thread alone, bound to the same storage state."""
    if engine.dialect.name == "sqlite" and sqlite_file(engine.url.render_as_string()) is None:
        return engine
    own = create_engine(engine.url, poolclass=NullPool)
    if is_postgresql(own):
        @event.listens_for(own, "do_connect")
        def _connect(_dialect: Any, _record: Any, cargs: tuple, cparams: dict) -> NativeWaitConnection:
            return NativeWaitConnection.connect(*cargs, **cparams)
    else:
        install_sqlite_settings(app, own)
    share_state(own, state_of(engine))
    return own
