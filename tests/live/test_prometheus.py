"""Prometheus exposition: names and units, unsupported fields absent, and a real Prometheus scrape."""
from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from metrics_app.extensions import hub

from ..fakes import HOST_FRAGMENT, StaticGpuSource, StaticSource, gpu_entry
from ..server import GunicornServer, free_port


@pytest.fixture
def exposition(app, client):
    state = hub.init_app(app, sources=[
        StaticSource("host", HOST_FRAGMENT),
        StaticGpuSource("nvidia", "NVIDIA", [
            gpu_entry(0),
            gpu_entry(1, fanSpeed=None, unsupported={"fanSpeed": "not_supported"}),
            gpu_entry(2, available=False, error="GPU is lost", utilization=None, temperature=None),
        ]),
    ])
    for source_state in state.states:
        source_state.poll(state.clock)
    state.tick()
    response = client.get("/api/prometheus")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return response.data.decode()


def samples(text: str) -> dict[tuple[str, str], float]:
    """{(metric name, gpu label or hostname): value}"""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, sample.labels.get("gpu", "host"))] = sample.value
    return out


def test_host_and_gpu_readings_in_base_units(exposition):
    values = samples(exposition)
    assert values[("host_memory_total_bytes", "host")] == 17179869184
    assert values[("host_cpu_utilization_ratio", "host")] == pytest.approx(0.452)
    assert values[("host_cpu_frequency_hertz", "host")] == 3.2e9
    assert values[("gpu_temperature_celsius", "0")] == 65
    assert values[("gpu_power_draw_watts", "0")] == 350.0
    assert values[("gpu_utilization_ratio", "0")] == 0.75
    assert values[("gpu_memory_clock_hertz", "0")] == 10501e6
    assert values[("gpu_available", "2")] == 0.0


def test_unsupported_and_failed_fields_are_absent_never_zero(exposition):
    values = samples(exposition)
    assert ("gpu_fan_speed_ratio", "0") in values
    assert ("gpu_fan_speed_ratio", "1") not in values
    assert ("gpu_temperature_celsius", "2") not in values


def test_gpu_series_carry_identifying_labels(exposition):
    family = next(f for f in text_string_to_metric_families(exposition) if f.name == "gpu_temperature_celsius")
    labels = family.samples[0].labels
    assert labels["uuid"] == "GPU-00000000" and labels["vendor"] == "NVIDIA"
    assert labels["name"] == "NVIDIA GeForce RTX 4090" and labels["hostname"]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool absent (Debian package 'prometheus'; .ci/run installs it)")
@pytest.mark.parametrize("which", ["exposition", "depth_exposition"])
def test_promtool_accepts_the_exposition(which, request):
    exposition = request.getfixturevalue(which)
    result = subprocess.run(["promtool", "check", "metrics"], input=exposition.encode(), capture_output=True)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus absent (Debian package 'prometheus'; .ci/run installs it)")
def test_a_real_prometheus_scrapes_the_running_service(tmp_path):
    with GunicornServer(tmp_path) as server:
        prom_port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: gpu-metrics\n    metrics_path: /api/prometheus\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{server.port}']\n")
        prom = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "wb"))
        try:
            api = f"http://127.0.0.1:{prom_port}/api/v1"
            deadline, target, result = time.monotonic() + 30, None, []
            while time.monotonic() < deadline and not result:
                time.sleep(0.5)
                try:
                    targets = json.load(urllib.request.urlopen(f"{api}/targets"))["data"]["activeTargets"]
                    target = targets[0] if targets else None
                    query = urllib.parse.quote("host_memory_total_bytes")
                    result = json.load(urllib.request.urlopen(f"{api}/query?query={query}"))["data"]["result"]
                except OSError:
                    continue
            assert target is not None and target["health"] == "up", (target, (tmp_path / "prometheus.log").read_text())
            assert float(result[0]["value"][1]) > 0
        finally:
            prom.terminate()
            prom.wait(10)


DEPTH = dict(pcieLinkGen=1, pcieLinkGenMax=4, pcieLinkWidth=16, pcieLinkWidthMax=16,
             pcieTxBytesPerSec=1066699 * 1024, pcieRxBytesPerSec=14742333 * 1024, pcieReplayCount=3,
             eccEnabled=True, eccCorrectedVolatile=2, eccUncorrectedVolatile=0, eccCorrectedAggregate=9,
             eccUncorrectedAggregate=1, remappedRowsCorrectable=0, remappedRowsUncorrectable=1,
             remappedRowsPending=True, remappedRowsFailure=False, throttleReasons=["gpu_idle", "sw_power_cap"],
             throttled=True, powerDrawAverageWatts=139.62, powerDrawInstantWatts=142.33, energyJoules=123456.789,
             encoderUtilization=12, decoderUtilization=34, performanceState=2, memoryTemperatureCelsius=44,
             xidErrors={"count": 2, "last": 79, "lastAt": "2026-12-01T22:00:00.000+00:00"})


@pytest.fixture
def depth_exposition(app, client):
    state = hub.init_app(app, sources=[StaticGpuSource("nvidia", "NVIDIA", [
        gpu_entry(0, **DEPTH),
        gpu_entry(1, eccEnabled=False, eccCorrectedVolatile=None, throttleReasons=None, xidErrors=None,
                  unsupported={"eccCorrectedVolatile": "ecc_disabled", "throttleReasons": "not_supported"}),
    ])])
    for source_state in state.states:
        source_state.poll(state.clock)
    state.tick()
    return client.get("/api/prometheus").data.decode()


def labelled(text: str) -> dict[tuple, float]:
    """{(sample name, gpu, the other non-identity labels...): value}"""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            extra = tuple(v for k, v in sorted(sample.labels.items()) if k not in ("gpu", "uuid", "name", "vendor",
                                                                                    "hostname"))
            out[(sample.name, sample.labels.get("gpu"), *extra)] = sample.value
    return out


def test_depth_metrics_in_base_units(depth_exposition):
    values = labelled(depth_exposition)
    assert values[("gpu_pcie_link_generation", "0")] == 1 and values[("gpu_pcie_link_width", "0")] == 16
    assert values[("gpu_pcie_rx_bytes_per_second", "0")] == 14742333 * 1024
    assert values[("gpu_ecc_errors_total", "0", "aggregate", "uncorrected")] == 1
    assert values[("gpu_ecc_errors_total", "0", "volatile", "corrected")] == 2
    assert values[("gpu_remapped_rows_total", "0", "uncorrectable")] == 1
    assert values[("gpu_throttle_reason", "0", "sw_power_cap")] == 1
    assert values[("gpu_throttle_reason", "0", "hw_slowdown")] == 0
    assert values[("gpu_energy_joules_total", "0")] == 123456.789
    assert values[("gpu_power_draw_average_watts", "0")] == 139.62
    assert values[("gpu_encoder_utilization_ratio", "0")] == 0.12
    assert values[("gpu_decoder_utilization_ratio", "0")] == 0.34
    assert values[("gpu_performance_state", "0")] == 2
    assert values[("gpu_memory_temperature_celsius", "0")] == 44
    assert values[("gpu_xid_errors_total", "0")] == 2 and values[("gpu_last_xid", "0")] == 79


def test_depth_metrics_a_gpu_cannot_give_are_absent(depth_exposition):
    values = labelled(depth_exposition)
    assert ("gpu_ecc_errors_total", "1", "volatile", "corrected") not in values  # ECC off: no count, not 0
    assert not any(key[0] == "gpu_throttle_reason" and key[1] == "1" for key in values)
    assert ("gpu_xid_errors_total", "1") not in values
