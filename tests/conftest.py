"""Shared fixtures: ``app`` (samplers off, hub driven by hand), ``client`` and ``runner``."""
from __future__ import annotations

from pathlib import Path

import pytest

from config import TestConfig
from metrics_app import create_app
from metrics_app.extensions import hub

#: The shared fixtures (real GPU tool outputs) live beside the checkout, not in it.
SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture
def app():
    app = create_app(TestConfig)
    yield app
    hub.state(app).stop()


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
