"""Fixtures for the read side: records stored through the real write path (rollups included)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable, Iterable

import pytest

from metrics_app.extensions import db
from metrics_app.storage.engine import write_tx
from metrics_app.storage.kinds import KINDS, NO_PID
from metrics_app.storage.writer import Row, store_rows

T0 = int(datetime(2025, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
GPUS = {("h1", 0): ("GPU-a", "A100"), ("h1", 1): ("GPU-b", "A100"), ("h2", 0): ("GPU-c", "H100")}


def row(metric: str, ts_ms: int, *values: float, host: str = "h1", gpu: int = 0, pid: int = NO_PID) -> Row:
    uuid, name = GPUS[(host, gpu)]
    padded = (list(values) + [None, None, None])[:3]
    return Row(host, gpu, uuid, name, KINDS[metric].code, ts_ms, pid, *padded)


@pytest.fixture
def store(app) -> Callable[[Iterable[Row]], int]:
    def _store(rows: Iterable[Row]) -> int:
        with app.app_context(), write_tx(db.engine) as conn:
            return store_rows(conn, list(rows)).saved
    return _store


@pytest.fixture
def populated(store) -> list[Row]:
    """One hour of 1-minute samples of every kind on three GPUs (two hosts), the documented values."""
    rows = []
    for minute in range(60):
        ts = T0 + minute * 60_000
        for host, gpu in GPUS:
            rows += [row("memory", ts, 10240, 2048 + minute, 8192 - minute, host=host, gpu=gpu),
                     row("utilization", ts, 55 + gpu, 12, host=host, gpu=gpu),
                     row("temperature", ts, 65, host=host, gpu=gpu),
                     row("power", ts, 100 + minute, host=host, gpu=gpu),
                     row("clocks", ts, 1800, 7000, host=host, gpu=gpu),
                     row("process", ts, 512, host=host, gpu=gpu, pid=1234)]
    store(rows)
    return rows
