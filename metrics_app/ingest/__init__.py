"""The crawler-ingest API: ``POST /metrics``, ``WS /ws/ingest`` and the JSONL file tailers.

All three parse JSON, validate the whole batch (validation.py, from the marshmallow schemas in
schemas.py) and store it in one transaction through ``storage.writer.store_rows``.
"""
from .views import bp

__all__ = ["bp"]
