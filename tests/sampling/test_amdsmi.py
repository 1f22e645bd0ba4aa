"""The amdsmi reader on a fake library answering with a real RX 6600's captured values."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from config import TestConfig
from metrics_app.sampling import sources
from metrics_app.sampling.amdsmi_reader import AmdSmiSource
from metrics_app.sampling.gpu_fields import DEPTH_KEYS, GPU_KEYS
from metrics_app.sampling.rocm import RocmSmiSource

from .fakes_amdsmi import DRIVER_NOT_LOADED, RX6600, UNKNOWN, FakeAmdSmi, load_rx6600, unwrap

MIB = 1024 * 1024


@pytest.fixture
def amd_dir(shared_dir: Path) -> Path:
    return shared_dir / "fixtures" / "amd-smi"


@pytest.fixture
def fake(amd_dir: Path) -> FakeAmdSmi:
    return FakeAmdSmi(load_rx6600(amd_dir))


def test_rx6600_values_from_the_captures(fake: FakeAmdSmi) -> None:
    fake.processes = [{"name": "python3", "pid": 4242, "mem": 0,
                       "memory_usage": {"gtt_mem": 0, "cpu_mem": 0, "vram_mem": 512 * MIB}}]
    src = AmdSmiSource(interval_sec=1.0, amdsmi=fake)
    (gpu,) = src.read()["gpus"]
    assert src.available is True and tuple(gpu) == GPU_KEYS
    assert gpu["model"] == "Navi 23 [Radeon RX 6600/6600 XT" and gpu["vendor"] == "AMD"  # sic, as captured
    # amd-smi metric: 8176 MB total, 202 MB used, 7974 MB free; static: socket power cap 100 W
    assert (gpu["memoryTotal"], gpu["memoryUsed"], gpu["memoryFree"]) == (8176 * MIB, 202 * MIB, 7974 * MIB)
    assert gpu["memoryPercent"] == 2.5 and gpu["powerLimit"] == 100.0 and gpu["fanSpeed"] == 0.0
    # amdsmi_get_gpu_metrics_info: current_socket_power is "N/A" on RDNA2, the average is 4 W
    assert (gpu["utilization"], gpu["memoryUtilization"], gpu["temperature"], gpu["powerDraw"]) == (0, 0, 37, 4)
    assert (gpu["graphicsClock"], gpu["smClock"], gpu["memoryClock"]) == (700, 700, 96)
    assert gpu["processes"] == [{"pid": 4242, "name": "python3", "usedMemory": 512 * MIB, "smUtilization": None,
                                 "memUtilization": None}]
    assert gpu["uuid"] is None and gpu["unsupported"]["uuid"] == "not_supported"
    assert {k: v for k, v in gpu["unsupported"].items() if k not in DEPTH_KEYS} == {"uuid": "not_supported"}


def test_rx6600_depth_fields_from_the_captures(fake: FakeAmdSmi) -> None:
    """amd-smi metric: PCIe x8 at 16 GT/s (gen 4) of x16 max, ECC totals 0, energy 0.0 J, mem 32 °C."""
    (gpu,) = AmdSmiSource(interval_sec=1.0, amdsmi=fake).read()["gpus"]
    assert (gpu["pcieLinkGen"], gpu["pcieLinkGenMax"], gpu["pcieLinkWidth"], gpu["pcieLinkWidthMax"]) == (4, 4, 8, 16)
    assert gpu["pcieReplayCount"] is None and gpu["unsupported"]["pcieReplayCount"] == "not_reported"
    assert (gpu["eccCorrectedVolatile"], gpu["eccUncorrectedVolatile"]) == (0, 0)  # present, and 0
    assert gpu["eccEnabled"] is None and gpu["unsupported"]["eccEnabled"] == "not_supported"
    assert gpu["eccCorrectedAggregate"] is None and gpu["unsupported"]["eccCorrectedAggregate"] == "not_reported"
    assert gpu["energyJoules"] == 0.0 and gpu["memoryTemperatureCelsius"] == 32
    assert gpu["throttled"] is False and gpu["throttleReasons"] == []
    # "AMDSMI_DEV_PERF_LEVEL_AUTO" is a policy, not a P-state
    assert gpu["performanceState"] is None and gpu["unsupported"]["performanceState"] == "not_reported"
    assert gpu["fieldErrors"] == {}


def test_older_amdsmi_without_a_call_marks_it_function_not_found(fake: FakeAmdSmi,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(FakeAmdSmi, "amdsmi_get_energy_count")
    (gpu,) = AmdSmiSource(interval_sec=1.0, amdsmi=fake).read()["gpus"]
    assert gpu["energyJoules"] is None and gpu["unsupported"]["energyJoules"] == "function_not_found"
    assert gpu["available"] is True


def test_one_failing_call_is_a_field_error_not_a_failed_gpu(fake: FakeAmdSmi) -> None:
    fake.errors[("amdsmi_get_gpu_total_ecc_count", 0)] = UNKNOWN
    (gpu,) = AmdSmiSource(interval_sec=1.0, amdsmi=fake).read()["gpus"]
    assert gpu["available"] is True and gpu["temperature"] == 37
    assert gpu["eccCorrectedVolatile"] is None and set(gpu["fieldErrors"]) == {"eccCorrectedVolatile",
                                                                                  "eccUncorrectedVolatile"}


def test_no_identity_call_answering_fails_the_gpu(fake: FakeAmdSmi) -> None:
    fake.errors[("amdsmi_get_gpu_device_uuid", 0)] = fake.errors[("amdsmi_get_gpu_asic_info", 0)] = UNKNOWN
    src = AmdSmiSource(interval_sec=1.0, amdsmi=fake)
    (gpu,) = src.read()["gpus"]
    assert gpu["available"] is False and gpu["error"].startswith("amdsmi: ") and gpu["temperature"] is None
    fake.errors.clear()
    assert src.read()["gpus"][0]["model"] == "Navi 23 [Radeon RX 6600/6600 XT"  # asked again, not cached


def test_na_in_the_metrics_table_is_null_with_a_reason(fake: FakeAmdSmi) -> None:
    fake.capture["metrics_info"].update(temperature_edge="N/A", temperature_hotspot="N/A")
    (gpu,) = AmdSmiSource(interval_sec=1.0, amdsmi=fake).read()["gpus"]
    assert gpu["temperature"] is None and gpu["unsupported"]["temperature"] == "not_reported"


def test_a_failing_gpu_is_listed_unavailable_and_retried(fake: FakeAmdSmi) -> None:
    src = AmdSmiSource(interval_sec=1.0, amdsmi=fake)
    src.read()
    fake.errors[("*", 0)] = UNKNOWN
    (gpu,) = src.read()["gpus"]
    assert gpu["available"] is False and gpu["error"].startswith("amdsmi: ")
    assert gpu["model"] == "Navi 23 [Radeon RX 6600/6600 XT" and gpu["temperature"] is None
    del fake.errors[("*", 0)]
    assert src.read()["gpus"][0]["available"] is True


def test_init_failure_is_a_reason_and_retried_later(fake: FakeAmdSmi) -> None:
    now = [0.0]
    fake.init_error = DRIVER_NOT_LOADED
    src = AmdSmiSource(interval_sec=1.0, amdsmi=fake, clock=lambda: now[0])
    assert src.read() == {"gpus": []} and src.available is False
    assert src.unavailable_reason.startswith("amdsmi init failed: AmdSmiLibraryException")
    fake.init_error = None
    assert src.read() == {"gpus": []}  # not retried within the minute
    now[0] = 61.0
    assert len(src.read()["gpus"]) == 1 and src.available is True


def test_the_four_captures_agree(amd_dir: Path) -> None:
    """The pprint original equals its JSON conversion; topology, static and metric describe one GPU."""
    capture = load_rx6600(amd_dir)
    pyrepr = (amd_dir / f"amdsmi-py_get_gpu_metrics_info_{RX6600}.pyrepr.txt").read_text()
    assert ast.literal_eval(pyrepr) == capture["metrics_info"]
    assert capture["topology"][0]["bdf"] == capture["static"][0]["bus"]["bdf"] == "0000:0b:00.0"
    assert unwrap(capture["metric"][0]["usage"]["gfx_activity"]) == 1
    assert unwrap(capture["metric"][0]["temperature"]["edge"]) == 36
    assert json.dumps(capture["static"][0]["driver"]) == '{"name": "amdgpu", "version": "7.0.0-3-pve"}'


@pytest.mark.parametrize("importable, kind", [(True, AmdSmiSource), (False, RocmSmiSource)])
def test_amdsmi_preferred_over_rocm_smi(monkeypatch: pytest.MonkeyPatch, importable: bool, kind: type) -> None:
    monkeypatch.setattr(sources, "amdsmi_importable", lambda: importable)
    config = {k: getattr(TestConfig, k) for k in dir(TestConfig) if k.isupper()} | {"ENABLE_AMD": True}
    (amd,) = sources.gpu_sources(config)
    assert isinstance(amd, kind) and amd.vendor == "AMD"
