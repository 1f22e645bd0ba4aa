"""One JSON error shape for every error response: ``{"error", "message", "details"}``."""
from __future__ import annotations

import logging
from typing import Any, Callable

from flask import Flask, Response
from werkzeug.exceptions import HTTPException, InternalServerError

from .ingest.problems import InvalidBatch
from .jsonio import json_response
from .storage.write_queue import WriteUnavailable

log = logging.getLogger(__name__)

#: The HTTP status of each way a batch can be refused (ingest/problems.py).
BATCH_STATUS = {"invalid_json": 400, "invalid_body": 400, "batch_too_large": 413, "invalid_records": 422}


class ApiError(Exception):
    """Raised by views for a client error that needs a specific code and details."""

    def __init__(self, status: int, error: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.details = status, error, message, details


def error_response(status: int, error: str, message: str, details: Any = None) -> Response:
    return json_response({"error": error, "message": message, "details": details}, status)


def _slug(name: str) -> str:
    return name.lower().replace(" ", "_").replace("'", "")


def _api_error_response(exc: ApiError) -> Response:
    return error_response(exc.status, exc.error, exc.message, exc.details)


def _batch_error_response(exc: InvalidBatch) -> Response:
    return error_response(BATCH_STATUS[exc.code], exc.code, exc.message, exc.details)


def _write_unavailable_response(exc: WriteUnavailable) -> Response:
    # Locked or lost database, a full queue, shutdown: nothing was stored, and a retry is safe.
    response = error_response(503, exc.error, str(exc))
    response.headers["Retry-After"] = "1"
    return response


def _http_error_response(exc: HTTPException) -> Response:
    response = error_response(exc.code or 500, _slug(exc.name), exc.description or exc.name)
    if exc.code == 405 and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def _unexpected_error_response(exc: Exception) -> Response:
    log.error("unhandled error", exc_info=exc)
    return error_response(500, "internal_server_error", InternalServerError.description)


#: Each kind of error and its response. The first four are unrelated classes, so the first match in
#: this order is the handler Flask picks by the exception's class hierarchy.
_RENDERERS: tuple[tuple[type[Exception], Callable[[Any], Response]], ...] = (
    (ApiError, _api_error_response),
    (InvalidBatch, _batch_error_response),
    (WriteUnavailable, _write_unavailable_response),
    (HTTPException, _http_error_response),
    (Exception, _unexpected_error_response),
)


def error_response_for(exc: Exception) -> Response:
    """What Flask's error handlers answer for ``exc``, for code answering beneath Flask (ingest/lane.py)."""
    return next(render(exc) for kind, render in _RENDERERS if isinstance(exc, kind))


def register_error_handlers(app: Flask) -> None:
    for kind, render in _RENDERERS:
        app.register_error_handler(kind, render)
