"""The schema is Alembic's: a fresh database upgrades cleanly and has no pending model changes, and
the GPU identity migration moves stored data up and back down without losing any."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, inspect, text

from tests.dbsetup import blank_database
from tests.server import ROOT

pytestmark = pytest.mark.slow


def flask_db(url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": url, "SAMPLERS_ENABLED": "false"}
    return subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_upgrade_then_check_reports_no_pending_changes(database_url):
    upgrade = flask_db(database_url, "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    check = flask_db(database_url, "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No new upgrade operations detected" in check.stdout + check.stderr


def test_fresh_sqlite_file_upgrades(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert flask_db(url, "upgrade").returncode == 0
    engine = create_engine(url)
    assert {"gpu_series", "records", "rollups_1m", "tailer_offsets", "job_runs"} <= set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


@pytest.fixture
def blank_url(tmp_path):
    """An empty database of the suite's kind (SQLite file, or a private PostgreSQL schema)."""
    with blank_database(tmp_path) as url:
        yield url


def _run(url: str, *args: str) -> None:
    result = flask_db(url, *args)
    assert result.returncode == 0, result.stdout + result.stderr


MINUTE = 60_000
#: Stored under 0003 (the schema before the GPU identity): two series of h1 report one UUID (the GPU came back under index 1 after a
#: reboot, and was last seen as index 0), one has no UUID, h2's GPU has its own.
OLD_SERIES = [(1, "h1", 0, "GPU-a", "A100", 2 * MINUTE, 3 * MINUTE + 5),
              (2, "h1", 1, "GPU-a", "A100 old name", 0, 2 * MINUTE),
              (3, "h1", 2, None, None, 0, MINUTE),
              (4, "h2", 0, "GPU-c", "H100", 0, MINUTE)]
#: (series_id, metric, ts_ms, pid, v1, v2): series 2 holds one instant series 1 also holds.
OLD_RECORDS = [(1, 4, 2 * MINUTE, -1, 100.0, None), (1, 4, 3 * MINUTE + 5, -1, 300.0, None),
               (1, 6, 2 * MINUTE, 42, 512.0, None),
               (2, 4, 0, -1, 50.0, None), (2, 4, 2 * MINUTE, -1, 100.0, None), (2, 2, 10, -1, 7.0, 3.0),
               (3, 4, 0, -1, 80.0, None), (3, 4, MINUTE, -1, 90.0, None),
               (4, 3, 0, -1, 41.0, None)]


def _rollups_of(records: list[tuple]) -> tuple[dict, dict]:
    """rollups_1m and series_totals rows as ingest would have written them (all fields present)."""
    minutes: dict = {}
    for sid, metric, ts, _pid, v1, v2 in records:
        minutes.setdefault((sid, metric, ts - ts % MINUTE), []).append((v1, v2))
    totals: dict = {}
    for (sid, metric, _), values in minutes.items():
        totals.setdefault((sid, metric), []).extend(values)

    def stats(values: list[tuple]) -> list:
        row = [len(values)]
        for k in (0, 1):
            column = [v[k] for v in values if v[k] is not None]
            row += [sum(column), min(column), max(column)] if column else [None, None, None]
        return row
    return ({key: stats(v) for key, v in minutes.items()}, {key: stats(v) for key, v in totals.items()})


def _store_old(engine) -> None:
    minutes, totals = _rollups_of(OLD_RECORDS)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO gpu_series (id, hostname, gpu_index, gpu_uuid, gpu_name, first_ts_ms, "
                          "last_ts_ms, record_count) VALUES (:id, :h, :i, :u, :n, :f, :l, 0)"),
                     [dict(zip(("id", "h", "i", "u", "n", "f", "l"), s)) for s in OLD_SERIES])
        conn.execute(text("UPDATE gpu_series SET record_count = (SELECT count(*) FROM records "
                          "WHERE series_id = gpu_series.id)"))  # 0 until the records are in: set below
        conn.execute(text("INSERT INTO records (series_id, metric, ts_ms, pid, v1, v2) "
                          "VALUES (:s, :m, :t, :p, :v1, :v2)"),
                     [dict(zip(("s", "m", "t", "p", "v1", "v2"), r)) for r in OLD_RECORDS])
        conn.execute(text("UPDATE gpu_series SET record_count = (SELECT count(*) FROM records "
                          "WHERE series_id = gpu_series.id)"))
        columns = "n, sum1, min1, max1, sum2, min2, max2"
        conn.execute(text(f"INSERT INTO rollups_1m (series_id, metric, minute_ms, {columns}) VALUES "
                          "(:a, :b, :c, :n, :s1, :l1, :h1, :s2, :l2, :h2)"),
                     [dict(zip(("a", "b", "c", "n", "s1", "l1", "h1", "s2", "l2", "h2"), (*k, *v)))
                      for k, v in minutes.items()])
        conn.execute(text(f"INSERT INTO series_totals (series_id, metric, {columns}) VALUES "
                          "(:a, :b, :n, :s1, :l1, :h1, :s2, :l2, :h2)"),
                     [dict(zip(("a", "b", "n", "s1", "l1", "h1", "s2", "l2", "h2"), (*k, *v)))
                      for k, v in totals.items()])


def _series(conn) -> list[tuple]:
    return sorted(tuple(r) for r in conn.execute(text(
        "SELECT hostname, gpu_index, gpu_uuid, gpu_name, first_ts_ms, last_ts_ms, record_count FROM gpu_series")))


def _stats_consistent(conn) -> None:
    """Rollups equal what the records add up to, totals what the rollups add up to, per series."""
    records = [tuple(r) for r in conn.execute(text("SELECT series_id, metric, ts_ms, pid, v1, v2 FROM records"))]
    minutes, totals = _rollups_of(records)
    stored = {(r[0], r[1], r[2]): list(r[3:]) for r in conn.execute(text(
        "SELECT series_id, metric, minute_ms, n, sum1, min1, max1, sum2, min2, max2 FROM rollups_1m"))}
    assert stored == minutes
    stored = {(r[0], r[1]): list(r[2:]) for r in conn.execute(text(
        "SELECT series_id, metric, n, sum1, min1, max1, sum2, min2, max2 FROM series_totals"))}
    assert stored == totals
    counts = dict(conn.execute(text("SELECT id, record_count FROM gpu_series")).all())
    assert counts == {sid: sum(1 for r in records if r[0] == sid) for sid in counts}


def test_gpu_identity_migration_keeps_data_both_ways(blank_url):
    _run(blank_url, "upgrade", "0003")
    engine = create_engine(blank_url)
    _store_old(engine)
    _run(blank_url, "upgrade", "0004")
    with engine.connect() as conn:
        # The two GPU-a series are one GPU now: its records (less the instant both held), span and the
        # labels of the series seen last (index 0, its name). The GPU without a UUID keeps its index.
        assert _series(conn) == [("h1", 0, "GPU-a", "A100", 0, 3 * MINUTE + 5, 5),
                                 ("h1", 2, None, None, 0, MINUTE, 2),
                                 ("h2", 0, "GPU-c", "H100", 0, MINUTE, 1)]
        assert dict(conn.execute(text("SELECT gpu_key, hostname FROM gpu_series")).all()) == {
            "u:GPU-a": "h1", "i:2": "h1", "u:GPU-c": "h2"}
        assert conn.execute(text("SELECT count(*) FROM records")).scalar() == len(OLD_RECORDS) - 1
        _stats_consistent(conn)
        # Per-column counts: each column's count is the record count where the column has values.
        assert sorted(tuple(r) for r in conn.execute(text("SELECT n, n1, n2, n3 FROM series_totals"))) == [
            (1, 1, 0, 0), (1, 1, 0, 0), (1, 1, 1, 0), (2, 2, 0, 0), (3, 3, 0, 0)]
    with engine.begin() as conn:  # what the new identity allows: GPUs without an index
        conn.execute(text("INSERT INTO gpu_series (id, hostname, gpu_key, gpu_index, gpu_uuid, first_ts_ms, "
                          "last_ts_ms, record_count) VALUES (5, 'h1', 'u:GPU-b', NULL, 'GPU-b', 0, 9, 0), "
                          "(6, 'h1', 'u:GPU-d', 2, 'GPU-d', 0, 5, 0), (7, 'h3', '', NULL, NULL, 0, 1, 0)"))
    _run(blank_url, "downgrade", "0003")
    with engine.connect() as conn:
        # Each GPU keeps its own index where it is free (the one seen last keeps a contested one);
        # the others get the lowest free one on their host. No series merged, no record lost.
        assert _series(conn) == [("h1", 0, "GPU-a", "A100", 0, 3 * MINUTE + 5, 5),
                                 ("h1", 1, "GPU-b", None, 0, 9, 0),
                                 ("h1", 2, None, None, 0, MINUTE, 2),
                                 ("h1", 3, "GPU-d", None, 0, 5, 0),
                                 ("h2", 0, "GPU-c", "H100", 0, MINUTE, 1),
                                 ("h3", 0, None, None, 0, 1, 0)]
        assert conn.execute(text("SELECT count(*) FROM records")).scalar() == len(OLD_RECORDS) - 1
        _stats_consistent(conn)
        columns = {c["name"] for c in inspect(conn).get_columns("gpu_series")}
        assert "gpu_key" not in columns and "name" not in {c["name"] for c in inspect(conn).get_columns("records")}
    _run(blank_url, "upgrade")  # and up again, onto data the old schema holds
    with engine.connect() as conn:
        assert len(_series(conn)) == 6
        _stats_consistent(conn)
    engine.dispose()
