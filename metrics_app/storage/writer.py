"""The one write path for crawler records: HTTP, WebSocket, JSONL tailers and bench/generate.py all
call ``store_rows`` inside a transaction they own, so the tailer can commit its offset with the rows.

Per batch, in the caller's transaction:
  1. resolve each GPU (hostname and ``identity_key``: UUID, else index) to a ``gpu_series`` id,
     creating missing ones;
  2. bulk-insert the rows with ``ON CONFLICT DO NOTHING`` on the natural key, ``RETURNING`` exactly
     the rows that were new (a retried batch stores nothing twice and counts nothing twice);
  3. add the new rows to the per-GPU summary, the per-minute and per-hour rollups and the per-GPU
     totals.
Rows older than raw retention skip step 2 and reach only the rollup tiers that still cover them
(backfills, imports of old files); rows older than every tier are dropped and counted.
Series and rollup rows are updated last and in key order, so concurrent PostgreSQL writers hold those
row locks briefly and always acquire them in the same order (no deadlocks).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import Any, NamedTuple, Sequence

from sqlalchemy import Table, select, tuple_
from sqlalchemy.engine import Connection

from .dialect import dialect_insert, is_postgresql, least_greatest, param_mark
from .models import GpuSeries, Record, identity_key
from .rollups import merge_stats, rollup_stats, values_list
from .state import state_of
from .tiers import Cutoffs

SERIES: Table = GpuSeries.__table__
RECORDS: Table = Record.__table__


class Row(NamedTuple):
    """One validated record, already in storage units (UTC ms, kind code, value columns)."""

    hostname: str
    gpu_index: int | None
    gpu_uuid: str | None
    gpu_name: str | None
    metric: int
    ts_ms: int
    pid: int
    v1: float | None
    v2: float | None
    v3: float | None
    #: A process record's process name.
    name: str | None = None


#: Which GPU a row is about, as the writer keys it: the index counts only without a UUID.
GpuKey = tuple[str, str | None, int | None]


def gpu_key(row: Row) -> GpuKey:
    uuid = row.gpu_uuid
    return (row.hostname, uuid, None) if uuid else (row.hostname, None, row.gpu_index)


@dataclass(frozen=True, slots=True)
class StoreResult:
    """``saved``: new raw records. ``rollup_only``: records older than raw retention, added to the
    rollup tiers that still cover their time (not deduplicated: no raw row is left to collide with).
    ``expired``: older than every tier, dropped. The rest were duplicates."""

    received: int
    saved: int
    rollup_only: int = 0
    expired: int = 0

    @property
    def duplicates(self) -> int:
        return self.received - self.saved - self.rollup_only - self.expired

    def as_dict(self) -> dict[str, int]:
        """The two old-record counts appear only when non-zero: a live producer's answer is unchanged."""
        answer = {"saved": self.saved, "duplicates": self.duplicates, "received": self.received}
        if self.rollup_only:
            answer["rollupOnly"] = self.rollup_only
        if self.expired:
            answer["expired"] = self.expired
        return answer


@dataclass(slots=True)
class _SeriesBatch:
    """What one batch says about one GPU: its time span, latest labels, and how many rows were new."""

    lo: int
    hi: int
    index: int | None
    name: str | None
    new: int = 0


def _summarize(rows: Sequence[Row], keys: Sequence[GpuKey]) -> dict[GpuKey, _SeriesBatch]:
    """Labels: the latest non-empty value by record time wins."""
    span: dict[GpuKey, _SeriesBatch] = {}
    for key, row in zip(keys, rows):
        entry = span.get(key)
        if entry is None:
            span[key] = _SeriesBatch(row.ts_ms, row.ts_ms, row.gpu_index, row.gpu_name)
            continue
        if row.ts_ms < entry.lo:
            entry.lo = row.ts_ms
        if row.ts_ms >= entry.hi:
            entry.hi = row.ts_ms
            entry.index = entry.index if row.gpu_index is None else row.gpu_index
            entry.name = row.gpu_name or entry.name
    return span


def _series_ids(conn: Connection, span: dict[GpuKey, _SeriesBatch]) -> dict[GpuKey, int]:
    known = state_of(conn).series_ids
    if known.keys() >= span.keys():
        return known
    wanted = {(host, identity_key(uuid, index)): (host, uuid, index)
              for host, uuid, index in span.keys() - known.keys()}
    lookup = select(SERIES.c.id, SERIES.c.hostname, SERIES.c.gpu_key).where(
        tuple_(SERIES.c.hostname, SERIES.c.gpu_key).in_(sorted(wanted)))
    found = {wanted[(h, k)]: i for i, h, k in conn.execute(lookup)}
    # Only rows that existed before this transaction are cached: one it creates would be void if it
    # rolled back. Those are found (and cached) by the next batch's lookup.
    known.update(found)
    missing = sorted(k for k in wanted if wanted[k] not in found)
    if not missing:
        return known
    conn.execute(dialect_insert(conn, SERIES).on_conflict_do_nothing(index_elements=["hostname", "gpu_key"]), [
        {"hostname": h, "gpu_key": k, "gpu_uuid": wanted[(h, k)][1], "gpu_index": span[wanted[(h, k)]].index,
         "first_ts_ms": span[wanted[(h, k)]].lo, "last_ts_ms": span[wanted[(h, k)]].hi, "record_count": 0}
        for h, k in missing])
    return {**known, **{wanted[(h, k)]: i for i, h, k in conn.execute(lookup)}}


#: Record columns in insert order; rows per multi-row INSERT on SQLite (8 parameters each, well under
#: its 32,766 limit).
_RECORD_COLUMNS = ("series_id", "metric", "ts_ms", "pid", "v1", "v2", "v3", "name")
_CHUNK_ROWS = 2000
_NATURAL_KEY = itemgetter(0, 1, 2, 3)
_ON_CONFLICT = "ON CONFLICT (series_id, metric, ts_ms, pid) DO NOTHING"
_RETURNING = f" RETURNING {', '.join(_RECORD_COLUMNS)}"
#: PostgreSQL takes the batch as one array per column: one parameter per column instead of 8,000
#: that psycopg would adapt one by one (measured: 36 -> 8 ms of client CPU per 1,000 rows).
_PG_RECORDS_SQL = (f"INSERT INTO {RECORDS.name} ({', '.join(_RECORD_COLUMNS)}) SELECT * FROM unnest("
                   "%s::integer[], %s::smallint[], %s::bigint[], %s::integer[], %s::float8[], %s::float8[], "
                   f"%s::float8[], %s::text[]) {_ON_CONFLICT}{_RETURNING}")


@lru_cache(maxsize=64)
def _sqlite_records_sql(n: int, returning: bool) -> str:
    """``INSERT ... VALUES (?, ...) x n ... [RETURNING]``: the Core insert, rendered once per size.

    Measured on 1,000-row batches: SQLAlchemy's executemany with RETURNING spent ~6 ms per batch
    building parameter dicts and Row objects for what the driver does in ~2 ms, inside the write lock.
    """
    return (f"INSERT INTO {RECORDS.name} ({', '.join(_RECORD_COLUMNS)}) "
            f"VALUES {values_list(len(_RECORD_COLUMNS), n, param_mark(False))} {_ON_CONFLICT}{_RETURNING if returning else ''}")


def _insert_sqlite(cursor: Any, values: list[tuple]) -> list[tuple]:
    """Insert first without RETURNING (fetching 1,000 returned rows was ~25 % of the insert, inside
    the write lock): when the changed-row count says every row was new, the new rows are ``values``.
    Only a batch holding duplicates is rolled back to the savepoint and inserted again, returning
    exactly the new rows."""
    new: list[tuple] = []
    for start in range(0, len(values), _CHUNK_ROWS):
        chunk = values[start:start + _CHUNK_ROWS]
        flat = [v for row in chunk for v in row]
        cursor.execute("SAVEPOINT new_records")
        cursor.execute(_sqlite_records_sql(len(chunk), False), flat)
        if cursor.rowcount == len(chunk):
            new.extend(chunk)
        else:
            cursor.execute("ROLLBACK TO new_records")
            cursor.execute(_sqlite_records_sql(len(chunk), True), flat)
            new.extend(cursor.fetchall())
        cursor.execute("RELEASE new_records")
    return new


def _values(rows: Sequence[Row], keys: Sequence[GpuKey], ids: dict[GpuKey, int]) -> list[tuple]:
    """Rows as (series_id, metric, ts_ms, pid, v1, v2, v3, name)."""
    return [(ids[k], r.metric, r.ts_ms, r.pid, r.v1, r.v2, r.v3, r.name) for k, r in zip(keys, rows)]


def _insert_records(conn: Connection, rows: Sequence[Row], keys: Sequence[GpuKey],
                    ids: dict[GpuKey, int]) -> list[tuple]:
    """The new rows, as (series_id, metric, ts_ms, pid, v1, v2, v3, name)."""
    if not rows:
        return []
    values = _values(rows, keys, ids)
    cursor = conn.connection.driver_connection.cursor()
    try:
        if not is_postgresql(conn):
            return _insert_sqlite(cursor, values)
        values.sort(key=_NATURAL_KEY)  # concurrent writers take unique-index locks in one order
        columns = [list(column) for column in zip(*values)]
        for values_column in columns[4:7]:  # psycopg needs one element type per array: callers may pass ints
            values_column[:] = [None if v is None else float(v) for v in values_column]
        cursor.execute(_PG_RECORDS_SQL, columns)
        return cursor.fetchall()
    finally:
        cursor.close()


@lru_cache(maxsize=2)
def _update_series_sql(on_postgresql: bool) -> str:
    least, greatest = least_greatest(on_postgresql)
    mark = param_mark(on_postgresql)
    return (f"UPDATE {SERIES.name} SET record_count = record_count + {mark}, "
            f"first_ts_ms = {least}(first_ts_ms, {mark}), last_ts_ms = {greatest}(last_ts_ms, {mark}), "
            f"gpu_index = coalesce({mark}, gpu_index), gpu_name = coalesce({mark}, gpu_name) WHERE id = {mark}")


def _update_series(conn: Connection, span: dict[GpuKey, _SeriesBatch], ids: dict[GpuKey, int]) -> None:
    """Counts grow by the new rows only; the span and labels by the whole batch. In id order (lock
    order on PostgreSQL), on the driver cursor (SQLAlchemy's executemany cost ~0.6 ms a batch)."""
    params = sorted(((e.new, e.lo, e.hi, e.index, e.name, ids[key]) for key, e in span.items()), key=itemgetter(5))
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.executemany(_update_series_sql(is_postgresql(conn)), params)
    finally:
        cursor.close()


def _split_by_age(rows: Sequence[Row], cuts: Cutoffs) -> tuple[Sequence[Row], list[Row], int]:
    """(raw-tier rows, rollup-only rows, how many no tier covers); one comparison for a live batch."""
    if min(r.ts_ms for r in rows) >= cuts.raw:
        return rows, [], 0
    raw = [r for r in rows if r.ts_ms >= cuts.raw]
    old = [r for r in rows if cuts.hour <= r.ts_ms < cuts.raw]
    return raw, old, len(rows) - len(raw) - len(old)


def store_rows(conn: Connection, rows: Sequence[Row]) -> StoreResult:
    """Store validated rows in the caller's transaction; returns how many were new (and how many
    were too old for raw records: those reach only the rollup tiers still covering their time)."""
    return _store(conn, rows)[0]


#: A stored record's natural key: (series_id, metric, ts_ms, pid).
NaturalKey = tuple[int, int, int, int]


def _store(conn: Connection, rows: Sequence[Row]) -> tuple[StoreResult, set[NaturalKey], dict[GpuKey, int], Cutoffs | None]:
    """``store_rows``, also giving the natural keys of the new raw rows, the series ids and the cutoffs."""
    if not rows:
        return StoreResult(0, 0), set(), {}, None
    cuts = state_of(conn).retention.cutoffs()
    raw, old, expired = _split_by_age(rows, cuts)
    if expired == len(rows):
        return StoreResult(len(rows), 0, expired=expired), set(), {}, cuts
    raw_keys = [gpu_key(row) for row in raw]
    old_keys = [gpu_key(row) for row in old]
    span = _summarize([*raw, *old], raw_keys + old_keys) if old else _summarize(raw, raw_keys)
    ids = _series_ids(conn, span)
    new = _insert_records(conn, raw, raw_keys, ids)
    per_series, merges = rollup_stats([*new, *_values(old, old_keys, ids)] if old else new, cuts)
    raw_span = _summarize(raw, raw_keys) if old else span
    for key, entry in raw_span.items():
        entry.new = per_series[ids[key]]
    if raw_span:
        _update_series(conn, raw_span, ids)
    merge_stats(conn, merges)
    result = StoreResult(len(rows), len(new), rollup_only=len(old), expired=expired)
    return result, {_NATURAL_KEY(value) for value in new}, ids, cuts


def store_batches(conn: Connection, batches: Sequence[Sequence[Row]]) -> list[StoreResult]:
    """Several requests' rows stored as one batch (one insert, one series update, one rollup merge),
    each request answered with exactly the counts it would have got stored alone after the ones
    before it: a record two requests share is saved for the first and a duplicate for the second.

    Why: the writer thread commits groups of single-record crawler POSTs, and ``store_rows`` per
    request cost ~120 us of statements for one row, against ~10 us a row stored together.
    """
    if len(batches) == 1:
        return [store_rows(conn, batches[0])]
    _, new, ids, cuts = _store(conn, [row for batch in batches for row in batch])
    results, claimed = [], set()
    for batch in batches:
        if not batch or cuts is None:
            results.append(StoreResult(len(batch), 0))
            continue
        raw, old, expired = _split_by_age(batch, cuts)
        saved = 0
        for row in raw:
            key = (ids[gpu_key(row)], row.metric, row.ts_ms, row.pid)
            if key in new and key not in claimed:
                claimed.add(key)
                saved += 1
        results.append(StoreResult(len(batch), saved, rollup_only=len(old), expired=expired))
    return results
