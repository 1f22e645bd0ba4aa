"""One ``POST /metrics`` of a batch, and what the agent should do about the answer.

The answer decides between three fates: sent (2xx); retry later (the server is away, overloaded or
failing: no connection, a timeout, 5xx, 408, 429; or it refuses our token, 401/403, which is a
configuration problem to fix, not bad data), so the batch waits in the spool; or rejected
(any other 4xx: the records themselves are wrong and resending cannot help), so it is logged and
dropped. 413 is its own case: the batch is too large for this server and is split.
"""
from __future__ import annotations

import enum
import http.client
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import orjson

_RETRY_STATUSES = frozenset({401, 403, 408, 425, 429})


class Outcome(enum.Enum):
    SENT = "sent"
    RETRY = "retry"
    TOO_LARGE = "too_large"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Answer:
    outcome: Outcome
    detail: str


def _classify(status: int, body: bytes) -> Answer:
    detail = f"HTTP {status}: {body[:300].decode('utf-8', 'replace')}"
    if 200 <= status < 300:
        return Answer(Outcome.SENT, detail)
    if status >= 500 or status in _RETRY_STATUSES:
        return Answer(Outcome.RETRY, detail)
    return Answer(Outcome.TOO_LARGE if status == 413 else Outcome.REJECTED, detail)


class IngestClient:
    def __init__(self, server: str, token: str | None = None, timeout: float = 10.0) -> None:
        self.url = server.rstrip("/") + "/metrics"
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout

    def post(self, records: list[dict[str, Any]]) -> Answer:
        request = urllib.request.Request(self.url, data=orjson.dumps(records), headers=self.headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return _classify(response.status, response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return _classify(exc.code, exc.read())
        except (OSError, http.client.HTTPException) as exc:  # refused, reset, DNS, timeout, cut-off answer
            return Answer(Outcome.RETRY, f"{type(exc).__name__}: {exc}")
