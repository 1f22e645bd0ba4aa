"""Locks that native threads share with the event loop's greenlets. Run in a fresh, monkey-patched
interpreter, as gunicorn's worker would be."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from .server import ROOT

LOG_FROM_BOTH_SIDES = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import logging, sys, time
    import gevent
    from config import TestConfig
    from metrics_app import create_app
    from metrics_app.native import NativeThread

    logging.getLogger().handlers.clear()  # as in a gunicorn worker: create_app's handler is the root's
    create_app(TestConfig)
    lock = {"handler": logging.getLogger().handlers[0].lock, "module": logging._lock}[sys.argv[1]]

    def log_from_a_native_thread_with_a_hub():
        gevent.get_hub()  # psycopg's connect or gevent's subprocess on that thread make one
        with lock:
            time.sleep(0.3)

    NativeThread(log_from_a_native_thread_with_a_hub, "holder").start()
    time.sleep(0.05)
    try:
        with gevent.Timeout(5):
            logging.getLogger("loop").warning("logged from the loop")  # both locks, as gunicorn's requests
    except gevent.Timeout:
        sys.exit("the loop's log call never woke after the native thread let go of the lock")
""")


@pytest.mark.parametrize("lock", ["handler", "module"])
def test_a_greenlet_logging_after_a_native_thread_with_a_hub_is_not_left_asleep(lock):
    result = subprocess.run([sys.executable, "-c", LOG_FROM_BOTH_SIDES, lock], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "logged from the loop" in result.stderr
