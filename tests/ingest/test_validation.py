"""The fast path and the marshmallow schemas must agree: same verdict, same loaded values."""
from __future__ import annotations

import pytest
from marshmallow import ValidationError, fields
from marshmallow.validate import Length, OneOf, Range

from metrics_app.ingest.fastpath import EPOCH_MS, EpochMs, compile_plan
from metrics_app.ingest.problems import InvalidRecords
from metrics_app.ingest.schemas import CRAWLER_SCHEMAS, KIND_FIELDS, SCHEMAS, RecordSchema, StrictNumber
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
    must not hold the loop for the whole ~1.5 ms its checks take."""
    yields = []
    monkeypatch.setattr(validation.time, "sleep", yields.append)
    record = INGEST_EXAMPLES["power"]
    rows = validation.load_batch([{**record, "hostname": f"h{n}"} for n in range(1000)], max_batch=5000)
    assert len(rows) == 1000
    assert yields == [0] * (1000 // validation.YIELD_EVERY)


#: One instant four ways (the last 5 h 30 min later): the timestamp cache must not mix them up.
SAME_INSTANT = ["2025-06-01T12:00:00.123+02:00", "2025-06-01T10:00:00.123Z", "2025-06-01T10:00:00.123"]
LATER = "2025-06-01T10:00:00.123-05:30"


def test_a_timestamp_string_shared_by_records_of_every_kind_loads_as_marshmallow_loads_it():
    for text in [*SAME_INSTANT, LATER]:
        for example in (*INGEST_EXAMPLES.values(), *CRAWLER_EXAMPLES.values()):
            record = dict(example, timestamp=text)
            for _ in range(2):  # a parse, then a cache hit
                assert fast_load(record) == schema_rows(record)


def test_offsets_and_timestamps_without_one_keep_their_own_times_through_the_cache():
    def ms(text):
        return fast_load(dict(INGEST_EXAMPLES["power"], timestamp=text))[0].ts_ms
    for _ in range(2):
        assert {ms(text) for text in SAME_INSTANT} == {1748772000123}
        assert ms(LATER) == 1748772000123 + 5.5 * 3600 * 1000


@pytest.mark.parametrize("bad", ["2025-13-01T00:00:00Z", "9999-12-31T23:59:59-14:00", "not a time", "",
                                 "2025-06-01T10:00:00.123Z "])
def test_a_refused_timestamp_stays_refused_beside_valid_ones(bad):
    good = dict(INGEST_EXAMPLES["power"], timestamp="2025-06-01T10:00:00.123Z")
    for _ in range(2):
        with pytest.raises(Rejected):
            fast_load(dict(good, timestamp=bad))
        assert fast_load(good) == schema_rows(good)
    assert bad not in EPOCH_MS
    with pytest.raises(InvalidRecords) as refused:
        validation.load_batch([good, dict(good, timestamp=bad), good], max_batch=10)
    assert [(p["index"], p["field"]) for p in refused.value.problems] == [(1, "timestamp")]


def test_only_text_itself_is_read_through_the_cache():
    class Text(str):
        pass
    record = INGEST_EXAMPLES["power"]
    fast_load(record)  # its timestamp is now cached
    for odd in (Text(record["timestamp"]), [record["timestamp"]], 1735689600000):
        with pytest.raises(Rejected):
            fast_load(dict(record, timestamp=odd))
        assert marshmallow_errors(dict(record, timestamp=odd))


def test_the_timestamp_cache_stays_bounded_and_right_once_cleared(monkeypatch):
    monkeypatch.setattr(EpochMs, "LIMIT", 3)
    records = [dict(INGEST_EXAMPLES["power"], timestamp=f"2025-06-01T10:00:0{n}Z") for n in range(8)]
    for record in records * 2:
        assert fast_load(record) == schema_rows(record)
        assert len(EPOCH_MS) <= 3


def power_schema(**fields_):
    return RecordSchema.from_dict({"metric": fields.String(required=True, validate=OneOf(["power"])),
                                   "watts": StrictNumber(required=True, validate=Range(0, 10)), **fields_})()


@pytest.mark.parametrize("unmirrored", [
    {"watts": fields.Float(required=True)},
    {"watts": StrictNumber(required=True, validate=Range(0, 10, min_inclusive=False))},
    {"watts": StrictNumber(required=True, validate=Range(0, None))},
    {"watts": StrictNumber(required=True, validate=[Range(0, 10), Range(1, 2)])},
    {"watts": StrictNumber(required=True, allow_none=True, validate=Range(0, 10))},
    {"watts": StrictNumber(allow_none=True, load_default=0, validate=Range(0, 10))},
    {"hostname": fields.String(allow_none=True, validate=Length(min=1))},
    {"region": fields.String(allow_none=True)},
], ids=["other field", "open bound", "no upper bound", "two ranges", "required yet nullable", "default",
        "min length", "unknown column"])
def test_a_schema_the_fast_path_cannot_mirror_fails_to_compile(unmirrored):
    compile_plan("metric", "power", power_schema())
    with pytest.raises(NotImplementedError):
        compile_plan("metric", "power", power_schema(**unmirrored))
