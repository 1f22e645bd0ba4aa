"""Batch validation: a fast path derived from the marshmallow schemas, marshmallow for the details.

``schema.load`` costs ~20 µs per record: 20 ms of a 1,000-record batch whose whole budget is ~12 ms. Every good batch is
checked instead by one function per record kind compiled from the schemas' own fields and
validators (fastpath.py: type, range, length, choices, required, unknown), producing the rows
``load`` would lead to. Only when that check rejects a record does marshmallow run, to word the
422's per-field errors. Compiling fails loudly at import if a schema gains a field or validator the
fast path cannot mirror, and tests/ingest/test_validation.py checks that both paths agree on good
and bad records.
"""
from __future__ import annotations

import logging
import time
from itertools import chain
from typing import Any

from marshmallow import Schema, ValidationError

from ..storage.kinds import KINDS, NO_PID, missing_pid
from ..storage.writer import Row
from .fastpath import OWN_TEMPLATE, Load, Rejected, compile_plan, own_column, targets
from .problems import BatchTooLarge, InvalidRecords, NotRecords
from .schemas import BASE_SCHEMA, CRAWLER_BASE_SCHEMA, CRAWLER_SCHEMAS, SCHEMAS

log = logging.getLogger(__name__)
#: Records validated between yields to the event loop (``time.sleep(0)`` under gevent): a 1,000-record
#: batch takes ~1.5 ms to check (~3.6 ms of the C++ crawler's five-row records; bench/validation.py), and
#: live frames and short requests should not wait that long in one piece.
YIELD_EVERY = 250


#: The two vocabularies: the key naming a record's kind, and each kind's schema.
VOCABULARIES: dict[str, tuple[dict[str, Schema], Schema]] = {
    "metric": (SCHEMAS, BASE_SCHEMA), "metricType": (CRAWLER_SCHEMAS, CRAWLER_BASE_SCHEMA)}
PLANS: dict[str, dict[str, Load]] = {
    vocabulary: {kind: compile_plan(vocabulary, kind, schema) for kind, schema in schemas.items()}
    for vocabulary, (schemas, _) in VOCABULARIES.items()}


def kind_key(record: dict[str, Any]) -> str:
    """``metricType`` only when the record has no ``metric``: one with both is the crawler-ingest API's
    and is refused for its unknown field, so no record is read two ways."""
    return "metricType" if "metric" not in record and "metricType" in record else "metric"


def fast_load(record: Any) -> list[Row]:
    """The record's Rows by its kind's compiled check, or Rejected."""
    if type(record) is not dict:
        raise Rejected
    # kind_key(record), inlined: the call was ~5 % of a record's check.
    key = "metricType" if "metric" not in record and "metricType" in record else "metric"
    kind = record.get(key)
    load = PLANS[key].get(kind) if type(kind) is str else None
    if load is None:
        raise Rejected
    return load(record)


def marshmallow_errors(record: Any) -> dict[str, list[str]]:
    """The full schema's verdict on one record: {} when valid, else messages by field."""
    if not isinstance(record, dict):
        return {"_record": ["Each record must be a JSON object."]}
    if "metric" in record and "metricType" in record:
        return {"metricType": ["A record has metric (the crawler-ingest API's records) or metricType "
                               "(the C++ crawler's), not both."]}
    key = kind_key(record)
    schemas, base = VOCABULARIES[key]
    kind = record.get(key)
    schema = schemas.get(kind) if isinstance(kind, str) else None
    if schema is None:
        errors = base.validate(record)
        if key in record:
            errors[key] = [f"Unknown {key} {str(kind)[:64]!r}; expected one of: {', '.join(sorted(schemas))}."]
        return errors
    try:
        schema.load(record)
    except ValidationError as exc:
        return exc.normalized_messages()
    return {}


def schema_rows(record: dict[str, Any]) -> list[Row]:
    """A record's Rows by way of marshmallow's load (the fast path's reference)."""
    key = kind_key(record)
    data = VOCABULARIES[key][0][record[key]].load(record)
    per_kind: dict[str, list[Any]] = {}
    for name, target in targets(key, record[key]).items():
        own = per_kind.setdefault(target.kind, list(OWN_TEMPLATE))
        value = data.get(name)
        if value is not None:
            own[own_column(target)] = value if target.divisor == 1 else value / target.divisor
    if "process" in per_kind:
        process = per_kind["process"]
        process[0] = missing_pid(process[4]) if process[0] == NO_PID else process[0]
    return [Row(data.get("hostname") or "", data.get("gpuIndex"), data.get("gpuId") or None,
                data.get("gpuName") or None, KINDS[kind].code, data["timestamp"], *own)
            for kind, own in per_kind.items()]


def load_batch(payload: Any, max_batch: int) -> list[Row]:
    """Validate a request body (one record or an array) as a whole: every row, or an InvalidBatch saying why not."""
    if isinstance(payload, dict):
        records = [payload]
    elif isinstance(payload, list):
        records = payload
    else:
        raise NotRecords("Expected a JSON object (one record) or an array of records, "
                         f"got {type(payload).__name__}.")
    if len(records) > max_batch:
        raise BatchTooLarge(f"{len(records)} records in one batch; MAX_BATCH is {max_batch}.",
                            {"received": len(records), "max_batch": max_batch})
    try:
        if len(records) == 1:
            return fast_load(records[0])
        rows: list[Row] = []
        for end in range(YIELD_EVERY, len(records) + YIELD_EVERY, YIELD_EVERY):
            rows += chain.from_iterable(map(fast_load, records[end - YIELD_EVERY:end]))  # the loop in C: ~4 %
            if end <= len(records):
                time.sleep(0)
        return rows
    except Rejected:
        pass
    problems = [
        {"index": index, "field": field, "message": message}
        for index, record in enumerate(records)
        for field, messages in marshmallow_errors(record).items()
        for message in (messages if isinstance(messages, list) else [str(messages)])
    ]
    if not problems:  # the fast path was stricter than the schemas: marshmallow has the last word
        log.warning("fast validation rejected a batch that marshmallow accepts; using marshmallow")
        return [row for record in records for row in schema_rows(record)]
    raise InvalidRecords(problems, len(records))
