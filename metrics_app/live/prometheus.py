"""Prometheus exposition of the latest live snapshot (``GET /api/prometheus`` by default).

A collector reads the hub's newest frame at scrape time, so a scrape never touches hardware. Names
follow Prometheus conventions: base units in the name (bytes, celsius, watts, hertz, seconds) and
ratios (0–1) instead of percentages. A value the hardware does not report is left out, never 0.
"""
from __future__ import annotations

import platform
from typing import Any, Callable, Iterator

from flask import Flask, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ..auth_groups import READ, requires
from ..extensions import hub
from ..sampling.hub import HubState
from ..sampling.nvidia_health import THROTTLE_REASONS

Scale = Callable[[Any], float]


def _same(v: Any) -> float:
    return float(v)


def _percent_to_ratio(v: Any) -> float:
    return float(v) / 100.0


def _mhz_to_hertz(v: Any) -> float:
    return float(v) * 1e6


# (metric name, help, snapshot field, scale)
HOST_METRICS: dict[str, tuple[tuple[str, str, str, Scale], ...]] = {
    "cpu": (
        ("host_cpu_utilization_ratio", "CPU utilization since the previous sample (0-1).", "utilization", _percent_to_ratio),
        ("host_cpu_cores", "Logical CPU cores.", "cores", _same),
        ("host_cpu_frequency_hertz", "Current CPU frequency.", "frequency", _mhz_to_hertz),
        ("host_cpu_max_frequency_hertz", "Maximum CPU frequency.", "maxFrequency", _mhz_to_hertz),
    ),
    "memory": (
        ("host_memory_total_bytes", "Total physical memory.", "total", _same),
        ("host_memory_used_bytes", "Used physical memory.", "used", _same),
        ("host_memory_available_bytes", "Memory available without swapping.", "available", _same),
        ("host_swap_total_bytes", "Total swap.", "swapTotal", _same),
        ("host_swap_used_bytes", "Used swap.", "swapUsed", _same),
    ),
    "battery": (
        ("host_battery_level_ratio", "Battery charge (0-1).", "level", _percent_to_ratio),
        ("host_battery_charging", "1 when the battery is charging.", "charging", _same),
        ("host_battery_time_remaining_seconds", "Estimated battery time left.", "timeRemaining", _same),
    ),
}

GPU_METRICS: tuple[tuple[str, str, str, Scale], ...] = (
    ("gpu_utilization_ratio", "GPU core utilization (0-1).", "utilization", _percent_to_ratio),
    ("gpu_memory_utilization_ratio", "GPU memory controller utilization (0-1).", "memoryUtilization", _percent_to_ratio),
    ("gpu_memory_total_bytes", "GPU memory in total.", "memoryTotal", _same),
    ("gpu_memory_used_bytes", "GPU memory in use.", "memoryUsed", _same),
    ("gpu_memory_free_bytes", "GPU memory free.", "memoryFree", _same),
    ("gpu_temperature_celsius", "GPU temperature.", "temperature", _same),
    ("gpu_power_draw_watts", "GPU power draw.", "powerDraw", _same),
    ("gpu_power_limit_watts", "GPU power limit.", "powerLimit", _same),
    ("gpu_graphics_clock_hertz", "GPU graphics clock.", "graphicsClock", _mhz_to_hertz),
    ("gpu_sm_clock_hertz", "GPU SM clock.", "smClock", _mhz_to_hertz),
    ("gpu_memory_clock_hertz", "GPU memory clock.", "memoryClock", _mhz_to_hertz),
    ("gpu_fan_speed_ratio", "GPU fan speed (0-1 of maximum).", "fanSpeed", _percent_to_ratio),
    ("gpu_pcie_link_generation", "Current PCIe link generation (idle GPUs train down).", "pcieLinkGen", _same),
    ("gpu_pcie_link_generation_max", "Maximum PCIe link generation.", "pcieLinkGenMax", _same),
    ("gpu_pcie_link_width", "Current PCIe link width (lanes).", "pcieLinkWidth", _same),
    ("gpu_pcie_link_width_max", "Maximum PCIe link width (lanes).", "pcieLinkWidthMax", _same),
    ("gpu_pcie_tx_bytes_per_second", "PCIe transmit throughput.", "pcieTxBytesPerSec", _same),
    ("gpu_pcie_rx_bytes_per_second", "PCIe receive throughput.", "pcieRxBytesPerSec", _same),
    ("gpu_power_draw_average_watts", "GPU power draw averaged over the last second.", "powerDrawAverageWatts", _same),
    ("gpu_power_draw_instant_watts", "GPU instantaneous power draw.", "powerDrawInstantWatts", _same),
    ("gpu_encoder_utilization_ratio", "Video encoder utilization (0-1).", "encoderUtilization", _percent_to_ratio),
    ("gpu_decoder_utilization_ratio", "Video decoder utilization (0-1).", "decoderUtilization", _percent_to_ratio),
    ("gpu_encoder_sessions", "Active video encoder sessions.", "encoderSessions", _same),
    ("gpu_performance_state", "Performance state, 0 (P0, fastest) to 15.", "performanceState", _same),
    ("gpu_memory_temperature_celsius", "GPU memory (HBM) temperature.", "memoryTemperatureCelsius", _same),
    ("gpu_throttled", "1 when clocks are lowered for a reason other than idle or a clock setting.", "throttled", _same),
    ("gpu_ecc_enabled", "1 when ECC is on.", "eccEnabled", _same),
    ("gpu_remapped_rows_pending", "1 when a row remap waits for a GPU reset.", "remappedRowsPending", _same),
    ("gpu_remapped_rows_failure", "1 when a row remap failed (replace the GPU).", "remappedRowsFailure", _same),
    ("gpu_retired_pages_pending", "1 when a page retirement waits for a reboot.", "retiredPagesPending", _same),
)
# Monotonic counts: (name without _total, help, [(extra label values, snapshot field)], extra label names)
GPU_COUNTERS: tuple[tuple[str, str, tuple[tuple[tuple[str, ...], str], ...], list[str]], ...] = (
    ("gpu_pcie_replays", "PCIe replays (link-level retransmissions).", (((), "pcieReplayCount"),), []),
    ("gpu_ecc_errors", "ECC errors; volatile since the driver loaded, aggregate over the GPU's life.", (
        (("corrected", "volatile"), "eccCorrectedVolatile"), (("uncorrected", "volatile"), "eccUncorrectedVolatile"),
        (("corrected", "aggregate"), "eccCorrectedAggregate"),
        (("uncorrected", "aggregate"), "eccUncorrectedAggregate")), ["type", "scope"]),
    ("gpu_remapped_rows", "Memory rows remapped.", (
        (("correctable",), "remappedRowsCorrectable"), (("uncorrectable",), "remappedRowsUncorrectable")), ["type"]),
    ("gpu_retired_pages", "Memory pages retired.", (
        (("single_bit",), "retiredPagesSingleBit"), (("double_bit",), "retiredPagesDoubleBit")), ["cause"]),
    ("gpu_energy_joules", "Energy used since the driver loaded.", (((), "energyJoules"),), []),
)
GPU_LABELS = ["gpu", "uuid", "name", "vendor", "hostname"]


class SnapshotCollector(Collector):
    def __init__(self, state: Callable[[], HubState], hostname: str) -> None:
        self._state, self._hostname = state, hostname

    def collect(self) -> Iterator[GaugeMetricFamily]:
        frame = self._state().latest()
        if frame is None:
            return
        snapshot = frame.snapshot
        for section, metrics in HOST_METRICS.items():
            values = snapshot.get(section) or {}
            for name, doc, field, scale in metrics:
                if values.get(field) is not None:
                    family = GaugeMetricFamily(name, doc, labels=["hostname"])
                    family.add_metric([self._hostname], scale(values[field]))
                    yield family
        gpus = snapshot.get("gpus", [])
        for name, doc, field, scale in GPU_METRICS:
            family = GaugeMetricFamily(name, doc, labels=GPU_LABELS)
            for gpu in gpus:
                if gpu.get(field) is not None:
                    family.add_metric(self._gpu_labels(gpu), scale(gpu[field]))
            if family.samples:
                yield family
        yield from self._depth(gpus)
        up = GaugeMetricFamily("gpu_available", "1 when the GPU answers, 0 when it failed as a whole.",
                               labels=GPU_LABELS)
        for gpu in gpus:
            up.add_metric(self._gpu_labels(gpu), 1.0 if gpu.get("available", True) else 0.0)
        if up.samples:
            yield up

    def _depth(self, gpus: list[dict[str, Any]]) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """Counters, per-reason throttle flags and XIDs; a GPU that cannot say is left out of each."""
        for name, doc, fields, extra in GPU_COUNTERS:
            family = CounterMetricFamily(name, doc, labels=GPU_LABELS + extra)
            for gpu in gpus:
                for values, field in fields:
                    if gpu.get(field) is not None:
                        family.add_metric(self._gpu_labels(gpu) + list(values), float(gpu[field]))
            if family.samples:
                yield family
        reasons = GaugeMetricFamily("gpu_throttle_reason", "1 while this clock event reason is active.",
                                    labels=GPU_LABELS + ["reason"])
        xid_total = CounterMetricFamily("gpu_xid_errors", "XID errors since the service started.", labels=GPU_LABELS)
        last_xid = GaugeMetricFamily("gpu_last_xid", "The most recent XID code seen.", labels=GPU_LABELS)
        for gpu in gpus:
            labels = self._gpu_labels(gpu)
            active = gpu.get("throttleReasons")
            if active is not None and gpu.get("vendor") == "NVIDIA":  # AMD gives one flag, no reasons
                for _bit, reason in THROTTLE_REASONS:
                    reasons.add_metric(labels + [reason], 1.0 if reason in active else 0.0)
            xid = gpu.get("xidErrors")
            if xid is not None:
                xid_total.add_metric(labels, float(xid["count"]))
                if xid.get("last") is not None:
                    last_xid.add_metric(labels, float(xid["last"]))
        yield from (family for family in (reasons, xid_total, last_xid) if family.samples)

    def _gpu_labels(self, gpu: dict[str, Any]) -> list[str]:
        return [str(gpu.get("index")), gpu.get("uuid") or "", gpu.get("model") or "",
                gpu.get("vendor") or "", self._hostname]


def init_prometheus(app: Flask) -> None:
    """Expose the collector at ``PROMETHEUS_PATH``; a registry per app keeps test apps apart."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(hub.state, platform.node()))

    @requires(READ)
    def prometheus_metrics() -> Response:
        return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)

    app.add_url_rule(app.config["PROMETHEUS_PATH"], "prometheus_metrics", prometheus_metrics)
