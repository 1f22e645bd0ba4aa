"""Crash durability against the real gunicorn server, on the session's database
(SQLite file, or PostgreSQL when TEST_DATABASE_URL is set).

tests/storage/test_persistence.py shows one acknowledged batch surviving a SIGKILL; these kill the
whole process group in the middle of sustained traffic. Longer runs: ``bench/crash_soak.py``.
"""
from __future__ import annotations

import random

import pytest

from ..server import GunicornServer
from .crash import CrashFigures, ingest_crash_round, tail_crash_rounds, tail_env
from .helpers import engine_for

pytestmark = pytest.mark.slow


@pytest.fixture
def engine(database_url, app):  # app: empties the tables afterwards
    engine = engine_for(database_url)
    yield engine
    engine.dispose()


def test_sigkill_under_ingest_keeps_every_acknowledged_batch_once(tmp_path, database_url, engine):
    rng = random.Random()
    figures = CrashFigures()
    server = GunicornServer(tmp_path, DATABASE_URL=database_url, GUNICORN_WORKERS="2", SAMPLERS_ENABLED="false",
                            RECORD_INTERVAL_SEC="0")
    ingest_crash_round(server, engine, rng, figures, prefix="crash")
    print(figures)
    assert figures.acked >= 2


def test_sigkill_during_a_tail_loses_and_doubles_no_line(tmp_path, database_url, engine):
    rng = random.Random()
    figures = CrashFigures()
    path = tmp_path / "ws_out.jsonl"
    server = GunicornServer(tmp_path, DATABASE_URL=database_url, **tail_env(path, tmp_path / "jobs.lock"))
    tail_crash_rounds(server, engine, path, rng, figures, kills=2)
    print(figures)
    assert figures.lines > 0
