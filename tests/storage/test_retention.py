"""Retention: each tier by its own age (raw records at a minute boundary, minutes and hours by their
days), in chunks; summaries and totals follow the raw records; the job writes through the writer
thread; the CLI's dry run deletes nothing (the job's runs for /health: tests/test_job_status.py)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from metrics_app.extensions import db
from metrics_app.storage.models import GpuSeries, HourRollup, Record, Rollup, SeriesTotal
from metrics_app.storage.retention import run_retention
from metrics_app.storage.tiers import Retention

from ..ingest.records import utilization

NOW = datetime(2025, 1, 2, tzinfo=timezone.utc)
NOW_MS = int(NOW.timestamp() * 1000)


def store_sample_minutes(client) -> None:
    """300 records 2 h old (minutes 0-4 of 22:00), 120 records 30 min old."""
    assert client.post("/metrics", json=utilization(300, start=NOW - timedelta(hours=2))).status_code == 201
    assert client.post("/metrics", json=utilization(120, start=NOW - timedelta(minutes=30))).status_code == 201


def totals(app) -> tuple[int, int, int, int, tuple]:
    """Records, the counts in the minute tier, the hour tier and /stats' totals, and the GPU summary."""
    with app.app_context():
        records = db.session.scalar(select(func.count()).select_from(Record))
        n = [db.session.scalar(select(func.coalesce(func.sum(table.n), 0))) for table in (Rollup, HourRollup, SeriesTotal)]
        series = db.session.execute(select(GpuSeries.record_count, GpuSeries.first_ts_ms)).one()
    return records, *n, tuple(series)


def keep(hours: float, minute_days: float = 90, hour_days: float = 730) -> Retention:
    return Retention(hours, minute_days, hour_days)


def test_deletes_old_records_in_chunks_and_keeps_their_rollups(client, app):
    store_sample_minutes(client)
    with app.app_context():
        result = run_retention(db.engine, keep(1), chunk_rows=70, now_ms=NOW_MS)
    assert (result.records, result.minutes, result.hours) == (300, 0, 0)
    records, minute_n, hour_n, total_n, (count, first_ts) = totals(app)
    assert records == total_n == count == 120  # /stats and /gpus describe the raw records
    assert minute_n == hour_n == 420
    assert first_ts == NOW_MS - 30 * 60_000


def test_cutoff_is_a_whole_minute_so_totals_match_raw_rows(client, app):
    store_sample_minutes(client)
    with app.app_context():
        run_retention(db.engine, keep(2 - 2.5 / 60), chunk_rows=1000, now_ms=NOW_MS)  # 2.5 min into the old run
    records, minute_n, _, total_n, (count, _) = totals(app)
    assert records == total_n == count == 120 + 180  # minutes 0-1 gone, 2-4 kept whole
    assert minute_n == 420


def test_each_rollup_tier_expires_on_its_own_days(client, app):
    """Minutes go 2 days after their hour ends (the minute tier's cutoff is a whole hour), hours 3
    days after. The sample has minutes 22:00-22:04 and 23:30-23:31, so hours 22:00 and 23:00."""
    store_sample_minutes(client)
    day, hour = 86_400_000, 3_600_000
    expected = [(-1.5 * hour, (420, 0, 0)), (-0.5 * hour, (0, 5, 0)), (0, (0, 2, 0)),
                (day - 0.5 * hour, (0, 0, 1)), (day, (0, 0, 1))]
    with app.app_context():
        for offset, counts in expected:
            result = run_retention(db.engine, keep(1, 2, 3), chunk_rows=2, now_ms=NOW_MS + 2 * day + int(offset))
            assert (result.records, result.minutes, result.hours) == counts, offset
    assert totals(app)[:4] == (0, 0, 0, 0)


def test_cli_dry_run_deletes_nothing(client, app, runner):
    store_sample_minutes(client)
    result = runner.invoke(args=["retention", "--hours", "1", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "would delete 420 records, 0 per-minute and 0 per-hour" in result.output  # 2025 is older than 1 h
    assert totals(app)[0] == 420
    result = runner.invoke(args=["retention", "--hours", "1"])
    assert "deleted 420 records" in result.output
    assert totals(app)[0] == 0


def test_cli_refuses_negative_hours(runner):
    result = runner.invoke(args=["retention", "--hours", "-1"])
    assert result.exit_code != 0 and "must be >= 0" in result.output


def test_zero_hours_keeps_everything(client, app, runner):
    store_sample_minutes(client)
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


def test_the_job_deletes_on_the_writer_thread(client, app):
    """Under the server the writer thread owns the SQLite write lock: the job's chunks are requests
    of the app's write queue, never write transactions of the job's own."""
    from metrics_app.storage import write_queue
    from metrics_app.storage.retention import retention_job

    store_sample_minutes(client)
    app.config.update(METRICS_RETENTION_HOURS=1, RETENTION_CHUNK_ROWS=100,
                      ROLLUP_1M_RETENTION_DAYS=365 * 3000, ROLLUP_1H_RETENTION_DAYS=365 * 3000)
    with app.app_context():
        requests = write_queue().stats.requests
        result = retention_job()
    assert result.records == 420 and totals(app)[:2] == (0, 420)
    # 5 chunks of 100 records (the last one empty) and the totals' recomputation, at least.
    assert write_queue(app).stats.requests - requests >= 6
