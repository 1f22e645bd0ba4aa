"""The 0004 migration converts a database in place on either kind: every record and rollup kept,
hours backfilled from minutes, records keyed by their natural key without the surrogate id or the
time index; the downgrade restores both and keeps every record; the round trip repeats cleanly."""
from __future__ import annotations

import os
import uuid
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, inspect, make_url, text

from .test_migrations import flask_db

HOUR = 3_600_000
RECORDS = "SELECT series_id, metric, ts_ms, pid, v1, v2, v3 FROM records ORDER BY series_id, metric, ts_ms, pid"
ROLLUPS = "SELECT * FROM {} ORDER BY 1, 2, 3"


@pytest.fixture
def blank_url(tmp_path):
    """An empty database: a SQLite file, or a fresh schema on TEST_DATABASE_URL's server."""
    base = os.environ.get("TEST_DATABASE_URL", "")
    if not base.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    # The session fixture points TEST_DATABASE_URL at its own schema: start from the bare server URL.
    base = make_url(base).difference_update_query(["options"]).render_as_string(hide_password=False)
    schema, admin = f"m_{uuid.uuid4().hex[:12]}", create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield f"{base}{'&' if '?' in base else '?'}options={quote(f'-csearch_path={schema}')}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _fill(conn) -> None:
    """Two GPUs, power every 10 minutes over three hours and a process with two pids, and their minutes."""
    conn.execute(text("INSERT INTO gpu_series (id, hostname, gpu_index, first_ts_ms, last_ts_ms, record_count) "
                      "VALUES (1, 'a', 0, 0, 0, 0), (2, 'b', 1, 0, 0, 0)"))
    records = [(sid, 4, 7 * HOUR + i * 600_000, -1, 100.0 + i + sid, None, None) for sid in (1, 2) for i in range(18)]
    records += [(1, 6, 7 * HOUR, pid, 512.0, None, None) for pid in (10, 11)]
    conn.execute(text("INSERT INTO records (series_id, metric, ts_ms, pid, v1, v2, v3) "
                      "VALUES (:s, :m, :t, :p, :v1, :v2, :v3)"),
                 [dict(zip(("s", "m", "t", "p", "v1", "v2", "v3"), r)) for r in records])
    conn.execute(text("INSERT INTO rollups_1m (series_id, metric, minute_ms, n, sum1, min1, max1) "
                      "SELECT series_id, metric, ts_ms, count(*), sum(v1), min(v1), max(v1) FROM records "
                      "GROUP BY series_id, metric, ts_ms"))


def _snapshot(conn) -> tuple[list, list]:
    return [tuple(r) for r in conn.execute(text(RECORDS))], [tuple(r) for r in conn.execute(text(ROLLUPS.format("rollups_1m")))]


def test_upgrade_keeps_every_record_and_rollup_and_downgrade_restores_ids(blank_url):
    assert flask_db(blank_url, "upgrade", "0002").returncode == 0
    engine = create_engine(blank_url)
    with engine.begin() as conn:
        _fill(conn)
        before = _snapshot(conn)
    upgrade = flask_db(blank_url, "upgrade", "0004")
    assert upgrade.returncode == 0, upgrade.stderr
    with engine.connect() as conn:
        assert _snapshot(conn) == before and len(before[0]) == 38
        hours = [tuple(r)[:7] for r in conn.execute(text(ROLLUPS.format("rollups_1h")))]
        schema = inspect(conn)
        columns = [c["name"] for c in schema.get_columns("records")]
        key = schema.get_pk_constraint("records")["constrained_columns"]
        indexes = schema.get_indexes("records")
        clustered = engine.dialect.name != "sqlite" or "WITHOUT ROWID" in conn.execute(
            text("SELECT sql FROM sqlite_schema WHERE name = 'records'")).scalar()
    assert [h for h in hours if h[1] == 4] == [
        (sid, 4, (7 + k) * HOUR, 6, sum(100.0 + i + sid for i in range(6 * k, 6 * k + 6)), 100.0 + 6 * k + sid,
         105.0 + 6 * k + sid) for sid in (1, 2) for k in range(3)]
    assert (1, 6, 7 * HOUR, 2, 1024.0, 512.0, 512.0) in hours
    assert "id" not in columns and key == ["series_id", "metric", "ts_ms", "pid"] and indexes == [] and clustered
    downgrade = flask_db(blank_url, "downgrade", "0002")
    assert downgrade.returncode == 0, downgrade.stderr
    with engine.connect() as conn:
        assert _snapshot(conn) == before
        ids = [r[0] for r in conn.execute(text("SELECT id FROM records ORDER BY ts_ms, series_id, metric, pid"))]
        assert len(set(ids)) == 38 and (engine.dialect.name != "sqlite" or ids == sorted(ids))  # time order
        assert {i["name"] for i in inspect(conn).get_indexes("records")} >= {"ix_records_ts_ms"}
        assert "rollups_1h" not in inspect(conn).get_table_names()
    again = flask_db(blank_url, "upgrade", "0004")
    assert again.returncode == 0, again.stderr
    with engine.connect() as conn:
        assert _snapshot(conn) == before
    engine.dispose()
