"""Misbehaving live clients never delay the others, against the real gunicorn server.

The 30-second, 200-client measurement is ``bench/ws_clients.py --stall 1 --drop 100`` (README); this
is its scaled-down, always-run form.
"""
from __future__ import annotations

import base64
import os
import socket
import struct
import threading
import time

import pytest
import websocket

from ..server import GunicornServer

pytestmark = pytest.mark.slow

INTERVAL = 0.2


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with GunicornServer(tmp_path_factory.mktemp("iso"), SAMPLE_INTERVAL_SEC=str(INTERVAL),
                        WS_SEND_TIMEOUT_SEC="2") as srv:
        yield srv


def stalled_client(server: GunicornServer) -> socket.socket:
    """Completes the handshake with a tiny receive buffer, then never reads."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    sock.connect(("127.0.0.1", server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    assert b"101" in sock.recv(12)
    return sock


def vanish(ws: websocket.WebSocket) -> None:
    """Drop the connection with a TCP reset: no close frame, as a crashed browser tab or a cut cable."""
    ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ws.sock.close()


def record_gaps(server: GunicornServer, seconds: float, gaps: list[float], errors: list[str]) -> None:
    try:
        ws = websocket.create_connection(server.url("/ws/metrics", "ws"), timeout=5)
        ws.recv()
        last, stop = time.monotonic(), time.monotonic() + seconds
        while time.monotonic() < stop:
            ws.recv()
            now = time.monotonic()
            gaps.append(now - last)
            last = now
        ws.close()
    except Exception as exc:  # noqa: BLE001 - reported by the assertion
        errors.append(repr(exc))


def p99(values: list[float]) -> float:
    return sorted(values)[int(0.99 * (len(values) - 1))]


def steady_clients_gaps(server: GunicornServer, seconds: float, during=None) -> list[float]:
    gaps: list[float] = []
    errors: list[str] = []
    threads = [threading.Thread(target=record_gaps, args=(server, seconds, gaps, errors)) for _ in range(10)]
    for thread in threads:
        thread.start()
    if during:
        time.sleep(0.5)
        during()
    for thread in threads:
        thread.join()
    assert errors == []
    return gaps


def test_stalled_and_vanishing_clients_leave_the_others_gap_unchanged(server):
    baseline = steady_clients_gaps(server, 4.0)

    stalled = stalled_client(server)
    doomed = [websocket.create_connection(server.url("/ws/metrics", "ws"), timeout=5) for _ in range(100)]
    for ws in doomed:
        ws.recv()
    try:
        disturbed = steady_clients_gaps(server, 4.0, during=lambda: [vanish(ws) for ws in doomed])
    finally:
        stalled.close()

    assert p99(baseline) < INTERVAL + 0.15
    assert p99(disturbed) < INTERVAL + 0.15, (p99(baseline), p99(disturbed))
    assert len(disturbed) >= 0.8 * len(baseline)
