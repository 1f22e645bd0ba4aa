"""Persistent history of crawler records: compact typed rows, per-GPU summaries, per-minute and
per-hour rollups that outlive the raw records (tiers.py), and per-GPU per-metric totals.

``init_app`` binds Flask-SQLAlchemy and Flask-Migrate (the schema is owned by ``migrations/``) and
applies the SQLite connection settings; ``store_rows`` (writer.py) is the only write path.
``jobs_status()`` reports the retention job's and the file tailers' last runs for /health.
"""
from __future__ import annotations

from pathlib import Path

from flask import Flask

from ..extensions import db, migrate
from . import models  # noqa: F401 - registers the tables on db.metadata for Alembic
from .engine import configure_engine
from .retention import retention_command
from .status import jobs_status
from .tiers import Retention, bind_retention

__all__ = ["init_app", "jobs_status"]

MIGRATIONS_DIR = str(Path(__file__).resolve().parents[2] / "migrations")


def init_app(app: Flask) -> None:
    db.init_app(app)
    # Batch mode lets future migrations alter SQLite tables (it has almost no ALTER TABLE).
    migrate.init_app(app, db, directory=MIGRATIONS_DIR, render_as_batch=True)
    with app.app_context():
        configure_engine(app, db.engine)
        bind_retention(db.engine, Retention.from_config(app.config))
    app.cli.add_command(retention_command)
