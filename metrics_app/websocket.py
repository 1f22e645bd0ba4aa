"""Handshake policy shared by every WebSocket route (live stream now, crawler ingest later)."""
from __future__ import annotations

from flask import Flask, Response, current_app, request

from .errors import error_response


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
    request.environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)
    return None


def init_websockets(app: Flask) -> None:
    ping = app.config["WS_PING_INTERVAL_SEC"]
    app.config.setdefault("SOCK_SERVER_OPTIONS", {
        # Keep-alive pings so idle proxies don't cut the stream; a client that never answers is dropped.
        "ping_interval": ping if ping > 0 else None,
        "max_message_size": app.config["MAX_CONTENT_LENGTH"],
    })
    app.before_request(guard_handshake)
