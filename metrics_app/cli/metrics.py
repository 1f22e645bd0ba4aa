"""``flask metrics import FILE`` and ``flask metrics export``: history in and out as files.

Both go through the service's own paths: import through ingest's validation and writer, export
through ``GET /metrics``'s parameter schema and streaming export, so a file behaves exactly like
the equivalent HTTP calls.
"""
from __future__ import annotations

import os
import sys
from typing import Any, BinaryIO

import click
from flask import current_app
from flask.cli import AppGroup
from werkzeug.datastructures import MultiDict

from ..errors import ApiError
from ..ingest.problems import describe_problems
from ..query.export import Export
from ..query.params import MetricsQuerySchema, parse_args
from ..query.series import find_series
from ..storage import WriteUnavailable, write_queue
from .jsonl_import import BATCH_ROWS, ImportSummary, JsonlImport

metrics_cli = AppGroup("metrics", help="Import and export crawler history.")
_QUERY_ARGS = MetricsQuerySchema()


def _print_summary(path: str, summary: ImportSummary, show: int) -> None:
    old = (f", {summary.rollup_only} older than raw retention kept only as rollups" if summary.rollup_only else "") + (
        f", {summary.expired} older than every tier dropped" if summary.expired else "")
    click.echo(f"{path}: {summary.lines} lines, {summary.loaded} records loaded, "
               f"{summary.duplicates} duplicates, {len(summary.skipped)} lines skipped{old}")
    if not summary.skipped:
        return
    click.echo("skipped lines by reason:")
    for reason, count in summary.reasons().most_common():
        click.echo(f"  {count:>8}  {reason}")
    for line_no, reason in summary.skipped[:show]:
        click.echo(f"  line {line_no}: {reason}")
    if len(summary.skipped) > show:
        click.echo(f"  ... and {len(summary.skipped) - show} more skipped lines")


@metrics_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--batch", "batch_rows", type=click.IntRange(1), default=BATCH_ROWS, show_default=True,
              help="Records stored per transaction.")
@click.option("--show-skipped", type=click.IntRange(0), default=20, show_default=True,
              help="Skipped lines to list one by one (all are counted by reason).")
def import_command(path: str, batch_rows: int, show_skipped: int) -> None:
    """Load a crawler's JSONL file (one record per line); bad lines are skipped and reported."""
    with open(path, "rb") as stream, click.progressbar(length=os.path.getsize(path), label="importing",
                                                       file=sys.stderr) as bar:
        job = JsonlImport(write_queue(), current_app.config["MAX_BATCH"], batch_rows, bar.update)
        try:
            summary = job.run(stream)
        except WriteUnavailable as exc:
            raise click.ClickException(f"the database refused the write after {job.summary.loaded} records "
                                       f"(line {job.summary.lines}): {exc}") from None
    current_app.extensions["fleet"].flush()  # with REDIS_URL: the running instances' live views get the records
    _print_summary(path, summary, show_skipped)


def _query(options: dict[str, Any]) -> dict[str, Any]:
    """The options as ``GET /metrics`` parameters, validated by the same schema."""
    given = MultiDict({name: str(value) for name, value in options.items() if value is not None})
    try:
        return parse_args(_QUERY_ARGS, given)
    except ApiError as exc:
        raise click.UsageError(f"{exc.message} ({describe_problems(exc.details)})") from None


@metrics_cli.command("export")
@click.option("--format", "fmt", type=click.Choice(("csv", "ndjson")), default="csv", show_default=True)
@click.option("--output", "-o", type=click.File("wb"), default="-", help="File to write (default stdout).")
@click.option("--hostname")
@click.option("--gpu-index", type=int)
@click.option("--gpu-id")
@click.option("--metric")
@click.option("--start", help="Inclusive lower bound, ISO 8601 (no offset = UTC).")
@click.option("--end", help="Inclusive upper bound, ISO 8601 (no offset = UTC).")
@click.option("--order", type=click.Choice(("asc", "desc")), default="asc", show_default=True)
def export_command(fmt: str, output: BinaryIO, gpu_index: int | None, gpu_id: str | None,
                   **filters: Any) -> None:
    """Write every matching record, as GET /metrics?format=csv|ndjson would stream it."""
    args = _query({**filters, "format": fmt, "gpuIndex": gpu_index, "gpuId": gpu_id})
    export = Export(args, find_series(args), fmt)
    for chunk in export:
        output.write(chunk)
    output.flush()
    click.echo(f"exported {export.rows} records", err=True)
