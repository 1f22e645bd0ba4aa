"""Parse, validate and store one batch: shared by the HTTP and WebSocket endpoints."""
from __future__ import annotations

from typing import Any

import orjson
from flask import current_app
from sqlalchemy.exc import OperationalError

from ..errors import ApiError
from ..extensions import db
from ..fleet import notify_committed
from ..storage.engine import write_tx
from ..storage.writer import StoreResult, store_rows
from .validation import load_batch


def parse_json(raw: bytes | str) -> Any:
    """orjson already refuses NaN/Infinity literals, numbers that overflow a double, invalid UTF-8
    and nesting deeper than 1,024 levels, so each of those is a 400 here rather than a 500 later."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"Body is not valid JSON: {exc}") from None


def ingest_payload(payload: Any) -> StoreResult:
    rows = load_batch(payload, current_app.config["MAX_BATCH"])
    try:
        with write_tx(db.engine) as conn:
            result = store_rows(conn, rows)
    except OperationalError as exc:
        # SQLite still locked after the busy timeout, or the database is down: the crawler should retry.
        raise ApiError(503, "database_unavailable", "The database could not take the write; retry later.",
                       str(exc.orig)[:200]) from None
    notify_committed(current_app._get_current_object(), rows)  # until the write queue calls the listeners
    return result
