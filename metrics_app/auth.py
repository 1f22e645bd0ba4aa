"""Shared-secret tokens: ``INGEST_TOKEN`` guards what writes history, ``READ_TOKEN`` what reads
metrics. Each is one token or a list (several at once let a token be rotated without downtime); an
empty one leaves its group open, as before auth existed.

Every view declares its group where it is defined (auth_groups.py): ``@requires(READ)``, ``@requires(INGEST)`` or
``@open_route``, or its blueprint with ``declare_blueprint`` (so renaming a view cannot move it into
another group). Open are health checks (load balancers carry no token), the API documents (they
describe how to authenticate and hold no data), and page shells whose data comes from protected
endpoints. A route that declares nothing is treated as a read, so it is protected as soon as
``READ_TOKEN`` is set, and tests/reliability/test_auth.py fails until it declares its group.

A token is sent as ``Authorization: Bearer <token>`` or, as the C++ crawler and its FastAPI backend
do, as ``X-API-Key: <token>``; both are checked against the same lists in the same way (the Bearer
header first when both are sent). Browsers cannot set headers on a WebSocket, so the live stream's
handshake also takes ``?token=``. Nowhere else: a URL ends up in proxy and access logs, and every
other client can send a header.
"""
from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence

from flask import Flask, Response, current_app, request

from .auth_groups import GROUP_SETTINGS, READ, declared_group, token_in_query
from .errors import error_response

def token_matches(presented: str, tokens: Sequence[str]) -> bool:
    """Compares against every configured token, in constant time each and without stopping at a
    match, so the time taken tells neither how much of a token was right nor which one matched."""
    given = presented.encode("utf-8", "replace")
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(given, token.encode("utf-8", "replace"))
    return matched


def header_token(headers: Mapping[str, str]) -> str | None:
    """``Authorization: Bearer``'s token, else ``X-API-Key``'s."""
    scheme, _, value = headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return headers.get("X-API-Key", "").strip() or None


def _presented_token(allow_query: bool) -> str | None:
    if token := header_token(request.headers):
        return token
    if allow_query and request.environ.get("HTTP_UPGRADE", "").lower() == "websocket":
        return request.args.get("token") or None
    return None


def token_setting(endpoint: str, app: Flask | None = None) -> str | None:
    """The config key whose tokens ``endpoint`` needs (when non-empty); None for open endpoints."""
    return GROUP_SETTINGS[declared_group(endpoint, app) or READ]


def require_token() -> Response | None:
    """Before every request, WebSocket handshakes included (refused before the upgrade)."""
    if request.endpoint is None or request.method == "OPTIONS":  # 404/405, and CORS preflights carry no token
        return None
    return token_refusal(request.endpoint)


def token_refusal(endpoint: str) -> Response | None:
    """The 401 for this request to ``endpoint``, or None when its tokens (if any) allow it. Also asked
    for a request that never reached its route (a plain GET on a WebSocket endpoint): the 401 comes
    before saying what else is wrong with it."""
    setting = token_setting(endpoint)
    tokens = current_app.config[setting] if setting else []
    if not tokens:
        return None
    presented = _presented_token(token_in_query(endpoint))
    if presented is not None and token_matches(presented, tokens):
        return None
    response = error_response(401, "unauthorized", f"This endpoint needs 'Authorization: Bearer <token>' or "
                              f"'X-API-Key: <token>' with a token from {setting}." if presented is None
                              else "The token (Authorization: Bearer or X-API-Key) is not valid.")
    response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"' + (
        "" if presented is None else ', error="invalid_token"')
    return response


def init_auth(app: Flask) -> None:
    app.before_request(require_token)
