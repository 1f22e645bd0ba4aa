"""The writer's contracts: an answer only after the commit that holds the rows, exact counts per
request inside one group, a failed commit failing the whole group, and a drained queue at shutdown."""
from __future__ import annotations

import importlib
import threading
import time
from typing import Any, Callable

import pytest
from sqlalchemy import event, func, select

from metrics_app.extensions import db
from metrics_app.ingest.validation import load_batch
from metrics_app.storage import WriteUnavailable, write_queue
from metrics_app.storage.models import Record
from metrics_app.storage.state import state_of

from ..ingest.records import utilization


def rows(first: int, last: int) -> list:
    """Validated rows for utilization records number ``first`` to ``last - 1`` (one second apart)."""
    return load_batch(utilization(last)[first:], 10_000)


def stored(app) -> int:
    with app.app_context():
        with db.engine.connect() as conn:
            return conn.scalar(select(func.count()).select_from(Record))


class Call:
    """Runs ``fn`` on a thread of its own, as a request greenlet would, and keeps its outcome."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            self.result = fn()
        except BaseException as exc:  # noqa: BLE001 - kept for the test to assert on
            self.error = exc

    def done(self, timeout: float = 10.0) -> "Call":
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the call did not return"
        return self


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def queue(app):
    return write_queue(app)


@pytest.fixture
def hold_writer(queue):
    """Keeps the writer thread busy until released, so the next submits queue up into one group."""
    gate = threading.Event()
    holder = Call(lambda: queue.run(lambda conn: gate.wait(10)))
    wait_until(lambda: queue.stats.groups == 0 and queue._thread is not None)
    time.sleep(0.05)
    yield gate
    gate.set()
    holder.done()


def queue_in_order(queue, batches: list[list]) -> list[Call]:
    """Submit each batch from its own thread, each one only once the previous is queued."""
    calls = []
    for batch in batches:
        before = queue.stats.enqueued_rows
        calls.append(Call(lambda batch=batch: queue.submit(batch)))
        wait_until(lambda before=before, n=len(batch): queue.stats.enqueued_rows == before + n)
    return calls


def test_a_request_is_answered_only_after_the_commit_holding_its_rows(app, queue):
    release, writer_at_commit = threading.Event(), threading.Event()
    main = threading.get_ident()

    def slow_commit(conn) -> None:
        if threading.get_ident() != main:
            writer_at_commit.set()
            release.wait(10)

    event.listen(queue.engine, "commit", slow_commit)
    try:
        call = Call(lambda: queue.submit(rows(0, 10)))
        assert writer_at_commit.wait(10)
        time.sleep(0.2)
        assert call.thread.is_alive(), "answered before its commit"
        assert stored(app) == 0
        release.set()
        assert call.done().result.as_dict() == {"saved": 10, "duplicates": 0, "received": 10}
        assert stored(app) == 10
    finally:
        release.set()
        event.remove(queue.engine, "commit", slow_commit)


def test_requests_in_one_group_each_get_their_own_exact_counts(app, queue, hold_writer):
    calls = queue_in_order(queue, [rows(0, 10), rows(5, 15), rows(0, 15), rows(14, 20)])
    hold_writer.set()
    counts = [call.done().result.as_dict() for call in calls]
    assert counts == [{"saved": 10, "duplicates": 0, "received": 10},
                      {"saved": 5, "duplicates": 5, "received": 10},
                      {"saved": 0, "duplicates": 15, "received": 15},
                      {"saved": 5, "duplicates": 1, "received": 6}]
    assert queue.stats.last_group_requests == 4, "the four requests were not committed as one group"
    assert stored(app) == 20


def test_requests_that_come_while_the_writer_waits_for_the_lock_join_its_group(app, queue):
    """Another worker's writer holds SQLite's lock: what arrives meanwhile is committed with the
    group that waits for it, not a turn of the lock later."""
    state = state_of(queue.engine)
    if state.writer_lock is None:
        pytest.skip("PostgreSQL takes concurrent writers: there is no write lock to wait for")
    groups_before = queue.stats.groups
    with state.exclusive():  # held here, as the sibling worker's writer would hold it
        first = Call(lambda: queue.submit(rows(0, 10)))
        wait_until(lambda: queue.stats.enqueued_rows == 10)
        time.sleep(0.2)  # the writer has taken it and waits for the lock
        later = queue_in_order(queue, [rows(10, 20), rows(5, 25)])
    counts = [call.done().result.as_dict() for call in (first, *later)]
    assert counts == [{"saved": 10, "duplicates": 0, "received": 10},
                      {"saved": 10, "duplicates": 0, "received": 10},
                      {"saved": 5, "duplicates": 15, "received": 20}]
    assert queue.stats.groups - groups_before == 1, "the later requests waited for another turn of the lock"
    assert stored(app) == 25


def test_a_failed_commit_fails_every_request_of_the_group_and_stores_nothing(app, queue, hold_writer):
    main, writer_commits = threading.get_ident(), []

    def disk_full(conn) -> None:
        """The holder's own group commits first and fine; the group after it hits a full disk."""
        if threading.get_ident() != main:
            writer_commits.append(conn)
            if len(writer_commits) == 2:
                raise OSError(28, "No space left on device")

    calls = queue_in_order(queue, [rows(0, 10), rows(10, 20)])
    event.listen(queue.engine, "commit", disk_full)
    try:
        hold_writer.set()
        errors = [call.done().error for call in calls]
    finally:
        event.remove(queue.engine, "commit", disk_full)
    assert all(isinstance(e, WriteUnavailable) and e.error == "database_unavailable" for e in errors), errors
    assert "No space left on device" in str(errors[0])
    assert stored(app) == 0
    assert queue.status()["failed_groups"] == 1 and "No space left" in queue.status()["last_error"]
    # The writer lives on: the retry is stored in full.
    assert queue.submit(rows(0, 20)).saved == 20


def test_a_failed_commit_is_a_503_in_the_one_error_shape(app, client, queue):
    main = threading.get_ident()

    def database_gone(conn) -> None:
        if threading.get_ident() != main:
            raise OSError("server closed the connection unexpectedly")

    event.listen(queue.engine, "commit", database_gone)
    try:
        response = client.post("/metrics", json=utilization(3))
    finally:
        event.remove(queue.engine, "commit", database_gone)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    body = response.get_json()
    assert set(body) == {"error", "message", "details"} and body["error"] == "database_unavailable"
    assert stored(app) == 0


def test_close_commits_everything_already_queued_then_refuses_new_writes(app, queue, hold_writer):
    calls = queue_in_order(queue, [rows(0, 10), rows(10, 20), rows(20, 30)])
    closing = Call(lambda: queue.close(timeout=10))
    wait_until(lambda: queue._closed)
    hold_writer.set()
    assert closing.done().result is True
    assert [call.done().result.saved for call in calls] == [10, 10, 10]
    assert stored(app) == 30
    with pytest.raises(WriteUnavailable) as refused:
        queue.submit(rows(30, 31))
    assert refused.value.error == "shutting_down"


def test_commit_listeners_see_each_committed_group_once(app, queue):
    seen: list[int] = []
    app.extensions["commit_listeners"].append(lambda committed: seen.append(len(committed)))
    app.extensions["commit_listeners"].append(lambda committed: 1 / 0)  # a broken listener harms no write
    assert queue.submit(rows(0, 7)).saved == 7
    assert queue.submit(rows(0, 7)).saved == 0
    assert seen == [7, 7]
    assert queue.stats.listeners_failed == 2


def test_a_refused_combined_write_is_retried_one_request_at_a_time(app, queue, hold_writer, monkeypatch):
    write_queue_module = importlib.import_module("metrics_app.storage.write_queue")  # the module, not the function

    def refuse(conn, prepared):
        raise ValueError("a value the database refuses")
    monkeypatch.setattr(write_queue_module, "store_prepared", refuse)
    calls = queue_in_order(queue, [rows(0, 10), rows(5, 15)])
    hold_writer.set()
    assert [call.done().result.as_dict() for call in calls] == [
        {"saved": 10, "duplicates": 0, "received": 10}, {"saved": 5, "duplicates": 5, "received": 10}]
    assert stored(app) == 15


def test_a_request_the_database_refuses_fails_alone_and_is_counted_as_a_request(app, queue, hold_writer,
                                                                                  monkeypatch):
    write_queue_module = importlib.import_module("metrics_app.storage.write_queue")
    real_store_rows = write_queue_module.store_rows
    refused = rows(100, 110)

    def refuse(conn, prepared):
        raise ValueError("a value the database refuses")

    def store_rows(conn, batch):
        if batch == refused:
            raise ValueError("a value the database refuses")
        return real_store_rows(conn, batch)
    monkeypatch.setattr(write_queue_module, "store_prepared", refuse)
    monkeypatch.setattr(write_queue_module, "store_rows", store_rows)
    calls = queue_in_order(queue, [rows(0, 10), refused, rows(20, 30)])
    hold_writer.set()
    outcomes = [call.done() for call in calls]
    assert [o.result.as_dict() if o.error is None else o.error.error for o in outcomes] == [
        {"saved": 10, "duplicates": 0, "received": 10}, "write_failed", {"saved": 10, "duplicates": 0, "received": 10}]
    assert stored(app) == 20
    assert queue.status()["failed_requests"] == 1 and queue.status()["failed_groups"] == 0


def test_what_a_failing_request_wrote_before_it_failed_is_undone_alone(app, queue, hold_writer, monkeypatch):
    """Its savepoint rolls back the rows the request had already stored; the group's others commit."""
    write_queue_module = importlib.import_module("metrics_app.storage.write_queue")
    real_store_rows, real_store_prepared = write_queue_module.store_rows, write_queue_module.store_prepared
    refused = rows(100, 110)

    def store_prepared(conn, prepared):
        real_store_prepared(conn, prepared)
        raise ValueError("a value the database refuses, found after storing")

    def store_rows(conn, batch):
        result = real_store_rows(conn, batch)
        if batch == refused:
            raise ValueError("a value the database refuses, found after storing")
        return result
    monkeypatch.setattr(write_queue_module, "store_prepared", store_prepared)
    monkeypatch.setattr(write_queue_module, "store_rows", store_rows)
    calls = queue_in_order(queue, [rows(0, 10), refused, rows(20, 30)])
    hold_writer.set()
    outcomes = [call.done() for call in calls]
    assert [o.result.saved if o.error is None else o.error.error for o in outcomes] == [10, "write_failed", 10]
    assert stored(app) == 20


def test_rows_that_fail_to_prepare_before_the_lock_are_stored_in_it_unprepared(app, queue, hold_writer, monkeypatch):
    write_queue_module = importlib.import_module("metrics_app.storage.write_queue")

    def prepare(state, batches):
        raise ValueError("a bug in preparing")
    monkeypatch.setattr(write_queue_module, "prepare", prepare)
    calls = queue_in_order(queue, [rows(0, 10), rows(5, 15), rows(14, 20)])
    hold_writer.set()
    assert [call.done().result.saved for call in calls] == [10, 5, 5]
    assert queue.status()["failed_groups"] == 0 and stored(app) == 20
