"""Fan-out between the worker processes of one gunicorn master, used without Redis: each worker binds
a Unix datagram socket in a directory of that master's own, sends what it committed to every
sibling's socket and applies what they send, so a ``/ws/fleet`` client of any worker sees what every
worker stored. (With ``REDIS_URL``, Redis reaches every process of every instance already.)

- **Where.** ``gpu-metrics-fleet-<uid>-<master pid>`` in the system temp directory: local and short
  (a socket path has about 100 bytes), one per gunicorn instance, and not on a data volume that
  other hosts or containers may share (whose masters may all be pid 1). It is created 0700 and the
  bus refuses a directory that is not this user's own: anyone who could write there could feed
  records into the stream or read them.
- **Who.** Siblings are found by listing the directory before each send and once a second, so a
  worker that bound its socket before a sibling's commit is sent that commit (what was committed
  before it came up, it reads from the database on its first fleet request). A file nobody listens
  on any more (a worker killed by SIGKILL) refuses the connection and is unlinked; each worker
  removes its own on exit, and the last one out the directory. A starting worker also clears the
  directories of masters killed outright: only of sockets that refuse a connection, so a live
  instance in another pid namespace sharing the temp directory is never touched.
- **Never in the way.** ``publish`` only fills the bounded outbox (``bus.py``); the sender thread
  coalesces what waits there and cuts it into datagrams of at most ``MAX_DATAGRAM`` bytes, each a
  message of its own. Each sibling has its own connected socket: one that stops reading fills only
  its own queue (Linux charges an unread datagram to the socket that sent it) and poll says when it
  reads again. The sender waits up to ``PEER_WAIT_SEC`` for a busy sibling; past that the sibling is
  *behind*: it is sent to without waiting, what it cannot take is dropped and counted
  (``undelivered``), and ``/health`` names it until it takes a datagram again.

Both loops are plain threads, greenlets under gunicorn's gevent worker (the sockets are cooperative
there), like Redis's; ``publish`` runs where the fleet applies a commit, on the event loop.
"""
from __future__ import annotations

import atexit
import contextlib
import logging
import os
import socket
import stat
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .bus import OUTBOX_BATCHES, Bus, OnSpans, encode_chunks

log = logging.getLogger(__name__)
#: Largest datagram sent: far below Linux's default limit (the send buffer, 208 KiB).
MAX_DATAGRAM = 64 * 1024
#: Asked for each sibling's socket, so several datagrams are in flight while it reads.
SEND_BUFFER_BYTES = 1 << 20
#: How long the sender waits for a busy sibling to take one datagram before counting it behind.
PEER_WAIT_SEC = 0.5
SUFFIX = ".sock"


def _prefix() -> str:
    return f"gpu-metrics-fleet-{os.getuid()}-"


def sibling_dir(master_pid: int) -> Path:
    """Where the workers of the gunicorn master ``master_pid`` (their ``os.getppid()``) meet."""
    return Path(tempfile.gettempdir()) / f"{_prefix()}{master_pid}"


def _private_dir(path: Path) -> None:
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise PermissionError(f"{path} is not a directory private to this user")


def _connect(path: str) -> socket.socket | None:
    """A socket connected to the one at ``path``; None when it is gone or nobody listens on it any more
    (then it is removed)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        if isinstance(exc, ConnectionRefusedError):  # its worker died
            with contextlib.suppress(OSError):
                os.unlink(path)
        return None
    return sock


def _clear_dead_masters(own: Path) -> None:
    """The other directories of this user's masters: their dead sockets, then the directory if emptied."""
    for entry in os.scandir(own.parent):
        if entry.name.startswith(_prefix()) and entry.path != str(own) and entry.is_dir(follow_symlinks=False) \
                and entry.stat(follow_symlinks=False).st_uid == os.getuid():
            for sock in os.scandir(entry.path):
                if sock.name.endswith(SUFFIX) and (live := _connect(sock.path)) is not None:
                    live.close()
            with contextlib.suppress(OSError):  # not empty: that instance lives
                os.rmdir(entry.path)


def _worker(name: str) -> str:
    """How status and logs name a sibling: by the pid that starts its socket's name."""
    return f"worker {name.split('-', 1)[0]}"


@dataclass(slots=True)
class _Sibling:
    sock: socket.socket
    behind: bool = False


class WorkerBus(Bus):
    mode = "workers"

    def __init__(self, directory: Path, on_spans: OnSpans, max_datagram: int = MAX_DATAGRAM,
                 outbox_batches: int = OUTBOX_BATCHES) -> None:
        super().__init__(on_spans, outbox_batches)
        self.directory, self.max_datagram = directory, max_datagram
        self.path = directory / f"{os.getpid()}-{uuid.uuid4().hex[:8]}{SUFFIX}"
        self._receiver: socket.socket | None = None
        self._siblings: dict[str, _Sibling] = {}
        self.counts["undelivered"] = 0

    def _loops(self) -> dict[str, Callable[[], None]]:
        """Nothing at all in a directory that is not private; no receiver when this worker cannot
        listen (its siblings still get its records)."""
        try:
            self._bind()
        except PermissionError as exc:
            self._failed("directory", f"{exc}; this worker streams only its own records")
            return {}
        except OSError as exc:
            self._failed("receiver", f"cannot listen on {self.path} ({exc}); this worker's clients see only "
                                     "the records it stores")
            return {"fleet-worker-sender": self._send_loop}
        return {"fleet-worker-sender": self._send_loop, "fleet-worker-receiver": self._receive_loop}

    def _ready(self) -> bool:
        return self._receiver is not None

    def _bind(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            for attempt in range(3):  # the last worker of an ending run may be removing the directory
                _private_dir(self.directory)
                try:
                    sock.bind(str(self.path))
                    break
                except FileNotFoundError:
                    if attempt == 2:
                        raise
        except OSError:
            sock.close()
            raise
        sock.settimeout(1.0)  # to notice ``stop`` should its wake-up datagram not arrive
        self._receiver = sock
        atexit.register(self._remove_socket)

    # -- receiving -------------------------------------------------------------------------------------
    def _receive_loop(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._receiver.recv(self.max_datagram)
            except TimeoutError:
                continue
            except OSError as exc:
                if not self._stop.is_set():
                    self._failed("receiver", f"{type(exc).__name__}: {exc}")
                    self._stop.wait(1.0)
                continue
            if self.errors:
                self._recovered("receiver")
            if data:  # empty: ``stop`` woke it
                self._deliver(data)

    # -- sending ---------------------------------------------------------------------------------------
    def _send_loop(self) -> None:
        while not self._stop.is_set():
            spans, batches = self._gather()
            self._find_siblings()  # after taking them: a sibling that bound before their commit is in
            if spans:
                for chunk in encode_chunks(self.source, spans, self.max_datagram):
                    for name, sibling in list(self._siblings.items()):
                        self._send(name, sibling, chunk)
                self.counts["published"] += batches

    def _find_siblings(self) -> None:
        try:
            names = {entry.name for entry in os.scandir(self.directory) if entry.name.endswith(SUFFIX)}
        except OSError as exc:
            self._failed("siblings", f"cannot list {self.directory} ({exc})")
            return
        self._recovered("siblings")
        names.discard(self.path.name)
        for name in self._siblings.keys() - names:
            self._forget(name)
        for name in names - self._siblings.keys():
            sock = _connect(str(self.directory / name))
            if sock is None:
                continue
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
            self._siblings[name] = _Sibling(sock)

    def _send(self, name: str, sibling: _Sibling, chunk: bytes) -> None:
        sibling.sock.settimeout(0.0 if sibling.behind else PEER_WAIT_SEC)
        try:
            sent = sibling.sock.send(chunk)  # gevent's answers 0 where it still would block
        except (BlockingIOError, TimeoutError):
            sent = 0
        except ConnectionRefusedError:  # the sibling died since it was found
            self._forget(name)
            (self.directory / name).unlink(missing_ok=True)
            return
        except OSError as exc:  # a single row larger than a datagram may be
            self.counts["undelivered"] += 1
            log.warning("fleet bus: %d bytes not sent to %s: %s", len(chunk), _worker(name), exc)
            return
        part = _worker(name)
        if sent:
            if sibling.behind:
                sibling.behind = False
                self._recovered(part)
            return
        self.counts["undelivered"] += 1
        if not sibling.behind:
            sibling.behind = True
            self._failed(part, "not reading its socket: its clients miss what it cannot take")

    def _forget(self, name: str) -> None:
        self._siblings.pop(name).sock.close()
        self._recovered(_worker(name))

    # -- state and life ----------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return {**super().status(), "worker_pid": os.getpid(), "siblings": len(self._siblings)}

    def _remove_socket(self) -> None:
        self.path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # not empty: other workers are still there
            self.directory.rmdir()

    def stop(self) -> None:
        self._stop.set()
        if self._receiver is not None:
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as waker:
                waker.sendto(b"", str(self.path))  # wakes the receiver now
        super().stop()
        for name in list(self._siblings):
            self._forget(name)
        if self._receiver is not None:
            self._receiver.close()
            self._receiver = None
            self._remove_socket()
            atexit.unregister(self._remove_socket)


def join_master(master_pid: int, on_spans: OnSpans) -> WorkerBus:
    """The started bus of a worker of gunicorn master ``master_pid``; on the way, what masters killed
    outright left in the temp directory goes."""
    directory = sibling_dir(master_pid)
    with contextlib.suppress(OSError):
        _clear_dead_masters(directory)
    bus = WorkerBus(directory, on_spans)
    bus.start()
    return bus
