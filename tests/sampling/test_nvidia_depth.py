"""The depth fields (PCIe, ECC, row remapping, retired pages, throttling, power, energy, codecs) with the
values real GPUs reported in the nvidia-smi XML captures, read through the fake NVML."""
from __future__ import annotations

from pathlib import Path

import pynvml as real
import pytest

from metrics_app.sampling.nvidia import NvidiaSource

from .fakes_nvml import FakeGpu, FakeNvml
from .nvml_captures import gpus_from_xml

NS = real.NVML_ERROR_NOT_SUPPORTED


def capture(shared_dir: Path, name: str) -> tuple[NvidiaSource, FakeNvml]:
    fake = FakeNvml(gpus_from_xml(shared_dir / "fixtures" / "nvidia-smi" / f"nvidia-smi_{name}.xml"))
    return NvidiaSource(interval_sec=1.0, nvml=fake, name_of_pid=lambda pid: None), fake


def read(shared_dir: Path, name: str) -> list[dict]:
    return capture(shared_dir, name)[0].read()["gpus"]


@pytest.mark.parametrize("name", ["a100-sxm4-v12_telegraf", "tesla-t4_telegraf"])
def test_ecc_counts_on_a100_and_t4_are_real_zeros(shared_dir: Path, name: str) -> None:
    (gpu,) = read(shared_dir, name)
    assert gpu["eccEnabled"] is True
    assert [gpu[k] for k in ("eccCorrectedVolatile", "eccUncorrectedVolatile", "eccCorrectedAggregate",
                             "eccUncorrectedAggregate")] == [0, 0, 0, 0]


@pytest.mark.parametrize("name", ["dual_a5000-v13_telegraf-pr", "pro-6000-maxq-blackwell-v13_telegraf-pr"])
def test_ecc_disabled_on_a5000_and_pro_6000_is_null_not_zero(shared_dir: Path, name: str) -> None:
    for gpu in read(shared_dir, name):
        assert gpu["eccEnabled"] is False
        assert gpu["eccCorrectedVolatile"] is None and gpu["eccUncorrectedAggregate"] is None
        assert gpu["unsupported"]["eccCorrectedVolatile"] == "ecc_disabled"
        # remapped rows are real on these Ampere/Blackwell boards: 0 rows, nothing pending
        assert (gpu["remappedRowsCorrectable"], gpu["remappedRowsUncorrectable"]) == (0, 0)
        assert (gpu["remappedRowsPending"], gpu["remappedRowsFailure"]) == (False, False)


def test_geforce_has_no_ecc_at_all(shared_dir: Path) -> None:
    (gpu,) = read(shared_dir, "rtx-3080-v13_telegraf")
    assert gpu["eccEnabled"] is None and gpu["unsupported"]["eccEnabled"] == "not_supported"
    assert gpu["unsupported"]["eccCorrectedAggregate"] == "not_supported"


def test_remapped_rows_not_supported_on_the_mig_parent_a100(shared_dir: Path) -> None:
    (gpu,) = read(shared_dir, "a100-sxm4-v12_telegraf")
    assert gpu["remappedRowsPending"] is None and gpu["unsupported"]["remappedRowsPending"] == "not_supported"
    assert gpu["memoryTemperatureCelsius"] == 44  # HBM: the one capture with a memory temperature
    assert gpu["performanceState"] == 0


def test_retired_pages_on_the_t4(shared_dir: Path) -> None:
    (gpu,) = read(shared_dir, "tesla-t4_telegraf")
    assert (gpu["retiredPagesSingleBit"], gpu["retiredPagesDoubleBit"], gpu["retiredPagesPending"]) == (0, 0, False)
    assert (gpu["pcieLinkGen"], gpu["pcieLinkGenMax"], gpu["pcieLinkWidth"], gpu["pcieLinkWidthMax"]) == (3, 3, 8, 16)


def test_pcie_throughput_of_the_rtx_3080_comes_from_its_own_thread(shared_dir: Path) -> None:
    src, fake = capture(shared_dir, "rtx-3080-v13_telegraf")
    (gpu,) = src.read()["gpus"]
    assert gpu["pcieTxBytesPerSec"] is None and "pcieTxBytesPerSec" not in gpu["unsupported"]  # not read yet
    assert "nvmlDeviceGetPcieThroughput" not in fake.calls  # never in the tick
    src.read_pcie()  # what the helper thread runs
    (gpu,) = src.read()["gpus"]
    assert (gpu["pcieTxBytesPerSec"], gpu["pcieRxBytesPerSec"]) == (1066699 * 1024, 14742333 * 1024)
    assert (gpu["pcieLinkGen"], gpu["pcieLinkWidth"], gpu["pcieReplayCount"]) == (4, 16, 0)


def test_pcie_throughput_not_supported_on_a_vgpu(shared_dir: Path) -> None:
    src, _ = capture(shared_dir, "tesla-p4_telegraf-pr")
    src.read()
    src.read_pcie()
    (gpu,) = src.read()["gpus"]
    assert gpu["pcieRxBytesPerSec"] is None and gpu["unsupported"]["pcieRxBytesPerSec"] == "not_supported"
    assert gpu["unsupported"]["pcieLinkGen"] == "not_supported"
    assert gpu["encoderSessions"] == 2  # the GRID P4 guest has two encoder sessions
    assert gpu["throttleReasons"] is None and gpu["unsupported"]["throttleReasons"] == "not_supported"


@pytest.mark.parametrize("name, reasons", [
    ("tesla-t4_telegraf", []), ("quadro-p400_telegraf", ["gpu_idle"]), ("gt-1030_telegraf-pr", ["gpu_idle"])])
def test_legacy_throttle_tag_falls_back_to_the_deprecated_call(shared_dir: Path, name: str, reasons: list) -> None:
    """Drivers before 535 lack the clocks-event call (their captures carry clocks_throttle_reasons)."""
    src, fake = capture(shared_dir, name)
    (gpu,) = src.read()["gpus"]
    assert gpu["throttleReasons"] == reasons and gpu["throttled"] is False
    assert "nvmlDeviceGetCurrentClocksThrottleReasons" in fake.calls
    assert "throttleReasons" not in gpu["unsupported"]


@pytest.mark.parametrize("name", ["dual_a5000-v13_telegraf-pr", "rtx-3060-v12_telegraf"])
def test_current_throttle_tag_idle_gpu(shared_dir: Path, name: str) -> None:
    src, fake = capture(shared_dir, name)
    for gpu in src.read()["gpus"]:
        assert gpu["throttleReasons"] == ["gpu_idle"] and gpu["throttled"] is False
    assert "nvmlDeviceGetCurrentClocksThrottleReasons" not in fake.calls


@pytest.mark.parametrize("mask, names, throttled", [
    (0x1 | 0x4, ["gpu_idle", "sw_power_cap"], True),
    (0x40, ["hw_thermal_slowdown"], True),
    (0x2 | 0x100, ["applications_clocks_setting", "display_clock_setting"], False),
    (0x200 | 0x400, ["board_limit", "reliability"], True),
])
def test_throttle_names_as_nvidia_smi_prints_them(mask: int, names: list, throttled: bool) -> None:
    (gpu,) = NvidiaSource(interval_sec=1.0, nvml=FakeNvml([FakeGpu(clock_events=mask)])).read()["gpus"]
    assert gpu["throttleReasons"] == names and gpu["throttled"] is throttled


@pytest.mark.parametrize("name, average, instant", [
    ("rtx-3080-v13_telegraf", 139.62, 142.33), ("rtx-3060-v12_telegraf", 11.6, 11.63),
    ("pro-6000-maxq-blackwell-v13_telegraf-pr", 3.97, 3.99)])
def test_average_and_instant_power_apart(shared_dir: Path, name: str, average: float, instant: float) -> None:
    (gpu,) = read(shared_dir, name)
    assert (gpu["powerDrawAverageWatts"], gpu["powerDrawInstantWatts"]) == (average, instant)


def test_single_power_reading_gpus_have_no_average_or_instant(shared_dir: Path) -> None:
    (gpu,) = read(shared_dir, "tesla-t4_telegraf")
    assert gpu["powerDraw"] == 26.8 and gpu["powerDrawAverageWatts"] is None
    assert gpu["unsupported"]["powerDrawInstantWatts"] == "not_supported"


def test_codecs_and_energy_and_pstate() -> None:
    (gpu,) = NvidiaSource(interval_sec=1.0, nvml=FakeNvml([FakeGpu(codecs=(12, 34, 3), energy_mj=123456789, pstate=8)])
                          ).read()["gpus"]
    assert (gpu["encoderUtilization"], gpu["decoderUtilization"], gpu["encoderSessions"]) == (12, 34, 3)
    assert gpu["energyJoules"] == 123456.789 and gpu["performanceState"] == 8


def test_unknown_pstate_is_null_not_32() -> None:
    (gpu,) = NvidiaSource(interval_sec=1.0, nvml=FakeNvml([FakeGpu(pstate=real.NVML_PSTATE_UNKNOWN)])).read()["gpus"]
    assert gpu["performanceState"] is None and gpu["unsupported"]["performanceState"] == "not_reported"


def test_energy_not_supported_on_pascal_is_asked_once_codecarbon_608() -> None:
    fake = FakeNvml([FakeGpu(energy_mj=None)])
    src = NvidiaSource(interval_sec=1.0, nvml=fake)
    for _ in range(3):
        gpu = src.read()["gpus"][0]
    assert gpu["energyJoules"] is None and gpu["unsupported"]["energyJoules"] == "not_supported"
    assert fake.calls.count("nvmlDeviceGetTotalEnergyConsumption") == 1


def test_each_field_value_entry_has_its_own_return_code() -> None:
    """The batch succeeds while one entry is NotSupported and another fails: each is that field's alone."""
    gpu = FakeGpu(field_errors={real.NVML_FI_DEV_MEMORY_TEMP: NS,
                                real.NVML_FI_DEV_POWER_INSTANT: real.NVML_ERROR_UNKNOWN})
    src = NvidiaSource(interval_sec=1.0, nvml=FakeNvml([gpu]))
    entry = src.read()["gpus"][0]
    assert entry["memoryTemperatureCelsius"] is None
    assert entry["unsupported"]["memoryTemperatureCelsius"] == "not_supported"
    assert entry["powerDrawInstantWatts"] is None
    assert entry["fieldErrors"] == {"powerDrawInstantWatts": "NVML: Unknown Error"}
    assert entry["powerDrawAverageWatts"] == 139.62 and entry["eccCorrectedVolatile"] == 0
    del gpu.field_errors[real.NVML_FI_DEV_POWER_INSTANT]
    assert src.read()["gpus"][0]["powerDrawInstantWatts"] == 142.33


def test_per_process_utilization_keeps_the_last_timestamp_nvtop_91() -> None:
    gpu = FakeGpu(processes=[(5762, 1024), (6000, 2048)], samples=[(5762, 100, 40, 10), (5762, 200, 55, 12)])
    clock = [0.0]
    src = NvidiaSource(interval_sec=1.0, process_interval_sec=5.0, nvml=FakeNvml([gpu]), clock=lambda: clock[0],
                       name_of_pid=lambda pid: None)
    procs = src.read()["gpus"][0]["processes"]
    assert [(p["pid"], p["smUtilization"], p["memUtilization"]) for p in procs] == [(5762, 55, 12), (6000, 0, 0)]
    clock[0] += 6  # next refresh: no sample since 200 µs, NVML says NotFound: both idle
    procs = src.read()["gpus"][0]["processes"]
    assert [(p["smUtilization"], p["memUtilization"]) for p in procs] == [(0, 0), (0, 0)]
    assert src.read()["gpus"][0]["fieldErrors"] == {}


def test_a_missing_newer_call_is_not_asked_again_once_the_fallback_answers(shared_dir: Path) -> None:
    src, fake = capture(shared_dir, "tesla-t4_telegraf")
    for _ in range(3):
        src.read()
    assert fake.calls.count("nvmlDeviceGetCurrentClocksEventReasons") == 1
    assert fake.calls.count("nvmlDeviceGetCurrentClocksThrottleReasons") == 3


def test_an_old_binding_without_the_newer_calls_and_fields_pynvml_11_4_1(monkeypatch: pytest.MonkeyPatch) -> None:
    """pynvml 11.4.1 (NGC containers, optimum-benchmark PR #240) has no remapped-rows call and no power fields."""
    fake = FakeNvml([FakeGpu()])
    monkeypatch.delattr(FakeNvml, "nvmlDeviceGetRemappedRows")
    monkeypatch.delattr(FakeNvml, "nvmlDeviceGetCurrentClocksEventReasons")
    del fake.NVML_FI_DEV_POWER_AVERAGE
    gpu = NvidiaSource(interval_sec=1.0, nvml=fake).read()["gpus"][0]
    assert gpu["available"] is True and gpu["fieldErrors"] == {}
    assert gpu["remappedRowsPending"] is None and gpu["unsupported"]["remappedRowsPending"] == "function_not_found"
    assert gpu["powerDrawAverageWatts"] is None and gpu["unsupported"]["powerDrawAverageWatts"] == "function_not_found"
    assert gpu["powerDrawInstantWatts"] == 142.33 and gpu["throttleReasons"] == []


def test_a_gpu_lost_during_the_throughput_read_carries_no_error_once_back() -> None:
    gpu = FakeGpu()
    src = NvidiaSource(interval_sec=1.0, nvml=FakeNvml([gpu]))
    src.read()
    src.read_pcie()
    gpu.lost = True
    src.read_pcie()
    assert src.read()["gpus"][0]["available"] is False
    gpu.lost = False
    back = src.read()["gpus"][0]
    assert back["available"] is True and back["fieldErrors"] == {} and back["pcieRxBytesPerSec"] is None
