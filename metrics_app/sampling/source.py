"""The one interface every hardware source implements.

A source is a small object that reads one kind of hardware when asked and returns the part of the
snapshot it owns. It takes its I/O (library module, executable path, clock) as constructor
parameters so tests can inject fakes. It never starts threads itself: the hub runs it.
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Source(Protocol):
    #: Short stable name used in health output and logs ("host", "nvidia", "rocm").
    name: str
    #: Seconds between reads; slow sources (rocm-smi) use a longer interval than the tick.
    interval_sec: float
    #: True when ``read`` blocks in C (NVML, amdsmi, psutil): the hub then reads it on a native OS
    #: thread, never on the event loop. Sources whose I/O is cooperative (a subprocess) leave it False.
    blocks_in_c: bool

    def read(self) -> dict[str, Any]:
        """Return this source's fragment of the snapshot.

        The host source returns ``{"cpu": ..., "memory": ..., "battery": ...}``; GPU sources return
        ``{"gpus": [...]}``. Raising marks the whole source failed for this read; the hub keeps running.
        """
        ...


class GpuSource(Source, Protocol):
    """A source of GPUs also tells whether its vendor stack is usable at all, and why not.

    A source whose hardware has calls that block (NVIDIA's PCIe throughput, its XID event wait) may
    also offer ``helper_threads()``: unstarted threads with ``start()``/``stop()`` that the hub runs
    beside the source's own, so the blocking never lands in ``read()``.
    """

    vendor: str
    available: bool
    unavailable_reason: str | None
