"""The writer thread connects on its own: no pool, and so no lock, shared with the request handlers
(a lock of theirs released by a native thread left /health and the retention job waiting forever)."""
from __future__ import annotations

import threading

import pytest
from psycopg import waiting
from sqlalchemy import event

from metrics_app.extensions import db
from metrics_app.storage import write_queue
from metrics_app.storage.dialect import is_postgresql

from .test_write_queue import rows, stored


def test_writing_takes_no_connection_from_the_request_handlers_pool(app):
    checkouts: list[int] = []

    def checkout(*_args) -> None:
        checkouts.append(threading.get_ident())

    with app.app_context():
        pool = db.engine.pool
    event.listen(pool, "checkout", checkout)
    try:
        assert write_queue(app).submit(rows(0, 10)).saved == 10
        assert write_queue(app).run(lambda conn: 1) == 1
    finally:
        event.remove(pool, "checkout", checkout)
    assert checkouts == [], "the writer thread used the pool the event loop's greenlets share"
    assert stored(app) == 10


def test_the_writers_postgresql_round_trips_do_not_wait_through_gevents_select(app, monkeypatch):
    """psycopg's module-level wait is the one gevent's patching chose; the writer must not use it."""
    with app.app_context():
        if not is_postgresql(db.engine):
            pytest.skip("PostgreSQL only: sqlite3 blocks in C with no wait function to choose")

    def patched_wait(*_args, **_kwargs):
        raise AssertionError("waited through psycopg.waiting.wait")

    monkeypatch.setattr(waiting, "wait", patched_wait)
    assert write_queue(app).submit(rows(0, 10)).saved == 10
