"""Retention: deletes by record timestamp at a minute boundary, trims rollups and summaries together,
works in chunks; the CLI's dry run deletes nothing (the job's runs for /health: tests/test_job_status.py)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from metrics_app.extensions import db
from metrics_app.storage.models import GpuSeries, Record, Rollup
from metrics_app.storage.retention import run_retention

from ..ingest.records import utilization

NOW = datetime(2025, 1, 2, tzinfo=timezone.utc)
NOW_MS = int(NOW.timestamp() * 1000)


def seed(client) -> None:
    """300 records 2 h old (minutes 0-4 of 22:00), 120 records 30 min old."""
    assert client.post("/metrics", json=utilization(300, start=NOW - timedelta(hours=2))).status_code == 201
    assert client.post("/metrics", json=utilization(120, start=NOW - timedelta(minutes=30))).status_code == 201


def totals(app) -> tuple[int, int, tuple]:
    with app.app_context():
        records = db.session.scalar(select(func.count()).select_from(Record))
        rollup_n = db.session.scalar(select(func.coalesce(func.sum(Rollup.n), 0)))
        series = db.session.execute(select(GpuSeries.record_count, GpuSeries.first_ts_ms)).one()
    return records, rollup_n, tuple(series)


def test_deletes_old_records_in_chunks_and_trims_rollups_and_summary(client, app):
    seed(client)
    with app.app_context():
        result = run_retention(db.engine, hours=1, chunk_rows=70, now_ms=NOW_MS)
    assert (result.records, result.rollups) == (300, 5)
    records, rollup_n, (count, first_ts) = totals(app)
    assert records == rollup_n == count == 120
    assert first_ts == NOW_MS - 30 * 60_000


def test_cutoff_is_a_whole_minute_so_rollups_match_raw_rows(client, app):
    seed(client)
    with app.app_context():
        run_retention(db.engine, hours=2 - 2.5 / 60, chunk_rows=1000, now_ms=NOW_MS)  # 2.5 min into the old run
    records, rollup_n, (count, _) = totals(app)
    assert records == rollup_n == count == 120 + 180  # minutes 0-1 gone, 2-4 kept whole


def test_cli_dry_run_deletes_nothing(client, app, runner):
    seed(client)
    result = runner.invoke(args=["retention", "--hours", "1", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "would delete 420 records" in result.output  # all of 2025-01-01 is older than 1 h from today
    assert totals(app)[0] == 420
    result = runner.invoke(args=["retention", "--hours", "1"])
    assert "deleted 420 records" in result.output
    assert totals(app)[0] == 0


def test_cli_refuses_negative_hours(runner):
    result = runner.invoke(args=["retention", "--hours", "-1"])
    assert result.exit_code != 0 and "must be >= 0" in result.output


def test_zero_hours_keeps_everything(client, app, runner):
    seed(client)
    app.config["METRICS_RETENTION_HOURS"] = 0
    result = runner.invoke(args=["retention"])
    assert result.exit_code == 0 and "keeps records forever; nothing deleted" in result.output
    assert totals(app)[0] == 420


def test_zero_hours_schedules_no_retention_job(app, tmp_path, caplog):
    from metrics_app.jobs import BackgroundJobs

    app.config.update(METRICS_RETENTION_HOURS=0, RECORD_INTERVAL_SEC=0, JOBS_LOCK_PATH=str(tmp_path / "j.lock"))
    jobs = BackgroundJobs(app)
    with caplog.at_level("INFO", logger="metrics_app.jobs"):
        jobs.start()
    jobs.stop()
    assert "records are kept forever" in caplog.text
