"""Helpers for the fleet tests that run real servers: posting records and reading ``/ws/fleet``."""
from __future__ import annotations

import json
import socket
import time
import urllib.request
from typing import Any

import pytest
import websocket

from ..dbsetup import config_for, dispose, empty_tables


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: end-to-end tests on real servers (gunicorn, Redis, browsers)")


@pytest.fixture
def clean_db(app):
    """Servers started by other tests write into the same session database (PostgreSQL) and the
    fleet table fills itself from it: start from empty tables."""
    empty_tables(app)
    yield


@pytest.fixture(scope="module")
def emptied_after(database_url):
    """For modules whose servers write into the session database: leave it empty for the others."""
    yield
    from metrics_app import create_app

    app = create_app(config_for(database_url))
    empty_tables(app)
    dispose(app)


def hosts_of(app) -> set[str]:
    """The hosts in an in-process app's fleet table."""
    _seq, entries = app.extensions["fleet"].table.snapshot(lambda e: True)
    return {e.key[0] for e in entries}


def wait_until(predicate, timeout: float) -> float:
    """How long ``predicate`` took to hold (AssertionError past ``timeout``)."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)
    return time.monotonic() - start


def post_records(base_url: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    request = urllib.request.Request(f"{base_url}/metrics", data=json.dumps(records).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


class FleetClient:
    """A ``/ws/fleet`` client: the first message is the snapshot, then updates."""

    def __init__(self, ws_url: str, sock: socket.socket | None = None) -> None:
        """``sock``: an open connection to upgrade (to choose the worker that serves the client)."""
        self.ws = websocket.create_connection(ws_url, timeout=5, socket=sock)
        self.snapshot = json.loads(self.ws.recv())
        assert self.snapshot["type"] == "snapshot"

    def wait_for(self, match, timeout: float) -> tuple[dict[str, Any], float]:
        """The first streamed record ``match`` accepts, and when it arrived (monotonic)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no matching fleet record in time")
            self.ws.settimeout(left)
            try:
                message = json.loads(self.ws.recv())
            except websocket.WebSocketTimeoutException:
                raise TimeoutError("no matching fleet record in time") from None
            for record in message["records"]:
                if match(record):
                    return record, time.monotonic()

    def close(self) -> None:
        self.ws.close()
