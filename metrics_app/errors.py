"""One JSON error shape for every error response: ``{"error", "message", "details"}``."""
from __future__ import annotations

import logging
from typing import Any

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


def batch_error_response(exc: InvalidBatch) -> Response:
    return error_response(BATCH_STATUS[exc.code], exc.code, exc.message, exc.details)


def write_unavailable_response(exc: WriteUnavailable) -> Response:
    # Locked or lost database, a full queue, shutdown: nothing was stored, and a retry is safe.
    response = error_response(503, exc.error, str(exc))
    response.headers["Retry-After"] = "1"
    return response


def http_error_response(exc: HTTPException) -> Response:
    response = error_response(exc.code or 500, _slug(exc.name), exc.description or exc.name)
    if exc.code == 405 and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def unexpected_error_response(exc: Exception) -> Response:
    log.error("unhandled error", exc_info=exc)
    return error_response(500, "internal_server_error", InternalServerError.description)


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ApiError, lambda exc: error_response(exc.status, exc.error, exc.message, exc.details))
    app.register_error_handler(InvalidBatch, batch_error_response)
    app.register_error_handler(WriteUnavailable, write_unavailable_response)
    app.register_error_handler(HTTPException, http_error_response)
    app.register_error_handler(Exception, unexpected_error_response)
