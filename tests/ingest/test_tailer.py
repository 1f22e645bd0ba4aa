"""JSONL tailers: offsets survive restarts (no line read twice or skipped), partial last lines wait,
truncation and rotation restart at the top, malformed lines are counted with their line number."""
from __future__ import annotations

import logging
import threading

import orjson
import pytest
from sqlalchemy import event, func, select

from metrics_app.extensions import db
from metrics_app.ingest.tailer import FileTailer
from metrics_app.storage import write_queue
from metrics_app.storage.status import tailers_status
from metrics_app.storage.models import Record

from .records import utilization


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield write_queue(app)


def lines(records) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


def stored() -> int:
    return db.session.scalar(select(func.count()).select_from(Record))


def test_offset_survives_a_restart_without_rereading_or_skipping(ctx, tmp_path):
    path = tmp_path / "ws_out.jsonl"
    records = utilization(30)
    path.write_bytes(lines(records[:10]))
    assert FileTailer("ws", str(path), 100).poll(ctx) == 10

    with path.open("ab") as f:
        f.write(lines(records[10:30]))
    restarted = FileTailer("ws", str(path), 100)  # a new process: state comes from the database
    assert restarted.poll(ctx) == 20
    assert restarted.line_no == 30 and restarted.offset == path.stat().st_size
    assert stored() == 30
    # A duplicate would have been absorbed by the natural key, so check the tailer's own counts too.
    assert tailers_status()[0]["lines_ok"] == 30


def test_a_restarted_tailer_reads_its_offset_on_the_writer_thread_only(ctx, tmp_path):
    """The writer's engine is the writer thread's alone: a new jobs leader's tailer that read its
    offset through it, beside the writer's first connect, waited for good (see ``FileTailer._load``)."""
    path = tmp_path / "ws_out.jsonl"
    path.write_bytes(lines(utilization(3)))
    connected_on: list[int] = []
    record = lambda conn: connected_on.append(threading.get_ident())  # noqa: E731
    event.listen(ctx.engine, "engine_connect", record)
    try:
        assert FileTailer("ws", str(path), 100).poll(ctx) == 3
    finally:
        event.remove(ctx.engine, "engine_connect", record)
    assert threading.get_ident() not in connected_on


def test_partial_last_line_waits_for_its_newline(ctx, tmp_path):
    path = tmp_path / "msg_out.jsonl"
    first, second = utilization(2)
    path.write_bytes(lines([first]) + orjson.dumps(second)[:20])
    tailer = FileTailer("msg", str(path), 100)
    assert tailer.poll(ctx) == 1
    with path.open("ab") as f:
        f.write(orjson.dumps(second)[20:])
    assert tailer.poll(ctx) == 0
    with path.open("ab") as f:
        f.write(b"\n")
    assert tailer.poll(ctx) == 1
    assert tailer.malformed == 0 and stored() == 2


def tailing(ctx, tmp_path, count: int):
    """A tailer that has read ``count`` records from ws_out.jsonl."""
    path = tmp_path / "ws_out.jsonl"
    path.write_bytes(lines(utilization(count)))
    tailer = FileTailer("ws", str(path), 100)
    assert tailer.poll(ctx) == count
    return path, tailer


def test_truncation_restarts_from_the_top(ctx, tmp_path):
    path, tailer = tailing(ctx, tmp_path, 10)
    path.write_bytes(lines(utilization(3, host="after-truncate")))  # same inode, shorter
    assert tailer.poll(ctx) == 3
    assert tailer.line_no == 3 and stored() == 13


def test_rotation_finishes_the_old_file_then_reads_the_new_one(ctx, tmp_path):
    path, tailer = tailing(ctx, tmp_path, 5)
    with path.open("ab") as f:
        f.write(lines(utilization(8)[5:]))  # written just before the rotation
    path.rename(tmp_path / "ws_out.jsonl.1")
    path.write_bytes(lines(utilization(4, host="new-file")))
    assert tailer.poll(ctx) == 3 + 4
    assert stored() == 12
    restarted = FileTailer("ws", str(path), 100)
    assert restarted.poll(ctx) == 0 and restarted.line_no == 4


def test_malformed_lines_are_counted_logged_and_skipped(ctx, tmp_path, caplog):
    path = tmp_path / "ws_out.jsonl"
    good = utilization(3)
    path.write_bytes(lines(good[:1]) + b"{not json\n" + lines([dict(good[1], gpuPercent=-5)]) + b"\n"
                     + lines(good[2:]))
    tailer = FileTailer("ws", str(path), 100)
    with caplog.at_level(logging.WARNING, logger="metrics_app.ingest.tailer"):
        assert tailer.poll(ctx) == 2
    assert tailer.malformed == 2 and tailer.line_no == 5
    messages = [r.getMessage() for r in caplog.records]
    assert any("line 2 is malformed" in m for m in messages)
    assert any("line 3 is malformed" in m and "gpuPercent" in m for m in messages)
    status = tailers_status()[0]
    assert status["malformed"] == 2 and status["last_error"].startswith("line 3:")


def test_missing_file_is_waited_for(ctx, tmp_path):
    path = tmp_path / "later.jsonl"
    tailer = FileTailer("ws", str(path), 100)
    assert tailer.poll(ctx) == 0
    path.write_bytes(lines(utilization(2)))
    assert tailer.poll(ctx) == 2
