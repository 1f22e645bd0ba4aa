"""What the storage layer keeps per app, and how code that holds only a connection finds it.

``init_app`` builds one ``StorageState`` per app, keeps it in ``app.extensions["storage"]`` and
binds it to the app's engine as an execution option, which every connection (and every
``execution_options`` proxy made afterwards) inherits. So the writer thread, ``store_rows`` and
``write_tx`` reach their app's lock, retention and series cache without an app context and without
module-level caches keyed by engine.
"""
from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection, Engine

if TYPE_CHECKING:
    from .engine import WriterLock
    from .tiers import Retention

EXTENSION_KEY = "storage"
_OPTION = "metrics_storage"


@dataclass(eq=False)
class StorageState:
    retention: "Retention"
    #: SQLite's one-writer lock; None where the database takes concurrent writers.
    writer_lock: "WriterLock | None"
    #: The engine's proxy that opens writers' transactions (``BEGIN IMMEDIATE`` on SQLite).
    write_engine: Engine | None = None
    #: (hostname, uuid, index) -> gpu_series.id. Safe to keep: summary rows are never deleted
    #: (retention only zeroes their counts), so an id, once seen, stays valid.
    series_ids: dict[Any, int] = field(default_factory=dict)

    def exclusive(self) -> AbstractContextManager[Any]:
        """Held around every write transaction: SQLite's writer lock, or nothing where the database
        takes concurrent writers."""
        return self.writer_lock.hold() if self.writer_lock is not None else nullcontext()


def bind_state(engine: Engine, state: StorageState, write_option: str) -> StorageState:
    share_state(engine, state)
    state.write_engine = engine.execution_options(**{write_option: True})
    return state


def share_state(engine: Engine, state: StorageState) -> None:
    """Let a second engine on the same database (the writer thread's) reach the same state."""
    engine.update_execution_options(**{_OPTION: state})


def state_of(bound: Connection | Engine) -> StorageState:
    try:
        return bound.get_execution_options()[_OPTION]
    except KeyError:
        raise LookupError("this engine was not bound by metrics_app.storage.init_app") from None
