"""The ring buffer every client reads: the last N snapshots, each already serialized once.

Publishing wakes every waiting WebSocket handler through one ``Condition``; each handler remembers
the ``seq`` it last sent, so a slow client skips stale frames instead of queueing them.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class Frame:
    seq: int
    monotonic: float
    snapshot: dict[str, Any]
    #: The snapshot as JSON text, serialized once per tick and sent as-is to every client.
    text: str


class RingBuffer:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._frames: deque[Frame] = deque(maxlen=capacity)
        self._cond = threading.Condition()
        self._seq = 0

    def publish(self, snapshot: dict[str, Any], monotonic: float) -> Frame:
        text = orjson.dumps(snapshot).decode()
        with self._cond:
            self._seq += 1
            frame = Frame(self._seq, monotonic, snapshot, text)
            self._frames.append(frame)
            self._cond.notify_all()
        return frame

    def latest(self) -> Frame | None:
        frames = self._frames
        return frames[-1] if frames else None

    def wait_newer(self, seq: int, timeout: float) -> Frame | None:
        """Block until a frame newer than ``seq`` exists (returns the newest) or ``timeout`` passes."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._seq > seq, timeout):
                return None
            return self._frames[-1]

    def since(self, monotonic_cutoff: float) -> list[Frame]:
        """Frames published at or after a monotonic instant, oldest first."""
        with self._cond:
            frames = list(self._frames)
        return [f for f in frames if f.monotonic >= monotonic_cutoff]
