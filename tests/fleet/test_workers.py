"""One gunicorn instance with two gevent workers and no Redis, as ./start.sh runs it: a record POSTed
to either worker reaches every ``/ws/fleet`` client of both within a second, ``/health`` says how,
and no socket outlives the server.

Each connection is pinned to a known worker: a fresh keep-alive connection asks ``/api/health``
which worker serves it (``sampler.worker_pid``), then carries the POST or the WebSocket upgrade."""
from __future__ import annotations

import http.client
import json
import time
from collections import defaultdict

import pytest

from metrics_app.fleet.worker_bus import sibling_dir

from ..server import GunicornServer
from .conftest import FleetClient, wait_until
from .records import record

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("emptied_after")]
PER_WORKER = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with GunicornServer(tmp_path_factory.mktemp("workers"), SAMPLERS_ENABLED="false",
                        BACKGROUND_JOBS_ENABLED="false", GUNICORN_WORKERS="2", REDIS_URL="") as srv:
        yield srv


def on_each_worker(server: GunicornServer, count: int) -> dict[int, list[http.client.HTTPConnection]]:
    """Fresh connections until each of the two workers serves ``count`` of them, by worker pid (the
    second worker may still be starting when the first answers)."""
    pinned: dict[int, list[http.client.HTTPConnection]] = defaultdict(list)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/api/health")
        pid = json.loads(conn.getresponse().read())["sampler"]["worker_pid"]
        if len(pinned[pid]) < count:
            pinned[pid].append(conn)
        else:
            conn.close()
        if len(pinned) == 2 and all(len(conns) == count for conns in pinned.values()):
            return pinned
        time.sleep(0.01)
    raise AssertionError(f"connections landed on these workers only: {dict(pinned)}")


def ask(conn: http.client.HTTPConnection, method: str, path: str, body: object = None) -> dict:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
    response = conn.getresponse()
    return json.loads(response.read())


def test_each_worker_reports_the_workers_bus(server):
    for pid, (conn,) in on_each_worker(server, 1).items():
        wait_until(lambda: ask(conn, "GET", "/health")["fleet"]["siblings"] == 1, 3)  # looked for every second
        fleet = ask(conn, "GET", "/health")["fleet"]
        conn.close()
        assert (fleet["mode"], fleet["status"], fleet["worker_pid"]) == ("workers", "ok", pid)


def test_records_posted_to_either_worker_reach_every_client_of_both_within_a_second(server):
    clients: list[FleetClient] = []
    try:
        for pid, conns in on_each_worker(server, PER_WORKER).items():
            for conn in conns:
                sock, conn.sock = conn.sock, None  # the upgrade goes over the same connection
                clients.append(FleetClient(server.url("/ws/fleet", "ws"), sock=sock))
        for n in range(2):
            for pid, (conn,) in on_each_worker(server, 1).items():  # fresh connections every time
                host = f"via-{pid}-{n}"
                sent = time.monotonic()
                assert ask(conn, "POST", "/metrics", [record(host=host)])["saved"] == 1
                conn.close()
                for client in clients:
                    _got, arrived = client.wait_for(lambda r, host=host: r["hostname"] == host, 5)
                    assert arrived - sent < 1.0, f"{host} took {arrived - sent:.2f} s"
    finally:
        for client in clients:
            client.close()


def test_no_socket_outlives_the_server(server):
    directory = sibling_dir(server.process.pid)
    assert len(list(directory.iterdir())) == 2  # one per worker
    server.stop()
    assert not directory.exists()
