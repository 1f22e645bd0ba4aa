"""``flask`` subcommands, one module per group; each group is registered in ``create_app``.

``database_errors_in_one_line`` is for the ``flask`` process itself (wsgi.py installs it when a
command loads the app): a database that cannot be reached or opened (``flask db upgrade`` in
./start.sh, say) ends the command with one line naming ``DATABASE_URL`` and the host or file, not a
driver traceback. A bad value is caught earlier, by config.py; this is the database behind a good one.
"""
from __future__ import annotations

import sys
from types import TracebackType

from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError


def where(url: URL) -> str:
    if url.get_backend_name() == "sqlite":
        return f"the SQLite file {url.database}" if url.database else "an in-memory SQLite database"
    return f"the server at {url.host or 'the local socket'}{f':{url.port}' if url.port else ''}"


def database_errors_in_one_line(url: URL) -> None:
    previous = sys.excepthook

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if not isinstance(exc, DBAPIError):
            previous(kind, exc, tb)
            return
        reason = " ".join(str(exc.orig or exc).split())[:300]
        print(f"database error: DATABASE_URL={url.render_as_string(hide_password=True)!r}: cannot use "
              f"{where(url)}: {reason}", file=sys.stderr)

    sys.excepthook = hook
