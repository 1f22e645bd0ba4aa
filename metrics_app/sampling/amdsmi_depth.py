"""amdsmi's depth fields, where the library has them: PCIe link and replays, memory temperature,
throttle status (from the metrics table already read), ECC totals and the energy counter.

What amdsmi has no equivalent for (remapped rows, retired pages by NVIDIA's causes, encoder and
decoder percents, a P-state, XIDs) is null with ``not_reported``, never 0.
"""
from __future__ import annotations

from typing import Any

from .gpu_fields import (DEPTH_KEYS, ECC_DISABLED, FUNCTION_NOT_FOUND, NOT_REPORTED, FieldCalls, FieldLedger,
                         from_table, number, pcie_generation)

#: Metrics-table keys (``amdsmi_get_gpu_metrics_info``), as in the RX 6600 capture.
_TABLE = {
    "pcieLinkWidth": ("pcie_link_width",),
    "pcieReplayCount": ("pcie_replay_count_acc",),
    "memoryTemperatureCelsius": ("temperature_mem",),
}


def read_depth(lib: Any, calls: FieldCalls, ledger: FieldLedger, h: Any, entry: dict[str, Any],
               metrics: dict[str, Any]) -> None:
    if metrics:
        from_table(entry, metrics, _TABLE)
        speed = number(metrics.get("pcie_link_speed"))  # in 0.1 GT/s: 160 is 16 GT/s (gen 4)
        entry["pcieLinkGen"] = pcie_generation(None if speed is None else speed / 10)
        _throttle(entry, metrics.get("throttle_status"))
    _pcie_info(lib, calls, ledger, h, entry)
    _ecc(lib, calls, ledger, h, entry)
    energy = _ask(lib, calls, ledger, ("energyJoules",), "amdsmi_get_energy_count", h)
    if energy:
        # The accumulator counts in units of counter_resolution microjoules (15.3 on most parts).
        accumulated, resolution = number(energy.get("energy_accumulator")), number(energy.get("counter_resolution"))
        if accumulated is not None and resolution is not None:
            entry["energyJoules"] = round(accumulated * resolution / 1e6, 3)
    for key in DEPTH_KEYS:
        if entry[key] is None and key not in entry["unsupported"] and key not in ledger.errors:
            entry["unsupported"][key] = NOT_REPORTED


def _ask(lib: Any, calls: FieldCalls, ledger: FieldLedger, fields: tuple[str, ...], name: str, h: Any) -> Any:
    """One call by name: older amdsmi releases lack some (the binding has no such attribute)."""
    fn = getattr(lib, name, None)
    if fn is None:
        ledger.unsupported.update(dict.fromkeys(fields, FUNCTION_NOT_FOUND))
        return None
    return calls.first(ledger, fields, (fn, h))


def _throttle(entry: dict[str, Any], status: Any) -> None:
    """``throttle_status`` is one flag, without NVIDIA's reasons: none when off, unknown when on."""
    if isinstance(status, bool) or number(status) is not None:
        entry["throttled"] = bool(status)
        entry["throttleReasons"] = None if entry["throttled"] else []


def _pcie_info(lib: Any, calls: FieldCalls, ledger: FieldLedger, h: Any, entry: dict[str, Any]) -> None:
    info = _ask(lib, calls, ledger, ("pcieLinkGenMax", "pcieLinkWidthMax"), "amdsmi_get_pcie_info", h)
    if not info:
        return
    static, metric = info.get("pcie_static") or {}, info.get("pcie_metric") or {}
    max_speed = number(static.get("max_pcie_speed"))  # MT/s: 16000 is 16 GT/s
    entry["pcieLinkGenMax"] = pcie_generation(None if max_speed is None else max_speed / 1000)
    entry["pcieLinkWidthMax"] = number(static.get("max_pcie_width"))
    # The metrics table says "N/A" on some firmware where pcie_metric still answers.
    speed = number(metric.get("pcie_speed"))
    for key, found in (("pcieLinkGen", pcie_generation(None if speed is None else speed / 1000)),
                       ("pcieLinkWidth", number(metric.get("pcie_width"))),
                       ("pcieReplayCount", number(metric.get("pcie_replay_count")))):
        if entry[key] is None and found is not None:
            entry[key] = found
            entry["unsupported"].pop(key, None)


def _ecc(lib: Any, calls: FieldCalls, ledger: FieldLedger, h: Any, entry: dict[str, Any]) -> None:
    """amdsmi's totals count since the driver loaded: NVML's "volatile". There is no aggregate."""
    enabled = _ask(lib, calls, ledger, ("eccEnabled",), "amdsmi_get_gpu_ecc_enabled", h)
    if enabled is not None:
        entry["eccEnabled"] = bool(enabled)  # a bit mask of the blocks with ECC on
        if not enabled:
            entry["unsupported"].update(eccCorrectedVolatile=ECC_DISABLED, eccUncorrectedVolatile=ECC_DISABLED)
            return
    totals = _ask(lib, calls, ledger, ("eccCorrectedVolatile", "eccUncorrectedVolatile"),
                  "amdsmi_get_gpu_total_ecc_count", h)
    if totals:
        entry["eccCorrectedVolatile"] = number(totals.get("correctable_count"))
        entry["eccUncorrectedVolatile"] = number(totals.get("uncorrectable_count"))
