"""Stored time (UTC epoch milliseconds) back to the RFC 3339 text every read endpoint returns.

``MIN_MS``..``MAX_MS`` (years 1 to 9999 in UTC) is what a ``datetime`` and a four-digit year can
hold; ingest refuses timestamps outside it, so every stored one can be written back out.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ONE_MS = timedelta(milliseconds=1)
MIN_MS = (datetime(1, 1, 1, tzinfo=timezone.utc) - EPOCH) // ONE_MS
MAX_MS = (datetime(9999, 12, 31, 23, 59, 59, 999_000, tzinfo=timezone.utc) - EPOCH) // ONE_MS


def iso_utc(ts_ms: int) -> str:
    """Millisecond RFC 3339 with ``Z``: the precision ``records.ts_ms`` keeps, nothing invented. The
    year is always four digits (``strftime`` writes year 999 as ``999``). A value outside the range
    (stored before ingest refused them) is written as the nearest end rather than failing the read."""
    m = EPOCH + timedelta(milliseconds=min(max(ts_ms, MIN_MS), MAX_MS))
    return (f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}."
            f"{m.microsecond // 1000:03d}Z")
