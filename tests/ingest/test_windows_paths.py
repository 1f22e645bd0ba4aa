"""Windows paths the C++ crawler writes without JSON escaping: repaired and stored as written on every
way in (POST, WS, JSONL tailers, ``flask metrics import``), counted in /health; other invalid JSON
stays a 400 and stores nothing."""
from __future__ import annotations

import orjson
import pytest
import websocket

from metrics_app.extensions import db
from metrics_app.ingest.json_repair import double_lone_backslashes
from metrics_app.ingest.tailer import FileTailer
from metrics_app.storage import write_queue
from tests.server import GunicornServer

from .records import CRAWLER_EXAMPLES
from .test_bad_input import assert_error_shape

#: As the crawler writes it: the backslashes of the path are not escaped, so this is not JSON.
RAW_PROCESS = (b'{"timestamp":"2025-11-12T18:30:05.123Z","hostname":"DESKTOP-01",'
               b'"gpuId":"GPU-5f1c2a3b-9d4e-4c1a-8b7f-0123456789ab","gpuName":"NVIDIA GeForce RTX 4090",'
               b'"metricType":"process","pid":4242,"processName":"C:\\Program Files\\app.exe",'
               b'"processUsedMemoryMiB":1536}')
PATH = "C:\\Program Files\\app.exe"


def process_names(client) -> list[str]:
    return [i["payload"]["name"] for i in client.get("/metrics?metric=process").get_json()["items"]]


def repaired(client) -> int:
    return client.get("/health").get_json()["repairedJsonBodies"]


def test_the_crawlers_body_is_not_json_as_it_stands():
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(RAW_PROCESS)


def test_a_windows_path_is_stored_as_written_and_counted(client):
    assert repaired(client) == 0
    response = client.post("/metrics", data=RAW_PROCESS, content_type="application/json")
    assert response.status_code == 201, response.get_data(as_text=True)
    assert process_names(client) == [PATH]
    assert repaired(client) == 1
    assert client.post("/metrics", data=b"[" + RAW_PROCESS + b"]").get_json()["duplicates"] == 1
    assert repaired(client) == 2


def test_valid_bodies_are_not_counted_and_valid_escapes_keep_their_meaning(client):
    escaped = orjson.dumps(dict(CRAWLER_EXAMPLES["process"], processName=PATH))
    assert client.post("/metrics", data=escaped).status_code == 201
    assert repaired(client) == 0
    # Only backslashes that start no escape are doubled: \" \\ \n \u00e9 mean what JSON says.
    mixed = RAW_PROCESS.replace(b"app.exe", b'app.exe \\"q\\" \\\\ \\u00e9\\n').replace(b"4242", b"4243")
    assert client.post("/metrics", data=mixed).status_code == 201
    assert sorted(process_names(client)) == sorted([PATH, PATH + ' "q" \\ é\n'])


@pytest.mark.parametrize("body", [
    RAW_PROCESS[:-1],                                    # and truncated
    RAW_PROCESS.replace(b'"pid":4242,', b'"pid":4242,,'),  # and a stray comma
    b'{"processName": C:\\Program Files}',               # a path outside any string
    b"\\",
    b'"C:\\x"' + b"\xff",                               # and invalid UTF-8
])
def test_other_invalid_json_stays_a_400(client, body):
    assert_error_shape(client.post("/metrics", data=body), 400, "invalid_json")
    assert repaired(client) == 0
    assert client.get("/gpus").get_json()["count"] == 0


def test_repair_leaves_text_without_a_lone_backslash_alone():
    assert double_lone_backslashes(b'{"a": "\\\\ \\n \\u0041"}') is None
    assert double_lone_backslashes('{"a": "C:\\x"}') == b'{"a": "C:\\\\x"}'
    assert double_lone_backslashes('"\ud800\\x"') is None
    assert double_lone_backslashes(b'"\\u12"') == b'"\\\\u12"'  # not four hex digits: no escape


def test_the_jsonl_tailer_repairs_windows_paths(app, client, tmp_path):
    path = tmp_path / "msg_out.jsonl"
    path.write_bytes(RAW_PROCESS + b"\n" + b'{"bad": C:\\x}\n')
    with app.app_context():
        tailer = FileTailer("msg", str(path), 100)
        assert tailer.poll(write_queue(app)) == 1
        assert (tailer.lines_ok, tailer.malformed) == (1, 1)
    assert process_names(client) == [PATH]
    assert repaired(client) == 1


def test_metrics_import_repairs_windows_paths(runner, client, tmp_path):
    path = tmp_path / "ws_out.jsonl"
    path.write_bytes(RAW_PROCESS + b"\n" + orjson.dumps(CRAWLER_EXAMPLES["gpu"]) + b"\n")
    result = runner.invoke(args=["metrics", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "2 lines, 6 records loaded" in result.stdout
    assert process_names(client) == [PATH]


@pytest.fixture
def server(tmp_path, database_url):
    with GunicornServer(tmp_path, DATABASE_URL=database_url, SAMPLERS_ENABLED="false") as srv:
        yield srv


def test_ws_ingest_takes_the_crawlers_records_and_windows_paths(server, app, client):  # app: empties tables after
    ws = websocket.create_connection(server.url("/ws/ingest", scheme="ws"), timeout=10)
    try:
        ws.send(RAW_PROCESS.decode())
        assert orjson.loads(ws.recv()) == {"type": "ack", "saved": 1, "duplicates": 0, "received": 1}
        ws.send(orjson.dumps([CRAWLER_EXAMPLES["gpu"], CRAWLER_EXAMPLES["self_test"]]).decode())
        assert orjson.loads(ws.recv())["saved"] == 6
        ws.send(orjson.dumps(dict(CRAWLER_EXAMPLES["gpu"], powerMilliwatts=-1)).decode())
        error = orjson.loads(ws.recv())
        assert (error["error"], error["details"][0]["field"]) == ("invalid_records", "powerMilliwatts")
        ws.send(RAW_PROCESS[:-1].decode())
        assert orjson.loads(ws.recv())["error"] == "invalid_json"
    finally:
        ws.close()
    assert process_names(client) == [PATH]
