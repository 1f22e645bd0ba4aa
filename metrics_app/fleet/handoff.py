"""Moving a committed batch from whatever thread committed it onto the threads that serve clients.

The writer calls commit listeners on a native OS thread. Under gunicorn's gevent worker the app is
monkey-patched: its locks, conditions and "threads" belong to the worker's event loop, and touching
them from a foreign OS thread is unsafe. So there the batch is handed to the loop with gevent's
``loop.run_callback_threadsafe`` and handled in a fresh greenlet (a callback on the loop itself must
never block). Without gevent (threaded servers, tests, ``flask`` commands) the caller's thread
handles it directly: everything it touches is guarded by ordinary locks.
"""
from __future__ import annotations

import sys
from typing import Any, Callable

Handoff = Callable[..., None]


def _gevent_patched() -> bool:
    if "gevent" not in sys.modules:
        return False
    from gevent import monkey

    return bool(monkey.is_module_patched("threading"))


def make_handoff() -> Handoff:
    """Call from the thread that serves requests (``create_app`` in a gunicorn worker): it binds the
    handoff to that thread's gevent loop."""
    if not _gevent_patched():
        return lambda fn, *args: fn(*args)
    import gevent

    loop = gevent.get_hub().loop

    def handoff(fn: Callable[..., Any], *args: Any) -> None:
        loop.run_callback_threadsafe(gevent.spawn, fn, *args)

    return handoff
