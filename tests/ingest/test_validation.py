"""The fast path and the marshmallow schemas must agree: same verdict, same loaded values."""
from __future__ import annotations

import pytest
from marshmallow import ValidationError

from metrics_app.ingest.schemas import KIND_FIELDS, SCHEMAS
from metrics_app.ingest.validation import Rejected, fast_load, marshmallow_errors, to_row
from metrics_app.storage.kinds import KINDS

from .records import SEED_EXAMPLES

GOOD = [
    *SEED_EXAMPLES.values(),
    dict(SEED_EXAMPLES["memory"], hostname="h", gpuId="GPU-1", gpuName="H100", timestamp="2025-06-01T12:00:00.123+02:00"),
    dict(SEED_EXAMPLES["power"], watts=0, hostname=None, gpuName=None, gpuId=None),
    dict(SEED_EXAMPLES["temperature"], celsius=-10.5, timestamp="2025-01-01T00:00:00"),
    dict(SEED_EXAMPLES["utilization"], gpuPercent=100, memoryPercent=0.0),
    dict(SEED_EXAMPLES["process"], pid=0, usedMiB=0.5),
    dict(SEED_EXAMPLES["memory"], hostname="", gpuId="", gpuName=""),
    dict(SEED_EXAMPLES["memory"], totalMiB=1024.0 ** 3, usedMiB=0, freeMiB=1e-300),
]
BAD = [
    5, None, [], "x", {},
    dict(SEED_EXAMPLES["memory"], metric="nope"),
    dict(SEED_EXAMPLES["memory"], metric=["memory"]),
    dict(SEED_EXAMPLES["memory"], usedMiB=True),
    dict(SEED_EXAMPLES["memory"], usedMiB="1"),
    dict(SEED_EXAMPLES["memory"], usedMiB=-0.001),
    dict(SEED_EXAMPLES["memory"], usedMiB=10 ** 400),
    dict(SEED_EXAMPLES["memory"], gpuIndex=65536),
    dict(SEED_EXAMPLES["memory"], gpuIndex=None),
    dict(SEED_EXAMPLES["memory"], timestamp=None),
    dict(SEED_EXAMPLES["memory"], timestamp="2025-13-01T00:00:00Z"),
    dict(SEED_EXAMPLES["memory"], gpuId="g" * 129),
    dict(SEED_EXAMPLES["memory"], hostname="node\x001"),
    dict(SEED_EXAMPLES["memory"], gpuName="\x00"),
    dict(SEED_EXAMPLES["memory"], celsius=5),
    dict(SEED_EXAMPLES["utilization"], gpuPercent=float("nan")),
    dict(SEED_EXAMPLES["utilization"], gpuPercent=float("inf")),
    dict(SEED_EXAMPLES["temperature"], celsius=-61),
    dict(SEED_EXAMPLES["process"], pid=2 ** 31),
    {k: v for k, v in SEED_EXAMPLES["clocks"].items() if k != "memoryMHz"},
]


def marshmallow_load(record):
    return SCHEMAS[record["metric"]].load(record)


@pytest.mark.parametrize("record", GOOD)
def test_good_records_load_identically(record):
    assert fast_load(record) == to_row(marshmallow_load(record))
    assert marshmallow_errors(record) == {}


@pytest.mark.parametrize("record", BAD, ids=range(len(BAD)))
def test_bad_records_are_rejected_by_both(record):
    with pytest.raises(Rejected):
        fast_load(record)
    assert marshmallow_errors(record)
    if isinstance(record, dict) and isinstance(record.get("metric"), str) and record["metric"] in SCHEMAS:
        with pytest.raises(ValidationError):
            marshmallow_load(record)


def test_schema_fields_match_the_storage_kinds():
    for name, kind in KINDS.items():
        assert [f for f in KIND_FIELDS[name] if f != "pid"] == list(kind.fields)
