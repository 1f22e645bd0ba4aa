"""PostgreSQL round trips wait in C on native threads; on the event loop they keep yielding to greenlets.

psycopg picks one wait function for the whole process when it is imported. With gevent's ``select``
patched it takes ``wait_poll`` on gevent's ``select.poll``: right for greenlets, but on the writer's
native thread (write_queue.py) every readiness wait, about four per statement and ~45 per group
commit of 16 single-record requests, then runs a gevent hub of that thread's own in Python, holding
the GIL that the event loop needs to serve HTTP and WebSockets.

``ThreadAwareConnection.wait`` uses psycopg's C ``wait_c`` instead on threads started by
``NativeThread``: it calls poll(2) directly with the GIL released and never touches the patched
``select`` module. Only those threads may block, because no greenlet lives on them; a blocking
wait on the event loop's thread would stop every greenlet until PostgreSQL answered, so
everywhere else the connection waits as psycopg chose.

Measured under gevent (2-core box shared with other benchmarks, load 1-5; psycopg 3.3.9 binary):
- a native thread's CPU per round trip (SELECT, then COMMIT, in a loop): ~90 -> ~35 us;
- the writer thread's CPU per single-record request, 16 greenlets submitting to the write queue
  (groups of 16), medians of two series of 6 alternating runs: 330 -> 214 us and 296 -> 238 us.
  Requests/s in that setup did not move (~2,000: it waits on PostgreSQL, not on the CPU);
- per 1,000-record request (4 greenlets), medians of 4: 14.8 -> 13.4 ms and 16.2 -> 15.5 ms (the
  array parameters' adaptation dominates);
- gunicorn (2 workers) under wrk, single-record POSTs: CPU of the threads besides the event loop's
  (writer, samplers) per request, median of 5 alternating runs: 1,057 -> 835 us. The whole
  server's CPU per request and requests/s stayed within the noise of the shared machine.
"""
from __future__ import annotations

from typing import Any

import psycopg
from psycopg import waiting
from psycopg.connection import _WAIT_INTERVAL
from sqlalchemy import event
from sqlalchemy.engine import Engine

from ..native import leaving_no_hub, on_native_thread


class ThreadAwareConnection(psycopg.Connection):
    """A psycopg connection that waits in C on native threads, cooperatively elsewhere. Chosen per
    call, not per connection: the pool may hand the writer's connection to a greenlet later."""

    def wait(self, gen: Any, interval: float = _WAIT_INTERVAL, timeout: float | None = None) -> Any:
        if on_native_thread():
            return waiting.wait_c(gen, self.pgconn.socket, interval, timeout)
        return super().wait(gen, interval, timeout)


def wait_in_c_on_native_threads(engine: Engine) -> None:
    """Make ``engine``'s psycopg connections ``ThreadAwareConnection``s, where it matters: when
    psycopg has its C wait but chose a cooperative one (gevent patched ``select``)."""
    wait_c = getattr(waiting, "wait_c", None)
    if wait_c is None or waiting.wait is wait_c:
        return

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> ThreadAwareConnection:
        if not on_native_thread():
            return ThreadAwareConnection.connect(*cargs, **cparams)
        with leaving_no_hub():  # psycopg's connect waits on gevent's selector, which starts one
            return ThreadAwareConnection.connect(*cargs, **cparams)
