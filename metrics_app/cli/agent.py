"""``flask agent push``: run this machine as a crawler of a remote service.

The GPUs are read by the same sources and hub as the service's live view (its own ``HubState``, so
nothing else of the app starts), converted by the local recorder's ``snapshot_to_records`` and
delivered by ``PushAgent``, which spools while the server is away. Tests swap the GPU sources
through ``app.extensions`` as for ``flask gpus show``.
"""
from __future__ import annotations

import logging
import platform

import click
from flask import current_app
from flask.cli import AppGroup

from ..agent.client import IngestClient
from ..agent.push import PushAgent
from ..agent.spool import Spool, SpoolBusy
from ..recording.recorder import NewSnapshots
from ..sampling.hub import HubState
from ..sampling.sources import gpu_sources
from .gpus import SOURCES_FACTORY_KEY

agent_cli = AppGroup("agent", help="Send this machine's GPU readings to a remote service.")


@agent_cli.command("push")
@click.option("--server", required=True, help="Base URL of the service, e.g. http://metrics:8000.")
@click.option("--token", help="Bearer token sent as Authorization (default AGENT_TOKEN).")
@click.option("--interval", type=click.FloatRange(min=0.05), default=10.0, show_default=True,
              help="Seconds between samples.")
@click.option("--spool", "spool_path",
              help="JSONL file holding batches while the server is unreachable (default AGENT_SPOOL_PATH).")
@click.option("--batch", type=click.IntRange(1), default=1000, show_default=True, help="Most records per POST.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Seconds to wait for the server's answer.")
@click.option("--hostname", default=platform.node, help="Hostname label of the records (default this host's name).")
@click.option("--count", type=click.IntRange(1), help="Stop after this many samples.")
@click.option("--once", is_flag=True, help="One sample, then exit (same as --count 1).")
def push(server: str, token: str | None, interval: float, spool_path: str, batch: int, timeout: float,
         hostname: str, count: int | None, once: bool) -> None:
    """Sample this machine's GPUs every --interval seconds and POST them to SERVER/metrics."""
    logging.getLogger("metrics_app.agent").setLevel(logging.INFO)
    config = current_app.config
    token, spool_path = token or config["AGENT_TOKEN"] or None, spool_path or config["AGENT_SPOOL_PATH"]
    try:
        spool = Spool(spool_path)
    except SpoolBusy as exc:
        raise click.ClickException(str(exc)) from None
    factory = current_app.extensions.get(SOURCES_FACTORY_KEY, gpu_sources)
    state = HubState(factory(config), config["SAMPLE_INTERVAL_SEC"], config["HISTORY_SECONDS"])
    state.start()
    if not state.latest().snapshot["gpus"]:
        reasons = "; ".join(f"{g.source.name}: {g.source.unavailable_reason or g.last_error or 'no GPU'}"
                            for g in state.gpu_sources()) or "every GPU vendor is disabled"
        click.echo(f"warning: no GPU found ({reasons}); samples will have nothing to send", err=True)
    agent = PushAgent(IngestClient(server, token, timeout), spool, NewSnapshots(lambda: state), hostname, batch)
    try:
        stats = agent.run(interval, 1 if once else count)
    except KeyboardInterrupt:
        stats = agent.stats
    finally:
        state.stop()
        spool.close()
    click.echo(f"{stats.samples} samples, {stats.records} records: {stats.sent} sent, {stats.dropped} rejected, "
               f"{spool.batches()} batches still spooled in {spool_path}")
