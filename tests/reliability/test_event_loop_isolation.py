"""What blocks in C stays off the event loop, against the real gunicorn server: a commit held up by
the database and a slow NVML call never hold up the live stream or HTTP; a graceful stop (SIGTERM)
under ingest keeps every acknowledged batch."""
from __future__ import annotations

import fcntl
import os
import random
import signal
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
import orjson
import websocket
from sqlalchemy import text

from ..server import GunicornServer
from .crash import CrashFigures, ingest_crash_round
from .helpers import batch, engine_for, post

pytestmark = pytest.mark.slow

INTERVAL_SEC = 0.2
SLOW_NVML = Path(__file__).resolve().parent / "slow_nvml"


@contextmanager
def database_locked(server: GunicornServer) -> Iterator[None]:
    """Another process holds the database's write lock, as a long retention chunk or a backup would:
    on SQLite the service's writer ``flock`` beside the file, on PostgreSQL the records table."""
    url = server.env["DATABASE_URL"]
    if url.startswith("sqlite:///"):
        fd = os.open(url[len("sqlite:///"):] + ".writelock", os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        return
    engine = engine_for(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("LOCK TABLE records IN EXCLUSIVE MODE"))
            yield
    finally:
        engine.dispose()


def test_live_frames_keep_their_rhythm_while_a_commit_waits_on_the_database(tmp_path, app):
    with GunicornServer(tmp_path, SAMPLE_INTERVAL_SEC=str(INTERVAL_SEC), RECORD_INTERVAL_SEC="0") as server:
        ws = websocket.create_connection(server.url("/ws/metrics", "ws"), timeout=5)
        ws.recv()
        answers: list[tuple[int, dict]] = []
        with database_locked(server):
            poster = threading.Thread(target=lambda: answers.append(post(server.port, batch("held", 0, 50))))
            poster.start()
            arrivals = []
            until = time.monotonic() + 2.0
            while time.monotonic() < until:
                ws.recv()
                arrivals.append(time.monotonic())
            assert poster.is_alive() and not answers, "the POST was answered while its commit could not happen"
        poster.join(30)
        ws.close()
    assert answers and answers[0][0] == 201 and answers[0][1]["saved"] == 50, answers
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    assert len(arrivals) >= 2.0 / INTERVAL_SEC - 2
    assert max(gaps) < INTERVAL_SEC + 0.1, f"a frame waited {max(gaps):.3f} s behind the blocked commit"


def test_a_slow_nvml_call_delays_neither_frames_nor_http(tmp_path):
    slow = 0.6  # every utilization read blocks its thread this long; the tick is 0.2 s
    with GunicornServer(tmp_path, PYTHONPATH=str(SLOW_NVML), SLOW_NVML_SEC=str(slow), ENABLE_NVIDIA="true",
                        SAMPLE_INTERVAL_SEC=str(INTERVAL_SEC), RECORD_INTERVAL_SEC="0") as server:
        ws = websocket.create_connection(server.url("/ws/metrics", "ws"), timeout=5)
        first = orjson.loads(ws.recv())
        assert first["gpus"] and first["gpus"][0]["vendor"] == "NVIDIA", first["gpus"]
        arrivals, http_ms = [], []
        until = time.monotonic() + 3.0
        while time.monotonic() < until:
            ws.recv()
            arrivals.append(time.monotonic())
            began = time.monotonic()
            with urllib.request.urlopen(server.url("/api/metrics"), timeout=5) as response:
                response.read()
            http_ms.append(1000 * (time.monotonic() - began))
        ws.close()
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    assert max(gaps) < INTERVAL_SEC + 0.1, f"a frame waited {max(gaps):.3f} s behind NVML"
    assert max(http_ms) < 100, f"GET /api/metrics took {max(http_ms):.0f} ms behind NVML"


def test_sigterm_under_ingest_keeps_every_acknowledged_batch(tmp_path, database_url, app):
    engine = engine_for(database_url)
    figures = CrashFigures()
    server = GunicornServer(tmp_path, DATABASE_URL=database_url, SAMPLERS_ENABLED="false", RECORD_INTERVAL_SEC="0")
    try:
        ingest_crash_round(server, engine, random.Random(), figures, prefix="term", sig=signal.SIGTERM)
    finally:
        engine.dispose()
    print(figures)
    assert figures.acked >= 2
