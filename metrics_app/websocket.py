"""Handshake policy shared by every WebSocket route (the live stream and crawler ingest): origin,
compression, how many may be open, and the answer to a plain request."""
from __future__ import annotations

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import NotFound
from werkzeug.routing.exceptions import WebsocketMismatch

from .auth import token_refusal
from .errors import error_response
from .heap import HeapTrimmer

EXTENSION_KEY = "websocket_clients"


class ClientSlots:
    """Open WebSockets in this worker. Each holds one of gunicorn's worker_connections for its whole
    life; past ``WS_MAX_CLIENTS`` a handshake is refused so HTTP requests always find a free slot
    (10,000 streams had used up the whole pool, and plain requests timed out)."""

    def __init__(self, limit: int, heap: HeapTrimmer | None = None) -> None:
        self.limit, self.open = limit, 0
        self.heap = heap or HeapTrimmer()

    def take(self) -> bool:
        if self.open >= self.limit:
            return False
        self.open += 1
        self.heap.opened(self.open)
        return True

    def give_back(self) -> None:
        self.open -= 1
        self.heap.closed_one(self.open)


def _is_upgrade() -> bool:
    return request.environ.get("HTTP_UPGRADE", "").lower() == "websocket"


def guard_handshake() -> Response | None:
    """Runs before every request; only WebSocket upgrades are touched.

    - Origin: when ``CORS_ORIGINS`` is not ``*``, browsers from other origins are refused (403) before
      the upgrade, since CORS headers do not protect WebSockets.
    - Compression: every client is sent the same frame; per-message deflate would compress it again
      for each connection, so the offer is dropped and connections stay uncompressed.
    """
    if not _is_upgrade():
        return None
    origins = current_app.config["CORS_ORIGINS"]
    origin = request.headers.get("Origin")
    if "*" not in origins and origin is not None and origin not in origins:
        return error_response(403, "origin_not_allowed", f"Origin {origin!r} is not in CORS_ORIGINS")
    slots: ClientSlots = current_app.extensions[EXTENSION_KEY]
    if not slots.take():
        response = error_response(503, "too_many_clients",
                                  f"This worker already serves {slots.limit} WebSocket clients (WS_MAX_CLIENTS); "
                                  "retry later or on another worker.")
        response.headers["Retry-After"] = "5"
        return response
    g.websocket_slot = True
    request.environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)
    return None


def _release_slot(_exc: BaseException | None) -> None:
    if g.pop("websocket_slot", False):
        current_app.extensions[EXTENSION_KEY].give_back()


def protocol_mismatch(_exc: WebsocketMismatch) -> Response:
    """Werkzeug's routing refuses a plain request to a WebSocket-only route (and an upgrade to an
    HTTP-only one) with a bare 400 before any before-request hook sees an endpoint. Answer it in the
    one error shape instead, after the route's token check, so without credentials it is a 401 first."""
    upgrade = _is_upgrade()
    try:
        endpoint, _ = current_app.url_map.bind_to_environ(request.environ).match(websocket=not upgrade)
    except NotFound:  # the other protocol's route takes other methods only
        endpoint = None
    if endpoint is not None and (refused := token_refusal(endpoint)) is not None:
        return refused
    if upgrade:
        return error_response(400, "not_a_websocket_endpoint",
                              f"{request.path} is an HTTP endpoint: send a plain HTTP request, not an upgrade.")
    return websocket_required()


def websocket_required(http_path: str | None = None, gives: str = "") -> Response:
    """The 426 for a plain request to a WebSocket endpoint, pointing to ``http_path`` (which
    gives ``gives``) where the stream has an HTTP twin."""
    message = f"{request.path} is a WebSocket endpoint: connect with ws:// (or wss://)."
    details = {"websocket": request.path}
    if http_path is not None:
        message += f" For {gives} over HTTP use GET {http_path}."
        details["http"] = http_path
    response = error_response(426, "websocket_required", message, details)
    response.headers["Upgrade"] = "websocket"  # RFC 9110: a 426 names the protocol to upgrade to
    response.headers["Connection"] = "Upgrade"
    return response


def init_websockets(app: Flask) -> None:
    ping = app.config["WS_PING_INTERVAL_SEC"]
    app.config.setdefault("SOCK_SERVER_OPTIONS", {
        # Keep-alive pings so idle proxies don't cut the stream; a client that never answers is dropped.
        "ping_interval": ping if ping > 0 else None,
        "max_message_size": app.config["MAX_CONTENT_LENGTH"],
    })
    app.extensions[EXTENSION_KEY] = ClientSlots(app.config["WS_MAX_CLIENTS"])
    app.before_request(guard_handshake)
    app.teardown_request(_release_slot)
    app.register_error_handler(WebsocketMismatch, protocol_mismatch)
