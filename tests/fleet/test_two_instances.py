"""Two gunicorn instances (4 gevent workers each) on one PostgreSQL and one Redis, each with its own
JOBS_LOCK_PATH as if on two hosts: one jobs leader named alike by both, live records crossing between
them within a second, a Redis restart survived, and the lead taken over within 5 s of a SIGKILL with
the tailer storing every line once."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid

import pytest
from sqlalchemy import create_engine, func, select

from metrics_app.storage.models import Record

from ..server import GunicornServer
from .conftest import FleetClient, get_json, post_records
from .records import record
from .redis_server import RedisServer

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("emptied_after")]


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, redis_server):
    if not (os.environ.get("TEST_DATABASE_URL") or "").startswith("postgresql"):
        pytest.skip("several instances share one PostgreSQL (set TEST_DATABASE_URL)")
    shared = tmp_path_factory.mktemp("shared")
    (shared / "ws_out.jsonl").touch()
    channel = f"test-fleet-{uuid.uuid4().hex[:8]}"
    servers = []
    for name in ("a", "b"):
        workdir = tmp_path_factory.mktemp(name)
        servers.append(GunicornServer(
            workdir, SAMPLERS_ENABLED="false", RECORD_INTERVAL_SEC="0", GUNICORN_WORKERS="4",
            REDIS_URL=redis_server.url, FLEET_REDIS_CHANNEL=channel, JOBS_LOCK_PATH=str(workdir / "jobs.lock"),
            ENABLE_WS_FILE="true", INPUT_WS_PATH=str(shared / "ws_out.jsonl"), FILE_POLL_INTERVAL_SEC="0.2",
            RETENTION_CLEAN_INTERVAL_SEC="1", LEADER_POLL_INTERVAL_SEC="0.5").start())
    yield {"a": servers[0], "b": servers[1], "tail": shared / "ws_out.jsonl"}
    for server in servers:
        server.stop()


def base(server: GunicornServer) -> str:
    return server.url("").rstrip("/")


def leaders(server: GunicornServer, asks: int = 8) -> set[str | None]:
    """What several requests (spread over the workers) say the leader is."""
    return {get_json(server.url("/health"))["jobs"]["leader"] for _ in range(asks)}


def owner(cluster, leader: str) -> str:
    """Which instance a ``hostname:pid`` leader runs in (its worker is in that gunicorn's group)."""
    pgid = os.getpgid(int(leader.rsplit(":", 1)[1]))
    return next(name for name in ("a", "b") if cluster[name].process.pid == pgid)


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} not within {timeout} s")


def test_exactly_one_leader_named_alike_by_both(cluster):
    wait_for(lambda: leaders(cluster["a"]) == leaders(cluster["b"]) != {None}, 10, "one leader")
    (leader,) = leaders(cluster["a"])
    assert owner(cluster, leader) in ("a", "b")
    assert get_json(cluster["b"].url("/health"))["jobs"]["lock"] == "postgresql_advisory_lock"


def test_record_posted_to_a_reaches_a_fleet_client_of_b_within_a_second(cluster):
    wait_for(lambda: all(get_json(s.url("/health"))["fleet"]["status"] == "ok" for s in (cluster["a"], cluster["b"])
                         for _ in range(8)), 10, "every worker subscribed")
    clients = [FleetClient(cluster["b"].url("/ws/fleet", "ws")) for _ in range(4)]  # likely several workers
    try:
        for n in range(5):
            sent = time.monotonic()
            post_records(base(cluster["a"]), [record(host=f"cross-{n}")])
            for client in clients:
                _got, arrived = client.wait_for(lambda r, n=n: r["hostname"] == f"cross-{n}", 5)
                assert arrived - sent < 1.0
    finally:
        for client in clients:
            client.close()


def test_the_stream_resumes_after_a_redis_restart(cluster, redis_server):
    client = FleetClient(cluster["b"].url("/ws/fleet", "ws"))
    try:
        redis_server.stop()
        wait_for(lambda: get_json(cluster["a"].url("/health"))["fleet"]["status"] == "degraded", 10, "degraded")
        reason = get_json(cluster["a"].url("/health"))["fleet"]["reason"]
        assert "subscriber" in reason
        assert post_records(base(cluster["a"]), [record(host="during-outage")])["saved"] == 1  # ingest goes on
        redis_server.start()
        wait_for(lambda: all(get_json(s.url("/health"))["fleet"]["status"] == "ok"
                             for s in (cluster["a"], cluster["b"]) for _ in range(8)), 15, "every worker back")
        sent = time.monotonic()
        post_records(base(cluster["a"]), [record(host="after-restart")])
        _got, arrived = client.wait_for(lambda r: r["hostname"] == "after-restart", 5)  # the same connection
        assert arrived - sent < 1.0
    finally:
        client.close()


def append_lines(path, count: int, stop: threading.Event, written: list[int]) -> None:
    with open(path, "a") as out:
        for n in range(count):
            if stop.is_set():
                return
            out.write(json.dumps(record(host="tailed", gpu=0, metric="temperature", celsius=float(n % 90),
                                        ago=-n / 1000)) + "\n")  # one distinct millisecond per line
            out.flush()
            written.append(n)
            time.sleep(0.01)


def retention_success(server) -> str | None:
    """When the retention job last succeeded, as /health reports it (whichever process ran it)."""
    return get_json(server.url("/health"))["jobs"]["runs"].get("retention", {}).get("last_success")


def test_sigkill_of_the_leader_hands_the_lead_over_and_the_tailer_stores_every_line_once(cluster):
    (leader,) = wait_for(lambda: (names := leaders(cluster["a"])) != {None} and len(names) == 1 and names, 10,
                         "a leader")
    doomed = owner(cluster, leader)
    survivor = cluster["b" if doomed == "a" else "a"]
    retention_before = retention_success(survivor)
    stop, written = threading.Event(), []
    writer = threading.Thread(target=append_lines, args=(cluster["tail"], 600, stop, written))
    writer.start()
    try:
        time.sleep(1.5)  # the leader tails part of the file
        os.killpg(cluster[doomed].process.pid, signal.SIGKILL)
        killed = time.monotonic()
        new = wait_for(lambda: (names := leaders(survivor, 4)) != {None} and len(names) == 1 and
                       names != {leader} and next(iter(names)), 5, "a new leader")
        handover = time.monotonic() - killed
        print(f"lead handed over {handover:.2f} s after the SIGKILL")
        assert handover < 5.0
        assert owner(cluster, new) != doomed
    finally:
        writer.join()
    engine = create_engine(os.environ["TEST_DATABASE_URL"])
    try:
        def stored() -> int:
            with engine.connect() as conn:
                return conn.scalar(select(func.count()).select_from(Record).join_from(
                    Record, Record.metadata.tables["gpu_series"],
                    Record.series_id == Record.metadata.tables["gpu_series"].c.id).where(
                    Record.metadata.tables["gpu_series"].c.hostname == "tailed"))
        wait_for(lambda: stored() == len(written), 10, "every line stored")
        time.sleep(1.0)
        assert stored() == len(written) == 600  # once each: nothing lost, nothing twice
    finally:
        engine.dispose()
    tailer = get_json(survivor.url("/health"))["tailers"][0]
    assert tailer["lines"] == 600 and tailer["lines_ok"] == 600
    wait_for(lambda: retention_success(survivor) not in (None, retention_before), 5,
             "retention run by the new leader")
