"""flask metrics import: good lines stored, bad lines reported by number and reason, re-import idempotent."""
from __future__ import annotations

import orjson

from ..ingest.records import INGEST_EXAMPLES, utilization


def write_jsonl(path, lines: list) -> str:
    path.write_bytes(b"".join((line if isinstance(line, bytes) else orjson.dumps(line)) + b"\n" for line in lines))
    return str(path)


def test_a_file_with_bad_lines_loads_the_rest_and_names_them(runner, client, tmp_path):
    good = utilization(12)
    bad_range = {**good[0], "gpuPercent": 150}
    bad_time = {**good[1], "timestamp": "yesterday"}
    other_time = {**good[2], "timestamp": "last week"}
    lines = [*good[:5], b"{not json", bad_range, *good[5:9], b"", bad_time, other_time, *good[9:], b"[1, 2"]
    path = write_jsonl(tmp_path / "ws_out.jsonl", lines)
    result = runner.invoke(args=["metrics", "import", path])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"{path}: 18 lines, 12 records loaded, 0 duplicates, 5 lines skipped" in out
    assert "line 6: Body is not valid JSON" in out
    assert "line 7: gpuPercent: Must be greater than or equal to 0 and less than or equal to 100." in out
    assert "line 13: timestamp: Not a valid ISO 8601 timestamp: 'yesterday'." in out
    assert "line 18: Body is not valid JSON" in out
    assert "       2  timestamp: Not a valid ISO 8601 timestamp: '…'." in out
    assert "       2  not valid JSON" in out
    items = client.get("/metrics?limit=100").get_json()["items"]
    assert [i["payload"]["gpuPercent"] for i in items] == list(range(12))


def test_importing_the_same_file_again_counts_duplicates(runner, client, tmp_path):
    path = write_jsonl(tmp_path / "msg_out.jsonl", list(INGEST_EXAMPLES.values()) + utilization(30))
    first = runner.invoke(args=["metrics", "import", path, "--batch", "7"])
    assert "36 records loaded, 0 duplicates, 0 lines skipped" in first.stdout
    again = runner.invoke(args=["metrics", "import", path])
    assert "0 records loaded, 36 duplicates, 0 lines skipped" in again.stdout
    assert client.get("/metrics").get_json()["count"] == 36


def test_a_line_holding_an_array_of_records_is_accepted(runner, client, tmp_path):
    path = write_jsonl(tmp_path / "batches.jsonl", [utilization(3), utilization(2, host="node-b")])
    assert "2 lines, 5 records loaded" in runner.invoke(args=["metrics", "import", path]).stdout


def test_the_list_of_skipped_lines_is_capped_but_all_are_counted(runner, tmp_path):
    path = write_jsonl(tmp_path / "junk.jsonl", [b"nope"] * 30)
    out = runner.invoke(args=["metrics", "import", path, "--show-skipped", "3"]).stdout
    assert "30 lines skipped" in out and "      30  not valid JSON" in out
    assert "line 3:" in out and "line 4:" not in out and "... and 27 more skipped lines" in out


def test_a_missing_file_is_a_usage_error(runner, tmp_path):
    result = runner.invoke(args=["metrics", "import", str(tmp_path / "absent.jsonl")])
    assert result.exit_code == 2 and "does not exist" in result.output
