"""Migrated test databases: migrations run once per pytest session, every other database is a copy.

SQLite: one file is migrated per session (the template); the session's shared database and every
test server's own database are copies of it, so a server start costs a file copy, not a
``flask db upgrade``. (An in-memory database would vanish with each app's engine and could not show
restart persistence.) PostgreSQL (``TEST_DATABASE_URL``) gets a private schema per session through
``search_path``, migrated once, so concurrent suite runs on the shared ``test`` database never collide.
"""
from __future__ import annotations

import os
import shutil
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


def migrate(url: str) -> None:
    from flask_migrate import upgrade

    from metrics_app import create_app

    app = create_app(config_for(url))
    with app.app_context():
        upgrade()
    dispose(app)


def migrated_sqlite_template(path: Path) -> Path:
    """A freshly migrated SQLite file, to be copied and never opened again."""
    migrate(f"sqlite:///{path}")
    # Closing the last connection folds the write-ahead log into the file: the file alone is the database.
    assert not path.with_name(path.name + "-wal").exists(), "the template's WAL was not checkpointed"
    return path


def sqlite_copy(template: Path, path: Path) -> str:
    """The URL of a new migrated SQLite database at ``path``, copied from ``template``."""
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


def postgres_base_url() -> str | None:
    """``TEST_DATABASE_URL`` when it names a PostgreSQL server; None means the suite runs on SQLite."""
    base = os.environ.get("TEST_DATABASE_URL", "")
    return base if base.startswith("postgresql") else None


@contextmanager
def blank_postgres_schema(base: str) -> Iterator[str]:
    """Yield the URL of a new, empty private schema on ``base`` (no tables); drop it afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    # Inside a session, TEST_DATABASE_URL names the session's schema already (tests/conftest.py).
    base = make_url(base).difference_update_query(["options"]).render_as_string(hide_password=False)
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{base}{'&' if '?' in base else '?'}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def postgres_schema(base: str) -> Iterator[str]:
    """Yield the URL of a new private schema on ``base``, migrated; drop it afterwards."""
    with blank_postgres_schema(base) as url:
        migrate(url)
        yield url


@contextmanager
def blank_database(tmp_dir: Path) -> Iterator[str]:
    """An empty database (no tables) on the suite's engine, for migration tests."""
    base = postgres_base_url()
    if base is None:
        yield f"sqlite:///{tmp_dir / 'blank.db'}"
        return
    with blank_postgres_schema(base) as url:
        yield url


def empty_tables(app: Flask) -> None:
    from metrics_app.extensions import db

    with app.app_context():
        with db.engine.begin() as conn:
            for table in reversed(db.metadata.sorted_tables):
                conn.execute(table.delete())


def dispose(app: Flask) -> None:
    from metrics_app.extensions import db
    from metrics_app.storage import write_queue

    write_queue(app).close()
    with app.app_context():
        db.engine.dispose()
