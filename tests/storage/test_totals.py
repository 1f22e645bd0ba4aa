"""series_totals (what /stats reads) always equals the sum of the raw-backed minutes of rollups_1m:
after ingest with duplicates and several kinds, after retention deletes the records of the minutes
holding a GPU's extremes (the minutes themselves stay), and after the 0002 migration backfills it
from existing rollups."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import create_engine, func, select

from metrics_app.extensions import db
from metrics_app.storage.models import Rollup, SeriesTotal
from metrics_app.storage.retention import run_retention
from metrics_app.storage.rollups import STATS, combine_function
from metrics_app.storage.tiers import Retention

from ..ingest.records import INGEST_EXAMPLES, START, utilization
from .test_migrations import flask_db


def _from_rollups(conn, since_ms: int = 0) -> list[tuple]:
    stats = [getattr(func, combine_function(s))(getattr(Rollup, s)) for s in STATS]
    query = (select(Rollup.series_id, Rollup.metric, *stats).where(Rollup.minute_ms >= since_ms)
             .group_by(Rollup.series_id, Rollup.metric))
    return sorted(tuple(row) for row in conn.execute(query))


def _totals(conn) -> list[tuple]:
    return sorted(tuple(row) for row in conn.execute(select(SeriesTotal.__table__)))


def test_totals_match_rollups_after_ingest_and_retention(client, app):
    utilization_rows = utilization(600) + utilization(300, host="node-b", gpu=3)  # gpuPercent peaks at 100
    assert client.post("/metrics", json=utilization_rows[:500]).status_code == 201
    assert client.post("/metrics", json=utilization_rows[400:]).get_json()["duplicates"] == 100
    assert client.post("/metrics", json=list(INGEST_EXAMPLES.values())).status_code == 201
    with app.app_context():
        totals = _totals(db.session)
        assert totals == _from_rollups(db.session) and len(totals) == 2 + 6
        assert sum(t[2] for t in totals) == 900 + 6
        # 2.5 minutes from the oldest record: the first two minutes (with gpuPercent's 0s and 100s) go.
        now_ms = int((START + timedelta(hours=1, minutes=2, seconds=30)).timestamp() * 1000)
        db.session.rollback()  # a fresh read snapshot after retention's own transactions
        result = run_retention(db.engine, Retention(1, 90, 730), chunk_rows=3, now_ms=now_ms)
        totals = _totals(db.session)
        assert totals == _from_rollups(db.session, result.cutoffs.raw) and sum(t[2] for t in totals) == 900 - 2 * 120  # and the 6 documented examples


@pytest.mark.slow
def test_migration_0002_backfills_totals_from_existing_rollups(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    assert flask_db(url, "upgrade", "0001").returncode == 0
    engine = create_engine(url)
    rollup_rows = [(1, 4, minute * 60_000, 60, 6000.0 + minute, 90.0 - minute, 110.0 + minute) for minute in range(3)]
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO rollups_1m (series_id, metric, minute_ms, n, sum1, min1, max1) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?)", rollup_rows)
    upgrade = flask_db(url, "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    with engine.connect() as conn:
        assert _totals(conn) == [(1, 4, 180, 180, 18003.0, 88.0, 112.0, 0, None, None, None, 0, None, None, None)]
        assert conn.exec_driver_sql("SELECT count(*) FROM rollups_1m").scalar() == 3
        assert "WITHOUT ROWID" in conn.exec_driver_sql(
            "SELECT sql FROM sqlite_schema WHERE name = 'rollups_1m'").scalar()
    assert flask_db(url, "downgrade", "0001").returncode == 0
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM rollups_1m").scalar() == 3
    engine.dispose()
