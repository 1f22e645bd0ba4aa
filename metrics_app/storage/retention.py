"""Age-based retention: delete records older than METRICS_RETENTION_HOURS, by record timestamp (0 keeps
them forever: the job is not scheduled and ``flask retention`` deletes nothing).

The cutoff is rounded down to a whole minute so raw rows and per-minute rollups are trimmed at the
same boundary (no rollup ever counts a deleted row). Rows go in chunks of RETENTION_CHUNK_ROWS, each
in its own short write transaction, so ingest waits at most one chunk, never the whole purge.
Per-GPU summaries lose the deleted rows from their counts and move ``first_ts_ms`` forward; a GPU
whose records all expired keeps its summary row with a count of 0 (it was seen). Per-GPU totals are
recomputed from the remaining rollups with each rollup chunk (a deleted minimum cannot be subtracted).
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import BigInteger, bindparam, delete, func, select, tuple_, update
from sqlalchemy.engine import Connection, Engine

from ..extensions import db
from .engine import write_tx
from .kinds import KINDS_BY_CODE
from .rollups import MINUTE_MS, ROLLUPS, recompute_totals
from .writer import RECORDS, SERIES

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetentionResult:
    cutoff_ms: int
    records: int
    rollups: int
    dry_run: bool
    duration_ms: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def cutoff_for(hours: float, now_ms: int) -> int:
    cutoff = now_ms - int(hours * 3_600_000)
    return cutoff - cutoff % MINUTE_MS


def _earliest_kept(conn: Connection, series_id: int, cutoff_ms: int) -> int | None:
    """Asked per metric so each minimum is one seek on the natural key (series_id, metric, ts_ms);
    one minimum over the whole GPU scanned its index entries: ~31 ms a GPU at 10M records, ~1 s a
    chunk, all inside the write lock."""
    firsts = [conn.scalar(select(func.min(RECORDS.c.ts_ms)).where(
        RECORDS.c.series_id == series_id, RECORDS.c.metric == code, RECORDS.c.ts_ms >= cutoff_ms))
        for code in KINDS_BY_CODE]
    return min((first for first in firsts if first is not None), default=None)


def _delete_record_chunk(engine: Engine, cutoff_ms: int, chunk: int) -> int:
    """Delete up to ``chunk`` expired records and take them off their series' summaries."""
    victims = select(RECORDS.c.id).where(RECORDS.c.ts_ms < cutoff_ms).limit(chunk).scalar_subquery()
    with write_tx(engine) as conn:
        per_series = Counter(conn.execute(
            delete(RECORDS).where(RECORDS.c.id.in_(victims)).returning(RECORDS.c.series_id)).scalars())
        if per_series:
            conn.execute(
                update(SERIES).where(SERIES.c.id == bindparam("sid")).values(
                    record_count=SERIES.c.record_count - bindparam("n"),
                    first_ts_ms=func.coalesce(bindparam("first", type_=BigInteger), SERIES.c.first_ts_ms)),
                [{"sid": sid, "n": n, "first": _earliest_kept(conn, sid, cutoff_ms)}
                 for sid, n in sorted(per_series.items())])
    return sum(per_series.values())


def _delete_rollup_chunk(engine: Engine, cutoff_ms: int, chunk: int, series_id: int) -> int:
    """Delete up to ``chunk`` expired rollups of one GPU and recompute its totals in the same
    transaction. One GPU at a time: recomputing all 32 GPUs of a 10M-record history held the write
    lock ~95 ms, one GPU ~3 ms."""
    key = tuple_(ROLLUPS.c.series_id, ROLLUPS.c.metric, ROLLUPS.c.minute_ms)
    victims = select(ROLLUPS.c.series_id, ROLLUPS.c.metric, ROLLUPS.c.minute_ms).where(
        ROLLUPS.c.series_id == series_id, ROLLUPS.c.minute_ms < cutoff_ms).limit(chunk)
    with write_tx(engine) as conn:
        deleted = conn.execute(delete(ROLLUPS).where(key.in_(victims))).rowcount
        if deleted:
            recompute_totals(conn, [series_id])
    return deleted


def _count_expired(engine: Engine, cutoff_ms: int) -> tuple[int, int]:
    with engine.connect() as conn:
        records = conn.scalar(select(func.count()).select_from(RECORDS).where(RECORDS.c.ts_ms < cutoff_ms))
        rollups = conn.scalar(select(func.count()).select_from(ROLLUPS).where(ROLLUPS.c.minute_ms < cutoff_ms))
    return records, rollups


def run_retention(engine: Engine, hours: float, chunk_rows: int, dry_run: bool = False,
                  now_ms: int | None = None) -> RetentionResult:
    """One pass; a dry run only counts."""
    began = time.monotonic()
    cutoff_ms = cutoff_for(hours, int(time.time() * 1000) if now_ms is None else now_ms)
    if dry_run:
        records, rollups = _count_expired(engine, cutoff_ms)
    else:
        records = rollups = 0
        while (deleted := _delete_record_chunk(engine, cutoff_ms, chunk_rows)) > 0:
            records += deleted
        with engine.connect() as conn:
            series_ids = list(conn.scalars(select(SERIES.c.id).order_by(SERIES.c.id)))
        for series_id in series_ids:
            while (deleted := _delete_rollup_chunk(engine, cutoff_ms, chunk_rows, series_id)) > 0:
                rollups += deleted
    result = RetentionResult(cutoff_ms, records, rollups, dry_run, int((time.monotonic() - began) * 1000))
    if not dry_run and records:
        log.info("retention deleted %d records and %d rollups older than %d", records, rollups, cutoff_ms)
    return result


def retention_job() -> RetentionResult:
    """The periodic job, with the current app's settings (jobs.py records each run for /health)."""
    config = current_app.config
    return run_retention(db.engine, config["METRICS_RETENTION_HOURS"], config["RETENTION_CHUNK_ROWS"])


@click.command("retention")
@click.option("--hours", type=float, default=None, help="Keep this many hours (default METRICS_RETENTION_HOURS).")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@with_appcontext
def retention_command(hours: float | None, dry_run: bool) -> None:
    """Delete records older than the retention window once, and print what was deleted."""
    config = current_app.config
    hours = config["METRICS_RETENTION_HOURS"] if hours is None else hours
    if hours < 0:
        raise click.BadParameter("must be >= 0 (0 keeps records forever)", param_hint="--hours")
    if hours == 0:
        click.echo("retention: 0 hours keeps records forever; nothing deleted")
        return
    result = run_retention(db.engine, hours, config["RETENTION_CHUNK_ROWS"], dry_run=dry_run)
    cutoff = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(result.cutoff_ms / 1000))
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"retention ({hours:g} h, cutoff {cutoff}): {verb} {result.records} records "
               f"and {result.rollups} per-minute rollups in {result.duration_ms} ms")
