"""One migrated test database per pytest session, emptied after each test.

SQLite runs on a temporary file (an in-memory database would vanish with each app's engine and could
not show restart persistence). PostgreSQL (``TEST_DATABASE_URL``) gets a private schema per session
through ``search_path``, so concurrent suite runs on the shared ``test`` database never collide.
"""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

from flask import Flask
from sqlalchemy import create_engine, make_url, text

from config import TestConfig


def config_for(url: str) -> type:
    return type("SessionTestConfig", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": url})


def session_database(tmp_dir: Path) -> Iterator[str]:
    """Yield the URL of a fresh, migrated database; drop it afterwards."""
    from flask_migrate import upgrade

    from metrics_app import create_app

    with blank_database(tmp_dir) as url:
        app = create_app(config_for(url))
        with app.app_context():
            upgrade()
        dispose(app)
        yield url


@contextmanager
def blank_database(tmp_dir: Path) -> Iterator[str]:
    """Yield the URL of an empty database (no tables); drop it afterwards."""
    base = os.environ.get("TEST_DATABASE_URL", "")
    if not base.startswith("postgresql"):
        url = f"sqlite:///{tmp_dir / 'test.db'}"
        cleanup = None
    else:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        # Inside a session, TEST_DATABASE_URL names the session's schema already (tests/conftest.py).
        base = make_url(base).difference_update_query(["options"]).render_as_string(hide_password=False)
        admin = create_engine(base)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{base}{'&' if '?' in base else '?'}options={quote(f'-csearch_path={schema}')}"

        def cleanup() -> None:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    try:
        yield url
    finally:
        if cleanup:
            cleanup()


def empty_tables(app: Flask) -> None:
    from metrics_app.extensions import db

    with app.app_context():
        with db.engine.begin() as conn:
            for table in reversed(db.metadata.sorted_tables):
                conn.execute(table.delete())


def dispose(app: Flask) -> None:
    from metrics_app.extensions import db

    with app.app_context():
        db.engine.dispose()
