"""Fakes shared by several test packages."""
from __future__ import annotations

from typing import Any


class StaticSource:
    """A source that returns a fixed fragment, or raises what it is told to."""

    def __init__(self, name: str, fragment: dict[str, Any], interval_sec: float = 0.1) -> None:
        self.name, self.fragment, self.interval_sec = name, fragment, interval_sec
        self.error: Exception | None = None
        self.calls = 0

    def read(self) -> dict[str, Any]:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.fragment
