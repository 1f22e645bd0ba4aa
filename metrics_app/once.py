"""``@start_once``: the double-checked start shared by everything that owns background threads.

The sampler hub, the background jobs and the fleet buses are started from more than one place
(gunicorn's ``post_worker_init``, and a request hook outside gunicorn that runs before every
request), possibly by several greenlets at once. The first call starts the threads; later calls
return without taking the lock, so the hook costs one attribute test per request.

The owner creates ``_start_lock`` in its ``__init__`` (at run time, after gevent has patched
``threading``: a native lock held while its holder yields would freeze the event loop) and keeps
its started threads in ``_threads``.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

Owner = TypeVar("Owner", bound=Any)


def start_once(start: Callable[[Owner], None]) -> Callable[[Owner], None]:
    @functools.wraps(start)
    def wrapper(self: Owner) -> None:
        if self._threads:
            return
        with self._start_lock:
            if not self._threads:
                start(self)
    return wrapper
