"""Persistent history of crawler records: compact typed rows, per-GPU summaries, per-minute and
per-hour rollups that outlive the raw records (tiers.py), and per-GPU per-metric totals.

``init_app`` binds Flask-SQLAlchemy and Flask-Migrate (the schema is owned by ``migrations/``) and
applies the SQLite connection settings; every write goes through the app's ``write_queue`` (one
native writer thread, group commit, on an engine of its own: writer_engine.py), which stores rows
with ``store_rows`` (writer.py).
``status.py`` keeps the background jobs' runs and the file tailers' progress for /health.
"""
from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app

from ..extensions import db, migrate
from . import models  # noqa: F401 - registers the tables on db.metadata for Alembic
from .engine import WRITE_OPTION, configure_engine
from .retention import retention_command
from .state import EXTENSION_KEY as STATE_KEY, StorageState, bind_state
from .tiers import Retention
from .write_queue import EXTENSION_KEY as WRITE_QUEUE_KEY, WriteQueue, WriteUnavailable
from .writer_engine import writer_engine

__all__ = ["init_app", "write_queue", "WriteUnavailable"]

MIGRATIONS_DIR = str(Path(__file__).resolve().parents[2] / "migrations")


def init_app(app: Flask) -> None:
    db.init_app(app)
    # Batch mode lets future migrations alter SQLite tables (it has almost no ALTER TABLE).
    migrate.init_app(app, db, directory=MIGRATIONS_DIR, render_as_batch=True)
    with app.app_context():
        state = StorageState(Retention.from_config(app.config), configure_engine(app, db.engine))
        app.extensions[STATE_KEY] = bind_state(db.engine, state, WRITE_OPTION)
        queue = app.extensions[WRITE_QUEUE_KEY] = WriteQueue(writer_engine(app, db.engine))
    # The fleet fan-out and anything else that must see each committed group registers here.
    queue.listeners = app.extensions.setdefault("commit_listeners", [])
    app.cli.add_command(retention_command)


def write_queue(app: Flask | None = None) -> WriteQueue:
    """The app's one writer (``write_queue.py``); started on its first write."""
    return (app or current_app).extensions[WRITE_QUEUE_KEY]
