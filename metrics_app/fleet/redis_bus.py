"""Cross-instance fan-out over Redis pub/sub: each process publishes what it committed and applies
what the others published, so every instance's ``/ws/fleet`` clients see every instance's records.

Redis is a bus only; the database stays the truth. So ingest never waits on Redis: ``publish`` puts
the batch in a bounded outbox and returns, a publisher thread sends it, and while Redis is down the
outbox is dropped (the records are stored; only other instances' live views miss them). The
subscriber reconnects by itself with a growing pause, and ``status()`` says why it is degraded.

Both loops are plain threads: under gunicorn's gevent worker they are greenlets, and redis-py's
sockets are cooperative there, so neither ever holds up a request.
"""
from __future__ import annotations

import logging
import os
import platform
import threading
import time
import uuid
from collections import deque
from typing import Any, Callable, Sequence

import orjson
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..storage.timefmt import iso_utc
from ..storage.writer import Row

log = logging.getLogger(__name__)
#: Batches waiting for the publisher; beyond this (Redis slow or down) the oldest are dropped.
OUTBOX_BATCHES = 1024
RECONNECT_MIN_SEC, RECONNECT_MAX_SEC = 0.2, 5.0


def encode(source: str, rows: Sequence[Row]) -> bytes:
    """Compact: one array per row in ``Row`` field order (orjson does not take NamedTuples)."""
    return orjson.dumps({"src": source, "rows": [tuple(row) for row in rows]})


def decode(data: bytes) -> tuple[str, list[Row]]:
    message = orjson.loads(data)
    return message["src"], [Row(*fields) for fields in message["rows"]]


class RedisBus:
    def __init__(self, url: str, channel: str, on_rows: Callable[[list[Row]], None],
                 socket_timeout: float = 2.0) -> None:
        self.channel = channel
        self.on_rows = on_rows
        #: Tells this process's own messages apart when they come back from Redis.
        self.source = f"{platform.node()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._client = redis.Redis.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout,
            health_check_interval=5, retry=Retry(NoBackoff(), 0))
        self._outbox: deque[bytes] = deque(maxlen=OUTBOX_BATCHES)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._start_lock = threading.Lock()
        self.subscribed = False
        self.errors: dict[str, tuple[str, int]] = {}  # loop name -> (reason, since ms)
        self.counts = {"published": 0, "received": 0, "dropped": 0, "publish_errors": 0}

    # -- publishing (any thread; never blocks) -------------------------------------------------------
    def publish(self, rows: Sequence[Row]) -> None:
        if len(self._outbox) == self._outbox.maxlen:
            self.counts["dropped"] += 1
        self._outbox.append(encode(self.source, rows))
        self._wake.set()

    def _publish_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            while self._outbox and not self._stop.is_set():
                payload = self._outbox.popleft()
                try:
                    self._client.publish(self.channel, payload)
                except (redis.RedisError, OSError) as exc:
                    dropped = len(self._outbox) + 1
                    self._outbox.clear()
                    self.counts["dropped"] += dropped
                    self.counts["publish_errors"] += 1
                    self._failed("publisher", exc)
                    self._stop.wait(RECONNECT_MIN_SEC)
                    break
                self.counts["published"] += 1
                self._recovered("publisher")

    # -- subscribing ----------------------------------------------------------------------------------
    def _subscribe_loop(self) -> None:
        pause = RECONNECT_MIN_SEC
        while not self._stop.is_set():
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.channel)
                self.subscribed = True
                self._recovered("subscriber")
                self._recovered("publisher")  # Redis answers again: the next publish will tell otherwise
                pause = RECONNECT_MIN_SEC
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._deliver(message["data"])
            except (redis.RedisError, OSError) as exc:
                self.subscribed = False
                self._failed("subscriber", exc)
                self._stop.wait(pause)
                pause = min(pause * 2, RECONNECT_MAX_SEC)
            finally:
                self.subscribed = False
                pubsub.close()

    def _deliver(self, data: bytes) -> None:
        try:
            source, rows = decode(data)
        except (ValueError, KeyError, TypeError):
            log.warning("fleet bus: ignored a message that is not a batch of records")
            return
        if source != self.source:
            self.counts["received"] += 1
            self.on_rows(rows)

    # -- state ----------------------------------------------------------------------------------------
    def _failed(self, loop: str, exc: BaseException) -> None:
        reason = f"{type(exc).__name__}: {exc}"[:300]
        if loop not in self.errors:
            log.warning("fleet bus %s: Redis unavailable (%s); retrying", loop, reason)
            self.errors[loop] = (reason, int(time.time() * 1000))
        else:
            self.errors[loop] = (reason, self.errors[loop][1])

    def _recovered(self, loop: str) -> None:
        if self.errors.pop(loop, None) is not None:
            log.info("fleet bus %s: Redis reachable again", loop)

    def status(self) -> dict[str, Any]:
        reasons = [f"{loop}: {reason}" for loop, (reason, _since) in sorted(self.errors.items())]
        since = min((since for _reason, since in self.errors.values()), default=None)
        # Not subscribed and no error yet: the first connection is under way (the first request starts it).
        status = "degraded" if self.errors else "ok" if self.subscribed else "starting"
        return {"mode": "redis", "status": status,
                "reason": "; ".join(reasons) or None, "degraded_since": None if since is None else iso_utc(since),
                "channel": self.channel, **self.counts}

    def start(self) -> None:
        if self._threads:
            return
        with self._start_lock:
            if self._threads:
                return
            for name, target in (("fleet-publisher", self._publish_loop), ("fleet-subscriber", self._subscribe_loop)):
                thread = threading.Thread(target=target, name=name, daemon=True)
                thread.start()
                self._threads.append(thread)

    def flush(self, timeout: float) -> None:
        """Wait for the outbox to empty (a ``flask`` command publishing before it exits)."""
        deadline = time.monotonic() + timeout
        while self._outbox and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(2.0)
        self._threads = []
        self._client.close()
