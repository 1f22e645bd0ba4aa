"""Data written by one app instance is there for the next one on the same SQLite file; the engine
settings (WAL, synchronous, busy timeout) are applied to every connection."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from metrics_app import create_app
from metrics_app.extensions import db
from metrics_app.storage.models import Record
from tests.dbsetup import config_for, dispose, sqlite_copy

from ..ingest.records import utilization


@pytest.fixture
def sqlite_url(tmp_path, sqlite_template):
    """A SQLite file of the test's own, on either run (these are SQLite file tests)."""
    return sqlite_copy(sqlite_template, tmp_path / "metrics.db")


def test_records_survive_an_app_restart(sqlite_url):
    first = create_app(config_for(sqlite_url))
    assert first.test_client().post("/metrics", json=utilization(20)).status_code == 201
    dispose(first)

    second = create_app(config_for(sqlite_url))
    with second.app_context():
        assert db.session.scalar(select(func.count()).select_from(Record)) == 20
    assert second.test_client().post("/metrics", json=utilization(20)).get_json()["saved"] == 0
    dispose(second)


def test_sqlite_connections_use_wal_full_sync_and_busy_timeout(sqlite_url):
    app = create_app(config_for(sqlite_url))
    with app.app_context(), db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == app.config["SQLITE_BUSY_TIMEOUT_MS"]
    dispose(app)


def test_writers_keep_temporary_storage_in_memory_and_readers_do_not(sqlite_url):
    from metrics_app.storage.engine import write_tx

    app = create_app(config_for(sqlite_url))
    temp_store = "PRAGMA temp_store"
    used = set()
    with app.app_context():
        db.engine.pool.dispose()
        for _ in range(2):  # the one pooled connection changes role each time
            with write_tx(db.engine) as conn:
                assert conn.exec_driver_sql(temp_store).scalar() == 2  # MEMORY
                used.add(id(conn.connection.driver_connection))
            with db.engine.connect() as conn:
                assert conn.exec_driver_sql(temp_store).scalar() == 0  # the default: files past the cache
                used.add(id(conn.connection.driver_connection))
    assert len(used) == 1
    dispose(app)


@pytest.mark.slow
def test_an_acknowledged_batch_survives_a_killed_server(tmp_path, database_url, app):  # app: cleans up after
    """SIGKILL right after the 201: the rows were committed before the answer, so they are there."""
    import signal
    import urllib.request

    import orjson

    from tests.server import GunicornServer

    server = GunicornServer(tmp_path, DATABASE_URL=database_url, SAMPLERS_ENABLED="false").start()
    try:
        request = urllib.request.Request(server.url("/metrics"), data=orjson.dumps(utilization(500, host="crash")),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201 and orjson.loads(response.read())["saved"] == 500
    finally:
        server.stop(signal.SIGKILL)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Record)) == 500


def test_a_failing_savepoint_statement_raises_sqlalchemys_error_as_begin_nested_does(app):
    """The writer tells a lost database (SQLAlchemy's OperationalError: the group fails) from a
    refused request by the exception's class, so the driver's own must not leak."""
    from sqlalchemy.exc import DBAPIError

    from metrics_app.storage.engine import savepoint

    with app.app_context(), db.engine.connect() as conn:
        conn.begin()
        with pytest.raises(DBAPIError):
            with savepoint(conn, "request"):
                conn.exec_driver_sql("RELEASE SAVEPOINT request")  # so that its own RELEASE finds none
        conn.rollback()
