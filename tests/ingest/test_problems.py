"""Validation speaks the ingest's own terms; only the HTTP edge turns them into a status."""
import pytest

from metrics_app.errors import ApiError
from metrics_app.ingest.problems import InvalidJson, InvalidRecords, NotRecords, describe
from metrics_app.ingest.batches import parse_json
from metrics_app.ingest.tailer import FileTailer
from metrics_app.ingest.validation import load_batch
from metrics_app.storage import write_queue

from ..cli.test_metrics_import import write_jsonl
from .records import INGEST_EXAMPLES

BAD_MEMORY = dict(INGEST_EXAMPLES["memory"], usedMiB=-1)


def test_invalid_records_are_a_domain_error_with_every_problem():
    with pytest.raises(InvalidRecords) as caught:
        load_batch([INGEST_EXAMPLES["power"], BAD_MEMORY], max_batch=10)
    assert not isinstance(caught.value, ApiError)
    assert [(p["index"], p["field"]) for p in caught.value.problems] == [(1, "usedMiB")]
    assert caught.value.message == "1 of 2 records are invalid; nothing was stored."


def test_describe_names_each_field_or_says_why_it_is_no_batch():
    with pytest.raises(InvalidRecords) as records:
        load_batch(BAD_MEMORY, max_batch=10)
    assert describe(records.value).startswith("usedMiB: ")
    with pytest.raises(NotRecords) as scalar:
        load_batch(5, max_batch=10)
    assert describe(scalar.value) == "Expected a JSON object (one record) or an array of records, got int."
    with pytest.raises(InvalidJson) as broken:
        parse_json(b"{")
    assert describe(broken.value).startswith("Body is not valid JSON")


def test_the_tailer_reports_the_field_in_words(app, tmp_path):
    path = write_jsonl(tmp_path / "msg_out.jsonl", [BAD_MEMORY, INGEST_EXAMPLES["power"]])
    tailer = FileTailer("msg", path, 100)
    with app.app_context():
        assert tailer.poll(write_queue(app)) == 1
    assert tailer.malformed == 1 and tailer.last_error.startswith("line 1: usedMiB: ")
