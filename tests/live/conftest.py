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
