"""The fast path and the marshmallow schemas must agree: same verdict, same loaded values."""
from __future__ import annotations

import pytest
from marshmallow import ValidationError

from metrics_app.ingest.schemas import CRAWLER_SCHEMAS, KIND_FIELDS, SCHEMAS
from metrics_app.ingest import validation
from metrics_app.ingest.validation import Rejected, fast_load, kind_key, marshmallow_errors, schema_rows
from metrics_app.storage.kinds import KINDS

from .records import CRAWLER_EXAMPLES, INGEST_EXAMPLES

GOOD = [
    *INGEST_EXAMPLES.values(),
    dict(INGEST_EXAMPLES["memory"], hostname="h", gpuId="GPU-1", gpuName="H100", timestamp="2025-06-01T12:00:00.123+02:00"),
    dict(INGEST_EXAMPLES["power"], watts=0, hostname=None, gpuName=None, gpuId=None),
    dict(INGEST_EXAMPLES["temperature"], celsius=-10.5, timestamp="2025-01-01T00:00:00"),
    dict(INGEST_EXAMPLES["utilization"], gpuPercent=100, memoryPercent=0.0),
    dict(INGEST_EXAMPLES["process"], pid=0, usedMiB=0.5),
    dict(INGEST_EXAMPLES["memory"], hostname="", gpuId="", gpuName=""),
    dict(INGEST_EXAMPLES["memory"], totalMiB=1024.0 ** 3, usedMiB=0, freeMiB=1e-300),
    # The FastAPI backend's variants: no gpuIndex, any of the three clocks, no pid.
    dict(INGEST_EXAMPLES["memory"], gpuIndex=None),
    {k: v for k, v in INGEST_EXAMPLES["memory"].items() if k != "gpuIndex"},
    {k: v for k, v in INGEST_EXAMPLES["clocks"].items() if k != "memoryMHz"},
    dict(INGEST_EXAMPLES["clocks"], smMHz=2520),
    dict(INGEST_EXAMPLES["clocks"], graphicsMHz=None, memoryMHz=None, smMHz=0),
    {k: v for k, v in INGEST_EXAMPLES["process"].items() if k != "pid"},
    dict(INGEST_EXAMPLES["process"], pid=None, name="C:\\Program Files\\app.exe"),
    # The C++ crawler's records, verbatim, and its self-test record.
    *CRAWLER_EXAMPLES.values(),
    dict(CRAWLER_EXAMPLES["gpu"], gpuIndex=1, powerMilliwatts=0.5),
    {k: v for k, v in CRAWLER_EXAMPLES["process"].items() if k not in ("pid", "processName")},
]
BAD = [
    5, None, [], "x", {},
    dict(INGEST_EXAMPLES["memory"], metric="nope"),
    dict(INGEST_EXAMPLES["memory"], metric=["memory"]),
    dict(INGEST_EXAMPLES["memory"], usedMiB=True),
    dict(INGEST_EXAMPLES["memory"], usedMiB="1"),
    dict(INGEST_EXAMPLES["memory"], usedMiB=-0.001),
    dict(INGEST_EXAMPLES["memory"], usedMiB=10 ** 400),
    dict(INGEST_EXAMPLES["memory"], gpuIndex=65536),
    dict(INGEST_EXAMPLES["memory"], timestamp=None),
    dict(INGEST_EXAMPLES["memory"], timestamp="2025-13-01T00:00:00Z"),
    dict(INGEST_EXAMPLES["memory"], gpuId="g" * 129),
    dict(INGEST_EXAMPLES["memory"], hostname="node\x001"),
    dict(INGEST_EXAMPLES["memory"], gpuName="\x00"),
    dict(INGEST_EXAMPLES["memory"], celsius=5),
    dict(INGEST_EXAMPLES["utilization"], gpuPercent=float("nan")),
    dict(INGEST_EXAMPLES["utilization"], gpuPercent=float("inf")),
    dict(INGEST_EXAMPLES["temperature"], celsius=-61),
    dict(INGEST_EXAMPLES["process"], pid=2 ** 31),
    {k: v for k, v in INGEST_EXAMPLES["clocks"].items() if k not in ("graphicsMHz", "memoryMHz")},
    dict(INGEST_EXAMPLES["clocks"], graphicsMHz=None, memoryMHz=None),
    dict(INGEST_EXAMPLES["clocks"], smMHz="2520"),
    dict(INGEST_EXAMPLES["process"], name=5),
    dict(INGEST_EXAMPLES["process"], name="x" * 1025),
    dict(INGEST_EXAMPLES["memory"], metricType="gpu"),
    dict(CRAWLER_EXAMPLES["gpu"], metricType="fan"),
    dict(CRAWLER_EXAMPLES["gpu"], metricType=None),
    dict(CRAWLER_EXAMPLES["gpu"], powerMilliwatts=-1),
    dict(CRAWLER_EXAMPLES["gpu"], powerMilliwatts="28450"),
    dict(CRAWLER_EXAMPLES["gpu"], smClockMHz=None),
    dict(CRAWLER_EXAMPLES["gpu"], gpuUtilPercent=101),
    dict(CRAWLER_EXAMPLES["gpu"], watts=5),
    {k: v for k, v in CRAWLER_EXAMPLES["gpu"].items() if k != "memClockMHz"},
    dict(CRAWLER_EXAMPLES["process"], processName="a\x00b"),
    dict(CRAWLER_EXAMPLES["process"], pid=-1),
    dict(CRAWLER_EXAMPLES["process"], usedMiB=5),
    {k: v for k, v in CRAWLER_EXAMPLES["process"].items() if k != "timestamp"},
]


def marshmallow_load(record):
    key = kind_key(record)
    return (SCHEMAS if key == "metric" else CRAWLER_SCHEMAS)[record[key]].load(record)


@pytest.mark.parametrize("record", GOOD)
def test_good_records_load_identically(record):
    assert fast_load(record) == schema_rows(record)
    assert marshmallow_errors(record) == {}


@pytest.mark.parametrize("record", BAD, ids=range(len(BAD)))
def test_bad_records_are_rejected_by_both(record):
    with pytest.raises(Rejected):
        fast_load(record)
    assert marshmallow_errors(record)
    key = kind_key(record) if isinstance(record, dict) else "metric"
    kind = record.get(key) if isinstance(record, dict) else None
    if isinstance(kind, str) and kind in (SCHEMAS if key == "metric" else CRAWLER_SCHEMAS):
        with pytest.raises(ValidationError):
            marshmallow_load(record)


def test_schema_fields_match_the_storage_kinds():
    for name, kind in KINDS.items():
        assert [f for f in KIND_FIELDS[name] if f not in ("pid", "name")] == list(kind.fields)


def test_a_large_batch_yields_to_the_event_loop_while_it_is_checked(monkeypatch):
    """Under gevent ``time.sleep(0)`` lets live frames and short requests run: a 1,000-record batch
    must not hold the loop for the whole ~4 ms its checks take."""
    yields = []
    monkeypatch.setattr(validation.time, "sleep", yields.append)
    record = INGEST_EXAMPLES["power"]
    rows = validation.load_batch([{**record, "hostname": f"h{n}"} for n in range(1000)], max_batch=5000)
    assert len(rows) == 1000
    assert yields == [0] * (1000 // validation.YIELD_EVERY)
