"""AMD GPUs through the ``rocm-smi`` CLI, for machines without the ``amdsmi`` Python library.

rocm-smi takes 0.1–3 s per call, so it runs on its own slower interval in its own thread (the hub
gives every source one), with a timeout after which the whole process group is killed. Its JSON
keys changed across ROCm releases; every variant seen in the real outputs under
``../shared/fixtures/rocm-smi`` is listed in ``_KEYS``, the preferred name first, and keys are
compared without regard to case or spacing: ROCm 2.x printed "Temperature (Sensor edge) (c)" and
"Fan Speed (%)" where later releases print "(C)" and "Fan speed (%)".

rocm-smi's JSON has no ECC counts, retired pages or throttle reasons (its RAS table is printed
only as text), so those fields are null with ``not_reported`` here; amdsmi has some of them.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from typing import Any, Mapping

from .gpu_fields import DEPTH_KEYS, NOT_REPORTED, blank_gpu, fill_memory, mark_unsupported, number, pcie_generation

VENDOR = "AMD"
#: Only what the snapshot needs: ``-a``/``--showallinfo`` also reads firmware and topology and is slower.
FLAGS = ("--showproductname", "--showuniqueid", "--showuse", "--showmemuse", "--showtemp", "--showpower",
         "--showmaxpower", "--showclocks", "--showfan", "--showmeminfo", "vram", "--json")
#: Newer flags (energy, PCIe replays); a rocm-smi too old to know them refuses the whole command, so
#: they are dropped for good after an "unrecognized arguments" answer.
DEPTH_FLAGS = ("--showenergycounter", "--showreplaycount")

_KEYS: dict[str, tuple[str, ...]] = {
    "utilization": ("GPU use (%)",),
    # The memory controller's busy percent: "GPU memory use (%)" until ROCm 6.1 renamed it.
    "memoryUtilization": ("GPU Memory Read/Write Activity (%)", "GPU memory use (%)"),
    # MI300 reports no edge sensor, only junction.
    "temperature": ("Temperature (Sensor edge) (C)", "Temperature (Sensor junction) (C)"),
    # "Average ..." up to ROCm 6.0; MI300 on ROCm 6.x prints "Current Socket ..." instead.
    "powerDraw": ("Average Graphics Package Power (W)", "Current Socket Graphics Package Power (W)"),
    "powerLimit": ("Max Graphics Package Power (W)",),
    # AMD has one shader clock (sclk) where NVIDIA splits graphics and SM clocks: it fills both.
    "graphicsClock": ("sclk clock speed:",),
    "smClock": ("sclk clock speed:",),
    "memoryClock": ("mclk clock speed:",),
    "fanSpeed": ("Fan speed (%)",),
    "memoryTemperatureCelsius": ("Temperature (Sensor memory) (C)",),
    "pcieReplayCount": ("PCIe Replay Count",),
}
_INT_FIELDS = frozenset({"graphicsClock", "smClock", "memoryClock", "pcieReplayCount"})
#: "Card series" until ROCm 6.1, "Card Series" after; ROCm 4.3 put the vendor id ("0x1002") there.
_MODEL_KEYS = ("Device Name", "Card Series", "Card series")
_NUMBER = re.compile(r"^\(?\s*(-?\d+(?:\.\d+)?)")
#: "pcie clock level": "0 (8.0GT/s x16)", the link of the current PCIe DPM level.
_PCIE_LEVEL = re.compile(r"\(\s*(\d+(?:\.\d+)?)\s*GT/s\s*x(\d+)\s*\)", re.IGNORECASE)


class RocmSmiError(RuntimeError):
    """rocm-smi hung, could not start, or printed no JSON: the hub marks the AMD source failed."""


def normalize(key: str) -> str:
    """The key as compared: lower case, runs of spaces as one ("Fan Speed (%)" is "Fan speed (%)")."""
    return " ".join(key.split()).lower()


def value(card: Mapping[str, Any], *keys: str) -> float | None:
    """The first of ``keys`` holding a number: "45.0", "(1200Mhz)"; never "N/A" or "N/A (Secondary die)".

    ``card`` has normalized keys (see ``normalize``); ``keys`` are written as rocm-smi prints them.
    """
    for key in keys:
        match = _NUMBER.match(str(card.get(normalize(key), "")))
        if match:
            return number(match.group(1))
    return None


def _pcie_link(card: Mapping[str, Any]) -> tuple[int | None, int | None]:
    match = _PCIE_LEVEL.search(str(card.get(normalize("pcie clock level"), "")))
    if not match:
        return None, None
    return pcie_generation(float(match.group(1))), int(match.group(2))


def model_name(card: Mapping[str, Any]) -> str | None:
    for key in _MODEL_KEYS:
        name = str(card.get(normalize(key), "")).strip()
        if name and name != "N/A" and not name.lower().startswith("0x"):
            return name
    device_id = card.get("device id") or card.get("gpu id")
    return f"AMD GPU {device_id}" if device_id else None


def card_entry(index: int, raw: Mapping[str, Any]) -> dict[str, Any]:
    """One GPU entry from one ``cardN`` object of rocm-smi's JSON."""
    card = {normalize(str(key)): v for key, v in raw.items()}
    uuid = card.get("unique id")
    entry = blank_gpu(index, VENDOR, None if uuid in (None, "N/A") else str(uuid), model_name(card))
    for key, names in _KEYS.items():
        found = value(card, *names)
        entry[key] = int(found) if found is not None and key in _INT_FIELDS else found
    fill_memory(entry, value(card, "VRAM Total Memory (B)"), value(card, "VRAM Total Used Memory (B)"))
    if entry["memoryPercent"] is None:  # `rocm-smi -a` prints no VRAM bytes, ROCm 6.1 prints this
        entry["memoryPercent"] = value(card, "GPU Memory Allocated (VRAM%)")
    entry["pcieLinkGen"], entry["pcieLinkWidth"] = _pcie_link(card)
    # "Energy counter" alone is in units of a resolution rocm-smi does not print; the product is this.
    microjoules = value(card, "Accumulated Energy (uJ)")
    entry["energyJoules"] = None if microjoules is None else round(microjoules / 1e6, 3)
    # "Performance Level" (auto, high, manual) is a power policy, not a P-state: performanceState stays null.
    # rocm-smi's --showpids names processes but not the GPU they run on: nothing to attach per GPU.
    missing = [k for k in (*_KEYS, *DEPTH_KEYS, "memoryTotal", "memoryUsed", "memoryFree", "memoryPercent",
                           "processes") if entry[k] is None]
    mark_unsupported(entry, NOT_REPORTED, *missing)
    return entry


def parse(output: str) -> list[dict[str, Any]]:
    """Every ``cardN`` in rocm-smi's output, in card order; a warning line before the JSON is skipped.

    Stray top-level keys ("system" with the driver version and pids) are not GPUs and are ignored.
    """
    start = output.find("{")
    try:
        data, _end = json.JSONDecoder().raw_decode(output, start) if start >= 0 else (None, 0)
    except json.JSONDecodeError as exc:
        raise RocmSmiError(f"rocm-smi printed invalid JSON ({exc}): {output[:200]!r}") from exc
    if not isinstance(data, dict):
        raise RocmSmiError(f"rocm-smi printed no JSON object: {output[:200]!r}")
    cards = sorted((int(m.group(1)), card) for key, card in data.items()
                   if (m := re.fullmatch(r"card(\d+)", key)) and isinstance(card, dict))
    return [card_entry(index, card) for index, card in cards]


def run(argv: list[str], timeout: float) -> str:
    """Run rocm-smi in its own process group and kill the whole group when it hangs."""
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    except OSError as exc:
        raise RocmSmiError(f"cannot run {argv[0]}: {exc}") from exc
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise RocmSmiError(f"{argv[0]} did not answer within {timeout:g} s and was killed") from None
    text = out.decode("utf-8", errors="replace")
    if proc.returncode != 0 and "{" not in text:
        # A non-zero exit with JSON is normal (one unsupported query); without JSON it is a failure.
        detail = (err.decode("utf-8", errors="replace").strip() or text.strip())[-300:]
        raise RocmSmiError(f"{argv[0]} exited with {proc.returncode}: {detail}")
    return text


class RocmSmiSource:
    blocks_in_c = False  # its subprocess I/O is cooperative under gevent
    name = "amd"
    vendor = VENDOR

    def __init__(self, interval_sec: float, timeout_sec: float, executable: str = "rocm-smi") -> None:
        self.interval_sec, self._timeout, self._executable = interval_sec, timeout_sec, executable
        self._flags = (*FLAGS[:-1], *DEPTH_FLAGS, FLAGS[-1])
        self.available = False
        self.unavailable_reason: str | None = "rocm-smi not run yet"

    def read(self) -> dict[str, Any]:
        path = shutil.which(self._executable)  # looked up each read: an install later is picked up
        if path is None:
            self.available = False
            self.unavailable_reason = f"{self._executable} not found on PATH (and amdsmi not importable)"
            return {"gpus": []}
        try:
            output = run([path, *self._flags], self._timeout)
        except RocmSmiError as exc:
            if "unrecognized arguments" not in str(exc) or self._flags == FLAGS:
                raise
            self._flags = FLAGS  # an old rocm-smi: read what it knows
            output = run([path, *self._flags], self._timeout)
        gpus = parse(output)
        self.available = bool(gpus)
        self.unavailable_reason = None if gpus else "rocm-smi found no GPU"
        return {"gpus": gpus}
