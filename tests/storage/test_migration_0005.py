"""The rollup-tiers migration (0005) converts a database with GPU identities, process names and
per-column counts in place on either kind: every record and rollup kept, hours backfilled from
minutes (per-column counts too, a clocks field that only some records carry included), records keyed
by their natural key without the surrogate id or the time index; the downgrade to 0004 restores both
and keeps every record; the round trip repeats cleanly."""
from __future__ import annotations

import os
import uuid
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, inspect, make_url, text

from .test_migrations import flask_db

HOUR = 3_600_000
RECORDS = "SELECT series_id, metric, ts_ms, pid, v1, v2, v3, name FROM records ORDER BY series_id, metric, ts_ms, pid"
ROLLUPS = "SELECT * FROM {} ORDER BY 1, 2, 3"
pytestmark = pytest.mark.slow  # flask db in subprocesses


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
    """Two GPUs (one known by UUID, one by index), power every 10 minutes over three hours, a named
    process with two pids, clocks where the second record lacks memoryMHz, one record before 1970;
    and their minutes."""
    conn.execute(text("INSERT INTO gpu_series (id, hostname, gpu_key, gpu_uuid, gpu_index, first_ts_ms, "
                      "last_ts_ms, record_count) VALUES (1, 'a', 'u:GPU-1', 'GPU-1', NULL, 0, 0, 0), "
                      "(2, 'b', 'i:1', NULL, 1, 0, 0, 0)"))
    records = [(sid, 4, 7 * HOUR + i * 600_000, -1, 100.0 + i + sid, None, None, None)
               for sid in (1, 2) for i in range(18)]
    records += [(1, 6, 7 * HOUR, pid, 512.0, None, None, "C:\\train.exe") for pid in (10, 11)]
    records += [(2, 5, 8 * HOUR, -1, 1500.0, 5000.0, None, None),
                (2, 5, 8 * HOUR + 60_000, -1, 1600.0, None, 1700.0, None)]
    records += [(2, 4, -HOUR - 600_000, -1, 50.0, None, None, None)]
    conn.execute(text("INSERT INTO records (series_id, metric, ts_ms, pid, v1, v2, v3, name) "
                      "VALUES (:s, :m, :t, :p, :v1, :v2, :v3, :name)"),
                 [dict(zip(("s", "m", "t", "p", "v1", "v2", "v3", "name"), r)) for r in records])
    stats = ", ".join(f"count(v{k}), sum(v{k}), min(v{k}), max(v{k})" for k in (1, 2, 3))
    columns = ", ".join(f"n{k}, sum{k}, min{k}, max{k}" for k in (1, 2, 3))
    conn.execute(text(f"INSERT INTO rollups_1m (series_id, metric, minute_ms, n, {columns}) SELECT series_id, "
                      f"metric, ts_ms, count(*), {stats} FROM records GROUP BY series_id, metric, ts_ms"))


def _snapshot(conn) -> tuple[list, list]:
    return [tuple(r) for r in conn.execute(text(RECORDS))], [tuple(r) for r in conn.execute(text(ROLLUPS.format("rollups_1m")))]


def test_upgrade_keeps_every_record_and_rollup_and_downgrade_restores_ids(blank_url):
    assert flask_db(blank_url, "upgrade", "0004").returncode == 0
    engine = create_engine(blank_url)
    with engine.begin() as conn:
        _fill(conn)
        before = _snapshot(conn)
    upgrade = flask_db(blank_url, "upgrade", "0005")
    assert upgrade.returncode == 0, upgrade.stderr
    with engine.connect() as conn:
        assert _snapshot(conn) == before and len(before[0]) == 41
        hours = [tuple(r) for r in conn.execute(text(ROLLUPS.format("rollups_1h")))]
        schema = inspect(conn)
        columns = [c["name"] for c in schema.get_columns("records")]
        key = schema.get_pk_constraint("records")["constrained_columns"]
        indexes = schema.get_indexes("records")
        clustered = engine.dialect.name != "sqlite" or "WITHOUT ROWID" in conn.execute(
            text("SELECT sql FROM sqlite_schema WHERE name = 'records'")).scalar()
    empty = (0, None, None, None)
    assert [h for h in hours if h[1] == 4] == sorted([(2, 4, -2 * HOUR, 1, 1, 50.0, 50.0, 50.0, *empty, *empty)] + [
        (sid, 4, (7 + k) * HOUR, 6, 6, sum(100.0 + i + sid for i in range(6 * k, 6 * k + 6)), 100.0 + 6 * k + sid,
         105.0 + 6 * k + sid, *empty, *empty) for sid in (1, 2) for k in range(3)])
    assert (1, 6, 7 * HOUR, 2, 2, 1024.0, 512.0, 512.0, *empty, *empty) in hours
    assert (2, 5, 8 * HOUR, 2, 2, 3100.0, 1500.0, 1600.0, 1, 5000.0, 5000.0, 5000.0, 1, 1700.0, 1700.0, 1700.0) in hours
    assert "id" not in columns and key == ["series_id", "metric", "ts_ms", "pid"] and indexes == [] and clustered
    downgrade = flask_db(blank_url, "downgrade", "0004")
    assert downgrade.returncode == 0, downgrade.stderr
    with engine.connect() as conn:
        assert _snapshot(conn) == before
        ids = [r[0] for r in conn.execute(text("SELECT id FROM records ORDER BY ts_ms, series_id, metric, pid"))]
        assert len(set(ids)) == 41 and (engine.dialect.name != "sqlite" or ids == sorted(ids))  # time order
        assert {i["name"] for i in inspect(conn).get_indexes("records")} >= {"ix_records_ts_ms"}
        assert "rollups_1h" not in inspect(conn).get_table_names()
    again = flask_db(blank_url, "upgrade", "0005")
    assert again.returncode == 0, again.stderr
    with engine.connect() as conn:
        assert _snapshot(conn) == before
    engine.dispose()
