"""Why a batch was refused, in the ingest's own terms rather than HTTP's.

Validation raises these; the HTTP edge (``errors.py``, and the WebSocket ingest view's error frame)
maps each to its status and the one error shape, while the file tailers and ``flask metrics import``,
which have no response to send, put the same problems into words with ``describe``.
"""
from __future__ import annotations

from typing import Any


class InvalidBatch(Exception):
    """A body, message or line of which nothing was stored; ``code`` is the error's stable name."""

    code = "invalid_batch"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message, self.details = message, details


class InvalidJson(InvalidBatch):
    code = "invalid_json"


class NotRecords(InvalidBatch):
    """Valid JSON, but neither one record (an object) nor an array of them."""

    code = "invalid_body"


class BatchTooLarge(InvalidBatch):
    code = "batch_too_large"


class InvalidRecords(InvalidBatch):
    """Records that fail their schema: ``problems`` has one ``{index, field, message}`` per fault."""

    code = "invalid_records"

    def __init__(self, problems: list[dict[str, Any]], total: int) -> None:
        invalid = len({problem["index"] for problem in problems})
        super().__init__(f"{invalid} of {total} records are invalid; nothing was stored.", problems)
        self.problems = problems


def describe_problems(details: Any) -> str:
    """``field: message; ...`` for either shape of problem list this service produces: the records'
    ``[{index, field, message}]`` or the query parameters' ``{name: [messages]}``; "" for none."""
    if isinstance(details, list):
        pairs = [(problem["field"], problem["message"]) for problem in details]
    elif isinstance(details, dict):
        pairs = [(name, " ".join(map(str, messages)) if isinstance(messages, list) else str(messages))
                 for name, messages in details.items()]
    else:
        return ""
    return "; ".join(f"{name}: {message}" for name, message in pairs)


def describe(exc: InvalidBatch) -> str:
    """A refused line in words, for logs and reports: each invalid field, or why it is no batch."""
    return describe_problems(exc.details) if isinstance(exc, InvalidRecords) else exc.message
