"""``flask gpus show``: what the GPU readers see on this machine, to hold next to nvidia-smi or rocm-smi.

It builds the same sources the service would (from the configuration), reads each once and prints
every GPU, every field with its unit, which fields came back unsupported and why, and for each
vendor whether its stack is usable. Tests swap the sources through ``app.extensions``.
"""
from __future__ import annotations

import json
from typing import Any, Callable

import click
from flask import current_app
from flask.cli import AppGroup

from ..sampling.gpu_fields import GPU_KEYS
from ..sampling.sources import gpu_sources

#: ``app.extensions`` key of a ``config -> sources`` factory that replaces the real one (tests).
SOURCES_FACTORY_KEY = "gpu_sources_factory"
MIB = 1024 * 1024
_UNITS = {"memoryPercent": "%", "utilization": "%", "memoryUtilization": "%", "fanSpeed": "%",
          "temperature": "°C", "powerDraw": "W", "powerLimit": "W",
          "graphicsClock": "MHz", "smClock": "MHz", "memoryClock": "MHz",
          "pcieTxBytesPerSec": "B/s", "pcieRxBytesPerSec": "B/s", "powerDrawAverageWatts": "W",
          "powerDrawInstantWatts": "W", "energyJoules": "J", "encoderUtilization": "%", "decoderUtilization": "%",
          "memoryTemperatureCelsius": "°C"}
_HEADER_KEYS = ("index", "model", "vendor", "uuid", "unsupported", "fieldErrors")

gpus_cli = AppGroup("gpus", help="Inspect the GPU readers.")


def read_all() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One read of every GPU source: (per-vendor status, all GPU entries)."""
    factory: Callable[[Any], list[Any]] = current_app.extensions.get(SOURCES_FACTORY_KEY, gpu_sources)
    vendors, gpus = [], []
    for source in factory(current_app.config):
        error = None
        try:
            gpus.extend(source.read()["gpus"])
        except Exception as exc:  # noqa: BLE001 - a failing reader is exactly what this command must show
            error = f"{type(exc).__name__}: {exc}"
        vendors.append({"source": source.name, "vendor": source.vendor, "available": source.available,
                        "reason": source.unavailable_reason, "error": error})
    return vendors, gpus


def _value(key: str, value: Any) -> str:
    if key.startswith("memory") and key not in _UNITS and isinstance(value, int):
        return f"{value / MIB:.0f} MiB ({value} B)"
    return f"{value} {_UNITS[key]}" if key in _UNITS else str(value)


def _processes(procs: list[dict[str, Any]]) -> str:
    def memory(used: int | None) -> str:
        return "?" if used is None else f"{used / MIB:.0f} MiB"

    def busy(p: dict[str, Any]) -> str:
        sm, mem = (("?" if v is None else v) for v in (p.get("smUtilization"), p.get("memUtilization")))
        return "" if sm == mem == "?" else f" sm {sm} % mem {mem} %"
    return "; ".join(f"{p['pid']} {p['name'] or '?'} {memory(p['usedMemory'])}{busy(p)}" for p in procs) or "none"


def _xid(xid: dict[str, Any]) -> str:
    if not xid["count"]:
        return "none since start"
    return f"{xid['count']} since start, last XID {xid['last']} at {xid['lastAt']}"


def _shown(key: str, value: Any) -> str:
    """One field as printed; a null is "--" whatever the field (a failed GPU has every field null)."""
    if value is None:
        return "--"
    if key == "processes":
        return _processes(value)
    if key == "migDevices":
        return "; ".join(f"[{m['index']}] {m['uuid']} {_value('memoryUsed', m['memoryUsed'])} used of "
                         f"{_value('memoryTotal', m['memoryTotal'])}" for m in value) or "none"
    if key == "throttleReasons":
        return ", ".join(value) or "none"
    if key == "xidErrors":
        return _xid(value)
    return _value(key, value)


def _gpu_lines(gpu: dict[str, Any]) -> list[str]:
    lines = [f"GPU {gpu['index']}  {gpu['model']}  [{gpu['vendor']}]  uuid {gpu['uuid']}"]
    unsupported, errors = gpu.get("unsupported") or {}, gpu.get("fieldErrors") or {}
    for key in GPU_KEYS:
        if key in _HEADER_KEYS:
            continue
        if key in unsupported:
            shown = f"-- unsupported: {unsupported[key]}"
        elif key in errors:
            shown = f"-- failed: {errors[key]}"
        else:
            shown = _shown(key, gpu.get(key))
        lines.append(f"    {key:<24} {shown}")
    for key, found in (("unsupported", unsupported), ("fieldErrors", errors)):
        lines.append(f"    {key:<24} {', '.join(f'{k}={v}' for k, v in found.items()) or 'none'}")
    return lines


@gpus_cli.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
def show(as_json: bool) -> None:
    """Read every GPU once and print every field, unsupported ones with their reason."""
    vendors, gpus = read_all()
    if as_json:
        click.echo(json.dumps({"vendors": vendors, "gpus": gpus}, indent=2, ensure_ascii=False))
        return
    for v in vendors:
        state = "available" if v["available"] else "unavailable"
        detail = v["error"] or v["reason"] or f"{sum(g['vendor'] == v['vendor'] for g in gpus)} GPU(s)"
        click.echo(f"{v['vendor']:<7} {v['source']:<7} {state:<12} {detail}")
    for gpu in gpus:
        click.echo("")
        click.echo("\n".join(_gpu_lines(gpu)))
    if not gpus:
        click.echo("\nno GPU found")
