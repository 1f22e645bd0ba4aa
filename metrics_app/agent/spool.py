"""Batches the server has not acknowledged yet, kept on disk in the order they were taken.

One JSON array per line, appended and fsync'd before the agent moves on, so a crash or reboot loses
nothing that was spooled. Acknowledged batches are not cut out of the file (that would rewrite it
once per batch): a sidecar ``.offset`` file records how far replay has got, replaced atomically
after each 2xx, and both are emptied once everything is through. A crash between a 2xx and the
offset write only resends that batch, which idempotent ingest stores once.
"""
from __future__ import annotations

import fcntl
import logging
import os
from typing import Any, Iterator

import orjson

log = logging.getLogger(__name__)


class SpoolBusy(RuntimeError):
    """Another agent already uses this spool; two replaying one file would interleave batches."""


class Spool:
    def __init__(self, path: str) -> None:
        self.path, self.offset_path = path, f"{path}.offset"
        self._lock = open(f"{path}.lock", "ab")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise SpoolBusy(f"{path} is in use by another agent") from None
        self._drop_torn_tail()

    def close(self) -> None:
        self._lock.close()

    def _size(self) -> int:
        try:
            return os.path.getsize(self.path)
        except FileNotFoundError:
            return 0

    def _drop_torn_tail(self) -> None:
        """A line cut short by a crash mid-append was never spooled; later appends must not join it."""
        size = self._size()
        if not size:
            return
        with open(self.path, "rb+") as handle:
            handle.seek(max(0, size - (1 << 20)))
            tail = handle.read()
            if not tail.endswith(b"\n"):
                keep = size - len(tail) + tail.rfind(b"\n") + 1
                log.warning("spool %s: dropping %d bytes of a torn last line", self.path, size - keep)
                handle.truncate(keep)

    def _offset(self) -> int:
        try:
            with open(self.offset_path, "rb") as handle:
                return int(handle.read() or 0)
        except FileNotFoundError:
            return 0

    def append(self, batch: list[dict[str, Any]]) -> None:
        with open(self.path, "ab") as handle:
            handle.write(orjson.dumps(batch) + b"\n")
            handle.flush()
            os.fsync(handle.fileno())

    def pending(self) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        """Unacknowledged batches, oldest first, each with the offset to ``commit`` once it is sent."""
        offset = self._offset()
        try:
            handle = open(self.path, "rb")
        except FileNotFoundError:
            return
        with handle:
            handle.seek(offset)
            for line in handle:
                offset += len(line)
                try:
                    batch = orjson.loads(line)
                except orjson.JSONDecodeError:
                    log.error("spool %s: unreadable line before offset %d skipped", self.path, offset)
                    continue
                yield offset, batch

    def commit(self, offset: int) -> None:
        """Everything before ``offset`` has been acknowledged."""
        if offset >= self._size():
            # Offset first: a crash in between then replays (harmlessly) rather than skips new batches.
            if os.path.exists(self.offset_path):
                os.remove(self.offset_path)
            os.truncate(self.path, 0)
            return
        temporary = f"{self.offset_path}.tmp"
        with open(temporary, "wb") as handle:
            handle.write(str(offset).encode())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.offset_path)

    def batches(self) -> int:
        return sum(1 for _ in self.pending())
