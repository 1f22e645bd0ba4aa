"""One SIGKILL round each for HTTP ingest and for the JSONL tailer, shared by the CI tests
(tests/reliability/test_crash_durability.py) and the soak (bench/crash_soak.py).

A round kills the whole gunicorn process group at a random moment under load, restarts it on the same
database and checks the promise the service makes: a batch answered 2xx is there, exactly once; a
batch without an answer is all-or-nothing (one transaction) and lands exactly once when resent; a
tailed line is stored exactly once however the kill falls between its read and its commit.
"""
from __future__ import annotations

import random
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from ..server import GunicornServer
from .helpers import (IngestLoad, JsonlAppender, assert_counters_match, assert_lines_exactly_once, batch,
                      batch_presence, post, tailed_offset, wait_until)


@dataclass
class CrashFigures:
    kills: int = 0
    acked: int = 0
    in_flight: int = 0
    in_flight_present: int = 0
    resent_saved: int = 0
    lines: int = 0

    def __str__(self) -> str:
        return (f"kills={self.kills} batches_acked={self.acked} in_flight={self.in_flight} "
                f"(present after restart: {self.in_flight_present}) resent_records_saved={self.resent_saved} "
                f"tail_lines={self.lines} records_lost=0 duplicates=0")


def ingest_crash_round(server: GunicornServer, engine: Engine, rng: random.Random, figures: CrashFigures,
                       prefix: str, size: int = 200, clients: int = 4, sig: int = signal.SIGKILL) -> None:
    """Load, kill with ``sig`` at a random point, restart, check, resend what had no answer, check again."""
    server.start()
    load = IngestLoad(server.port, clients, size, prefix).start()
    load.wait_acked(rng.randint(2, 30), timeout=60)
    time.sleep(rng.uniform(0, 0.2))  # a random moment inside the stream, not a synchronisation
    server.stop(sig)
    load.stop()
    figures.kills += 1
    server.start()
    try:
        present = batch_presence(engine, prefix, size)
        lost = {key: present[key] for key in load.acked if present[key] != size}
        assert not lost, f"acknowledged batches incomplete after the kill: {lost}"
        torn = {key: present[key] for key in load.unknown if present[key] not in (0, size)}
        assert not torn, f"unacknowledged batches partly stored: {torn}"
        assert set(present) <= load.acked | load.unknown
        for host, k in sorted(load.unknown):
            status, body = post(server.port, batch(host, k, size))
            assert status == 201 and body["saved"] == size - present[(host, k)], (status, body)
            figures.resent_saved += body["saved"]
        after = batch_presence(engine, prefix, size)
        assert all(after[key] == size for key in load.acked | load.unknown)
        assert sum(after.values()) == size * len(load.acked | load.unknown)
        assert_counters_match(engine, prefix)
    finally:
        server.stop()
    figures.acked += len(load.acked)
    figures.in_flight += len(load.unknown)
    figures.in_flight_present += sum(1 for key in load.unknown if present[key] == size)


def tail_crash_rounds(server: GunicornServer, engine: Engine, path: Path, rng: random.Random,
                      figures: CrashFigures, kills: int) -> None:
    """Append continuously while the server is SIGKILLed ``kills`` times mid-tail, then check that
    every line is stored exactly once (lines numbered on from earlier calls' on the same file)."""
    appender = JsonlAppender(path, start=figures.lines).start()
    try:
        for _ in range(kills):
            server.start()
            committed = tailed_offset(engine)
            wait_until(lambda: tailed_offset(engine) > committed, 60, "the tailer to commit after a (re)start")
            time.sleep(rng.uniform(0, 0.5))  # a random moment inside the tail
            server.stop(signal.SIGKILL)
            figures.kills += 1
        server.start()
        committed = tailed_offset(engine)
        wait_until(lambda: tailed_offset(engine) > committed, 60, "the tailer to resume after the last kill")
    finally:
        lines = appender.stop()
    try:
        assert_lines_exactly_once(engine, path, lines)
    finally:
        server.stop()
    figures.lines = lines


def tail_env(path: Path, lock: Path) -> dict[str, str]:
    """A server that only tails ``path`` (fast polls), for the tailer crash rounds."""
    return {"ENABLE_WS_FILE": "true", "INPUT_WS_PATH": str(path), "FILE_POLL_INTERVAL_SEC": "0.2",
            "RECORD_INTERVAL_SEC": "0", "SAMPLERS_ENABLED": "false", "JOBS_LOCK_PATH": str(lock)}
