"""History read side of the crawler-ingest API: ``GET /metrics`` (listing and aggregates), ``/gpus``, ``/stats``, ``/health``."""
from flask import Blueprint

bp = Blueprint("query", __name__)

from . import views  # noqa: E402,F401  (routes register themselves on bp)
