"""Fake NVML GPUs carrying the values of real nvidia-smi XML captures (``../shared/fixtures/nvidia-smi``).

nvidia-smi prints what NVML answered: a value here becomes that call's answer, an "N/A" becomes
NotSupported, as the real library says it. Captures with the legacy ``clocks_throttle_reasons``
tag come from drivers before 535, which lack ``nvmlDeviceGetCurrentClocksEventReasons``: that call
answers FunctionNotFound on them, so the reader has to fall back to the deprecated one.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pynvml as real

from .fakes_nvml import MIB, FakeGpu, FakeMig

NS, FNF = real.NVML_ERROR_NOT_SUPPORTED, real.NVML_ERROR_FUNCTION_NOT_FOUND
#: nvidia-smi's reason tags, in the order of the NVML bits (0x1, 0x2, ...).
_REASON_TAGS = ("gpu_idle", "applications_clocks_setting", "sw_power_cap", "hw_slowdown", "sync_boost",
                "sw_thermal_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown", "display_clocks_setting")


def _num(value: str | None) -> float | None:
    match = re.match(r"\s*(-?[0-9.]+)", value or "")
    return float(match.group(1)) if match else None


def _ecc_totals(node: ET.Element, scope: str) -> tuple[int | None, int | None]:
    """(corrected, uncorrected) of a scope: v12+ sums sram and dram, v11 has single/double-bit totals."""
    base = node.find(f"ecc_errors/{scope}")
    if base is None:
        return None, None
    old = (_num(base.findtext("single_bit/total")), _num(base.findtext("double_bit/total")))
    if base.find("single_bit") is not None:
        return tuple(None if v is None else int(v) for v in old)
    corrected = [_num(c.text) for c in base if c.tag.endswith("_correctable")]
    uncorrected = [_num(c.text) for c in base if "_uncorrectable" in c.tag]
    total = [None if not v or None in v else int(sum(v)) for v in (corrected, uncorrected)]
    return total[0], total[1]


def _depth(node: ET.Element, gpu: FakeGpu) -> None:
    def value(path: str) -> float | None:
        return _num(node.findtext(path))

    link = "pci/pci_gpu_link_info"
    gpu.pcie = tuple(None if value(p) is None else int(value(p)) for p in (
        f"{link}/pcie_gen/current_link_gen", f"{link}/pcie_gen/max_link_gen",
        f"{link}/link_widths/current_link_width", f"{link}/link_widths/max_link_width"))
    tx, rx = value("pci/tx_util"), value("pci/rx_util")
    gpu.pcie_kb = (None, None) if tx is None else (int(tx), int(rx))
    gpu.replay = None if value("pci/replay_counter") is None else int(value("pci/replay_counter"))
    mode = node.findtext("ecc_mode/current_ecc")
    gpu.ecc_mode = {"Enabled": 1, "Disabled": 0}.get(mode)
    fields: dict[int, int] = {}
    for (corrected, uncorrected), (sbe, dbe) in (
            (_ecc_totals(node, "volatile"), (real.NVML_FI_DEV_ECC_SBE_VOL_TOTAL, real.NVML_FI_DEV_ECC_DBE_VOL_TOTAL)),
            (_ecc_totals(node, "aggregate"), (real.NVML_FI_DEV_ECC_SBE_AGG_TOTAL, real.NVML_FI_DEV_ECC_DBE_AGG_TOTAL))):
        fields.update({fid: v for fid, v in ((sbe, corrected), (dbe, uncorrected)) if v is not None})
    for fid, path, scale in ((real.NVML_FI_DEV_MEMORY_TEMP, "temperature/memory_temp", 1),
                             (real.NVML_FI_DEV_POWER_AVERAGE, "gpu_power_readings/average_power_draw", 1000),
                             (real.NVML_FI_DEV_POWER_INSTANT, "gpu_power_readings/instant_power_draw", 1000)):
        if value(path) is not None:
            fields[fid] = int(round(value(path) * scale))
    gpu.fields = fields
    rows = node.find("remapped_rows")
    gpu.remapped = gpu.retired = None  # "N/A" or absent: NotSupported
    if rows is not None and len(rows):
        yes = {"Yes": 1, "No": 0}
        gpu.remapped = (int(value("remapped_rows/remapped_row_corr")), int(value("remapped_rows/remapped_row_unc")),
                        yes[rows.findtext("remapped_row_pending")], yes[rows.findtext("remapped_row_failure")])
    single = value("retired_pages/multiple_single_bit_retirement/retired_count")
    if single is not None:
        gpu.retired = (int(single), int(value("retired_pages/double_bit_retirement/retired_count")),
                       {"Yes": 1, "No": 0}[node.findtext("retired_pages/pending_retirement")])
    events = node.find("clocks_event_reasons")
    if events is None:
        events = node.find("clocks_throttle_reasons")
        gpu.errors["nvmlDeviceGetCurrentClocksEventReasons"] = FNF  # a driver before 535
    if events is None or not len(events):
        gpu.errors["nvmlDeviceGetCurrentClocksThrottleReasons"] = NS  # vGPU: "N/A"
    else:
        gpu.clock_events = sum(1 << bit for bit, tag in enumerate(_REASON_TAGS)
                               if any(c.tag.endswith(tag) and c.text == "Active" for c in events))
    codecs = ("utilization/encoder_util", "utilization/decoder_util", "encoder_stats/session_count")
    gpu.codecs = tuple(None if value(c) is None else int(value(c)) for c in codecs)
    gpu.pstate = int(node.findtext("performance_state")[1:])
    gpu.energy_mj = None  # nvidia-smi -q prints no energy: unknown, so the fake says NotSupported


def gpus_from_xml(path: Path) -> list[FakeGpu]:
    """Fake GPUs carrying a real nvidia-smi capture's values; its N/A fields answer NotSupported."""
    gpus = []
    for node in ET.parse(path).getroot().findall("gpu"):
        def value(*paths: str) -> float | None:
            return next((_num(node.findtext(p)) for p in paths if _num(node.findtext(p)) is not None), None)

        errors: dict[str, int] = {}
        readings = {
            "nvmlDeviceGetUtilizationRates": (value("utilization/gpu_util"), value("utilization/memory_util")),
            "nvmlDeviceGetPowerUsage": value("power_readings/power_draw", "gpu_power_readings/power_draw",
                                             "gpu_power_readings/instant_power_draw"),
            "nvmlDeviceGetEnforcedPowerLimit": value("power_readings/enforced_power_limit",
                                                     "gpu_power_readings/current_power_limit"),
            "nvmlDeviceGetFanSpeed": value("fan_speed"),
        }
        for fn, reading in readings.items():
            if reading is None or (isinstance(reading, tuple) and None in reading):
                errors[fn] = NS
        if "nvmlDeviceGetEnforcedPowerLimit" in errors:
            errors["nvmlDeviceGetPowerManagementLimit"] = NS
        migs = {int(m.findtext("index")): FakeMig(
                    f"MIG-{node.findtext('uuid')[4:]}-{m.findtext('index')}",
                    *(int(_num(m.findtext(f"fb_memory_usage/{k}")) * MIB) for k in ("total", "used", "free")))
                for m in node.findall("mig_devices/mig_device")}
        procs = [(int(p.findtext("pid")), None if _num(p.findtext("used_memory")) is None
                  else int(_num(p.findtext("used_memory")) * MIB))
                 for p in node.findall("processes/process_info")]
        util = readings["nvmlDeviceGetUtilizationRates"]
        gpu = FakeGpu(
            name=node.findtext("product_name").encode(), uuid=node.findtext("uuid").encode(),
            memory=tuple(int(value(f"fb_memory_usage/{k}") * MIB) for k in ("total", "used", "free")),
            utilization=tuple(int(u or 0) for u in util), temperature=int(value("temperature/gpu_temp")),
            power_mw=int((readings["nvmlDeviceGetPowerUsage"] or 0) * 1000),
            power_limit_mw=int((readings["nvmlDeviceGetEnforcedPowerLimit"] or 0) * 1000),
            clocks=tuple(int(value(f"clocks/{k}_clock")) for k in ("graphics", "sm", "mem")),
            fan=int(readings["nvmlDeviceGetFanSpeed"] or 0), processes=procs,
            mig_mode=1 if node.findtext("mig_mode/current_mig") == "Enabled" else None,
            migs=migs, errors=errors)
        _depth(node, gpu)
        gpus.append(gpu)
    return gpus
