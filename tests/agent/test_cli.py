"""flask agent push: samples the (fake) GPUs through a hub, POSTs them, spools while the server is down."""
from __future__ import annotations

import pytest

from metrics_app.cli.gpus import SOURCES_FACTORY_KEY
from tests.fakes import StaticGpuSource, gpu_entry
from tests.server import free_port

from .conftest import stored

pytestmark = pytest.mark.slow


def use_fake_gpus(app) -> None:
    app.extensions[SOURCES_FACTORY_KEY] = lambda config: [
        StaticGpuSource("nvidia", "NVIDIA", [gpu_entry(0, processes=[{"pid": 77, "name": "train",
                                                                      "usedMemory": 1 << 30}])])]


def push(runner, server_url: str, spool, *extra: str):
    return runner.invoke(args=["agent", "push", "--server", server_url, "--spool", str(spool),
                               "--hostname", "cli-box", "--interval", "0.2", *extra])


def test_push_sends_each_sample_of_this_machine(app, runner, server, tmp_path):
    use_fake_gpus(app)
    result = push(runner, server.url(""), tmp_path / "spool.jsonl", "--count", "3", "--token", "secret")
    assert result.exit_code == 0, result.output
    assert "3 samples, 18 records: 18 sent, 0 rejected, 0 batches still spooled" in result.stdout
    records = stored(server, "cli-box")
    assert len(records) == 18 and len({r["timestamp"] for r in records}) == 3
    process = [r for r in records if r["metric"] == "process"][0]
    assert process["payload"] == {"usedMiB": 1024.0, "pid": 77, "name": None} and process["gpuId"] == "GPU-00000000"


def test_a_sample_taken_while_the_server_is_down_is_delivered_by_the_next_run(app, runner, server, tmp_path):
    use_fake_gpus(app)
    spool = tmp_path / "spool.jsonl"
    down = push(runner, f"http://127.0.0.1:{free_port()}", spool, "--once")
    assert "1 samples, 6 records: 0 sent, 0 rejected, 1 batches still spooled" in down.stdout
    up = push(runner, server.url(""), spool, "--once")
    assert "1 samples, 6 records: 12 sent, 0 rejected, 0 batches still spooled" in up.stdout
    assert len({r["timestamp"] for r in stored(server, "cli-box")}) == 2
