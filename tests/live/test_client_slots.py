"""WS_MAX_CLIENTS: past the limit a handshake is a 503, plain HTTP is still served, and a slot
comes back when a client leaves."""
from __future__ import annotations

import time
import urllib.request

import orjson
import pytest
import websocket

from ..server import GunicornServer

pytestmark = pytest.mark.slow


def open_clients(server) -> int:
    with urllib.request.urlopen(server.url("/api/health"), timeout=5) as response:
        return orjson.loads(response.read())["websocket_clients"]["open"]


def test_handshakes_past_the_limit_are_refused_and_http_keeps_answering(tmp_path):
    with GunicornServer(tmp_path, WS_MAX_CLIENTS="2", SAMPLE_INTERVAL_SEC="0.2", RECORD_INTERVAL_SEC="0") as server:
        url = server.url("/ws/metrics", "ws")
        first, second = (websocket.create_connection(url, timeout=5) for _ in range(2))
        for ws in (first, second):
            assert orjson.loads(ws.recv())["cpu"] is not None
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(url, timeout=5)
        assert refused.value.status_code == 503
        assert orjson.loads(refused.value.resp_body)["error"] == "too_many_clients"
        assert open_clients(server) == 2  # plain HTTP beside the full set of streams
        first.close()
        deadline = time.monotonic() + 5
        while open_clients(server) != 1:
            assert time.monotonic() < deadline, "the closed client's slot never came back"
            time.sleep(0.05)
        third = websocket.create_connection(url, timeout=5)
        assert orjson.loads(third.recv())["cpu"] is not None
        third.close()
        second.close()
