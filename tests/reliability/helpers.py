"""Shared by the crash and several-worker tests (and bench/crash_soak.py): load generators that
remember exactly what was acknowledged, direct SQL checks of what was stored, and ways to find
gunicorn's workers and the jobs' leader through /proc (no lsof).

Every record the load sends is unique: batch ``k`` of host ``h`` holds the records at seconds
``k * size .. k * size + size - 1`` after a base time near now (retention would delete old ones).
"""
from __future__ import annotations

import http.client
import json
import os
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import orjson
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import Engine

from metrics_app.storage.models import GpuSeries, Record, Rollup

from ..server import GunicornServer

SERIES, RECORDS, ROLLUPS = GpuSeries.__table__, Record.__table__, Rollup.__table__
#: A minute boundary an hour ago: inside any retention window, and the same for every process.
BASE_MS = (int(time.time()) // 60 - 60) * 60_000


def wait_until(condition: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    """Poll with a deadline: CI machines are busy, so a generous timeout and no fixed sleeps."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def record(host: str, second: int) -> dict[str, Any]:
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(BASE_MS // 1000 + second)) + "Z"
    return {"timestamp": ts, "gpuIndex": 0, "metric": "utilization", "gpuPercent": second % 101,
            "memoryPercent": 5, "hostname": host}


def batch(host: str, k: int, size: int) -> list[dict[str, Any]]:
    return [record(host, k * size + i) for i in range(size)]


def post(port: int, payload: Any, conn: http.client.HTTPConnection | None = None,
         timeout: float = 30) -> tuple[int, dict[str, Any]]:
    """One ``POST /metrics``; raises OSError/HTTPException when the server dies under it."""
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request("POST", "/metrics", orjson.dumps(payload), {"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, orjson.loads(response.read() or b"{}")


@dataclass
class IngestLoad:
    """Client threads posting unique batches until stopped or the server dies.

    ``acked`` holds (host, k) of batches answered 2xx; ``unknown`` those sent without a 2xx (in flight
    at the kill, or refused): each of those must be all-or-nothing in the database.
    """

    port: int
    clients: int = 4
    size: int = 200
    prefix: str = "crash"
    first_batch: int = 0
    acked: set[tuple[str, int]] = field(default_factory=set)
    unknown: set[tuple[str, int]] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def host(self, client: int) -> str:
        return f"{self.prefix}-{client}"

    def _client(self, client: int) -> None:
        host, k, conn = self.host(client), self.first_batch, None
        while not self._stop.is_set():
            try:
                conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                status, _ = post(self.port, batch(host, k, self.size), conn)
            except (OSError, http.client.HTTPException):
                with self._lock:
                    self.unknown.add((host, k))
                return  # the server is gone: this client's stream ends
            with self._lock:
                (self.acked if 200 <= status < 300 else self.unknown).add((host, k))
            k += 1

    def start(self) -> "IngestLoad":
        self._threads = [threading.Thread(target=self._client, args=(c,), daemon=True) for c in range(self.clients)]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def wait_acked(self, n: int, timeout: float = 30) -> None:
        wait_until(lambda: len(self.acked) >= n, timeout, f"{n} acknowledged batches")


def engine_for(database_url: str) -> Engine:
    return create_engine(database_url)


def stored_ms(engine: Engine, prefix: str) -> dict[str, list[int]]:
    """Per hostname starting with ``prefix``: the record times stored, one per row (duplicates kept)."""
    query = (select(SERIES.c.hostname, RECORDS.c.ts_ms).join(RECORDS, RECORDS.c.series_id == SERIES.c.id)
             .where(SERIES.c.hostname.startswith(prefix)))
    times: dict[str, list[int]] = {}
    with engine.connect() as conn:
        for host, ts_ms in conn.execute(query):
            times.setdefault(host, []).append(ts_ms)
    return times


def stored_seconds(engine: Engine, prefix: str) -> dict[str, list[int]]:
    """Like ``stored_ms``, in seconds after BASE_MS (the load's record numbers)."""
    return {host: [(ms - BASE_MS) // 1000 for ms in times] for host, times in stored_ms(engine, prefix).items()}


def batch_presence(engine: Engine, prefix: str, size: int) -> Counter:
    """(host, k) -> how many of batch k's records are stored; raises on any record stored twice."""
    present: Counter = Counter()
    for host, seconds in stored_seconds(engine, prefix).items():
        doubled = [s for s, n in Counter(seconds).items() if n > 1]
        assert not doubled, f"{host}: records stored more than once at seconds {doubled[:10]}"
        for second in seconds:
            present[(host, second // size)] += 1
    return present


def assert_counters_match(engine: Engine, prefix: str) -> None:
    """The per-GPU summary and the minute rollups count each stored record once (a resent batch must
    not be counted again there either)."""
    with engine.connect() as conn:
        actual = dict(conn.execute(
            select(RECORDS.c.series_id, func.count()).join(SERIES, RECORDS.c.series_id == SERIES.c.id)
            .where(SERIES.c.hostname.startswith(prefix)).group_by(RECORDS.c.series_id)).all())
        summary = dict(conn.execute(select(SERIES.c.id, SERIES.c.record_count)
                                    .where(SERIES.c.hostname.startswith(prefix))).all())
        rolled = dict(conn.execute(select(ROLLUPS.c.series_id, func.sum(ROLLUPS.c.n))
                                   .where(ROLLUPS.c.series_id.in_(list(summary))).group_by(ROLLUPS.c.series_id)).all())
    assert {k: v for k, v in summary.items() if v} == actual, "gpu_series.record_count differs from the records"
    assert {k: int(v) for k, v in rolled.items()} == actual, "rollups_1m counts differ from the records"


class JsonlAppender:
    """A thread appending one unique record per line, each line written in two halves (the tailer
    must wait for the newline), until stopped. ``written`` lines are complete on disk."""

    def __init__(self, path: Path, host: str = "tail", lines_per_burst: int = 20, start: int = 0) -> None:
        self.path, self.host, self.lines_per_burst = path, host, lines_per_burst
        self.written = start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with open(self.path, "ab", buffering=0) as out:
            while not self._stop.is_set():
                for _ in range(self.lines_per_burst):
                    line = orjson.dumps(record(self.host, self.written)) + b"\n"
                    out.write(line[:len(line) // 2])
                    out.write(line[len(line) // 2:])
                    self.written += 1
                self._stop.wait(0.01)

    def start(self) -> "JsonlAppender":
        self._thread.start()
        return self

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(10)
        return self.written


def tailed_offset(engine: Engine, name: str = "ws") -> int:
    from metrics_app.storage.status import TAILERS

    with engine.connect() as conn:
        return conn.execute(select(TAILERS.c.offset).where(TAILERS.c.name == name)).scalar() or 0


def assert_lines_exactly_once(engine: Engine, path: Path, lines: int, host: str = "tail") -> None:
    """Wait until the tailer's committed offset reaches the end of the file, then every line
    0..lines-1 must be stored exactly once."""
    size = path.stat().st_size
    wait_until(lambda: tailed_offset(engine) >= size, 60, f"the tailer to reach byte {size}")
    seconds = stored_seconds(engine, host).get(host, [])
    doubled = sorted(s for s, n in Counter(seconds).items() if n > 1)
    missing = sorted(set(range(lines)) - set(seconds))
    assert not doubled and not missing, f"lines doubled {doubled[:10]}, lost {missing[:10]} of {lines}"
    assert len(seconds) == lines
    assert_counters_match(engine, host)


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (gunicorn's workers, for its master)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return sorted(found)


def jobs_leader(server: GunicornServer) -> int | None:
    """The pid of the jobs' leader as ``/health`` names it (``jobs.leader`` is ``hostname:pid``): the
    ``flock`` holder on SQLite, the advisory lock's holder on PostgreSQL."""
    with urllib.request.urlopen(server.url("/health"), timeout=5) as response:
        leader = json.load(response)["jobs"]["leader"]
    return None if leader is None else int(leader.rsplit(":", 1)[1])


def serving_pid(server_port: int, client_port: int, pids: Iterable[int]) -> int | None:
    """Which of ``pids`` owns the server side of the TCP connection from ``client_port``."""
    want = (f"{server_port:04X}", f"{client_port:04X}")
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if (fields[1].rsplit(":", 1)[1], fields[2].rsplit(":", 1)[1]) == want:
                inode = fields[9]
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in pids:
        try:
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") == target for fd in os.listdir(f"/proc/{pid}/fd")):
                return pid
        except OSError:
            continue
    return None
