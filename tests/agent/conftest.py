"""A real server for the agent to push to, and a deterministic stand-in for this machine's GPUs."""
from __future__ import annotations

import urllib.request
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from tests.fakes import gpu_entry
from tests.server import GunicornServer

#: Quiet test servers: no hardware reads, no retention or local recording writing beside the agent.
SERVER_ENV = {"SAMPLERS_ENABLED": "false", "BACKGROUND_JOBS_ENABLED": "false", "RECORD_INTERVAL_SEC": "0"}


class FakeMachine:
    """Snapshot ``i`` is taken ``i`` seconds after start, with two GPUs whose utilization is ``i``."""

    def __init__(self) -> None:
        self.start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)
        self.taken = 0

    def timestamp(self, i: int) -> str:
        return (self.start + timedelta(seconds=i)).isoformat(timespec="milliseconds")

    def sample(self) -> dict:
        i, self.taken = self.taken, self.taken + 1
        return {"timestamp": self.timestamp(i), "gpus": [gpu_entry(0, utilization=float(i % 101)), gpu_entry(1)]}

    def expected(self) -> list[tuple[str, int, str]]:
        """(timestamp as GET /metrics writes it, gpuIndex, metric) of every record taken so far."""
        return sorted((self.timestamp(i).replace("+00:00", "Z"), gpu, kind) for i in range(self.taken)
                      for gpu in (0, 1) for kind in ("memory", "utilization", "temperature", "power", "clocks"))


@pytest.fixture
def server_env(database_url, app):  # app: empties the shared tables after the test
    return {"DATABASE_URL": database_url, **SERVER_ENV}


@pytest.fixture
def server(tmp_path, server_env):
    with GunicornServer(tmp_path, **server_env) as running:
        yield running


def stored(server: GunicornServer, hostname: str) -> list[dict]:
    """Every record of ``hostname`` as the server's GET /metrics lists it."""
    url = server.url(f"/metrics?hostname={hostname}&format=ndjson")
    with urllib.request.urlopen(url, timeout=10) as response:
        return [orjson.loads(line) for line in response.read().splitlines()]
