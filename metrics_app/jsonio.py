"""Fast JSON responses through orjson; NaN never reaches a client (orjson writes it as null)."""
from __future__ import annotations

from typing import Any

import orjson
from flask import Response


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status=status, mimetype="application/json")


def raw_json_response(body: str | bytes, status: int = 200) -> Response:
    """For bodies already serialized once per tick (the live frames)."""
    return Response(body, status=status, mimetype="application/json")
