"""Which sources this machine gets, decided once from the configuration."""
from __future__ import annotations

from typing import Any, Mapping

from .host import HostSource
from .source import Source


def build_sources(config: Mapping[str, Any]) -> list[Source]:
    """Host first: its keys fill the snapshot's cpu/memory/battery; GPU sources follow in vendor order."""
    return [HostSource(interval_sec=config["SAMPLE_INTERVAL_SEC"])]
