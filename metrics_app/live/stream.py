"""``WS /ws/metrics``: every client waits on the hub and is sent the same pre-serialized frame."""
from __future__ import annotations

import logging

from flask import current_app
from simple_websocket import ConnectionClosed, Server

from ..auth_groups import READ, requires
from ..extensions import hub, sock
from . import bp

log = logging.getLogger(__name__)


@sock.route("/ws/metrics", bp=bp)
@requires(READ, token_in_query=True)
def metrics_stream(ws: Server) -> None:
    """Send the latest snapshot at once, then each new one.

    A client that reads slowly only ever gets the newest frame (we remember the last ``seq`` sent and
    skip what it missed), and a send blocked past ``WS_SEND_TIMEOUT_SEC`` drops that client alone.
    """
    state = hub.state()
    config = current_app.config
    if ws.ping_interval:
        # Safe only with pings on: the reader thread then waits with select() and never hits this
        # timeout on an idle-but-healthy connection; only our blocked send() does.
        ws.sock.settimeout(config["WS_SEND_TIMEOUT_SEC"])
    wait = state.frame_wait_sec
    seq = 0
    try:
        frame = state.first_frame()
        while ws.connected:
            if frame is not None:
                ws.send(frame.text)
                seq = frame.seq
            frame = state.buffer.wait_newer(seq, wait)
    except (ConnectionClosed, OSError) as exc:
        log.debug("live client gone: %r", exc)
