"""``GET /metrics?format=csv|ndjson`` and ``flask metrics export``: every matching record, streamed.

Records are read in keyset pages of ``PAGE_ROWS`` through the listing's own query (``list_records``
with its cursor), so an export of millions of rows holds one page at a time, costs the same per page
at the end as at the start, and neither skips nor repeats a row when records arrive meanwhile.
"""
from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from typing import Any, Iterator

import orjson
from flask import Response, stream_with_context

from ..storage.kinds import KINDS
from .records import list_records
from .series import Series

PAGE_ROWS = 5_000
#: One column per distinct kind field (``usedMiB`` serves memory and process records), then a
#: process's ``pid`` and ``name``.
FIELD_COLUMNS = (*dict.fromkeys(field for kind in KINDS.values() for field in kind.fields), "pid", "name")
CSV_COLUMNS = ("timestamp", "hostname", "gpuIndex", "gpuId", "gpuName", "metric", *FIELD_COLUMNS)
MIMETYPES = {"csv": "text/csv", "ndjson": "application/x-ndjson"}


def _csv_page(items: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for item in items:
        payload = item["payload"]
        writer.writerow([item["timestamp"], item["hostname"], item["gpuIndex"], item["gpuId"],
                         item["gpuName"], item["metric"], *(payload.get(name) for name in FIELD_COLUMNS)])
    return buffer.getvalue().encode()


def _ndjson_page(items: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(item) + b"\n" for item in items)


class Export:
    """Iterating yields the file's bytes page by page; ``rows`` counts the records written so far."""

    def __init__(self, args: dict[str, Any], series: dict[int, Series], fmt: str) -> None:
        self.args = {**args, "limit": PAGE_ROWS}
        self.series, self.fmt, self.rows = series, fmt, 0

    def __iter__(self) -> Iterator[bytes]:
        encode = _csv_page if self.fmt == "csv" else _ndjson_page
        if self.fmt == "csv":
            yield (",".join(CSV_COLUMNS) + "\n").encode()
        args = self.args
        while True:
            page = list_records(args, self.series)
            self.rows += page["count"]
            if page["items"]:
                yield encode(page["items"])
            if page["next_cursor"] is None:
                return
            args = {**args, "cursor": page["next_cursor"]}


def export_response(args: dict[str, Any], series: dict[int, Series]) -> Response:
    fmt = args["format"]
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Response(stream_with_context(iter(Export(args, series, fmt))), mimetype=MIMETYPES[fmt],
                    headers={"Content-Disposition": f'attachment; filename="metrics-{stamp}.{fmt}"'})
