"""PCIe TX/RX throughput per NVIDIA GPU, read on its own slower thread and merged into every tick.

``nvmlDeviceGetPcieThroughput`` measures over a 20 ms window and blocks for it: TX and RX on 8 GPUs
would cost about 320 ms, a third of a 1 s tick (GPU_TELEMETRY.md, row 8). So the tick never calls
it; a separate thread does, at ``GPU_PCIE_INTERVAL_SEC``, and the tick copies the latest values.
"""
from __future__ import annotations

from typing import Any, Iterable

from ..native import allocate_lock
from .gpu_fields import FieldLedger, number
from .nvidia_extras import NvmlCalls

KIB = 1024  # NVML answers in KB/s; nvitop and Netdata read that as KiB/s


class PcieThroughput:
    """The latest TX/RX reading of each GPU (by index), written by its thread, read by the tick."""

    KEYS = ("pcieTxBytesPerSec", "pcieRxBytesPerSec")

    def __init__(self) -> None:
        self._lock = allocate_lock()
        self._ledgers: dict[int, FieldLedger] = {}
        self._latest: dict[int, tuple[dict[str, Any], dict[str, str], dict[str, str]]] = {}

    def poll(self, calls: NvmlCalls, targets: Iterable[tuple[int, Any]]) -> None:
        """Read every GPU once; a GPU that fails here only loses its throughput, not its entry."""
        nvml, throughput = calls.nvml, calls.fn("nvmlDeviceGetPcieThroughput")
        for index, handle in targets:
            ledger = self._ledgers.setdefault(index, FieldLedger())
            ledger.begin()
            values: dict[str, Any] = dict.fromkeys(self.KEYS)
            try:
                for key, counter in zip(self.KEYS, (nvml.NVML_PCIE_UTIL_TX_BYTES, nvml.NVML_PCIE_UTIL_RX_BYTES)):
                    kilobytes = number(calls.first(ledger, (key,), (throughput, handle, counter)))
                    values[key] = None if kilobytes is None else int(kilobytes * KIB)
            except calls.errors:
                # The GPU is lost: the tick marks it failed by itself. Nothing of it is kept, so a GPU
                # that comes back does not carry this error until the next throughput read.
                with self._lock:
                    self._latest.pop(index, None)
                continue
            with self._lock:
                self._latest[index] = (values, dict(ledger.unsupported), dict(ledger.errors))

    def fill(self, index: int, entry: dict[str, Any]) -> None:
        """Copy the latest reading; before the first one both stay null (not yet read, no reason)."""
        with self._lock:
            latest = self._latest.get(index)
        if latest is None:
            return
        values, unsupported, errors = latest
        entry.update(values)
        entry["unsupported"].update(unsupported)
        entry["fieldErrors"].update(errors)

    def forget(self) -> None:
        """The library went away: handles are invalid, old readings no longer describe anything."""
        with self._lock:
            self._latest, self._ledgers = {}, {}
