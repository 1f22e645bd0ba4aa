"""``GET /fleet`` (each host's GPUs, latest value of every metric, age and staleness) and
``WS /ws/fleet`` (the latest records at once, then each committed record, coalesced per client)."""
from __future__ import annotations

import logging
import time
from typing import Any

from flask import Response, current_app, g, request
from simple_websocket import ConnectionClosed, Server

from ..auth_groups import READ, requires
from ..extensions import sock
from ..jsonio import json_response
from ..storage.kinds import KINDS_BY_CODE
from ..storage.timefmt import iso_utc
from ..websocket import websocket_required
from . import EXTENSION_KEY, Fleet, bp
from .filters import FleetFilter, parse_filter
from .table import Entry, Frame, message

log = logging.getLogger(__name__)
STREAM_ENDPOINT = "fleet.fleet_stream"


def _fleet() -> Fleet:
    return current_app.extensions[EXTENSION_KEY]


@bp.before_request
def _filter_before_upgrade() -> None:
    """A bad filter is a 400 before the WebSocket handshake, not a socket closed after it."""
    g.fleet_filter = parse_filter(request.args)
    _fleet().fill_from_database()


def _stale_after_ms(interval_ms: float | None, bound_sec: float) -> float:
    """Three of the host's usual intervals, never more than the configured bound."""
    bound_ms = bound_sec * 1000
    return bound_ms if interval_ms is None else min(3 * interval_ms, bound_ms)


def _value(entry: Entry, now_ms: int, stale_ms: float) -> dict[str, Any]:
    fields = KINDS_BY_CODE[entry.key[2]].fields
    age_ms = max(0, now_ms - entry.ts_ms)
    return {"timestamp": entry.record["timestamp"], "age_sec": round(age_ms / 1000, 3),
            "stale": age_ms > stale_ms, **{name: entry.record[name] for name in fields}}


def fleet_view(fleet: Fleet, keep: FleetFilter) -> dict[str, Any]:
    _seq, entries = fleet.table.snapshot(keep)
    intervals = fleet.table.host_intervals()
    now_ms = int(time.time() * 1000)
    hosts: dict[str, dict[str, Any]] = {}
    for entry in entries:  # key order: host, GPU identity, metric, pid
        hostname, gpu_key, code, pid = entry.key
        interval = intervals.get(hostname)
        stale_ms = _stale_after_ms(interval, fleet.stale_after_sec)
        host = hosts.setdefault(hostname, {
            "hostname": hostname or None, "interval_sec": None if interval is None else round(interval / 1000, 3),
            "stale_after_sec": round(stale_ms / 1000, 3), "stale": True, "gpus": {}})
        gpu = host["gpus"].setdefault(gpu_key, {"gpuIndex": None, "gpuId": None, "gpuName": None, "stale": True,
                                                "metrics": {}, "processes": []})
        gpu["gpuIndex"] = entry.record["gpuIndex"] if entry.record["gpuIndex"] is not None else gpu["gpuIndex"]
        gpu["gpuId"] = entry.record["gpuId"] or gpu["gpuId"]
        gpu["gpuName"] = entry.record["gpuName"] or gpu["gpuName"]
        value = _value(entry, now_ms, stale_ms)
        if KINDS_BY_CODE[code].name == "process":
            if not value["stale"]:  # a process no longer reported has ended
                gpu["processes"].append({"pid": pid, **value})
            continue
        gpu["metrics"][KINDS_BY_CODE[code].name] = value
        gpu["stale"] = gpu["stale"] and value["stale"]
        host["stale"] = host["stale"] and value["stale"]
    out = [{**host, "gpus": list(host["gpus"].values())} for host in hosts.values()]
    return {"generated_at": iso_utc(now_ms), "hosts": out,
            "count": {"hosts": len(out), "gpus": sum(len(h["gpus"]) for h in out)}, "stream": fleet.status()}


@bp.get("/fleet")
@requires(READ)
def fleet_latest() -> Response:
    return json_response(fleet_view(_fleet(), g.fleet_filter))


def _coalesced(frames: list[Frame], keep: FleetFilter) -> list[Entry]:
    """Newest per key over the frames a client missed (later frames carry newer records)."""
    newest: dict[tuple, Entry] = {}
    for frame in frames:
        for entry in frame.matching(keep):
            newest[entry.key] = entry
    return list(newest.values())


@sock.route("/ws/fleet", bp=bp)
@requires(READ, token_in_query=True)
def fleet_stream(ws: Server) -> None:
    """``snapshot`` (the latest record per key) at once, then ``update`` messages.

    Like ``/ws/metrics``: a client that reads slowly is sent what changed, newest per key, when it
    catches up (never a backlog), and a send blocked past ``WS_SEND_TIMEOUT_SEC`` drops it alone.
    """
    keep: FleetFilter = g.fleet_filter
    table = _fleet().table
    if ws.ping_interval:  # as in /ws/metrics: only our blocked send() can hit this timeout
        ws.sock.settimeout(current_app.config["WS_SEND_TIMEOUT_SEC"])
    try:
        seq, entries = table.snapshot(keep)
        ws.send(message("snapshot", (e.text for e in entries)))
        while ws.connected:
            frames = table.wait_after(seq, 1.0)
            if frames == []:
                continue
            if frames is None:  # so far behind that the ring moved on: resend the table
                seq, entries = table.snapshot(keep)
            elif len(frames) == 1:
                seq, text = frames[0].seq, frames[0].text_for(keep)  # shared by every client asking alike
                if text is not None:
                    ws.send(text)
                continue
            else:
                seq, entries = frames[-1].seq, _coalesced(frames, keep)
            if entries:
                ws.send(message("update", (e.text for e in entries)))
    except (ConnectionClosed, OSError) as exc:
        log.debug("fleet client gone: %r", exc)


@bp.get("/ws/fleet")
@requires(READ)
def fleet_stream_plain_get() -> Response:
    return websocket_required("/fleet", "the latest values")
