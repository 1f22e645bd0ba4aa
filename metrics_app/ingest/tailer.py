"""JSONL file ingestion (the crawler's ws_out.jsonl / msg_out.jsonl): one JSON record per line.

Exactly-once across restarts: the byte offset after the last complete line read is written in the
same transaction as that line's records, so a crash either keeps both or neither. Other rules:
- a last line without its newline is still being written: it is left for the next poll;
- rotation (the path now names another inode) is noticed after the old file has been read to its
  end, then the new file is read from its start; truncation (size below our offset) restarts at 0;
- a line that is not JSON or not a valid record is counted as malformed and logged with its line
  number, and the tail goes on.
"""
from __future__ import annotations

import logging
import os
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.engine import Connection

from ..storage.status import TAILERS, now_ms
from ..storage.write_queue import WriteQueue
from ..storage.dialect import dialect_insert
from ..storage.writer import Row
from .problems import InvalidBatch, describe
from .batches import parse_json
from .validation import load_batch

log = logging.getLogger(__name__)

#: Bytes read per transaction: about 8,000 records, a batch the writer handles in ~100 ms.
CHUNK_BYTES = 1 << 20


class FileTailer:
    def __init__(self, name: str, path: str, max_batch: int, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.name, self.path, self.max_batch, self.chunk_bytes = name, path, max_batch, chunk_bytes
        self._file: BinaryIO | None = None
        self._loaded = False
        self.inode = self.offset = self.line_no = self.lines_ok = self.malformed = 0
        self.last_error: str | None = None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def poll(self, writer: WriteQueue) -> int:
        """Read every complete new line; returns how many records were stored."""
        if not self._loaded:
            writer.run(self._load)
        if self._file is None and not self._open():
            return 0
        stored = self._drain(writer)
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            return stored  # rotated away and not yet recreated: keep the old file until it is
        if on_disk.st_ino != os.fstat(self._file.fileno()).st_ino:
            log.info("tailer %s: %s was rotated; reading the new file from the start", self.name, self.path)
            self.close()
            if self._open():
                stored += self._drain(writer)
        elif on_disk.st_size < self.offset:
            log.warning("tailer %s: %s was truncated; reading from the start", self.name, self.path)
            self._restart_at_top(on_disk.st_ino)
            self._file.seek(0)
            stored += self._drain(writer)
        return stored

    def _load(self, conn: Connection) -> None:
        """Where the previous run stopped, read on the writer thread: its engine is that thread's
        alone. Read here through it, beside the writer's own first connect, a new jobs leader's
        tailer waited for good on SQLAlchemy's first-connect mutex, a gevent lock that a native
        thread's release does not wake (gevent/gevent#2013)."""
        row = conn.execute(select(TAILERS).where(TAILERS.c.name == self.name)).first()
        if row is not None and row.path == self.path:
            self.inode, self.offset, self.line_no = row.inode, row.offset, row.line_no
            self.lines_ok, self.malformed, self.last_error = row.lines_ok, row.lines_malformed, row.last_error
        self._loaded = True

    def _restart_at_top(self, inode: int) -> None:
        self.inode, self.offset, self.line_no = inode, 0, 0

    def _open(self) -> bool:
        try:
            handle = open(self.path, "rb")
        except FileNotFoundError:
            return False
        st = os.fstat(handle.fileno())
        if st.st_ino != self.inode or st.st_size < self.offset:
            self._restart_at_top(st.st_ino)  # another file than the stored offset belongs to
        handle.seek(self.offset)
        self._file = handle
        return True

    def _parse(self, lines: list[bytes]) -> list[Row]:
        rows: list[Row] = []
        for line in lines:
            self.line_no += 1
            text = line.strip()
            if not text:
                continue
            try:
                rows.extend(load_batch(parse_json(text), self.max_batch))
                self.lines_ok += 1
            except InvalidBatch as exc:
                reason = describe(exc)
                self.malformed += 1
                self.last_error = f"line {self.line_no}: {reason}"
                log.warning("tailer %s: %s line %d is malformed and was skipped: %s",
                            self.name, self.path, self.line_no, reason)
        return rows

    def _drain(self, writer: WriteQueue) -> int:
        stored = 0
        while True:
            data = self._file.read(self.chunk_bytes)
            if len(data) == self.chunk_bytes and b"\n" not in data:
                data += self._file.readline()  # one line longer than a chunk: take it whole
            end = data.rfind(b"\n") + 1
            if end == 0:  # nothing new, or a partial last line still being written
                self._file.seek(self.offset)
                return stored
            before = (self.line_no, self.lines_ok, self.malformed, self.last_error)
            rows = self._parse(data[:end].split(b"\n")[:-1])
            try:
                offset = self.offset + end
                stored += writer.submit(rows, on_commit_tx=lambda conn: self._save(conn, offset)).saved
            except Exception:
                self.line_no, self.lines_ok, self.malformed, self.last_error = before
                self._file.seek(self.offset)
                raise
            self.offset += end
            self._file.seek(self.offset)

    def _save(self, conn: Connection, offset: int) -> None:
        values = {"path": self.path, "inode": self.inode, "offset": offset, "line_no": self.line_no,
                  "lines_ok": self.lines_ok, "lines_malformed": self.malformed,
                  "last_error": None if self.last_error is None else self.last_error[:1000], "updated_ms": now_ms()}
        stmt = dialect_insert(conn, TAILERS).values(name=self.name, **values)
        conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_=values))
