"""Under gevent the writer's native thread waits for PostgreSQL in C (storage/pg_wait.py), while a
query on the event loop still yields to other greenlets, and a greenlet waiting for a gevent lock
the writer holds wakes when the writer lets go. Run in a fresh, monkey-patched interpreter as
gunicorn's worker would be, on the session's PostgreSQL schema."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from ..dbsetup import postgres_base_url
from ..server import ROOT

pytestmark = pytest.mark.skipif(postgres_base_url() is None,
                                reason="psycopg's wait functions need PostgreSQL (set TEST_DATABASE_URL)")

SCRIPT = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import threading
    import time
    import gevent
    from psycopg import waiting
    from sqlalchemy import text
    from config import TestConfig
    from metrics_app import create_app
    from metrics_app.extensions import db
    from metrics_app.storage import write_queue

    get_ident = monkey.get_original("_thread", "get_ident")
    waits = []  # (thread, wait function) of every wait for a query's result

    def recording(function, name):
        def wait(*args, **kwargs):
            waits.append((get_ident(), name))
            return function(*args, **kwargs)
        return wait

    waiting.wait_c, waiting.wait = recording(waiting.wait_c, "wait_c"), recording(waiting.wait, "cooperative")
    app = create_app(TestConfig)
    queue = write_queue(app)
    writer = queue.run(lambda conn: get_ident())
    with app.app_context():
        engine = db.engine
    ticks = []

    def ticker():
        while True:
            ticks.append(time.monotonic())
            gevent.sleep(0.01)

    def on_loop():
        with engine.connect() as conn:
            started = time.monotonic()
            conn.execute(text("SELECT pg_sleep(0.4)"))
            return started, time.monotonic()

    tick = gevent.spawn(ticker)
    in_writer = gevent.spawn(queue.run, lambda conn: conn.execute(text("SELECT pg_sleep(0.4)")))
    started, ended = gevent.spawn(on_loop).get(timeout=10)
    in_writer.get(timeout=10)
    tick.kill()
    lock = threading.Lock()  # patched: a gevent lock, as SQLAlchemy's pool takes them

    def holding_the_lock(conn):
        with lock:
            conn.execute(text("SELECT pg_sleep(0.3)"))
        return time.monotonic()

    def after_the_writer():
        gevent.sleep(0.1)
        with lock:
            return time.monotonic()

    released = gevent.spawn(queue.run, holding_the_lock)
    acquired = gevent.spawn(after_the_writer)
    print("lock_wait_ms", round((acquired.get(timeout=5) - released.get(timeout=5)) * 1000))
    loop = get_ident()
    print("ticks", sum(started < t < ended for t in ticks))
    print("writer", sorted({name for thread, name in waits if thread == writer}))
    print("loop", sorted({name for thread, name in waits if thread == loop}))
""")


def test_the_writer_waits_in_c_while_the_event_loop_keeps_running():
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert lines["writer"] == "['wait_c']"
    assert lines["loop"] == "['cooperative']"
    # 0.4 s at one tick per 10 ms: ~40 when neither query stops the loop, none while one blocks it.
    assert int(lines["ticks"]) >= 10, lines
    assert int(lines["lock_wait_ms"]) < 1000, lines
