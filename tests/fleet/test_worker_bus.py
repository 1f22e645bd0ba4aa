"""The fan-out between the workers of one gunicorn master, with bus instances in one process standing
in for sibling workers: batches reach the other workers whole however large, sockets of dead workers
are removed, and neither a full outbox nor a sibling that stops reading ever holds up ingest."""
from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import orjson
import pytest

from metrics_app import create_app
from metrics_app.fleet.bus import decode, encode_chunks
from metrics_app.fleet.table import Span
from metrics_app.fleet.worker_bus import WorkerBus, join_master, sibling_dir
from metrics_app.storage.writer import Row
from tests.dbsetup import config_for, dispose

from .conftest import hosts_of, wait_until
from .records import record


def spans(host: str, count: int = 1) -> list[Span]:
    """What a batch of ``count`` rows of ``count`` GPUs travels as."""
    return [Span(Row(host, n, f"GPU-{host}-{n}", "NVIDIA H100", 2, 1_700_000_000_000 + n, -1, 50.0, 20.0, None),
                 1, 1_700_000_000_000 + n) for n in range(count)]


class Received:
    """What a bus applied, as the fleet table would get it."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self._lock = threading.Lock()

    def __call__(self, batch: list[Span]) -> None:
        with self._lock:
            self.spans.extend(batch)

    def hosts(self) -> set[str]:
        with self._lock:
            return {span.row.hostname for span in self.spans}


@pytest.fixture
def socket_dir():
    """Short on purpose: a socket's path has about 100 bytes (pytest's tmp_path can be longer)."""
    path = Path(tempfile.mkdtemp(prefix="fleet-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def buses(socket_dir):
    made: list[WorkerBus] = []

    def make(started: bool = True, **options) -> tuple[WorkerBus, Received]:
        received = Received()
        bus = WorkerBus(socket_dir, received, **options)
        if started:
            bus.start()
        made.append(bus)
        return bus, received

    yield make
    for bus in made:
        bus.stop()


def dead_worker_socket(directory: Path, name: str) -> Path:
    """What a worker killed by SIGKILL leaves: a socket file that nobody listens on."""
    path = directory / name
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
    return path


def test_a_batch_committed_by_one_worker_reaches_its_sibling(buses):
    a, at_a = buses()
    b, at_b = buses()
    a.publish(spans("from-a"))
    assert wait_until(lambda: "from-a" in at_b.hosts(), 5) < 1.0
    assert at_b.spans == spans("from-a")
    b.publish(spans("from-b"))
    wait_until(lambda: "from-b" in at_a.hosts(), 5)
    wait_until(lambda: a.status()["siblings"] == b.status()["siblings"] == 1, 2)
    status = a.status()
    assert (status["mode"], status["status"], status["reason"]) == ("workers", "ok", None)
    assert status["worker_pid"] == os.getpid() and status["published"] == 1 and status["received"] == 1


def test_batches_committed_within_the_gathering_window_travel_as_one_message(buses):
    a, _ = buses()
    b, at_b = buses()
    wait_until(lambda: a.status()["siblings"] == 1, 2)
    for n in range(5):
        a.publish(spans(f"burst-{n}"))
    wait_until(lambda: len(at_b.spans) == 5, 5)
    assert [span.row.hostname for span in at_b.spans] == [f"burst-{n}" for n in range(5)]  # in commit order
    assert a.status()["published"] == 5 and b.status()["received"] == 1


def test_a_batch_larger_than_a_datagram_arrives_whole_in_several(buses):
    a, _ = buses(max_datagram=4096)
    b, at_b = buses(max_datagram=4096)
    big = spans("big", 400)
    a.publish(big)
    wait_until(lambda: len(at_b.spans) == 400, 5)
    assert at_b.spans == big  # every span, in order
    assert b.status()["received"] >= 8  # one message per datagram: ~36 KB in 4 KB datagrams


def test_chunks_fit_the_limit_and_each_decodes_alone():
    chunks = list(encode_chunks("src", spans("h", 1000), 2000))
    assert all(len(chunk) <= 2000 for chunk in chunks)
    assert [span for chunk in chunks for span in decode(chunk)[1]] == spans("h", 1000)
    assert len(chunks) < 1.3 * sum(len(chunk) for chunk in chunks) / 2000  # well filled


def test_sockets_of_dead_workers_are_removed(buses, socket_dir):
    stale = dead_worker_socket(socket_dir, "999999-00000000.sock")
    a, _ = buses()
    wait_until(lambda: not stale.exists(), 2)
    assert a.status()["siblings"] == 0
    b, at_b = buses()
    dying = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dying.bind(str(socket_dir / "999998-00000000.sock"))
    wait_until(lambda: a.status()["siblings"] == 2, 3)  # the live sibling and the one about to die
    dying.close()  # killed: its file stays
    a.publish(spans("after-death"))
    wait_until(lambda: "after-death" in at_b.hosts(), 5)
    # removed by whichever worker notices first: sending to it, or listing the directory
    wait_until(lambda: {p.name for p in socket_dir.iterdir()} == {a.path.name, b.path.name}, 2)
    assert a.status()["status"] == b.status()["status"] == "ok"


def test_directories_of_masters_killed_outright_are_cleared_and_live_ones_kept(monkeypatch, socket_dir):
    monkeypatch.setattr(tempfile, "tempdir", str(socket_dir))
    killed, alive = sibling_dir(111), sibling_dir(222)
    for directory in (killed, alive):
        directory.mkdir(mode=0o700)
    dead_worker_socket(killed, "112-00000000.sock")
    dead_worker_socket(killed, "113-00000000.sock")
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listening.bind(str(alive / "223-00000000.sock"))  # another instance, whatever its master's pid says
    dead_worker_socket(alive, "224-00000000.sock")
    try:
        bus = join_master(333, Received())
        bus.stop()
        assert sorted(p.name for p in socket_dir.iterdir()) == [alive.name]
        assert [p.name for p in alive.iterdir()] == ["223-00000000.sock"]
    finally:
        listening.close()


def test_a_full_outbox_drops_the_oldest_batches_and_counts_them(buses):
    a, _ = buses(started=False, outbox_batches=4)
    _b, at_b = buses()
    for n in range(6):
        a.publish(spans(f"batch-{n}"))  # nothing sends yet
    assert a.status()["dropped"] == 2
    a.start()
    wait_until(lambda: "batch-5" in at_b.hosts(), 5)
    time.sleep(0.2)
    assert at_b.hosts() == {"batch-2", "batch-3", "batch-4", "batch-5"}


def test_a_sibling_that_stops_reading_holds_up_neither_ingest_nor_the_others(buses, socket_dir):
    stuck = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stuck.bind(str(socket_dir / "999997-00000000.sock"))
    try:
        a, _ = buses(max_datagram=2048)
        _b, at_b = buses(max_datagram=2048)
        wait_until(lambda: a.status()["siblings"] == 2, 3)
        started = time.monotonic()
        for n in range(20):
            a.publish(spans(f"busy-{n}", 30))  # many datagrams: far more than the stuck one's queue holds
        assert time.monotonic() - started < 0.1  # publishing never waits on a sibling
        assert wait_until(lambda: len(at_b.spans) == 600, 5) < 2.0  # a single wait for the stuck one
        status = a.status()
        assert status["status"] == "degraded" and "worker 999997: not reading" in status["reason"]
        assert status["undelivered"] > 0

        stuck.settimeout(0.1)
        with pytest.raises(TimeoutError):
            while True:  # the stuck worker catches up
                stuck.recv(4096)
        a.publish(spans("after-catching-up"))
        wait_until(lambda: a.status()["status"] == "ok", 3)
    finally:
        stuck.close()


def test_the_fleet_of_each_app_sees_what_its_sibling_stored(app, database_url, monkeypatch, socket_dir):
    """Two apps as two workers of one master: ``/health`` names the mode and the stream covers both.
    (``app``, the suite's, only empties the database afterwards.)"""
    monkeypatch.setattr(tempfile, "tempdir", str(socket_dir))
    apps = [create_app(config_for(database_url)) for _ in range(2)]
    try:
        for app in apps:
            app.extensions["fleet"].share_with_workers(master_pid=1)
        a, b = (app.test_client() for app in apps)
        assert a.post("/metrics", json=[record(host="stored-by-a")]).status_code == 201
        assert wait_until(lambda: "stored-by-a" in hosts_of(apps[1]), 5) < 1.0
        wait_until(lambda: b.get("/health").get_json()["fleet"]["siblings"] == 1, 3)
        health = b.get("/health").get_json()
        assert health["status"] == "ok" and health["fleet"]["mode"] == "workers"
    finally:
        for app in apps:
            app.extensions["fleet"].bus.stop()
            dispose(app)
    assert not any(socket_dir.iterdir())  # the last worker out removes the directory


GOOD = ["h", 0, "GPU-0", "H100", 2, 1_700_000_000_000, -1, 50.0, 20.0, None, None, 1, 1_700_000_000_000]


@pytest.mark.parametrize("spans", [
    [GOOD[:-1]], [[*GOOD, 1]], [["h", *GOOD[1:4], "2", *GOOD[5:]]], [[*GOOD[:-2], "2", GOOD[-1]]],
    [[["h"], *GOOD[1:]]], [[*GOOD[:4], 999, *GOOD[5:]]], [[*GOOD[:2], 7, *GOOD[3:]]], [[*GOOD[:-2], 0, GOOD[-1]]],
    [[*GOOD[:7], "50", *GOOD[8:]]], [[*GOOD[:1], True, *GOOD[2:]]], "spans", [None], [{}],
])
def test_a_message_that_is_not_spans_is_refused_whole(spans):
    """Anything may be published on a Redis channel: what decodes must be what the table and every
    fleet frame can take (a metric code it does not know failed every later frame)."""
    with pytest.raises((ValueError, KeyError, TypeError)):
        decode(orjson.dumps({"src": "other", "spans": [GOOD, *spans] if isinstance(spans, list) else spans}))
    assert decode(orjson.dumps({"src": "other", "spans": [GOOD]}))[1][0].row.hostname == "h"


def test_a_receiver_goes_on_after_a_bad_message_and_a_failing_apply(buses, socket_dir):
    a, _ = buses()
    calls: list = []

    def apply(batch):
        calls.append(batch)
        if len(calls) == 1:
            raise RuntimeError("a bug in the table")

    b = WorkerBus(socket_dir, apply)
    b.start()
    try:
        wait_until(lambda: a.status()["siblings"] == 1, 2)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
            sender.sendto(b'{"src": "x", "spans": [["h", 0]]}', str(b.path))
        a.publish(spans("first"))  # applying it fails
        wait_until(lambda: len(calls) == 1, 5)
        a.publish(spans("second"))
        wait_until(lambda: len(calls) == 2, 5)
        assert calls[1] == spans("second") and b.status()["received"] == 2
    finally:
        b.stop()
