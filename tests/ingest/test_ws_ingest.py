"""WS /ws/ingest through the real gunicorn: each message is acked or answered with an error frame,
and a bad message leaves the socket open."""
from __future__ import annotations

import orjson
import pytest
import websocket

from tests.server import GunicornServer

from .records import INGEST_EXAMPLES, utilization

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path, database_url):
    with GunicornServer(tmp_path, DATABASE_URL=database_url, SAMPLERS_ENABLED="false") as server:
        yield server


def test_messages_are_acked_and_errors_keep_the_socket_open(server, app):  # app: empties the tables after
    ws = websocket.create_connection(server.url("/ws/ingest", scheme="ws"), timeout=10)
    try:
        ws.send(orjson.dumps(INGEST_EXAMPLES["memory"]).decode())
        assert orjson.loads(ws.recv()) == {"type": "ack", "saved": 1, "duplicates": 0, "received": 1}

        ws.send("{not json")
        error = orjson.loads(ws.recv())
        assert error["type"] == "error" and error["error"] == "invalid_json"

        ws.send(orjson.dumps(dict(INGEST_EXAMPLES["power"], watts=-1)).decode())
        error = orjson.loads(ws.recv())
        assert error["error"] == "invalid_records" and error["details"][0]["field"] == "watts"

        ws.send(orjson.dumps(utilization(100) + [INGEST_EXAMPLES["memory"]]).decode())
        assert orjson.loads(ws.recv()) == {"type": "ack", "saved": 100, "duplicates": 1, "received": 101}
    finally:
        ws.close()
