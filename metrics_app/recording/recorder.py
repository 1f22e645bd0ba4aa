"""Local history: this machine's GPUs recorded as crawler records every ``RECORD_INTERVAL_SEC``.

Runs as one of the background jobs (``jobs.py``), so with several gunicorn workers only the jobs'
leader records, from its own hub. Records go through ``ingest_payload`` like a ``POST /metrics``
body, so ``GET /metrics`` and ``/gpus`` show the local GPUs next to crawled ones.
"""
from __future__ import annotations

import logging
import platform

from flask import current_app

from ..extensions import hub
from ..ingest.service import ingest_payload
from .records import drop_invalid, snapshot_to_records

log = logging.getLogger(__name__)


def local_hostname() -> str:
    """``RECORD_HOSTNAME`` when set, else this host's name as crawlers would report it."""
    return current_app.config.get("RECORD_HOSTNAME") or platform.node()


class LocalRecorder:
    """Remembers the last frame it stored: a tick thread that stopped would otherwise have its last
    snapshot recorded again and again (as duplicates, since the timestamp would not move)."""

    def __init__(self) -> None:
        self.last_seq: int | None = None

    def record(self) -> int:
        """Store the latest snapshot's GPUs (in an app context); returns how many records were new."""
        frame = hub.state().latest()
        if frame is None or frame.seq == self.last_seq:
            return 0
        records = drop_invalid(snapshot_to_records(frame.snapshot, local_hostname()))
        max_batch = current_app.config["MAX_BATCH"]
        saved = sum(ingest_payload(records[i:i + max_batch]).saved for i in range(0, len(records), max_batch))
        self.last_seq = frame.seq
        return saved
