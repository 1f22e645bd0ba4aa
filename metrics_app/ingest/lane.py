"""``POST /metrics`` from crawlers, answered beneath Flask.

The original C++ crawler sends one record per request, and a central server takes thousands of
them a second. Flask's share of such a request (request context, routing, the before-request hooks,
flask-cors' after-request, the Response object) was 0.4 ms of server CPU: more than parsing,
validating and storing the record. Answered here, a single-record POST cost 0.71-0.72 ms of server
CPU instead of 1.01-1.07 ms, and 16 ``wrk`` connections got 1,917-1,975 POSTs/s instead of
1,413-1,531 (alternated runs, README "Benchmarks").

The lane takes only the plain case, decided before it reads anything: POST /metrics with a JSON
Content-Type (or none) and a Content-Length within MAX_CONTENT_LENGTH, without Origin (browsers get
flask-cors' full treatment) or Upgrade, carrying a valid token when INGEST_TOKEN is set. Everything
else goes to the Flask route (views.py), which stays the reference; so does each process's first
request, so that the hooks starting the samplers and jobs outside gunicorn (``flask run``) have run.
What the lane answers, it answers as the route would: the same ``ingest_payload``, status, body and
headers (tests/ingest/test_lane.py compares them), errors through the same renderers (errors.py).
"""
from __future__ import annotations

from typing import Any, BinaryIO, Callable, Iterable

import orjson
from flask import Flask, Response
from werkzeug.datastructures import EnvironHeaders
from werkzeug.exceptions import ClientDisconnected

from ..auth import header_token, token_matches
from ..errors import error_response_for
from .batches import ingest_payload, parse_json

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class IngestLane:
    """The app's WSGI entry (``app.wsgi_app``), in front of Flask's own."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.flask: WsgiApp = app.wsgi_app
        self._primed = False
        self._cors = self._cors_headers(app)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = self._length_if_taken(environ)
        if length is None:
            return self.flask(environ, start_response)
        with self.app.app_context():
            response = self._answer(environ["wsgi.input"], length)
        if isinstance(response, bytes):
            start_response("201 CREATED", [("Content-Type", "application/json"),
                                           ("Content-Length", str(len(response))), *self._cors])
            return [response]
        response.headers.extend(self._cors)
        return response(environ, start_response)

    @staticmethod
    def _cors_headers(app: Flask) -> list[tuple[str, str]]:
        """What the after-request hooks (flask-cors) add to an answer to POST /metrics without Origin,
        asked of them once: a wildcard, the one allowed origin, or nothing."""
        with app.test_request_context("/metrics", method="POST"):
            bare = app.response_class()
            added = app.process_response(app.response_class())
        return [item for item in added.headers.items() if item not in bare.headers.items()]

    def _length_if_taken(self, environ: dict[str, Any]) -> int | None:
        """The body's length when the lane answers this request; None leaves it to Flask."""
        if not self._primed:
            self._primed = True
            return None
        if (environ["REQUEST_METHOD"] != "POST" or environ["PATH_INFO"] != "/metrics"
                or "HTTP_ORIGIN" in environ or "HTTP_UPGRADE" in environ):
            return None
        content_type = environ.get("CONTENT_TYPE", "")
        if content_type and content_type.partition(";")[0].strip().lower() != "application/json":
            return None
        length = environ.get("CONTENT_LENGTH", "")
        if not (length.isascii() and length.isdigit()):
            return None
        size, config = int(length), self.app.config
        limit = config.get("MAX_CONTENT_LENGTH")
        if limit is not None and size > limit:
            return None
        tokens = config["INGEST_TOKEN"]
        if tokens:
            presented = header_token(EnvironHeaders(environ))
            if presented is None or not token_matches(presented, tokens):
                return None
        return size

    @staticmethod
    def _answer(stream: BinaryIO, length: int) -> bytes | Response:
        """The 201's body, or the error response the Flask route's handlers would give."""
        try:
            try:
                body = stream.read(length)
            except (OSError, ValueError):  # the client went away mid-body: werkzeug's stream says so too
                raise ClientDisconnected() from None
            if len(body) < length:  # stricter than the route under gunicorn, which parses what came
                raise ClientDisconnected()
            return orjson.dumps(ingest_payload(parse_json(body)).as_dict())
        except Exception as exc:  # noqa: BLE001 - the one error shape, as Flask's handlers give it
            return error_response_for(exc)
