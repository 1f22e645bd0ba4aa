"""The one ``flock`` primitive: SQLite's writer lock and the jobs' leader lock on SQLite both take an
exclusive lock on a file beside the database, held through a descriptor kept open for the process's
life. The kernel drops the lock when the holder dies, whatever killed it (SIGKILL included)."""
from __future__ import annotations

import fcntl
import os


class FileLock:
    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def fd(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        return self._fd

    def acquire(self, blocking: bool = True) -> bool:
        """Exclusive; False only when ``blocking`` is off and another process holds it."""
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Closing the descriptor drops the lock too."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
