"""End to end: the real gunicorn server (gevent worker, real samplers) and real WebSocket clients.

Clients that stall or vanish are tests/reliability/test_ws_isolation.py's; the plain-GET 426 on the
stream's path is tests/live/test_http.py's."""
from __future__ import annotations

import json
import time
import urllib.request

import pytest
import websocket

from ..server import GunicornServer

pytestmark = pytest.mark.slow

SNAPSHOT_KEYS = {"timestamp", "cpu", "memory", "gpu", "battery", "gpus"}
INTERVAL = 1.0
SLACK = 0.5


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with GunicornServer(tmp_path_factory.mktemp("e2e"), SAMPLE_INTERVAL_SEC=str(INTERVAL)) as srv:
        yield srv


def connect(server, **kwargs) -> websocket.WebSocket:
    return websocket.create_connection(server.url("/ws/metrics", "ws"), timeout=5, **kwargs)


def test_first_message_is_immediate_and_the_next_comes_within_one_interval(server):
    t0 = time.monotonic()
    ws = connect(server)
    try:
        first = json.loads(ws.recv())
        t1 = time.monotonic()
        second = json.loads(ws.recv())
        t2 = time.monotonic()
    finally:
        ws.close()
    assert t1 - t0 < SLACK
    assert t2 - t1 < INTERVAL + SLACK
    assert set(first) == SNAPSHOT_KEYS and set(second) == SNAPSHOT_KEYS
    assert second["timestamp"] > first["timestamp"]
    assert set(first["cpu"]) == {"utilization", "cores", "frequency", "maxFrequency"}
    assert set(first["memory"]) == {"total", "used", "available", "percent", "swapTotal", "swapUsed", "swapPercent"}
    assert first["memory"]["total"] > 0


def test_clean_close_is_answered(server):
    ws = connect(server)
    ws.recv()
    ws.send_close()
    opcodes = []
    while websocket.ABNF.OPCODE_CLOSE not in opcodes and len(opcodes) < 5:
        opcodes.append(ws.recv_data_frame(control_frame=True)[0])  # a frame may be in flight first
    assert opcodes[-1] == websocket.ABNF.OPCODE_CLOSE
    ws.shutdown()


def test_http_answers_with_cors_while_streams_are_open(server):
    streams = [connect(server) for _ in range(10)]
    try:
        request = urllib.request.Request(server.url("/api/metrics"), headers={"Origin": "http://localhost:5173"})
        with urllib.request.urlopen(request, timeout=2) as response:
            assert response.headers["Access-Control-Allow-Origin"] == "*"
            assert set(json.load(response)) == SNAPSHOT_KEYS
    finally:
        for ws in streams:
            ws.close()


def test_health_reports_a_running_sampler(server):
    health = json.load(urllib.request.urlopen(server.url("/api/health")))
    assert health["status"] == "healthy"
    assert set(health) >= {"status", "nvidia_available", "rocm_available", "gpu_support", "platform"}
    assert health["sampler"]["running"] is True
    assert health["sampler"]["last_tick_age_sec"] < INTERVAL + SLACK
    assert health["sampler"]["sources"]["host"]["status"] == "ok"
