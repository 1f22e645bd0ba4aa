"""NVML's depth fields, the ones cluster operators look at first: PCIe link, ECC and row remapping,
retired pages, throttling, average vs instant power, energy, codecs and the performance state.

Every call is optional: a GPU or driver that cannot say gives a null with a reason (asked once, then
never again), a failure gives that field's error for this read, and neither touches other fields.
What needs ``nvmlDeviceGetFieldValues`` is read in one batch, checking each entry's own return code
because the call as a whole succeeds while single fields answer NotSupported (GPU_TELEMETRY.md).
"""
from __future__ import annotations

from typing import Any

from .gpu_fields import ECC_DISABLED, FUNCTION_NOT_FOUND, NOT_REPORTED, FieldLedger, number
from .nvidia_extras import NvmlCalls

ECC_KEYS = ("eccCorrectedVolatile", "eccUncorrectedVolatile", "eccCorrectedAggregate", "eccUncorrectedAggregate")
#: (NVML field id constant, entry key, milliwatts?) read in one nvmlDeviceGetFieldValues call.
_FIELDS = (
    ("NVML_FI_DEV_ECC_SBE_VOL_TOTAL", "eccCorrectedVolatile", False),
    ("NVML_FI_DEV_ECC_DBE_VOL_TOTAL", "eccUncorrectedVolatile", False),
    ("NVML_FI_DEV_ECC_SBE_AGG_TOTAL", "eccCorrectedAggregate", False),
    ("NVML_FI_DEV_ECC_DBE_AGG_TOTAL", "eccUncorrectedAggregate", False),
    ("NVML_FI_DEV_MEMORY_TEMP", "memoryTemperatureCelsius", False),  # HBM parts only
    # nvmlDeviceGetPowerUsage is a 1 s average on Ampere and newer (except GA100), the instant value
    # before: both are given apart so they can be compared (netdata #15755).
    ("NVML_FI_DEV_POWER_AVERAGE", "powerDrawAverageWatts", True),
    ("NVML_FI_DEV_POWER_INSTANT", "powerDrawInstantWatts", True),
)
#: c_nvmlValue_t's member for each NVML_VALUE_TYPE_*.
_VALUE_MEMBER = ("dVal", "uiVal", "ulVal", "ullVal", "sllVal", "siVal", "usVal")

#: Clock event (throttle) bits as nvidia-smi names them. pynvml 13.x names 0x200 and 0x400 only as
#: the deprecated ``nvmlClocksThrottleReason*`` constants, so the bits are written out here.
THROTTLE_REASONS = (
    (0x1, "gpu_idle"), (0x2, "applications_clocks_setting"), (0x4, "sw_power_cap"), (0x8, "hw_slowdown"),
    (0x10, "sync_boost"), (0x20, "sw_thermal_slowdown"), (0x40, "hw_thermal_slowdown"),
    (0x80, "hw_power_brake_slowdown"), (0x100, "display_clock_setting"), (0x200, "board_limit"),
    (0x400, "reliability"),
)
#: Reasons that lower clocks without anything being wrong: an idle GPU, a clock set on purpose.
BENIGN_REASONS = frozenset({"gpu_idle", "applications_clocks_setting", "display_clock_setting"})


def read_depth(calls: NvmlCalls, ledger: FieldLedger, h: Any, entry: dict[str, Any], static: dict[str, Any]) -> None:
    """Fill the depth keys of one entry; ``static`` keeps what never changes (maximum link) per GPU."""
    _pcie_link(calls, ledger, h, entry, static)
    ecc_on = _ecc_mode(calls, ledger, h, entry)
    _field_values(calls, ledger, h, entry, ecc_on)
    _memory_health(calls, ledger, h, entry)
    _throttle(calls, ledger, h, entry)
    _codecs_energy_pstate(calls, ledger, h, entry)


def _ask(calls: NvmlCalls, ledger: FieldLedger, key: str, name: str, *args: Any) -> Any:
    """One field from one call, as a number (or None)."""
    return number(calls.first(ledger, (key,), (calls.fn(name), *args)))


def _pcie_link(calls: NvmlCalls, ledger: FieldLedger, h: Any, entry: dict[str, Any], static: dict[str, Any]) -> None:
    nvml = calls.nvml
    for key, fn in (("pcieLinkGenMax", calls.fn("nvmlDeviceGetMaxPcieLinkGeneration")),
                    ("pcieLinkWidthMax", calls.fn("nvmlDeviceGetMaxPcieLinkWidth"))):
        if static.get(key) is None:
            static[key] = number(calls.first(ledger, (key,), (fn, h)))
        entry[key] = static[key]
    # An idle GPU trains its link down (ASPM): "gen < max" is only a fault under load.
    for key, name in (("pcieLinkGen", "nvmlDeviceGetCurrPcieLinkGeneration"),
                      ("pcieLinkWidth", "nvmlDeviceGetCurrPcieLinkWidth"),
                      ("pcieReplayCount", "nvmlDeviceGetPcieReplayCounter")):
        entry[key] = _ask(calls, ledger, key, name, h)


def _ecc_mode(calls: NvmlCalls, ledger: FieldLedger, h: Any, entry: dict[str, Any]) -> bool | None:
    """True/False from the current mode; GeForce parts have no ECC at all (counts unsupported with it)."""
    mode = calls.first(ledger, ("eccEnabled", *ECC_KEYS), (calls.fn("nvmlDeviceGetEccMode"), h))
    if mode is None:
        return None
    entry["eccEnabled"] = mode[0] == calls.nvml.NVML_FEATURE_ENABLED
    if not entry["eccEnabled"]:
        # ECC off (RTX A5000, RTX PRO 6000 captures): the counters do not exist, they are not 0.
        # Not kept in the ledger: turning ECC on takes a reboot, which starts a new reader anyway.
        entry["unsupported"].update(dict.fromkeys(ECC_KEYS, ECC_DISABLED))
    return entry["eccEnabled"]


def _field_values(calls: NvmlCalls, ledger: FieldLedger, h: Any, entry: dict[str, Any], ecc_on: bool | None) -> None:
    nvml = calls.nvml
    for _fid, key, _mw in _FIELDS:
        if not hasattr(nvml, _fid):  # a binding older than the field (POWER_AVERAGE came with 12.535)
            ledger.unsupported[key] = FUNCTION_NOT_FOUND
    wanted = [(getattr(nvml, fid), key, mw) for fid, key, mw in _FIELDS
              if key not in ledger.unsupported and (ecc_on or key not in ECC_KEYS)]
    if not wanted:
        return
    values = calls.first(ledger, tuple(key for _, key, _ in wanted),
                         (calls.fn("nvmlDeviceGetFieldValues"), h, [fid for fid, _, _ in wanted]))
    for value, (_fid, key, milliwatts) in zip(values or (), wanted):
        if value.nvmlReturn != nvml.NVML_SUCCESS:
            exc = nvml.NVMLError(value.nvmlReturn)
            reason = calls.reason(exc)
            if reason is not None:
                ledger.unsupported[key] = reason
            else:
                ledger.fail((key,), f"NVML: {exc}")
            continue
        raw = number(getattr(value.value, _VALUE_MEMBER[value.valueType]))
        entry[key] = round(raw / 1000.0, 2) if milliwatts and raw is not None else raw


def _memory_health(calls: NvmlCalls, ledger: FieldLedger, h: Any, entry: dict[str, Any]) -> None:
    """Row remapping (Ampere and newer; NotSupported on a MIG parent) and retired pages (Kepler to Turing)."""
    nvml = calls.nvml
    rows = calls.first(ledger, ("remappedRowsCorrectable", "remappedRowsUncorrectable", "remappedRowsPending",
                                "remappedRowsFailure"), (calls.fn("nvmlDeviceGetRemappedRows"), h))
    if rows is not None:
        corrected, uncorrected, pending, failure = rows
        entry.update(remappedRowsCorrectable=int(corrected), remappedRowsUncorrectable=int(uncorrected),
                     remappedRowsPending=bool(pending), remappedRowsFailure=bool(failure))
    for key, cause in (("retiredPagesSingleBit", nvml.NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS),
                       ("retiredPagesDoubleBit", nvml.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR)):
        pages = calls.first(ledger, (key,), (calls.fn("nvmlDeviceGetRetiredPages"), h, cause))
        entry[key] = None if pages is None else len(pages)  # the call lists addresses: count them
    pending = _ask(calls, ledger, "retiredPagesPending", "nvmlDeviceGetRetiredPagesPendingStatus", h)
    entry["retiredPagesPending"] = None if pending is None else pending == nvml.NVML_FEATURE_ENABLED


def _throttle(calls: NvmlCalls, ledger: FieldLedger, h: Any, entry: dict[str, Any]) -> None:
    """Clock event reasons; drivers before 535 only have the deprecated "throttle" call (Telegraf README)."""
    nvml = calls.nvml
    mask = number(calls.first(ledger, ("throttleReasons", "throttled"),
                              (calls.fn("nvmlDeviceGetCurrentClocksEventReasons"), h),
                              (calls.fn("nvmlDeviceGetCurrentClocksThrottleReasons"), h)))
    if mask is None:
        return
    names = [name for bit, name in THROTTLE_REASONS if int(mask) & bit]
    entry["throttleReasons"], entry["throttled"] = names, any(n not in BENIGN_REASONS for n in names)


def _codecs_energy_pstate(calls: NvmlCalls, ledger: FieldLedger, h: Any, entry: dict[str, Any]) -> None:
    nvml = calls.nvml
    # Total energy is Volta and newer, in millijoules since the driver was loaded (codecarbon #608).
    energy = _ask(calls, ledger, "energyJoules", "nvmlDeviceGetTotalEnergyConsumption", h)
    entry["energyJoules"] = None if energy is None else round(energy / 1000.0, 3)
    for key, fn in (("encoderUtilization", calls.fn("nvmlDeviceGetEncoderUtilization")),
                    ("decoderUtilization", calls.fn("nvmlDeviceGetDecoderUtilization"))):
        answer = calls.first(ledger, (key,), (fn, h))  # [percent, sampling period in µs]
        entry[key] = None if answer is None else number(answer[0])
    stats = calls.first(ledger, ("encoderSessions",), (calls.fn("nvmlDeviceGetEncoderStats"), h))
    entry["encoderSessions"] = None if stats is None else number(stats[0])
    state = _ask(calls, ledger, "performanceState", "nvmlDeviceGetPerformanceState", h)
    if state is not None and not 0 <= state <= 15:  # NVML_PSTATE_UNKNOWN (32)
        entry["unsupported"]["performanceState"] = NOT_REPORTED
        state = None
    entry["performanceState"] = state
