"""Shared fixtures: ``app`` (samplers off, hub driven by hand), ``client`` and ``runner``."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from metrics_app import create_app
from metrics_app.extensions import hub

from .dbsetup import (config_for, dispose, empty_tables, migrated_sqlite_template, postgres_base_url, postgres_schema,
                      sqlite_copy)
from .server import SQLITE_TEMPLATE_VARIABLE

#: The shared fixtures (real GPU tool outputs) live beside the checkout, not in it.
SHARED = Path(__file__).resolve().parents[2] / "shared"


def pytest_configure(config: pytest.Config) -> None:
    """Hypothesis caches (character maps, schemathesis' constants) go to the temp directory: left to
    itself it creates ``.hypothesis/`` in the working directory, that is in the checkout."""
    if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        set_hypothesis_home_dir(Path(tempfile.gettempdir()) / f"gpu-metrics-tests-hypothesis-{os.getuid()}")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """The session's one migrated SQLite file; ``sqlite_copy(sqlite_template, path)`` makes another."""
    return migrated_sqlite_template(tmp_path_factory.mktemp("template") / "metrics.db")


@pytest.fixture(scope="session")
def database_url(request, tmp_path_factory):
    """A migrated database for the whole session (SQLite temp file, or TEST_DATABASE_URL's server)."""
    base = postgres_base_url()
    if base:
        yield from postgres_schema(base)
    else:
        yield sqlite_copy(request.getfixturevalue("sqlite_template"), tmp_path_factory.mktemp("db") / "test.db")


@pytest.fixture(scope="session", autouse=True)
def _databases_for_servers(request, database_url):
    """Servers started by tests (tests/server.py) never migrate: on PostgreSQL their default database
    is this session's private, migrated schema (not the shared database's public one); on SQLite,
    each gets its own copy of the migrated template unless the test hands it ``database_url``."""
    with pytest.MonkeyPatch.context() as env:
        if postgres_base_url():
            env.setenv("TEST_DATABASE_URL", database_url)
        else:
            env.setenv(SQLITE_TEMPLATE_VARIABLE, str(request.getfixturevalue("sqlite_template")))
        yield


@pytest.fixture
def app(database_url):
    app = create_app(config_for(database_url))
    yield app
    hub.state(app).stop()
    empty_tables(app)
    dispose(app)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent (a user's clone has no ../shared); real-output fixtures unavailable")
    return SHARED


SCREENSHOTS = pytest.StashKey[Path]()


@pytest.fixture(scope="session")
def screenshot_dir(request, tmp_path_factory) -> Path:
    """Where browser tests save screenshots: ``TEST_SCREENSHOT_DIR`` when set, else pytest's temp
    directory (never the checkout). The end of the run prints every screenshot's path."""
    configured = os.environ.get("TEST_SCREENSHOT_DIR")
    path = Path(configured) if configured else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    request.config.stash[SCREENSHOTS] = path
    return path


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    path = config.stash.get(SCREENSHOTS, None)
    for shot in sorted(path.glob("*.png")) if path else []:
        terminalreporter.write_line(f"screenshot: {shot}")
