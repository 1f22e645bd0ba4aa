"""Repair of the one kind of invalid JSON a known crawler sends: Windows paths written unescaped.

The C++ crawler writes a process name such as ``C:\\Program Files\\app.exe`` into its JSON without
escaping the backslashes, so ``\\P`` and ``\\a`` are not JSON escapes and every JSON parser refuses the
body. The crawler's other backend doubles such backslashes before parsing; so does this one, and only
for a body the parser has already refused, so valid bodies pay nothing. A backslash that does start
a valid escape (``\\n``, ``\\t``, ``\\\\``, ``\\u00e9``...) is left alone: ``C:\\new`` was always valid JSON
meaning a newline, and no repair could know otherwise.

How many bodies were repaired is counted per app (``app.extensions["json_repairs"]``) and shown by
``GET /health``.
"""
from __future__ import annotations

import re
import threading

from flask import Flask, current_app, has_app_context

#: A valid escape (kept as it is) or a backslash that starts none (to be doubled).
_ESCAPE = re.compile(rb'\\(?:["\\/bfnrt]|u[0-9A-Fa-f]{4})|\\')
_EXTENSION = "json_repairs"


def double_lone_backslashes(raw: bytes | str) -> bytes | None:
    """``raw`` with every backslash that starts no valid JSON escape doubled; None when it has none."""
    if isinstance(raw, str):
        try:
            raw = raw.encode()
        except UnicodeEncodeError:  # lone surrogates: not JSON either way
            return None
    repaired = _ESCAPE.sub(lambda m: m.group() if len(m.group()) > 1 else b"\\\\", raw)
    return None if repaired == raw else repaired


class RepairCount:
    """Bodies repaired by this app; written from request greenlets and tailer threads alike."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.bodies = 0

    def add(self) -> None:
        with self._lock:
            self.bodies += 1


def repair_count(app: Flask) -> RepairCount:
    return app.extensions.setdefault(_EXTENSION, RepairCount())


def count_repair() -> None:
    """Counted against the current app; outside one (a script parsing a file) there is none to tell."""
    if has_app_context():
        repair_count(current_app).add()
