"""Cross-instance fan-out over Redis, with two apps in one process standing in for two instances:
a record stored by one reaches the other's table, Redis down degrades /health but not ingest, and the
subscriber comes back by itself after a Redis restart."""
from __future__ import annotations

import time
import uuid

import pytest

from metrics_app import create_app
from tests.dbsetup import config_for, dispose

from .conftest import hosts_of, wait_until
from .records import record
from .redis_server import RedisServer


def instance(database_url: str, redis_url: str, channel: str):
    app = create_app(type("FleetConfig", (config_for(database_url),), {
        "REDIS_URL": redis_url, "FLEET_REDIS_CHANNEL": channel}))
    app.extensions["fleet"].start()
    return app


@pytest.fixture
def redis_server(tmp_path):
    with RedisServer(tmp_path) as server:
        yield server


@pytest.fixture
def pair(app, database_url, redis_server):
    """``app`` (the suite's, emptied afterwards) is not used for serving: only its database."""
    channel = f"test-fleet-{uuid.uuid4().hex[:8]}"
    a, b = (instance(database_url, redis_server.url, channel) for _ in range(2))
    wait_until(lambda: a.extensions["fleet"].bus.subscribed and b.extensions["fleet"].bus.subscribed, 5)
    yield a, b
    for one in (a, b):
        one.extensions["fleet"].bus.stop()
        dispose(one)


def test_a_record_stored_by_one_instance_reaches_the_other_within_a_second(pair):
    a, b = pair
    assert a.test_client().post("/metrics", json=[record(host="from-a")]).status_code == 201
    assert wait_until(lambda: "from-a" in hosts_of(b), 5) < 1.0
    assert b.extensions["fleet"].status()["received"] == 1
    assert a.extensions["fleet"].status()["received"] == 0  # its own message is not applied twice


def test_redis_down_degrades_health_not_ingest_and_the_stream_resumes(pair, redis_server):
    a, b = pair
    redis_server.stop()
    client = a.test_client()
    wait_until(lambda: client.get("/health").get_json()["fleet"]["status"] == "degraded", 5)
    health = client.get("/health").get_json()
    assert health["status"] == "degraded" and "subscriber" in health["fleet"]["reason"]
    started = time.monotonic()
    response = client.post("/metrics", json=[record(host="while-down")])
    assert response.status_code == 201 and time.monotonic() - started < 1.0  # ingest never waits on Redis
    assert "while-down" in hosts_of(a)  # this instance's own clients still see it

    redis_server.start()  # same port
    wait_until(lambda: client.get("/health").get_json()["fleet"]["status"] == "ok", 10)
    wait_until(lambda: b.extensions["fleet"].bus.subscribed, 10)
    assert client.post("/metrics", json=[record(host="after-restart")]).status_code == 201
    assert wait_until(lambda: "after-restart" in hosts_of(b), 5) < 1.0
    assert client.get("/health").get_json()["status"] == "ok"


def test_unreachable_redis_from_the_start_is_reported_with_its_reason(app, database_url):
    from ..server import free_port

    lonely = instance(database_url, f"redis://127.0.0.1:{free_port()}/0", "unused")
    try:
        client = lonely.test_client()
        wait_until(lambda: client.get("/health").get_json()["fleet"]["status"] == "degraded", 5)
        fleet = client.get("/health").get_json()["fleet"]
        assert fleet["mode"] == "redis" and "ConnectionError" in fleet["reason"]
        assert client.post("/metrics", json=[record()]).status_code == 201
        wait_until(lambda: client.get("/health").get_json()["fleet"]["dropped"] >= 1, 5)
    finally:
        lonely.extensions["fleet"].bus.stop()
        dispose(lonely)
