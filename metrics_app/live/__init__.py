"""Live metrics (seed 000): latest snapshot, short history, health, and the WebSocket stream."""
from flask import Blueprint

bp = Blueprint("live", __name__)

from . import stream, views  # noqa: E402,F401  (routes register themselves on bp)
