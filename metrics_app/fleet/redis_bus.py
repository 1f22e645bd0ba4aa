"""Cross-instance fan-out over Redis pub/sub: each process publishes what it committed and applies
what the others published, so every instance's ``/ws/fleet`` clients see every instance's records.

Redis is a bus only (``bus.py``): while it is down the outbox is dropped (the records are stored;
only other instances' live views miss them). The subscriber reconnects by itself with a growing
pause, and ``status()`` says why it is degraded. redis-py's sockets are cooperative under gevent.
"""
from __future__ import annotations

from typing import Any, Callable

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .bus import Bus, OnSpans, encode

RECONNECT_MIN_SEC, RECONNECT_MAX_SEC = 0.2, 5.0


def _unavailable(exc: BaseException) -> str:
    return f"Redis unavailable ({type(exc).__name__}: {exc})"


class RedisBus(Bus):
    mode = "redis"

    def __init__(self, url: str, channel: str, on_spans: OnSpans, socket_timeout: float = 2.0) -> None:
        super().__init__(on_spans)
        self.channel = channel
        self._client = redis.Redis.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout,
            health_check_interval=5, retry=Retry(NoBackoff(), 0))
        self.subscribed = False
        self.counts["publish_errors"] = 0

    def _loops(self) -> dict[str, Callable[[], None]]:
        return {"fleet-publisher": self._publish_loop, "fleet-subscriber": self._subscribe_loop}

    def _ready(self) -> bool:
        return self.subscribed

    def _publish_loop(self) -> None:
        while not self._stop.is_set():
            spans, batches = self._gather()
            if not spans:
                continue
            try:
                self._client.publish(self.channel, encode(self.source, spans))
            except (redis.RedisError, OSError) as exc:
                self.counts["dropped"] += batches
                self.counts["publish_errors"] += 1
                self._failed("publisher", _unavailable(exc))
                self._stop.wait(RECONNECT_MIN_SEC)
                continue
            self.counts["published"] += batches
            self._recovered("publisher")

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
                self._failed("subscriber", _unavailable(exc))
                self._stop.wait(pause)
                pause = min(pause * 2, RECONNECT_MAX_SEC)
            finally:
                self.subscribed = False
                pubsub.close()

    def status(self) -> dict[str, Any]:
        return {**super().status(), "channel": self.channel}

    def stop(self) -> None:
        super().stop()
        self._client.close()
