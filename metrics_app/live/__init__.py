"""The live-metrics API: latest snapshot, short history, health, and the WebSocket stream."""
from flask import Blueprint

bp = Blueprint("live", __name__)

from . import stream, views  # noqa: E402,F401  (routes register themselves on bp)
from .prometheus import init_prometheus  # noqa: E402

# The exposition path is configurable, so it is added when the blueprint meets its app.
bp.record_once(lambda setup: init_prometheus(setup.app))
