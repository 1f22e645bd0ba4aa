"""Aggregates over the history: whole minutes from ``rollups_1m``, raw rows only at the edges.

A range ``[lo, hi)`` is split into the partial minute at each end (read from ``records``) and the
whole minutes between them (read from the per-minute rollups ingest maintains), so the cost of an
aggregate grows with the number of minutes, not of records — about 60x fewer rows at 1 Hz. Buckets
that are whole minutes split the same way; a bucket shorter than a minute (or not a multiple of
one) can only be answered from raw rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, literal, select

from ..errors import ApiError
from ..extensions import db
from ..storage.kinds import KINDS
from ..storage.models import Record, Rollup
from .params import MAX_LIMIT
from ..storage.timefmt import iso_utc
from .series import Series

MINUTE_MS = 60_000
_RAW = Record.__table__.c
_ROLLUP = Rollup.__table__.c


@dataclass(slots=True)
class Partial:
    """count/sum/min/max of one field over some rows; partials from raw rows and rollups combine."""

    n: int = 0
    total: float = 0.0
    low: float | None = None
    high: float | None = None

    def add(self, n: int | None, total: float | None, low: float | None, high: float | None) -> None:
        if not n:
            return
        self.n += int(n)
        self.total += total or 0.0
        self.low = low if self.low is None or (low is not None and low < self.low) else self.low
        self.high = high if self.high is None or (high is not None and high > self.high) else self.high

    def value(self, aggregate: str) -> float | int | None:
        if aggregate == "count":
            return self.n
        if self.n == 0:
            return None
        return {"avg": self.total / self.n, "sum": self.total, "min": self.low, "max": self.high}[aggregate]


def split_range(lo: int | None, hi: int | None, bucket_ms: int | None) -> tuple[list[tuple[int | None, int | None]],
                                                                                tuple[int | None, int | None] | None]:
    """Raw-row ranges and the whole-minute range of ``[lo, hi)`` (None = unbounded)."""
    if bucket_ms is not None and bucket_ms % MINUTE_MS:
        return [(lo, hi)], None
    first = None if lo is None else -(-lo // MINUTE_MS) * MINUTE_MS
    last = None if hi is None else hi // MINUTE_MS * MINUTE_MS
    if first is not None and last is not None and first >= last:
        return [(lo, hi)], None
    edges = [(lo, first)] if lo is not None and lo < first else []
    if hi is not None and last < hi:
        edges.append((last, hi))
    return edges, (first, last)


def _raw_query(column: Any, counted: bool, time: Any, lo: int | None, hi: int | None) -> Any:
    """``counted``: count the rows holding a value of ``column``, else every row (a field may be
    optional, as clocks' are)."""
    query = select(func.count(column) if counted else func.count(), func.sum(column), func.min(column),
                   func.max(column))
    return query.where(*_bounds(time, lo, hi))


def _rollup_query(index: int, counted: bool, lo: int | None, hi: int | None) -> Any:
    query = select(func.sum(_ROLLUP[f"n{index}"] if counted else _ROLLUP.n), func.sum(_ROLLUP[f"sum{index}"]),
                   func.min(_ROLLUP[f"min{index}"]), func.max(_ROLLUP[f"max{index}"]))
    return query.where(*_bounds(_ROLLUP.minute_ms, lo, hi))


def _bounds(time: Any, lo: int | None, hi: int | None) -> list[Any]:
    return ([time >= lo] if lo is not None else []) + ([time < hi] if hi is not None else [])


def _bucket_count(args: dict[str, Any], series: dict[int, Series], bucket_ms: int) -> int:
    lo = args.get("start", min((s.first_ts_ms for s in series.values()), default=0))
    hi = args.get("end", max((s.last_ts_ms for s in series.values()), default=0))
    return (hi // bucket_ms) - (lo // bucket_ms) + 1


def aggregate(args: dict[str, Any], series: dict[int, Series]) -> dict[str, Any]:
    kind, name, field = KINDS[args["metric"]], args["aggregate"], args.get("field")
    bucket = args.get("bucket")
    bucket_ms = bucket.ms if bucket else None
    if bucket_ms is not None and _bucket_count(args, series, bucket_ms) > MAX_LIMIT:
        raise ApiError(400, "invalid_parameter", f"more than {MAX_LIMIT} buckets: use a larger bucket or a "
                       "shorter start..end range", {"bucket": [f"at most {MAX_LIMIT} buckets per request"]})
    index = kind.fields.index(field) + 1 if field else 1
    lo = args.get("start")
    hi = args["end"] + 1 if "end" in args else None
    partials: dict[int | None, Partial] = {}
    if series:
        ids, code = list(series), kind.code
        edges, minutes = split_range(lo, hi, bucket_ms)
        counted = field is not None
        queries = [_raw_query(_RAW[f"v{index}"], counted, _RAW.ts_ms, a, b).where(_RAW.series_id.in_(ids), _RAW.metric == code)
                   .add_columns(*_bucket_key(_RAW.ts_ms, bucket_ms)) for a, b in edges]
        if minutes is not None:
            queries.append(_rollup_query(index, counted, *minutes).where(_ROLLUP.series_id.in_(ids), _ROLLUP.metric == code)
                           .add_columns(*_bucket_key(_ROLLUP.minute_ms, bucket_ms)))
        for query in queries:
            for n, total, low, high, *key in db.session.execute(_grouped(query, bucket_ms)):
                partials.setdefault(key[0] if key else None, Partial()).add(n, total, low, high)
    if bucket_ms is None:
        overall = partials.get(None, Partial())
        return {"aggregate": name, "field": field, "value": overall.value(name), "count": overall.n}
    starts = sorted(partials, reverse=args["order"] == "desc")
    return {"aggregate": name, "field": field, "bucket": bucket.text,
            "buckets": [{"start": iso_utc(s), "value": partials[s].value(name), "count": partials[s].n}
                        for s in starts],
            "count": sum(p.n for p in partials.values())}


def _bucket_key(time: Any, bucket_ms: int | None) -> list[Any]:
    return [] if bucket_ms is None else [(time // literal(bucket_ms) * literal(bucket_ms)).label("bucket")]


def _grouped(query: Any, bucket_ms: int | None) -> Any:
    return query if bucket_ms is None else query.group_by("bucket")
