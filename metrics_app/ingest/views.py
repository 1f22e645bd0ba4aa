"""``POST /metrics`` and ``WS /ws/ingest``.

Content type: a body labelled as something other than JSON (a form, text/plain) is refused with 415,
so a browser's cross-site form post cannot write history; no Content-Type at all is accepted, since
minimal crawlers often omit it.
"""
from __future__ import annotations

import orjson
from flask import Blueprint, Response, request
from werkzeug.exceptions import UnsupportedMediaType

from ..auth_groups import INGEST, requires
from ..extensions import sock
from ..jsonio import json_response
from .problems import InvalidBatch
from .batches import ingest_payload, parse_json

bp = Blueprint("ingest", __name__)


def _is_json_mimetype(mimetype: str) -> bool:
    return mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))


@bp.post("/metrics")
@requires(INGEST)
def post_metrics() -> Response:
    mimetype = request.mimetype
    if mimetype and not _is_json_mimetype(mimetype):
        raise UnsupportedMediaType(f"Send application/json, not {mimetype}.")
    result = ingest_payload(parse_json(request.get_data(cache=False)))
    return json_response(result.as_dict(), 201)


@sock.route("/ws/ingest", bp=bp)
@requires(INGEST)
def ws_ingest(ws) -> None:
    """Each message is one batch; a bad message gets an error frame and the socket stays open."""
    while True:
        message = ws.receive()
        try:
            frame = {"type": "ack", **ingest_payload(parse_json(message)).as_dict()}
        except InvalidBatch as exc:
            frame = {"type": "error", "error": exc.code, "message": exc.message, "details": exc.details}
        ws.send(orjson.dumps(frame).decode())
