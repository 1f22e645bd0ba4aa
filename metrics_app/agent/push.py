"""The push loop: every interval, sample, convert to records in the crawler-ingest API's vocabulary, and deliver, oldest first.

Order is the invariant. While anything is spooled, new batches go behind it in the spool rather
than straight to the server, and the spool is replayed front to back at each interval; so records
arrive in the order they were taken, and the server being away only delays them.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

from ..recording.records import drop_invalid, snapshot_to_records
from ..sampling.runner import next_deadline
from .client import IngestClient, Outcome
from .spool import Spool

log = logging.getLogger(__name__)
Records = list[dict[str, Any]]


@dataclass
class PushStats:
    samples: int = 0
    records: int = 0
    sent: int = 0
    spooled: int = 0
    dropped: int = 0


class PushAgent:
    """``sample()`` returns a live snapshot (``/api/metrics`` shape), or None when there is no new one."""

    def __init__(self, client: IngestClient, spool: Spool, sample: Callable[[], dict[str, Any] | None],
                 hostname: str, batch: int = 1000) -> None:
        self.client, self.spool, self.sample = client, spool, sample
        self.hostname, self.batch = hostname, batch
        self.stats = PushStats()
        self.stop_event = threading.Event()

    def _deliver(self, batch: Records) -> bool:
        """False when the server is away (the caller keeps the batch); True once it is settled:
        stored, or refused as invalid (logged and dropped, since resending cannot help)."""
        queue = deque([batch])
        while queue:
            answer = self.client.post(queue[0])
            if answer.outcome is Outcome.RETRY:
                log.info("server unavailable (%s); spooling", answer.detail)
                return False
            part = queue.popleft()
            if answer.outcome is Outcome.TOO_LARGE and len(part) > 1:
                half = len(part) // 2
                queue.extendleft([part[half:], part[:half]])
            elif answer.outcome is Outcome.SENT:
                self.stats.sent += len(part)
            else:
                self.stats.dropped += len(part)
                log.error("server rejected a batch of %d records; dropped: %s", len(part), answer.detail)
        return True

    def replay(self) -> bool:
        """Send spooled batches in order; True when the spool is empty afterwards."""
        for offset, batch in self.spool.pending():
            if not self._deliver(batch):
                return False
            self.spool.commit(offset)
        return True

    def step(self) -> None:
        """One interval: take a sample, then deliver it behind whatever is spooled."""
        snapshot = self.sample()
        records = drop_invalid(snapshot_to_records(snapshot, self.hostname)) if snapshot else []
        self.stats.samples += 1
        self.stats.records += len(records)
        batches = deque(records[i:i + self.batch] for i in range(0, len(records), self.batch))
        if self.replay():
            while batches and self._deliver(batches[0]):
                batches.popleft()
        for batch in batches:
            self.spool.append(batch)
            self.stats.spooled += len(batch)

    def run(self, interval: float, count: int | None = None) -> PushStats:
        """Steps on a drift-free schedule until ``count`` samples (or ``stop_event``), then one
        last replay; what is still spooled stays for the next run."""
        start = time.monotonic()
        while not self.stop_event.is_set():
            self.step()
            if count is not None and self.stats.samples >= count:
                break
            now = time.monotonic()
            self.stop_event.wait(next_deadline(start, interval, now) - now)
        self.replay()
        return self.stats
