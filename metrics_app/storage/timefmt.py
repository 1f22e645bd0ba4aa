"""Stored time (UTC epoch milliseconds) back to the ISO 8601 text every read endpoint returns."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def iso_utc(ts_ms: int) -> str:
    """Millisecond ISO 8601 with ``Z``: the precision ``records.ts_ms`` keeps, nothing invented."""
    moment = _EPOCH + timedelta(milliseconds=ts_ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
