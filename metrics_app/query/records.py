"""``GET /metrics`` listing: keyset pagination over (ts_ms, id), payloads rebuilt from v1..v3.

Keyset rather than OFFSET paging keeps every page as cheap as the first on a 10M-row table and
never skips or repeats a row when new records arrive between pages.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_, select

from ..extensions import db
from ..storage.kinds import KINDS, KINDS_BY_CODE
from ..storage.models import Record
from ..storage.tiers import retention_for
from .params import DEFAULT_LIMIT, decode_cursor, encode_cursor
from ..storage.timefmt import iso_utc
from .series import Series, find_series, has_series_filter

_COLUMNS = Record.__table__.c


def _item(row: Any, series: Series) -> dict[str, Any]:
    kind = KINDS_BY_CODE[row.metric]
    payload = dict(zip(kind.fields, (row.v1, row.v2, row.v3)))
    if kind.name == "process":
        payload["pid"] = row.pid
    return {"id": row.id, "timestamp": iso_utc(row.ts_ms), "metric": kind.name,
            **series.labels(), "payload": payload}


def time_and_kind_filters(args: dict[str, Any], series: dict[int, Series]) -> list[Any]:
    """WHERE terms on ``records`` for a listing."""
    raw_cutoff = retention_for(db.engine).cutoffs().raw
    terms: list[Any] = []
    if has_series_filter(args):
        terms.append(_COLUMNS.series_id.in_(list(series)))
    if "metric" in args:
        terms.append(_COLUMNS.metric == KINDS[args["metric"]].code)
    # Records older than raw retention live on only in the rollups, even before retention deletes them.
    terms.append(_COLUMNS.ts_ms >= max(args.get("start", raw_cutoff), raw_cutoff))
    if "end" in args:
        terms.append(_COLUMNS.ts_ms <= args["end"])
    return terms


def _after_cursor(cursor: str, order: str) -> Any:
    """Spelled out (not a row-value comparison) so ``ts_ms`` stays usable as an index range."""
    ts_ms, row_id = decode_cursor(cursor, order)
    if order == "asc":
        return and_(_COLUMNS.ts_ms >= ts_ms, or_(_COLUMNS.ts_ms > ts_ms, _COLUMNS.id > row_id))
    return and_(_COLUMNS.ts_ms <= ts_ms, or_(_COLUMNS.ts_ms < ts_ms, _COLUMNS.id < row_id))


def list_records(args: dict[str, Any], series: dict[int, Series]) -> dict[str, Any]:
    limit, order = args.get("limit", DEFAULT_LIMIT), args["order"]
    terms = time_and_kind_filters(args, series)
    if "cursor" in args:
        terms.append(_after_cursor(args["cursor"], order))
    if not series:
        return {"items": [], "count": 0, "next_cursor": None}
    sort = (_COLUMNS.ts_ms, _COLUMNS.id) if order == "asc" else (_COLUMNS.ts_ms.desc(), _COLUMNS.id.desc())
    query = (select(_COLUMNS.id, _COLUMNS.series_id, _COLUMNS.metric, _COLUMNS.ts_ms, _COLUMNS.pid,
                    _COLUMNS.v1, _COLUMNS.v2, _COLUMNS.v3)
             .where(*terms).order_by(*sort).limit(limit + 1))
    rows = db.session.execute(query).all()
    more, rows = len(rows) > limit, rows[:limit]
    if any(row.series_id not in series for row in rows):
        series = find_series({})  # a GPU first seen after the lookup above
    items = [_item(row, series[row.series_id]) for row in rows]
    next_cursor = encode_cursor(order, rows[-1].ts_ms, rows[-1].id) if more else None
    return {"items": items, "count": len(items), "next_cursor": next_cursor}
