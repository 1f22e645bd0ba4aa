"""A fake ``amdsmi`` Python module (the real one needs ROCm), answering with a real RX 6600's values.

The values come from ``../shared/fixtures/amd-smi``: the Python ``amdsmi_get_gpu_metrics_info``
capture as-is, and the amd-smi CLI's ``metric`` / ``static`` / ``topology`` JSON for the calls the
CLI is built on, with the CLI's ``{"value", "unit"}`` wrappers taken off again (the CLI adds them;
the library returns bare numbers). Exceptions mirror amdsmi_exception.py: an error code per failure.
"""
from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any

RX6600 = "rx6600-navi23_luckylinux-supermicro-fan-control"


class AmdSmiException(Exception):
    pass


class AmdSmiLibraryException(AmdSmiException):
    def __init__(self, err_code: int) -> None:
        super().__init__(f"Error code:\n\t{err_code} | AMDSMI_STATUS")
        self.err_code = err_code

    def get_error_code(self) -> int:
        return self.err_code


NOT_SUPPORTED, NO_PERM, DRIVER_NOT_LOADED, UNKNOWN = 2, 10, 34, 0xFFFFFFFF


def unwrap(value: Any) -> Any:
    return value["value"] if isinstance(value, dict) and set(value) == {"value", "unit"} else value


def load_rx6600(amd_dir: Path) -> dict[str, Any]:
    """The capture files of one machine, by kind: metrics_info, metric, static, topology."""
    files = {"metrics_info": f"amdsmi-py_get_gpu_metrics_info_{RX6600}.json",
             "metric": f"amd-smi_metric_{RX6600}.json", "static": f"amd-smi_static_{RX6600}.json",
             "topology": f"amd-smi_topology_{RX6600}.json"}
    return {kind: json.loads((amd_dir / name).read_text()) for kind, name in files.items()}


class FakeAmdSmi(types.ModuleType):
    def __init__(self, capture: dict[str, Any], init_error: int | None = None) -> None:
        super().__init__("amdsmi")
        self.AmdSmiException, self.AmdSmiLibraryException = AmdSmiException, AmdSmiLibraryException
        self.capture, self.init_error = capture, init_error
        #: (function name, gpu index) -> error code; ("*", index) fails every call on that GPU.
        self.errors: dict[tuple[str, int], int] = {}
        self.processes: list[dict[str, Any]] = []
        self.calls: list[str] = []

    def _enter(self, fn: str, handle: int) -> tuple[dict[str, Any], dict[str, Any]]:
        self.calls.append(fn)
        code = self.errors.get((fn, handle), self.errors.get(("*", handle)))
        if code is not None:
            raise AmdSmiLibraryException(code)
        return self.capture["metric"][handle], self.capture["static"][handle]

    def amdsmi_init(self) -> None:
        if self.init_error is not None:
            raise AmdSmiLibraryException(self.init_error)

    def amdsmi_get_processor_handles(self) -> list[int]:
        return [link["gpu"] for link in self.capture["topology"]]

    def amdsmi_get_gpu_device_uuid(self, h: int) -> str:
        self._enter("amdsmi_get_gpu_device_uuid", h)
        raise AmdSmiLibraryException(NOT_SUPPORTED)  # the capture shows no uuid for this card

    def amdsmi_get_gpu_asic_info(self, h: int) -> dict[str, Any]:
        return dict(self._enter("amdsmi_get_gpu_asic_info", h)[1]["asic"])

    def amdsmi_get_gpu_metrics_info(self, h: int) -> dict[str, Any]:
        self._enter("amdsmi_get_gpu_metrics_info", h)
        return dict(self.capture["metrics_info"])

    def amdsmi_get_gpu_vram_usage(self, h: int) -> dict[str, int]:
        usage = self._enter("amdsmi_get_gpu_vram_usage", h)[0]["mem_usage"]
        return {"vram_total": unwrap(usage["total_vram"]), "vram_used": unwrap(usage["used_vram"])}

    def amdsmi_get_power_cap_info(self, h: int) -> dict[str, int]:
        limit = self._enter("amdsmi_get_power_cap_info", h)[1]["limit"]
        watts = {k: unwrap(limit[k]) for k in ("socket_power", "min_power", "max_power")}
        return {"power_cap": watts["socket_power"] * 1_000_000, "min_power_cap": watts["min_power"] * 1_000_000,
                "max_power_cap": watts["max_power"] * 1_000_000, "dpm_cap": 0, "power_cap_default": 0}

    def amdsmi_get_gpu_fan_speed(self, h: int, sensor: int) -> int:
        return self._enter("amdsmi_get_gpu_fan_speed", h)[0]["fan"]["speed"]

    def amdsmi_get_gpu_fan_speed_max(self, h: int, sensor: int) -> int:
        return self._enter("amdsmi_get_gpu_fan_speed_max", h)[0]["fan"]["max"]

    def amdsmi_get_gpu_process_list(self, h: int) -> list[dict[str, Any]]:
        self._enter("amdsmi_get_gpu_process_list", h)
        return list(self.processes)

    def amdsmi_get_pcie_info(self, h: int) -> dict[str, Any]:
        metric, static = self._enter("amdsmi_get_pcie_info", h)
        bus, pcie = static["bus"], metric["pcie"]
        return {"pcie_static": {"max_pcie_width": bus["max_pcie_width"],
                                "max_pcie_speed": unwrap(bus["max_pcie_speed"]) * 1000,  # GT/s -> MT/s
                                "pcie_interface_version": 4, "slot_type": 0},
                "pcie_metric": {"pcie_width": pcie["width"], "pcie_speed": unwrap(pcie["speed"]) * 1000,
                                "pcie_bandwidth": pcie["bandwidth"], "pcie_replay_count": pcie["replay_count"]}}

    def amdsmi_get_gpu_ecc_enabled(self, h: int) -> int:
        self._enter("amdsmi_get_gpu_ecc_enabled", h)
        raise AmdSmiLibraryException(NOT_SUPPORTED)  # static "ras": ecc_block_state N/A on this RDNA2 card

    def amdsmi_get_gpu_total_ecc_count(self, h: int) -> dict[str, int]:
        ecc = self._enter("amdsmi_get_gpu_total_ecc_count", h)[0]["ecc"]
        return {"correctable_count": ecc["total_correctable_count"],
                "uncorrectable_count": ecc["total_uncorrectable_count"], "deferred_count": ecc["total_deferred_count"]}

    def amdsmi_get_energy_count(self, h: int) -> dict[str, Any]:
        joules = unwrap(self._enter("amdsmi_get_energy_count", h)[0]["energy"]["total_energy_consumption"])
        resolution = 15.3  # µJ per count, as amdsmi reports for most parts
        return {"energy_accumulator": int(joules * 1e6 / resolution), "counter_resolution": resolution,
                "timestamp": 0}
