"""Commit listeners run on the writer's native OS thread; under gevent (gunicorn's worker) the batch
must reach greenlets waiting on the table through the event loop, not by touching gevent objects
from a foreign thread. Run in a fresh, monkey-patched interpreter as gunicorn's worker would be."""
from __future__ import annotations

import subprocess
import sys
import textwrap

from ..server import ROOT

SCRIPT = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import time
    import gevent
    from config import TestConfig
    from metrics_app import create_app
    from metrics_app.storage.writer import Row

    app = create_app(TestConfig)
    fleet = app.extensions["fleet"]
    start_native = monkey.get_original("_thread", "start_new_thread")
    woke = []

    def reader():
        frames = fleet.table.wait_after(0, 5.0)
        woke.append((time.monotonic(), [f.seq for f in frames]))

    def writer_thread():  # a real OS thread, as the write queue's writer
        time.sleep(0.2)
        sent.append(time.monotonic())
        for listener in app.extensions["commit_listeners"]:
            listener([Row("h", 0, None, None, 2, 1000, -1, 5.0, 1.0, None)])

    sent = []
    greenlet = gevent.spawn(reader)
    start_native(writer_thread, ())
    greenlet.join(6)
    assert woke and woke[0][1] == [1], woke
    print("lag_ms", round((woke[0][0] - sent[0]) * 1000, 1))
""")


def test_listener_on_a_native_thread_wakes_greenlets_under_gevent():
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    lag_ms = float(result.stdout.split("lag_ms")[1])
    assert lag_ms < 500
