"""The push agent against a real server process: batches, restarts, oversize and rejected batches."""
from __future__ import annotations

import threading
import time

import pytest

from metrics_app.agent.client import IngestClient
from metrics_app.agent.push import PushAgent
from metrics_app.agent.spool import Spool
from tests.server import GunicornServer

from .conftest import FakeMachine, stored

pytestmark = pytest.mark.slow


def wait_for(condition, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def keys(records: list[dict]) -> list[tuple[str, int, str]]:
    return sorted((r["timestamp"], r["gpuIndex"], r["metric"]) for r in records)


def make_agent(tmp_path, server: GunicornServer, machine: FakeMachine, batch: int) -> PushAgent:
    spool = Spool(str(tmp_path / "spool.jsonl"))
    return PushAgent(IngestClient(server.url(""), timeout=2), spool, machine.sample, "agent-box", batch)


def test_a_server_restart_mid_stream_loses_and_repeats_nothing(tmp_path, server_env):
    machine = FakeMachine()
    first = GunicornServer(tmp_path, **server_env).start()
    agent = make_agent(tmp_path, first, machine, batch=4)
    thread = threading.Thread(target=agent.run, args=(0.2,), daemon=True)
    thread.start()
    second = GunicornServer(tmp_path, **server_env, PORT=str(first.port))
    second.port = first.port  # the same address, as a crawler's configuration would have it
    try:
        wait_for(lambda: agent.stats.sent >= 40)
        first.stop()
        wait_for(lambda: agent.stats.spooled >= 40)
        second.start()
        restarted_at = machine.taken
        wait_for(lambda: machine.taken >= restarted_at + 5 and agent.spool.batches() == 0)
        agent.stop_event.set()
        thread.join(10)
        records = stored(second, "agent-box")
    finally:
        agent.stop_event.set()
        agent.spool.close()
        first.stop()
        second.stop()
    assert agent.stats.dropped == 0 and agent.spool.batches() == 0
    assert len(records) == agent.stats.sent == agent.stats.records
    assert keys(records) == machine.expected()
    gpu0 = [r for r in records if r["metric"] == "utilization" and r["gpuIndex"] == 0]
    assert [r["payload"]["gpuPercent"] for r in gpu0] == [float(i % 101) for i in range(machine.taken)]


def test_a_batch_too_large_for_the_server_is_split_not_lost(tmp_path, server_env):
    machine = FakeMachine()
    with GunicornServer(tmp_path, **server_env, MAX_BATCH="3") as server:
        agent = make_agent(tmp_path, server, machine, batch=10)
        stats = agent.run(0.05, count=3)
        agent.spool.close()
        assert keys(stored(server, "agent-box")) == machine.expected()
    assert (stats.sent, stats.dropped, stats.spooled) == (30, 0, 0)


def test_a_rejected_batch_is_dropped_with_its_reason_and_never_retried(tmp_path, server_env, caplog):
    machine = FakeMachine()
    with GunicornServer(tmp_path, **server_env, MAX_CONTENT_LENGTH="100") as server:
        agent = make_agent(tmp_path, server, machine, batch=10)
        started = time.monotonic()
        stats = agent.run(0.05, count=2)
        agent.spool.close()
        assert stored(server, "agent-box") == []
    assert time.monotonic() - started < 10
    assert (stats.sent, stats.dropped, agent.spool.batches()) == (0, 20, 0)
    assert "HTTP 413" in caplog.text and "dropped" in caplog.text
