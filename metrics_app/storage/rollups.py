"""Per-minute and per-hour rollups and per-GPU totals of newly stored rows, merged into their tables
in the ingest transaction, and the totals' recomputation after retention.

All three tables hold the same combinable stats (``STATS``: count, then count/sum/min/max of v1..v3),
so one merge statement serves them all. It is rendered by hand as a single multi-row ``INSERT .. ON CONFLICT DO
UPDATE`` per table, executed on the driver cursor: SQLAlchemy's executemany spent more on building
parameter dicts than the database spent on the rows, inside the write lock.
"""
from __future__ import annotations

from collections import defaultdict
from functools import lru_cache, reduce
from itertools import chain
from operator import add
from typing import Any, Sequence

from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.engine import Connection

from .dialect import is_postgresql, least_greatest, param_mark, pg_array_param
from .models import HourRollup, Rollup, SeriesTotal
from .tiers import HOUR_MS, MINUTE_MS, Cutoffs

ROLLUPS: Table = Rollup.__table__
HOURS: Table = HourRollup.__table__
TOTALS: Table = SeriesTotal.__table__
STATS = ("n", "n1", "sum1", "min1", "max1", "n2", "sum2", "min2", "max2", "n3", "sum3", "min3", "max3")
#: Where each value column's count is in a stat row (its sum, min and max follow it).
_FIELD_AT = (1, 5, 9)
#: Rows per statement: 16 parameters each stays well under SQLite's 32,766.
_CHUNK_ROWS = 2000


def values_list(width: int, rows: int, mark: str) -> str:
    """``(?, ?), (?, ?)``: the VALUES list of a multi-row INSERT."""
    row = "(" + ", ".join([mark] * width) + ")"
    return ", ".join([row] * rows)


def rollup_stats(columns: Sequence[Sequence[Any]],
                 cuts: Cutoffs) -> tuple[dict[int, int], dict[Table, list[list[Any]]]]:
    """From stored rows as ``records`` columns (series_id, metric, ts_ms, pid, v1, v2, v3, ...): raw
    records per series (absent: none), and the stat rows to merge into each table, in key order.
    Minutes go to ``rollups_1m`` while that tier covers them, hours always, totals only from
    raw-backed minutes (what /stats describes).

    Rows are grouped by minute in one pass of C-level zips, then each minute's columns are summed,
    compared and counted by builtins, in row order: 1,000 rows in ~96 minutes took ~0.63 ms as one
    Python loop updating every row's stats, ~0.34 ms so. A value column may be None in some rows of
    a key and not in others (optional clocks), hence a count per column.
    """
    series, metrics, times, _pids, *values = columns[:7]
    grouped: defaultdict[tuple[int, int, int], list[tuple[Any, ...]]] = defaultdict(list)
    for key, row_values in zip(zip(series, metrics, [t - t % MINUTE_MS for t in times]), zip(*values)):
        grouped[key].append(row_values)
    per_series: dict[int, int] = {}
    minutes, hours, totals = {}, {}, {}
    for key, rows in grouped.items():
        series_id, metric, minute = key
        minutes[key] = stats = _minute_stats(rows)
        _add(hours, (series_id, metric, minute - minute % HOUR_MS), stats)
        if minute >= cuts.raw:  # a whole minute: the raw cutoff is one
            per_series[series_id] = per_series.get(series_id, 0) + stats[0]
            _add(totals, (series_id, metric), stats)
    kept_minutes = {k: s for k, s in minutes.items() if k[2] >= cuts.minute}
    return per_series, {table: [[*k, *s] for k, s in sorted(stats.items())]
                        for table, stats in ((ROLLUPS, kept_minutes), (HOURS, hours), (TOTALS, totals))}


def _minute_stats(rows: list[tuple[Any, ...]]) -> list[Any]:
    """The stat row of one minute's (v1, v2, v3) rows: their count, then each column's count, sum,
    min and max of its non-None values; the sum added up in row order and the first of equal
    extremes kept (an int stays an int), as merging one row at a time would."""
    if len(rows) == 1:  # every single-record request, and many a minute's edge
        return [1, *chain.from_iterable(map(_first, rows[0]))]
    stats: list[Any] = [len(rows)]
    for column in zip(*rows):
        if None in column:
            column = [v for v in column if v is not None]
            if not column:
                stats += _NO_VALUES
                continue
        stats += (len(column), reduce(add, column), min(column), max(column))
    return stats


_NO_VALUES = (0, None, None, None)


def _first(value: Any) -> tuple[int, Any, Any, Any]:
    return _NO_VALUES if value is None else (1, value, value, value)


def _add(into: dict[Any, list[Any]], key: Any, stats: list[Any]) -> None:
    known = into.get(key)
    if known is None:
        into[key] = stats.copy()
    else:
        _merge(known, stats)


def _merge(total: list[Any], stats: list[Any]) -> None:
    total[0] += stats[0]
    for i in _FIELD_AT:
        if not stats[i]:
            continue
        if not total[i]:
            total[i:i + 4] = stats[i:i + 4]
            continue
        total[i] += stats[i]
        total[i + 1] += stats[i + 1]
        total[i + 2] = min(total[i + 2], stats[i + 2])
        total[i + 3] = max(total[i + 3], stats[i + 3])


@lru_cache(maxsize=128)
def _merge_sql(table: Table, rows: int, postgresql: bool) -> str:
    """The merge of ``rows`` stat rows into ``table``. PostgreSQL takes one array per column, like
    the records' insert (psycopg adapts each of ~1,300 VALUES parameters one by one: ~3 ms a batch)."""
    least, greatest = least_greatest(postgresql)
    name, keys = table.name, [c.name for c in table.primary_key.columns]
    merged = [f"n = {name}.n + excluded.n"]
    for k in (1, 2, 3):  # either side may lack the column: coalesce, as SQLite's min(x, NULL) is NULL
        old, new = f"{name}.%s{k}", f"excluded.%s{k}"
        merged += [f"n{k} = {old % 'n'} + {new % 'n'}",
                   f"sum{k} = coalesce({old % 'sum'} + {new % 'sum'}, {old % 'sum'}, {new % 'sum'})",
                   f"min{k} = coalesce({least}({old % 'min'}, {new % 'min'}), {old % 'min'}, {new % 'min'})",
                   f"max{k} = coalesce({greatest}({old % 'max'}, {new % 'max'}), {old % 'max'}, {new % 'max'})"]
    columns = [*keys, *STATS]
    if postgresql:
        arrays = ", ".join(pg_array_param(table.c[c]) for c in columns)
        source = f"SELECT * FROM unnest({arrays})"
    else:
        source = f"VALUES {values_list(len(columns), rows, param_mark(False))}"
    return (f"INSERT INTO {name} ({', '.join(columns)}) {source} "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {', '.join(merged)}")


def merge_stats(conn: Connection, merges: dict[Table, list[list[Any]]]) -> None:
    """Add stat rows from ``rollup_stats`` to their tables, always in the order minutes, hours, totals:
    every writer takes row locks in the same order (no PostgreSQL deadlocks)."""
    postgresql = is_postgresql(conn)
    cursor = conn.connection.driver_connection.cursor()
    try:
        for table, rows in merges.items():
            if rows and postgresql:
                cursor.execute(_merge_sql(table, 0, True), [list(column) for column in zip(*rows)])
                continue
            for start in range(0, len(rows), _CHUNK_ROWS):
                chunk = rows[start:start + _CHUNK_ROWS]
                cursor.execute(_merge_sql(table, len(chunk), False), [v for row in chunk for v in row])
    finally:
        cursor.close()


def combine_function(stat: str) -> str:
    """The SQL aggregate that combines one stat column over rows: counts and sums add up."""
    return stat[:3] if stat[:3] in ("min", "max") else "sum"


def recompute_totals(conn: Connection, series_ids: Sequence[int], raw_cutoff_ms: int) -> None:
    """Rebuild these GPUs' totals from their raw-backed minutes (after retention moved the raw cutoff)."""
    ids = sorted(series_ids)
    rollup = ROLLUPS.c
    stats = [getattr(func, combine_function(stat))(rollup[stat]) for stat in STATS]
    conn.execute(delete(TOTALS).where(TOTALS.c.series_id.in_(ids)))
    conn.execute(insert(TOTALS).from_select(
        ["series_id", "metric", *STATS],
        select(rollup.series_id, rollup.metric, *stats)
        .where(rollup.series_id.in_(ids), rollup.minute_ms >= raw_cutoff_ms)
        .group_by(rollup.series_id, rollup.metric)))
