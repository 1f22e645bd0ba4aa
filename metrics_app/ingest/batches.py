"""Parse, validate and store one batch: shared by the HTTP and WebSocket endpoints."""
from __future__ import annotations

from typing import Any

import orjson
from flask import current_app

from ..storage import write_queue
from ..storage.writer import StoreResult
from .problems import InvalidJson
from .json_repair import count_repair, double_lone_backslashes
from .validation import load_batch


def parse_json(raw: bytes | str) -> Any:
    """orjson already refuses NaN/Infinity literals, numbers that overflow a double, invalid UTF-8
    and nesting deeper than 1,024 levels, so each of those is a 400 here rather than a 500 later."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        error = exc
    repaired = double_lone_backslashes(raw)  # Windows paths written unescaped (json_repair)
    if repaired is not None:
        try:
            payload = orjson.loads(repaired)
        except orjson.JSONDecodeError:
            pass
        else:
            count_repair()
            return payload
    raise InvalidJson(f"Body is not valid JSON: {error}") from None


def ingest_payload(payload: Any) -> StoreResult:
    """Validated here, on the caller's greenlet; stored by the writer thread, returned once committed."""
    return write_queue().submit(load_batch(payload, current_app.config["MAX_BATCH"]))
