"""Every producer of records feeds the fleet table: WS ingest, the JSONL tailer and the import command
(POST /metrics is covered in test_fleet_http)."""
from __future__ import annotations

import pytest

import orjson

from metrics_app.extensions import db
from metrics_app.ingest.tailer import FileTailer
from metrics_app.storage import write_queue

from .records import record


pytestmark = pytest.mark.usefixtures("clean_db")

def fleet_hosts(client) -> list[str]:
    return [h["hostname"] for h in client.get("/fleet").get_json()["hosts"]]


def test_tailer_commits_reach_the_fleet(app, client, tmp_path):
    path = tmp_path / "ws_out.jsonl"
    path.write_bytes(orjson.dumps(record(host="tailed")) + b"\n")
    with app.app_context():
        assert FileTailer("ws", str(path), 100).poll(write_queue(app)) == 1
    assert fleet_hosts(client) == ["tailed"]


def test_import_command_reaches_the_fleet(app, client, runner, tmp_path):
    path = tmp_path / "crawl.jsonl"
    path.write_bytes(b"".join(orjson.dumps(record(host=f"imported-{i}")) + b"\n" for i in range(3)))
    result = runner.invoke(args=["metrics", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert fleet_hosts(client) == ["imported-0", "imported-1", "imported-2"]


def test_ws_ingest_reaches_the_fleet(app, client):
    from metrics_app.ingest.batches import ingest_payload

    with app.test_request_context():
        ingest_payload([record(host="ws-ingested")])  # what WS /ws/ingest calls per message
    assert fleet_hosts(client) == ["ws-ingested"]
