"""Aggregates over the history, read from the tiers ``plan`` picks (plan.py): raw rows only at the
partial minutes of a range's edges, whole minutes and hours from the rollups ingest maintains, so
the cost grows with the number of hours and edge minutes, not of records. The answer says the
``resolution`` it was computed at.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, exists, func, literal, select, union_all

from ..errors import ApiError
from ..extensions import db
from ..storage.kinds import KINDS
from ..storage.models import HourRollup, Record, Rollup
from ..storage.state import state_of
from ..storage.tiers import HOUR, MINUTE, RAW, Cutoffs
from ..storage.timefmt import iso_utc
from .params import MAX_LIMIT, Bucket
from .plan import BucketTooFine, Piece, plan
from .series import Series


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


_SOURCES: dict[str, tuple[Table, str]] = {
    RAW: (Record.__table__, "ts_ms"), MINUTE: (Rollup.__table__, "minute_ms"), HOUR: (HourRollup.__table__, "hour_ms")}


def _bounds(time: Any, lo: int | None, hi: int | None) -> list[Any]:
    return ([time >= lo] if lo is not None else []) + ([time < hi] if hi is not None else [])


def _stats_query(piece: Piece, index: int, counted: bool, ids: list[int], code: int, bucket_ms: int | None) -> Any:
    """count, sum, min and max of one field over one piece: raw values, or rollup stats combined.
    ``counted``: count the rows holding a value of the field, else every row (a field may be
    optional, as clocks' are)."""
    table, time_column = _SOURCES[piece.table]
    c = table.c
    if piece.table == RAW:
        value = c[f"v{index}"]
        stats = (func.count(value) if counted else func.count(), func.sum(value), func.min(value), func.max(value))
    else:
        stats = (func.sum(c[f"n{index}"] if counted else c.n), func.sum(c[f"sum{index}"]),
                 func.min(c[f"min{index}"]), func.max(c[f"max{index}"]))
    query = select(*stats).where(c.series_id.in_(ids), c.metric == code, *_bounds(c[time_column], piece.lo, piece.hi))
    if bucket_ms is None:
        return query
    key = (c[time_column] // literal(bucket_ms) * literal(bucket_ms)).label("bucket")
    return query.add_columns(key).group_by("bucket")


def _older_tiers_with_data(ids: list[int], code: int, cuts: Cutoffs) -> set[str]:
    """Which rollup tiers hold these GPUs' metric before the finer tier's cutoff: one statement, a
    key seek per GPU and tier."""
    spans = {MINUTE: (cuts.minute, cuts.raw), HOUR: (None, cuts.minute)}
    checks = []
    for tier, (lo, hi) in spans.items():
        table, time_column = _SOURCES[tier]
        checks.append(exists().where(table.c.series_id.in_(ids), table.c.metric == code,
                                     *_bounds(table.c[time_column], lo, hi)))
    return {tier for tier, held in zip(spans, db.session.execute(select(*checks)).one()) if held}


def _too_fine(bucket: Bucket, error: BucketTooFine) -> ApiError:
    return ApiError(400, "invalid_parameter",
                    f"bucket={bucket.text} is finer than the history before {iso_utc(error.before_ms)} keeps: it is "
                    f"kept only as {error.finest} rollups, so use a bucket that is a multiple of {error.finest} "
                    f"or a start after that time", {"bucket": [f"finest available for this range: {error.finest}"]})


def _bucket_count(lo: int, hi: int, bucket_ms: int) -> int:
    return (hi // bucket_ms) - (lo // bucket_ms) + 1


def aggregate(args: dict[str, Any], series: dict[int, Series]) -> dict[str, Any]:
    kind, name, field = KINDS[args["metric"]], args["aggregate"], args.get("field")
    bucket = args.get("bucket")
    bucket_ms = bucket.ms if bucket else None
    index = kind.fields.index(field) + 1 if field else 1
    lo = args.get("start")
    hi = args["end"] + 1 if "end" in args else None
    ids, code = list(series), kind.code
    cuts = state_of(db.engine).retention.cutoffs()
    try:
        held = _older_tiers_with_data(ids, code, cuts) if ids and lo is None else set()
        pieces, resolution = plan(lo, hi, bucket_ms, cuts, held) if ids else ([], RAW)
    except BucketTooFine as exc:
        raise _too_fine(bucket, exc) from exc
    if bucket_ms is not None:
        first = lo if lo is not None else min((s.first_ts_ms for s in series.values()), default=0)
        if pieces and pieces[0].lo is None:  # older tiers from their oldest possible hour
            first = min(first, cuts.hour)
        last = hi if hi is not None else max((s.last_ts_ms for s in series.values()), default=0)
        if _bucket_count(first, last, bucket_ms) > MAX_LIMIT:
            raise ApiError(400, "invalid_parameter", f"more than {MAX_LIMIT} buckets: use a larger bucket or a "
                           "shorter start..end range", {"bucket": [f"at most {MAX_LIMIT} buckets per request"]})
    partials: dict[int | None, Partial] = {}
    if pieces:  # one statement: each one cost ~1 ms of SQLAlchemy, often more than the rows
        counted = field is not None
        query = union_all(*(_stats_query(piece, index, counted, ids, code, bucket_ms) for piece in pieces))
        for n, total, low, high, *key in db.session.execute(query):
            partials.setdefault(key[0] if key else None, Partial()).add(n, total, low, high)
    if bucket_ms is None:
        overall = partials.get(None, Partial())
        return {"aggregate": name, "field": field, "value": overall.value(name), "count": overall.n,
                "resolution": resolution}
    starts = sorted(partials, reverse=args["order"] == "desc")
    return {"aggregate": name, "field": field, "bucket": bucket.text, "resolution": resolution,
            "buckets": [{"start": iso_utc(s), "value": partials[s].value(name), "count": partials[s].n}
                        for s in starts],
            "count": sum(p.n for p in partials.values())}
