"""WS /ws/fleet against the real gunicorn gevent server: snapshot on connect, each posted record
streamed within a second, filters applied, the read token taken from ``?token=``."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
import websocket

from metrics_app.fleet.worker_bus import sibling_dir

from ..server import GunicornServer
from .conftest import FleetClient, post_records
from .records import record

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("emptied_after")]
TOKEN = "fleet-read-token"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with GunicornServer(tmp_path_factory.mktemp("fleet"), SAMPLERS_ENABLED="false", BACKGROUND_JOBS_ENABLED="false",
                        READ_TOKEN=TOKEN, GUNICORN_WORKERS="1") as srv:
        yield srv


def client(server, query: str = "") -> FleetClient:
    return FleetClient(server.url(f"/ws/fleet?token={TOKEN}{'&' if query else ''}{query}", "ws"))


def test_snapshot_then_each_posted_record_within_a_second(server):
    post_records(server.url("").rstrip("/"), [record(host="snap", metric="temperature", celsius=40.0)])
    fleet = client(server)
    try:
        assert any(r["hostname"] == "snap" and r["celsius"] == 40.0 for r in fleet.snapshot["records"])
        sent = time.monotonic()
        post_records(server.url("").rstrip("/"), [record(host="live", metric="power", watts=333.0)])
        got, arrived = fleet.wait_for(lambda r: r["hostname"] == "live", 5)
        assert got["watts"] == 333.0 and got["metric"] == "power" and got["gpuId"] == "GPU-live-0"
        assert arrived - sent < 1.0
    finally:
        fleet.close()


def test_filtered_client_gets_only_its_records(server):
    fleet = client(server, "hostname=wanted&metric=utilization")
    try:
        assert all(r["hostname"] == "wanted" for r in fleet.snapshot["records"])
        post_records(server.url("").rstrip("/"), [record(host="other"), record(host="wanted", metric="power"),
                                                  record(host="wanted", gpuPercent=77.0)])
        got, _ = fleet.wait_for(lambda r: True, 5)  # the first record streamed must be the wanted one
        assert (got["hostname"], got["metric"], got["gpuPercent"]) == ("wanted", "utilization", 77.0)
    finally:
        fleet.close()


def test_handshake_without_the_token_or_with_a_bad_filter_is_refused(server):
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(server.url("/ws/fleet", "ws"), timeout=5)
    assert info.value.status_code == 401
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(server.url(f"/ws/fleet?token={TOKEN}&metric=nope", "ws"), timeout=5)
    assert info.value.status_code == 400


def test_a_stalled_client_does_not_hold_up_the_others(server):
    import socket

    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    stalled.connect(("127.0.0.1", server.port))
    stalled.sendall((f"GET /ws/fleet?token={TOKEN} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    fleet = client(server)
    try:
        base = server.url("").rstrip("/")
        for i in range(20):  # enough to fill the stalled client's buffers many times over
            post_records(base, [record(host=f"bulk-{i}-{n}", metric="memory") for n in range(200)])
        sent = time.monotonic()
        post_records(base, [record(host="after-bulk")])
        _got, arrived = fleet.wait_for(lambda r: r["hostname"] == "after-bulk", 5)
        assert arrived - sent < 1.5  # isolation, not latency (that is the first test): slack for a loaded box
    finally:
        fleet.close()
        stalled.close()


def test_a_single_worker_shares_with_no_one_and_makes_no_socket(server):
    request = urllib.request.Request(server.url("/health"), headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.load(response)["fleet"]["mode"] == "local"
    assert not sibling_dir(server.process.pid).exists()
