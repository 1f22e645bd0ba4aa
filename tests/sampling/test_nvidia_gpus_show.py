"""``flask gpus show`` on a fake NVML: every GPU, every field, unsupported ones with their reason."""
from __future__ import annotations

import json

import pynvml as real

from metrics_app.cli.gpus import SOURCES_FACTORY_KEY
from metrics_app.sampling.nvidia import NvidiaSource
from metrics_app.sampling.rocm import RocmSmiError

from .fakes_nvml import MIB, FakeGpu, FakeNvml


class HungRocmSmi:
    name, vendor, interval_sec, available, unavailable_reason = "amd", "AMD", 5.0, True, None

    def read(self) -> dict:
        raise RocmSmiError("rocm-smi did not answer within 10 s and was killed")


def install(app, gpus: list[FakeGpu], extra: list | None = None) -> None:
    fake = FakeNvml(gpus)
    app.extensions[SOURCES_FACTORY_KEY] = lambda config: [
        NvidiaSource(interval_sec=1.0, nvml=fake, name_of_pid={5762: "python"}.get), *(extra or [])]


def test_show_prints_every_field_and_why_some_are_missing(app, runner) -> None:
    t4 = FakeGpu(name=b"Tesla T4", uuid=b"GPU-d37e67a5", processes=[(5762, 1005 * MIB)],
                 errors={"nvmlDeviceGetFanSpeed": real.NVML_ERROR_NOT_SUPPORTED})
    install(app, [FakeGpu(), t4], [HungRocmSmi()])
    result = runner.invoke(args=["gpus", "show"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "NVIDIA  nvidia  available    2 GPU(s)" in out
    assert "AMD     amd     available    RocmSmiError: rocm-smi did not answer within 10 s and was killed" in out
    assert "GPU 1  Tesla T4  [NVIDIA]  uuid GPU-d37e67a5" in out
    assert "    fanSpeed                 -- unsupported: not_supported" in out
    assert "    unsupported              fanSpeed=not_supported" in out
    assert "    memoryTotal              10240 MiB (10737418240 B)" in out
    assert "    powerDraw                142.3 W" in out and "    temperature              27 °C" in out
    assert "    processes                5762 python 1005 MiB" in out
    for key in ("memoryPercent", "utilization", "memoryUtilization", "powerLimit", "graphicsClock", "smClock",
                "memoryClock", "migDevices", "available", "error"):
        assert out.count(f"    {key:<24} ") == 2, key


def test_show_json_for_machines(app, runner) -> None:
    install(app, [FakeGpu(errors={"nvmlDeviceGetPowerUsage": real.NVML_ERROR_NOT_SUPPORTED})])
    result = runner.invoke(args=["gpus", "show", "--json"])
    data = json.loads(result.output)
    assert data["vendors"] == [{"source": "nvidia", "vendor": "NVIDIA", "available": True, "reason": None,
                                "error": None}]
    (gpu,) = data["gpus"]
    assert gpu["powerDraw"] is None and gpu["unsupported"] == {"powerDraw": "not_supported"}
    assert gpu["memoryUsed"] == 9184 * MIB


def test_show_without_any_gpu_says_why(app, runner) -> None:
    install(app, [])
    app.extensions[SOURCES_FACTORY_KEY] = lambda config: [
        NvidiaSource(interval_sec=1.0, nvml=FakeNvml([], init_error=real.NVML_ERROR_LIBRARY_NOT_FOUND))]
    out = runner.invoke(args=["gpus", "show"]).output
    assert out == ("NVIDIA  nvidia  unavailable  NVML init failed: NVML Shared Library Not Found\n\n"
                   "no GPU found\n")


def test_gpus_show_with_processes_null_prints_the_failed_gpu(app, runner) -> None:
    """Measured: `flask gpus show` crashed with "'NoneType' object is not iterable" on a failed GPU."""
    install(app, [FakeGpu(), FakeGpu(name=b"NVIDIA A100-SXM4-80GB", uuid=b"GPU-lost", lost=True)])
    for args in (["gpus", "show"], ["gpus", "show", "--json"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 0, result.output
    out = runner.invoke(args=["gpus", "show"]).output
    assert "GPU 1  None  [NVIDIA]  uuid None" in out
    assert "    error                    NVML: GPU is lost" in out
    assert out.count("    processes                ") == 2 and "    processes                --" in out
    gpus = json.loads(runner.invoke(args=["gpus", "show", "--json"]).output)["gpus"]
    assert gpus[1]["available"] is False and gpus[1]["processes"] is None


def test_gpus_show_prints_the_depth_fields(app, runner) -> None:
    gpu = FakeGpu(clock_events=0x1 | 0x4, errors={"nvmlDeviceGetTotalEnergyConsumption": real.NVML_ERROR_UNKNOWN})
    install(app, [gpu])
    out = runner.invoke(args=["gpus", "show"]).output
    assert "    throttleReasons          gpu_idle, sw_power_cap" in out and "    throttled                True" in out
    assert "    powerDrawAverageWatts    139.62 W" in out and "    memoryTemperatureCelsius 44 °C" in out
    assert "    energyJoules             -- failed: NVML: Unknown Error" in out
    assert "    fieldErrors              energyJoules=NVML: Unknown Error" in out
    assert "    eccUncorrectedAggregate  0" in out and "    pcieLinkGen              4" in out
