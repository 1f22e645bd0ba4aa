"""``GET /metrics`` listing: keyset pagination in time order, payloads rebuilt from v1..v3.

``records`` is clustered on its natural key (series_id, metric, ts_ms, pid) with no index on time
alone (it cost 17 bytes a record), so a listing across GPUs or metrics walks time in windows: each
window is one range seek per (GPU, metric) on the key, sorted and cut to the page. The first window
is sized from the GPUs' record rates to hold about 1.5 pages; an empty stretch doubles it, so a gap
in the history costs a few more seeks, never a scan. The position after a page is the last row's
(ts_ms, series_id, metric, pid): every page is as cheap as the first, and none skips or repeats a
row when records arrive between pages.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select, tuple_

from ..extensions import db
from ..storage.kinds import KINDS, KINDS_BY_CODE
from ..storage.models import Record
from ..storage.state import state_of
from ..storage.timefmt import MIN_MS, iso_utc
from .params import DEFAULT_LIMIT, decode_cursor, encode_cursor
from .series import Series

_COLUMNS = Record.__table__.c
_KEY = (_COLUMNS.ts_ms, _COLUMNS.series_id, _COLUMNS.metric, _COLUMNS.pid)
_MIN_WINDOW_MS = 1_000


def _item(row: Any, series: Series) -> dict[str, Any]:
    kind = KINDS_BY_CODE[row.metric]
    payload = dict(zip(kind.fields, (row.v1, row.v2, row.v3)))
    if kind.name == "process":  # a negative pid stands for one the crawler did not send (kinds.missing_pid)
        payload["pid"] = row.pid if row.pid >= 0 else None
        payload["name"] = row.name
    return {"timestamp": iso_utc(row.ts_ms), "metric": kind.name, **series.labels(), "payload": payload}


def _first_window(series: dict[int, Series], kinds: int, wanted: int) -> int:
    """Milliseconds expected to hold ``wanted`` rows at these GPUs' average record rate."""
    rows = sum(s.record_count for s in series.values()) * kinds / len(KINDS)
    spread = max(s.last_ts_ms for s in series.values()) - min(s.first_ts_ms for s in series.values())
    return max(_MIN_WINDOW_MS, int(1.5 * wanted * spread / rows) if rows else spread + 1)


def _scan(terms: list[Any], lo: int, hi: int, order: str, wanted: int, window: int) -> list[Any]:
    """Up to ``wanted`` rows with ``lo <= ts_ms <= hi`` in key order, window after window."""
    columns = (*_KEY, _COLUMNS.v1, _COLUMNS.v2, _COLUMNS.v3, _COLUMNS.name)
    sort = _KEY if order == "asc" else tuple(c.desc() for c in _KEY)
    rows: list[Any] = []
    while len(rows) < wanted and lo <= hi:
        a, b = (lo, min(hi, lo + window - 1)) if order == "asc" else (max(lo, hi - window + 1), hi)
        query = (select(*columns).where(*terms, _COLUMNS.ts_ms >= a, _COLUMNS.ts_ms <= b)
                 .order_by(*sort).limit(wanted - len(rows)))
        rows += db.session.execute(query).all()
        lo, hi = (b + 1, hi) if order == "asc" else (lo, a - 1)
        window *= 2
    return rows


def list_records(args: dict[str, Any], series: dict[int, Series]) -> dict[str, Any]:
    limit, order = args.get("limit", DEFAULT_LIMIT), args["order"]
    position = decode_cursor(args["cursor"], order) if "cursor" in args else None
    if not series:
        return {"items": [], "count": 0, "next_cursor": None}
    codes = [KINDS[args["metric"]].code] if "metric" in args else sorted(KINDS_BY_CODE)
    terms = [_COLUMNS.series_id.in_(sorted(series)), _COLUMNS.metric.in_(codes)]
    # Records older than raw retention live on only in the rollups, even before retention deletes them.
    lo = max(args.get("start", MIN_MS), state_of(db.engine).retention.cutoffs().raw,
             min(s.first_ts_ms for s in series.values()))
    hi = min(args.get("end", max(s.last_ts_ms for s in series.values())), max(s.last_ts_ms for s in series.values()))
    if position is not None:
        terms.append(tuple_(*_KEY) > tuple_(*position) if order == "asc" else tuple_(*_KEY) < tuple_(*position))
        lo, hi = (max(lo, position[0]), hi) if order == "asc" else (lo, min(hi, position[0]))
    rows = _scan(terms, lo, hi, order, limit + 1, _first_window(series, len(codes), limit + 1))
    more, rows = len(rows) > limit, rows[:limit]
    items = [_item(row, series[row.series_id]) for row in rows]
    next_cursor = encode_cursor(order, tuple(rows[-1][:4])) if more else None
    return {"items": items, "count": len(items), "next_cursor": next_cursor}
