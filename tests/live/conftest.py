import os
from pathlib import Path

import pytest

from metrics_app.extensions import hub

from ..fakes import HOST_FRAGMENT, StaticGpuSource, StaticSource, gpu_entry


@pytest.fixture
def live(app):
    """The app's hub rebuilt on fake sources, read once and ticked once (no threads)."""
    state = hub.init_app(app, sources=[
        StaticSource("host", HOST_FRAGMENT),
        StaticGpuSource("nvidia", "NVIDIA", [gpu_entry(0), gpu_entry(1)]),
    ])
    for source_state in state.states:
        source_state.poll(state.clock)
    state.tick()
    return state


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
