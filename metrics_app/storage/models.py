"""Tables. The schema itself is owned by the Alembic migrations in ``migrations/``."""
from __future__ import annotations

from sqlalchemy import BigInteger, Float, Integer, SmallInteger, String, UniqueConstraint

from ..extensions import db
from .kinds import NO_PID

#: ``gpu_series.gpu_key``: "u:" + a UUID of up to 128 characters, or "i:" + an index.
KEY_LENGTH = 130
NAME_LENGTH = 1024


def identity_key(gpu_uuid: str | None, gpu_index: int | None) -> str:
    """The text ``gpu_series`` is unique on with the hostname; the prefixes keep a UUID that looks
    like a number apart from an index."""
    if gpu_uuid:
        return "u:" + gpu_uuid
    return "" if gpu_index is None else f"i:{gpu_index}"


class GpuSeries(db.Model):
    """One GPU of one host: the key records point to, and the summary ``GET /gpus`` reads directly.

    A GPU is identified on its host by ``gpu_key`` (see ``identity_key``): its UUID when the crawler
    sends one, else its index, else nothing (the host's only GPU). The other of UUID and index is then
    a label like the name: the latest value sent.

    Rows are never deleted: retention lowers ``record_count`` (to 0 when everything expired) and moves
    ``first_ts_ms`` forward, and the writer caches ids for the life of the process.
    """

    __tablename__ = "gpu_series"
    id = db.Column(Integer, primary_key=True)
    hostname = db.Column(String(255), nullable=False, default="")
    gpu_key = db.Column(String(KEY_LENGTH), nullable=False, default="")
    gpu_index = db.Column(Integer, nullable=True)
    gpu_uuid = db.Column(String(128), nullable=True)
    gpu_name = db.Column(String(255), nullable=True)
    first_ts_ms = db.Column(BigInteger, nullable=False)
    last_ts_ms = db.Column(BigInteger, nullable=False)
    record_count = db.Column(BigInteger, nullable=False, default=0)

    __table_args__ = (UniqueConstraint("hostname", "gpu_key", name="uq_gpu_series_host_key"),)


#: Tables read by key prefix: on SQLite, storing rows in the primary key's own B-tree saves the
#: second copy of the key (rowid table + unique index) and a lookup per row (/stats' SQL: 68 -> 51 ms;
#: records: 69 -> ~30 bytes each with the time index gone).
_CLUSTERED = {"sqlite_with_rowid": False}


class Record(db.Model):
    """One crawler record. Time is UTC epoch milliseconds; ``metric`` is a ``Kind.code``.

    The natural key is the primary key (idempotent retries) and the only index: GPU, metric, time,
    which is how every read and retention's deletes find rows (see query/records.py for listings
    in time order across GPUs).
    """

    __tablename__ = "records"
    __table_args__ = _CLUSTERED
    series_id = db.Column(Integer, primary_key=True, autoincrement=False)
    metric = db.Column(SmallInteger, primary_key=True, autoincrement=False)
    ts_ms = db.Column(BigInteger, primary_key=True, autoincrement=False)
    pid = db.Column(Integer, primary_key=True, autoincrement=False, default=NO_PID)
    v1 = db.Column(Float, nullable=True)
    v2 = db.Column(Float, nullable=True)
    v3 = db.Column(Float, nullable=True)
    #: A process record's process name (a full path on Windows); null for every other kind.
    name = db.Column(String(NAME_LENGTH), nullable=True)


class _ValueStats:
    """The record count, and per value column its count and sum/min/max: what any aggregate needs,
    and what combines. A column's own count differs from ``n`` where a kind's field is optional
    (a clocks record may carry any of its three clocks)."""

    n = db.Column(BigInteger, nullable=False)
    n1 = db.Column(BigInteger, nullable=False, server_default="0")
    sum1 = db.Column(Float)
    min1 = db.Column(Float)
    max1 = db.Column(Float)
    n2 = db.Column(BigInteger, nullable=False, server_default="0")
    sum2 = db.Column(Float)
    min2 = db.Column(Float)
    max2 = db.Column(Float)
    n3 = db.Column(BigInteger, nullable=False, server_default="0")
    sum3 = db.Column(Float)
    min3 = db.Column(Float)
    max3 = db.Column(Float)


class Rollup(_ValueStats, db.Model):
    """Per-minute stats of one GPU's metric, upserted in the ingest transaction; kept for
    ``ROLLUP_1M_RETENTION_DAYS``, long after the raw records."""

    __tablename__ = "rollups_1m"
    __table_args__ = _CLUSTERED
    series_id = db.Column(Integer, primary_key=True)
    metric = db.Column(SmallInteger, primary_key=True)
    minute_ms = db.Column(BigInteger, primary_key=True)


class HourRollup(_ValueStats, db.Model):
    """Per-hour stats of one GPU's metric, upserted with the minutes; kept for ``ROLLUP_1H_RETENTION_DAYS``."""

    __tablename__ = "rollups_1h"
    __table_args__ = _CLUSTERED
    series_id = db.Column(Integer, primary_key=True)
    metric = db.Column(SmallInteger, primary_key=True)
    hour_ms = db.Column(BigInteger, primary_key=True)


class SeriesTotal(_ValueStats, db.Model):
    """Stats of one GPU's metric over its raw records (what ``/stats`` reports, beside the record
    count of ``gpu_series``), upserted with the rollups.

    Retention recomputes a GPU's rows from the raw-backed minutes of ``rollups_1m`` after moving the
    raw cutoff: a min or max cannot be taken back by subtraction.
    """

    __tablename__ = "series_totals"
    __table_args__ = _CLUSTERED
    series_id = db.Column(Integer, primary_key=True)
    metric = db.Column(SmallInteger, primary_key=True)


class TailerOffset(db.Model):
    """Where a JSONL tailer stopped, written in the same transaction as the records it read.

    ``inode`` and ``offset`` tell a rotation (another inode) or a truncation (the file now shorter than
    ``offset``) from growth, so either restarts from the top instead of skipping or re-reading lines.
    """

    __tablename__ = "tailer_offsets"
    name = db.Column(String(64), primary_key=True)
    path = db.Column(String(1024), nullable=False)
    inode = db.Column(BigInteger, nullable=False, default=0)
    offset = db.Column(BigInteger, nullable=False, default=0)
    line_no = db.Column(BigInteger, nullable=False, default=0)
    lines_ok = db.Column(BigInteger, nullable=False, default=0)
    lines_malformed = db.Column(BigInteger, nullable=False, default=0)
    last_error = db.Column(String(1024), nullable=True)
    updated_ms = db.Column(BigInteger, nullable=False, default=0)


class JobRun(db.Model):
    """Each background job's latest success and failure (metrics_app/job_status.py), shared by every
    worker so any of them can report it: only the jobs' leader runs them."""

    __tablename__ = "job_runs"
    name = db.Column(String(64), primary_key=True)
    last_success_ms = db.Column(BigInteger, nullable=True)
    last_failure_ms = db.Column(BigInteger, nullable=True)
    failures = db.Column(Integer, nullable=False, default=0)  # in a row, since the latest success
    duration_ms = db.Column(Integer, nullable=False)  # of the latest run
    error = db.Column(String(1024), nullable=True)  # of the latest failure
