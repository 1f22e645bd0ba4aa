"""gunicorn with four workers: the background jobs run in exactly one of them and
move to another within seconds when that one is SIGKILLed; identical batches posted at once through
many connections are stored once; every worker serves HTTP and the live WebSocket.

Processes are found through /proc (the workers are the master's children, a connection's worker owns
its server socket) and the jobs' leader through ``/health`` (``jobs.leader``).
"""
from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
import websocket
from sqlalchemy import select

from metrics_app.storage.status import JOB_RUNS

from ..server import ROOT, GunicornServer
from .crash import tail_env
from .helpers import (JsonlAppender, assert_counters_match, assert_lines_exactly_once, batch, children,
                      engine_for, jobs_leader, post, serving_pid, stored_ms, tailed_offset, wait_until)

pytestmark = pytest.mark.slow

WORKERS = 4
LEADS = "leads the background jobs"
#: One AMD GPU as the fake rocm-smi prints it: enough for the recorder's gauge records.
ROCM_CARD = {"card0": {"Card series": "MI100", "GPU use (%)": "5", "GPU memory use (%)": "3",
                       "Temperature (Sensor edge) (C)": "50.0", "Average Graphics Package Power (W)": "36.0",
                       "VRAM Total Memory (B)": "34342961152", "VRAM Total Used Memory (B)": "6750208"}}


@pytest.fixture
def engine(database_url, app):  # app: empties the tables afterwards
    engine = engine_for(database_url)
    yield engine
    engine.dispose()


def jobs_server(tmp_path: Path, database_url: str) -> GunicornServer:
    """Four workers tailing a file, recording a fake AMD GPU every second and running retention every second."""
    fixture = tmp_path / "rocm.json"
    fixture.write_text(json.dumps(ROCM_CARD))
    env = {**tail_env(tmp_path / "ws_out.jsonl", tmp_path / "jobs.lock"),
           "SAMPLERS_ENABLED": "true", "SAMPLE_INTERVAL_SEC": "1", "RECORD_INTERVAL_SEC": "1",
           "RECORD_HOSTNAME": "rec-host", "RETENTION_CLEAN_INTERVAL_SEC": "1", "ENABLE_NVIDIA": "false",
           "ROCM_SMI_INTERVAL_SEC": "2", "ROCM_SMI_PATH": str(ROOT / "tests" / "sampling" / "bin" / "rocm-smi"),
           "FAKE_ROCM_SMI_OUTPUT": str(fixture)}
    return GunicornServer(tmp_path, DATABASE_URL=database_url, GUNICORN_WORKERS=str(WORKERS), LOG_LEVEL="INFO", **env)


def recorded_times(engine) -> list[int]:
    return sorted(set(stored_ms(engine, "rec-host").get("rec-host", [])))


def assert_one_recorder(engine) -> None:
    """One recorder stores at most one instant per second (its hub's tick); two would store about
    twice as many, from two hubs' ticks. (A bound on the rate, not on each gap: a tick delayed on a
    busy machine shortens one gap.) Every instant has the same rows, one per gauge kind, once."""
    times = recorded_times(engine)
    span_sec = (times[-1] - times[0]) / 1000
    assert len(times) <= 1.25 * span_sec + 1, f"{len(times)} instants recorded in {span_sec:.1f} s"
    rows = Counter(stored_ms(engine, "rec-host")["rec-host"])
    assert len(set(rows.values())) == 1, f"instants with differing row counts: {rows}"


def job_run_ms(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(JOB_RUNS.c.last_success_ms).where(JOB_RUNS.c.name == "retention")).scalar() or 0


def test_jobs_run_once_and_move_when_the_leader_is_killed(tmp_path, database_url, engine):
    appender = JsonlAppender(tmp_path / "ws_out.jsonl").start()
    server = jobs_server(tmp_path, database_url).start()
    try:
        try:
            wait_until(lambda: len(recorded_times(engine)) >= 6, 60, "six recorded instants")
            workers = wait_until(lambda: len(children(server.process.pid)) == WORKERS and
                                 children(server.process.pid), 30, "four workers")
            leader = jobs_leader(server)
            assert leader in workers
            assert server.read_log().count(LEADS) == 1 and f"process {leader} {LEADS}" in server.read_log()
            assert_one_recorder(engine)
            retention_ran = wait_until(lambda: job_run_ms(engine), 30, "a retention run")
            wait_until(lambda: job_run_ms(engine) > retention_ran, 30, "retention to run again")

            killed_at = time.monotonic()
            os.kill(leader, signal.SIGKILL)
            successor = wait_until(lambda: successor_of(server, leader), 30, "another worker to take the lead")
            takeover = time.monotonic() - killed_at
            print(f"leader {leader} killed; {successor} took over in {takeover:.2f} s")
            assert takeover < 10 and successor != leader and successor in children(server.process.pid) + workers
            committed, recorded = tailed_offset(engine), len(recorded_times(engine))
            wait_until(lambda: tailed_offset(engine) > committed, 30, "the tail to continue under the new leader")
            wait_until(lambda: len(recorded_times(engine)) >= recorded + 3, 30, "recording to continue")
            assert server.read_log().count(LEADS) == 2
        finally:
            lines = appender.stop()
        assert_lines_exactly_once(engine, tmp_path / "ws_out.jsonl", lines)
        assert_counters_match(engine, "rec-host")
    finally:
        server.stop()  # a server left running would go on writing into the next tests' database


def successor_of(server: GunicornServer, killed: int) -> int | None:
    """The leader once it is not ``killed``. Each worker listens on a socket of its own
    (gunicorn.conf.py ``reuse_port``): a connection the kernel had queued for the killed worker is
    reset, and a client asks again, as this does."""
    try:
        leader = jobs_leader(server)
    except ConnectionError:
        return None
    return None if leader == killed else leader


@pytest.fixture(scope="module")
def web(tmp_path_factory, database_url):
    with GunicornServer(tmp_path_factory.mktemp("workers"), DATABASE_URL=database_url,
                        GUNICORN_WORKERS=str(WORKERS), SAMPLE_INTERVAL_SEC="0.5", RECORD_INTERVAL_SEC="0") as srv:
        wait_until(lambda: len(children(srv.process.pid)) == WORKERS, 30, "four workers")
        yield srv


def test_identical_batches_posted_at_once_are_stored_once(web, engine):
    connections, size = 16, 200
    for k in range(3):
        payload = batch("same", k, size)
        barrier = threading.Barrier(connections)
        results: list[tuple[int, dict]] = []

        def send() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=60)
            conn.connect()
            barrier.wait()
            results.append(post(web.port, payload, conn))

        threads = [threading.Thread(target=send) for _ in range(connections)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert [status for status, _ in results] == [201] * connections
        assert sum(body["saved"] for _, body in results) == size
        assert sum(body["duplicates"] for _, body in results) == size * (connections - 1)
    times = stored_ms(engine, "same")["same"]
    assert len(times) == len(set(times)) == 3 * size
    assert_counters_match(engine, "same")


def test_a_burst_of_keep_alive_connections_spreads_over_every_worker(web):
    """Each worker listens on a socket of its own (gunicorn.conf.py ``reuse_port``). On one shared
    socket the first worker to wake accepted a whole burst: a benchmark's 16 keep-alive connections
    all landed on one worker while the other idled."""
    connections = [http.client.HTTPConnection("127.0.0.1", web.port, timeout=10) for _ in range(200)]
    for conn in connections:  # every handshake first: the burst waits in the accept queues together
        conn.connect()
    served: Counter = Counter()
    for conn in connections:
        conn.request("GET", "/api/health")
        served[orjson.loads(conn.getresponse().read())["sampler"]["worker_pid"]] += 1
    for conn in connections:
        conn.close()
    print(f"connections per worker: {dict(served)}")
    assert sorted(served) == children(web.process.pid)
    assert min(served.values()) >= 20  # 50 each on average; 20 is five standard deviations below


def test_a_second_server_on_the_same_port_is_refused(web):
    result = subprocess.run([sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"],
                            cwd=ROOT, env={**os.environ, "PORT": str(web.port)}, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0
    assert f"cannot listen on 0.0.0.0:{web.port} (PORT={web.port}): Address already in use" in result.stderr
    assert "Booting worker" not in result.stderr


def open_many(count: int, connect) -> list:
    """Open ``count`` connections at once, so the accepts spread over the workers."""
    opened: list = []
    threads = [threading.Thread(target=lambda: opened.append(connect())) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(opened) == count
    return opened


def test_every_worker_serves_http_and_websocket(web):
    workers = children(web.process.pid)
    sockets = open_many(40, lambda: websocket.create_connection(web.url("/ws/metrics", "ws"), timeout=10))
    try:
        for ws in sockets:
            for _ in range(2):
                assert "timestamp" in orjson.loads(ws.recv())
        ws_pids = Counter(serving_pid(web.port, ws.sock.getsockname()[1], workers) for ws in sockets)
    finally:
        for ws in sockets:
            ws.close()

    def health() -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=10)
        conn.connect()
        return conn

    connections = open_many(40, health)
    http_pids: Counter = Counter()
    for conn in connections:
        conn.request("GET", "/api/health")
        http_pids[orjson.loads(conn.getresponse().read())["sampler"]["worker_pid"]] += 1
        conn.close()
    print(f"WebSocket connections per worker: {dict(ws_pids)}; HTTP: {dict(http_pids)}")
    assert set(ws_pids) <= set(workers) and len(ws_pids) >= 2
    assert set(http_pids) <= set(workers) and len(http_pids) >= 2
