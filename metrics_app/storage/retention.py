"""Age-based retention of each tier: raw records after METRICS_RETENTION_HOURS, per-minute rollups
after ROLLUP_1M_RETENTION_DAYS, per-hour rollups after ROLLUP_1H_RETENTION_DAYS (tiers.py).
METRICS_RETENTION_HOURS=0 keeps everything forever: the job is not scheduled and ``flask retention``
deletes nothing.

Everything is deleted by key range, one GPU and metric at a time, on the tables' clustered keys
(series_id, metric, time, ...): no index on time alone is needed. Rows go in chunks of
RETENTION_CHUNK_ROWS, each in its own short write transaction, so ingest waits at most one chunk.
Under the server each chunk runs on the app's writer thread (``write_queue(app).run``), which owns
the SQLite write lock: taking it from the job's greenlet would block the event loop. ``flask
retention`` and tests, where no writer thread runs, write directly (``direct_writes``).
Per-GPU summaries lose the deleted records from their counts and move ``first_ts_ms`` forward; a GPU
whose records all expired keeps its summary row with a count of 0 (it was seen). Once a GPU's
expired records are gone its totals are recomputed from its raw-backed minutes (a deleted minimum
cannot be subtracted).
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, TypeVar

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import BigInteger, Table, bindparam, delete, exists, func, select, tuple_, update
from sqlalchemy.engine import Connection, Engine

from ..extensions import db
from .engine import write_tx
from .kinds import KINDS_BY_CODE
from .records import RECORDS
from .rollups import HOURS, ROLLUPS, recompute_totals
from .tiers import Cutoffs, Retention
from .write_queue import EXTENSION_KEY as WRITE_QUEUE_KEY
from .writer import SERIES

log = logging.getLogger(__name__)
T = TypeVar("T")
#: Runs one write transaction: the writer thread's ``WriteQueue.run``, or ``direct_writes(engine)``.
Writes = Callable[[Callable[[Connection], T]], T]

#: Each tier's table and its time column, with the cutoff that applies to it.
_TIERS: tuple[tuple[Table, str, str], ...] = (
    (RECORDS, "ts_ms", "raw"), (ROLLUPS, "minute_ms", "minute"), (HOURS, "hour_ms", "hour"))


@dataclass(frozen=True, slots=True)
class RetentionResult:
    cutoffs: Cutoffs
    records: int
    minutes: int
    hours: int
    dry_run: bool
    duration_ms: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _earliest_kept(conn: Connection, series_id: int, cutoff_ms: int) -> int | None:
    """Asked per metric so each minimum is one seek on the key (series_id, metric, ts_ms); one
    minimum over the whole GPU scanned its entries: ~31 ms a GPU at 10M records, in the write lock."""
    firsts = [conn.scalar(select(func.min(RECORDS.c.ts_ms)).where(
        RECORDS.c.series_id == series_id, RECORDS.c.metric == code, RECORDS.c.ts_ms >= cutoff_ms))
        for code in KINDS_BY_CODE]
    return min((first for first in firsts if first is not None), default=None)


def _expired(table: Table, time_column: str, series_id: int, metric: int, cutoff_ms: int) -> Any:
    return (table.c.series_id == series_id, table.c.metric == metric, table.c[time_column] < cutoff_ms)


def direct_writes(engine: Engine) -> Writes:
    """Each write in its own ``write_tx``: for where no writer thread runs (``flask retention``, tests)."""
    def run(work: Callable[[Connection], T]) -> T:
        with write_tx(engine) as conn:
            return work(conn)
    return run


def _delete_chunk(write: Writes, table: Table, time_column: str, series_id: int, metric: int,
                  cutoff_ms: int, chunk: int) -> int:
    """Delete up to ``chunk`` expired rows of one GPU's metric; records also leave its summary."""
    key = list(table.primary_key.columns)
    victims = select(*key).where(*_expired(table, time_column, series_id, metric, cutoff_ms)).limit(chunk)

    def work(conn: Connection) -> int:
        deleted = conn.execute(delete(table).where(tuple_(*key).in_(victims))).rowcount
        if deleted and table is RECORDS:
            conn.execute(update(SERIES).where(SERIES.c.id == series_id).values(
                record_count=SERIES.c.record_count - deleted,
                first_ts_ms=func.coalesce(bindparam("first", type_=BigInteger), SERIES.c.first_ts_ms)),
                {"first": _earliest_kept(conn, series_id, cutoff_ms)})
        return deleted
    return write(work)


def _count_expired(engine: Engine, table: Table, time_column: str, series_ids: list[int], cutoff_ms: int) -> int:
    with engine.connect() as conn:
        return sum(conn.scalar(select(func.count()).select_from(table).where(
            *_expired(table, time_column, sid, code, cutoff_ms))) for sid in series_ids for code in KINDS_BY_CODE)


def _trim_series(engine: Engine, write: Writes, series_id: int, cutoffs: Cutoffs,
                 chunk: int) -> tuple[int, int, int]:
    """Every tier of one GPU, finest first; its totals follow its raw cutoff. Which (tier, metric)
    has anything to delete is asked first, outside the write lock: most passes find little."""
    counts = []
    for table, time_column, tier in _TIERS:
        cutoff, deleted = getattr(cutoffs, tier), 0
        with engine.connect() as conn:
            due = [code for code in KINDS_BY_CODE
                   if conn.scalar(select(exists().where(*_expired(table, time_column, series_id, code, cutoff))))]
        for code in due:
            while (n := _delete_chunk(write, table, time_column, series_id, code, cutoff, chunk)) > 0:
                deleted += n
        counts.append(deleted)
        if table is RECORDS and deleted:
            write(lambda conn: recompute_totals(conn, [series_id], cutoffs.raw))
    return counts[0], counts[1], counts[2]


def run_retention(engine: Engine, retention: Retention, chunk_rows: int, dry_run: bool = False,
                  now_ms: int | None = None, write: Writes | None = None) -> RetentionResult:
    """One pass over every tier; a dry run only counts. Writes go through ``write`` (default:
    ``direct_writes(engine)``); reads, outside the write lock, through ``engine``."""
    began = time.monotonic()
    write = write or direct_writes(engine)
    cutoffs = retention.cutoffs(now_ms)
    with engine.connect() as conn:
        series_ids = list(conn.scalars(select(SERIES.c.id).order_by(SERIES.c.id)))
    if dry_run:
        counts = [_count_expired(engine, table, column, series_ids, getattr(cutoffs, tier))
                  for table, column, tier in _TIERS]
    else:
        counts = [0, 0, 0]
        for series_id in series_ids:
            trimmed = _trim_series(engine, write, series_id, cutoffs, chunk_rows)
            counts = [total + n for total, n in zip(counts, trimmed)]
    result = RetentionResult(cutoffs, *counts, dry_run, int((time.monotonic() - began) * 1000))
    if not dry_run and any(counts):
        log.info("retention deleted %d records, %d minute and %d hour rollups", *counts)
    return result


def retention_job() -> RetentionResult:
    """The periodic job, with the current app's settings, its writes on the app's writer thread
    (jobs.py records each run for /health)."""
    app = current_app
    return run_retention(db.engine, Retention.from_config(app.config), app.config["RETENTION_CHUNK_ROWS"],
                         write=app.extensions[WRITE_QUEUE_KEY].run)


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


@click.command("retention")
@click.option("--hours", type=float, default=None, help="Keep this many hours of raw records "
              "(default METRICS_RETENTION_HOURS); the rollup tiers keep their configured days.")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@with_appcontext
def retention_command(hours: float | None, dry_run: bool) -> None:
    """Delete what each tier no longer keeps, once, and print what was deleted."""
    config = current_app.config
    if hours is not None and hours < 0:
        raise click.BadParameter("must be >= 0 (0 keeps records forever)", param_hint="--hours")
    if (config["METRICS_RETENTION_HOURS"] if hours is None else hours) == 0:
        click.echo("retention: 0 hours keeps records forever; nothing deleted")
        return
    try:
        retention = Retention.from_config({**config, **({} if hours is None else {"METRICS_RETENTION_HOURS": hours})})
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--hours") from exc
    result = run_retention(db.engine, retention, config["RETENTION_CHUNK_ROWS"], dry_run=dry_run)
    cut = result.cutoffs
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"retention ({retention.raw_hours:g} h raw, cutoff {_iso(cut.raw)}; 1m before {_iso(cut.minute)}; "
               f"1h before {_iso(cut.hour)}): {verb} {result.records} records, {result.minutes} per-minute "
               f"and {result.hours} per-hour rollups in {result.duration_ms} ms")
