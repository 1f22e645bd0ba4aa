"""Helpers for the fleet tests that run real servers: posting records and reading ``/ws/fleet``."""
from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import websocket


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: end-to-end tests on real servers (gunicorn, Redis, browsers)")


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

    def __init__(self, ws_url: str) -> None:
        self.ws = websocket.create_connection(ws_url, timeout=5)
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
