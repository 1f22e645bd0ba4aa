"""Real OS threads, and handing their results back to whoever waits, with or without gevent.

Under gunicorn's gevent worker, ``threading`` is monkey-patched: a ``threading.Thread`` is a greenlet
on the one event loop, so a C call that blocks (sqlite3's commit and fsync, an ``flock``, NVML,
psutil) stops every live client and HTTP request until it returns. Work that blocks in C therefore
runs on threads started with the original ``_thread.start_new_thread``; sqlite3, psycopg and NVML
release the GIL while they wait, so the loop keeps serving.

Primitives shared across those threads must be native too: a patched ``threading.Event`` waited on
in a native thread would start a second gevent hub there. A greenlet, on the other hand, must never
block on a native lock (that stops the loop); it is woken through the loop's ``async_`` watcher,
which is the one gevent object that may be signalled from another thread (gevent/gevent#1739).
"""
from __future__ import annotations

import _queue
import logging
from typing import Any, Callable, Iterable, Protocol

from gevent import monkey

log = logging.getLogger(__name__)

_start_new_thread = monkey.get_original("_thread", "start_new_thread")
_get_ident: Callable[[], int] = monkey.get_original("_thread", "get_ident")
allocate_lock: Callable[[], Any] = monkey.get_original("_thread", "allocate_lock")
_native_rlock: Callable[[], Any] = monkey.get_original("_thread", "RLock")
#: The C SimpleQueue: gevent patches ``queue.SimpleQueue`` but not ``_queue``.
NativeQueue = _queue.SimpleQueue
Empty = _queue.Empty


def gevent_active() -> bool:
    return monkey.is_module_patched("threading")


def native_logging_locks(handlers: Iterable[logging.Handler]) -> None:
    """Give logging's module lock and these ``handlers`` native locks. Native threads (the writer, the
    samplers) log too, and a lock made by gevent's patching or after it belongs to the loop: released
    by a thread that has a gevent hub of its own (psycopg's connect and gevent's subprocess make one),
    it left the greenlet waiting for it asleep (gevent/gevent#2013); gunicorn takes the module lock on
    every request (``getLogger``). Neither lock is held across a yield (a stream handler writes to
    stderr, which gevent does not patch), so a native lock stops the loop for a write at most. Call
    before any thread starts: a lock swapped while held would be released unacquired."""
    native = type(_native_rlock())
    if not isinstance(logging._lock, native):  # type: ignore[attr-defined]
        logging._lock = _native_rlock()  # type: ignore[attr-defined]
    for handler in handlers:
        handler.lock = _native_rlock()


class NativeEvent:
    """A flag native threads can sleep on with a timeout (``threading.Event`` without the patching)."""

    def __init__(self) -> None:
        self._flag = False
        self._lock = allocate_lock()
        self._lock.acquire()

    def set(self) -> None:
        if not self._flag:
            self._flag = True
            self._lock.release()

    def is_set(self) -> bool:
        return self._flag

    def wait(self, timeout: float) -> bool:
        """Only from native threads: on the event loop's thread this would stop the loop."""
        if self._flag:
            return True
        if self._lock.acquire(timeout=max(0.0, timeout)):
            self._lock.release()
        return self._flag


class NativeThread:
    """``threading.Thread``'s start/join/is_alive on a real OS thread, whatever is patched."""

    def __init__(self, target: Callable[[], None], name: str) -> None:
        self.name, self._target = name, target
        self._done = NativeEvent()
        self._started = False

    def start(self) -> None:
        self._started = True
        _start_new_thread(self._run, ())

    def _run(self) -> None:
        try:
            self._target()
        except BaseException:  # noqa: BLE001 - a dying thread says why
            log.exception("native thread %s died", self.name)
        finally:
            self._done.set()

    def is_alive(self) -> bool:
        return self._started and not self._done.is_set()

    def join(self, timeout: float) -> bool:
        """Blocks the calling OS thread (the whole loop under gevent): shutdown only."""
        return not self._started or self._done.wait(timeout)


class Handoff(Protocol):
    """Makes waiters for the calling thread and wakes them from any thread."""

    def waiter(self) -> Any: ...

    def wake(self, waiter: Any) -> None: ...


class ThreadHandoff:
    """Without gevent every caller is an OS thread: a plain ``threading.Event`` crosses threads."""

    def waiter(self) -> Any:
        import threading
        return threading.Event()

    def wake(self, waiter: Any) -> None:
        waiter.set()


class LoopHandoff:
    """Greenlets wait on gevent Events; another thread queues the Event and pokes the loop's async
    watcher, whose callback sets it on the loop's own thread. Built on the event loop's thread; a
    caller on any other (native) thread gets a NativeEvent instead."""

    def __init__(self) -> None:
        import gevent
        import gevent.event
        self._event_class = gevent.event.Event
        self._loop_thread = _get_ident()
        self._pending: _queue.SimpleQueue = NativeQueue()
        self._watcher = gevent.get_hub().loop.async_()
        self._watcher.start(self._drain)

    def waiter(self) -> Any:
        return self._event_class() if _get_ident() == self._loop_thread else NativeEvent()

    def wake(self, waiter: Any) -> None:
        if isinstance(waiter, NativeEvent):
            waiter.set()
            return
        self._pending.put(waiter)
        self._watcher.send()

    def _drain(self) -> None:
        while True:
            try:
                self._pending.get_nowait().set()
            except Empty:
                return


def handoff() -> Handoff:
    """The handoff for the calling thread's kind of waiting."""
    return LoopHandoff() if gevent_active() else ThreadHandoff()
