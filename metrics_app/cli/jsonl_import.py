"""Loading a crawler's JSONL file (``flask metrics import``): every good line stored, every bad one
reported by line number, none of them stopping the rest. Rows go through the app's writer queue,
like every other producer's, so an import beside a running server shares its one writer per process.

Lines are validated one by one with ingest's own ``load_batch`` (so a line is accepted exactly when
``POST /metrics`` would accept it) and stored ``batch_rows`` at a time with ``store_rows`` (so a
re-import counts duplicates instead of storing twice).
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import BinaryIO, Callable

from ..ingest.problems import InvalidBatch, describe
from ..ingest.batches import parse_json
from ..ingest.validation import load_batch
from ..storage.write_queue import WriteQueue
from ..storage.writer import Row

BATCH_ROWS = 5_000
_QUOTED = re.compile(r"'[^']*'")


@dataclass
class ImportSummary:
    lines: int = 0
    loaded: int = 0
    duplicates: int = 0
    #: Older than raw retention: only in the rollup tiers; older than every tier: dropped.
    rollup_only: int = 0
    expired: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def reasons(self) -> Counter:
        """Skipped lines grouped by problem; quoted values are masked so that, say, every bad
        timestamp falls into one group whatever its text."""
        return Counter(_QUOTED.sub("'…'", "not valid JSON" if reason.startswith("Body is not valid JSON")
                                   else reason) for _, reason in self.skipped)


class JsonlImport:
    def __init__(self, writer: WriteQueue, max_batch: int, batch_rows: int = BATCH_ROWS,
                 progress: Callable[[int], None] = lambda _bytes: None) -> None:
        self.writer, self.max_batch, self.batch_rows, self.progress = writer, max_batch, batch_rows, progress
        self.summary = ImportSummary()

    def _store(self, rows: list[Row]) -> None:
        if rows:
            result = self.writer.submit(rows)
            self.summary.loaded += result.saved
            self.summary.duplicates += result.duplicates
            self.summary.rollup_only += result.rollup_only
            self.summary.expired += result.expired

    def run(self, stream: BinaryIO) -> ImportSummary:
        """A line may hold one record or an array of them, as the file tailers accept."""
        rows: list[Row] = []
        pending_bytes = 0
        for line_no, line in enumerate(stream, 1):
            self.summary.lines = line_no
            pending_bytes += len(line)
            text = line.strip()
            if not text:
                continue
            try:
                rows.extend(load_batch(parse_json(text), self.max_batch))
            except InvalidBatch as exc:
                self.summary.skipped.append((line_no, describe(exc)))
                continue
            if len(rows) >= self.batch_rows:
                self._store(rows)
                rows = []
                self.progress(pending_bytes)
                pending_bytes = 0
        self._store(rows)
        self.progress(pending_bytes)
        return self.summary
