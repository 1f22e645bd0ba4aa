"""Local history: this machine's GPUs recorded as crawler records every ``RECORD_INTERVAL_SEC``.

Runs as one of the background jobs (``jobs.py``), so with several gunicorn workers only the jobs'
leader records, from its own hub. Records go through ``ingest_payload`` like a ``POST /metrics``
body, so ``GET /metrics`` and ``/gpus`` show the local GPUs next to crawled ones.
"""
from __future__ import annotations

import platform
from typing import Any, Callable

from flask import current_app

from ..extensions import hub
from ..ingest.batches import ingest_payload
from ..sampling.hub import HubState
from .records import drop_invalid, snapshot_to_records


def local_hostname() -> str:
    """``RECORD_HOSTNAME`` when set, else this host's name as crawlers would report it."""
    return current_app.config.get("RECORD_HOSTNAME") or platform.node()


class NewSnapshots:
    """Calling it gives the hub's latest snapshot, or None when the hub has not ticked since the
    previous call: a stalled tick thread must not have its last snapshot stored or sent again."""

    def __init__(self, state: Callable[[], HubState]) -> None:
        self.state = state
        self.last_seq: int | None = None

    def __call__(self) -> dict[str, Any] | None:
        frame = self.state().latest()
        if frame is None or frame.seq == self.last_seq:
            return None
        self.last_seq = frame.seq
        return frame.snapshot


class LocalRecorder:
    def __init__(self) -> None:
        self.snapshots = NewSnapshots(hub.state)

    def record(self) -> int:
        """Store the latest snapshot's GPUs (in an app context); returns how many records were new."""
        snapshot = self.snapshots()
        if snapshot is None:
            return 0
        records = drop_invalid(snapshot_to_records(snapshot, local_hostname()))
        max_batch = current_app.config["MAX_BATCH"]
        return sum(ingest_payload(records[i:i + max_batch]).saved for i in range(0, len(records), max_batch))
