"""Batch validation: a fast path derived from the marshmallow schemas, marshmallow for the details.

``schema.load`` costs ~20 µs per record: 20 ms of a 1,000-record batch whose whole budget is ~12 ms. Every good batch is
checked instead by plain functions compiled once from the schemas' own fields and validators
(type, range, length, choices, required, unknown), producing the rows ``load`` would lead to. Only
when that check rejects a record does marshmallow run, to word the 422's per-field errors. Compiling
fails loudly at import if a schema gains a field or validator the fast path cannot mirror, and
tests/ingest/test_validation.py checks that both paths agree on good and bad records.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

from marshmallow import Schema, ValidationError, fields
from marshmallow.validate import ContainsNoneOf, Length, OneOf, Range

from ..storage.kinds import KINDS, NO_PID, missing_pid
from ..storage.writer import Row
from .problems import BatchTooLarge, InvalidRecords, NotRecords
from .schemas import (BASE_SCHEMA, CRAWLER_BASE_SCHEMA, CRAWLER_RECORDS, CRAWLER_SCHEMAS, KIND_FIELDS, SCHEMAS,
                      StrictNumber, Target, UtcTimestamp)

log = logging.getLogger(__name__)
#: Records validated between yields to the event loop (``time.sleep(0)`` under gevent): a 1,000-record
#: batch takes ~4 ms to check, and live frames and short requests should not wait that long in one piece.
YIELD_EVERY = 250
Check = Callable[[Any], Any]


class Rejected(Exception):
    """The fast path found a problem; marshmallow will say which."""


def _validator_check(validator: Any) -> Check:
    if isinstance(validator, Range):
        low, high = validator.min, validator.max
        if not (validator.min_inclusive and validator.max_inclusive):
            raise NotImplementedError("fast path mirrors inclusive ranges only")

        def check(value: Any) -> None:
            if (low is not None and value < low) or (high is not None and value > high):
                raise Rejected
        return check
    if isinstance(validator, Length) and validator.min is None and validator.equal is None:
        longest = validator.max

        def check(value: Any) -> None:
            if len(value) > longest:
                raise Rejected
        return check
    if isinstance(validator, OneOf):
        choices = frozenset(validator.choices)

        def check(value: Any) -> None:
            if value not in choices:
                raise Rejected
        return check
    raise NotImplementedError(f"fast path cannot mirror validator {validator!r}")


def _number_check(field: StrictNumber) -> Check | None:
    """The hot case, fused: a number (or null where allowed) with one closed, finite range. The range
    test also rejects NaN and infinities, exactly as ``to_number`` does; None when the field is not of
    that shape."""
    ranges = [v for v in field.validators if isinstance(v, Range)]
    if len(field.validators) != 1 or len(ranges) != 1:
        return None
    bound = ranges[0]
    if bound.min is None or bound.max is None or not (bound.min_inclusive and bound.max_inclusive):
        return None
    low, high, allow_none = bound.min, bound.max, field.allow_none
    if field.integer:
        def check_int(value: Any) -> int | None:
            if type(value) is int and low <= value <= high:
                return value
            if value is None and allow_none:
                return None
            raise Rejected
        return check_int

    def check_float(value: Any) -> float | None:
        kind = type(value)
        if (kind is float or kind is int) and low <= value <= high:
            return float(value)
        if value is None and allow_none:
            return None
        raise Rejected
    return check_float


def _string_check(field: fields.String) -> Check | None:
    """Fused string check for labels: ``Length(max=...)``, optionally with a ``ContainsNoneOf`` of one
    character (NUL); None for any other shape."""
    lengths = [v for v in field.validators if isinstance(v, Length)]
    banned = [v for v in field.validators if isinstance(v, ContainsNoneOf)]
    if len(lengths) != 1 or len(lengths) + len(banned) != len(field.validators):
        return None
    bound = lengths[0]
    if bound.min is not None or bound.equal is not None or bound.max is None:
        return None
    forbidden = [char for v in banned for char in v.iterable]
    if len(forbidden) > 1 or any(type(char) is not str or len(char) != 1 for char in forbidden):
        return None
    banned_char = forbidden[0] if forbidden else None
    longest, allow_none = bound.max, field.allow_none

    def check_str(value: Any) -> str | None:
        if type(value) is str:
            if len(value) <= longest and (banned_char is None or banned_char not in value):
                return value
        elif value is None and allow_none:
            return None
        raise Rejected
    return check_str


def _field_check(field: fields.Field) -> Check:
    if isinstance(field, StrictNumber) and (fused := _number_check(field)) is not None:
        return fused
    if type(field) is fields.String and (fused := _string_check(field)) is not None:
        return fused
    if isinstance(field, (StrictNumber, UtcTimestamp)):
        convert = field.convert
    elif type(field) is fields.String:
        def convert(value: Any) -> str:
            if type(value) is not str:
                raise Rejected
            return value
    else:
        raise NotImplementedError(f"fast path cannot mirror field {field!r}")
    checks = [_validator_check(v) for v in field.validators]
    allow_none = field.allow_none

    def check(value: Any) -> Any:
        if value is None:
            if allow_none:
                return None
            raise Rejected
        try:
            value = convert(value)
        except ValueError:
            raise Rejected from None
        for extra in checks:
            extra(value)
        return value
    return check


#: Row slots: the labels every output row of a record shares, then each output's own columns.
_LABEL_SLOTS = {"hostname": 0, "gpuIndex": 1, "gpuId": 2, "gpuName": 3, "metric": 4, "metricType": 4, "timestamp": 5}
_OWN_TEMPLATE = (NO_PID, None, None, None, None)  # pid, v1, v2, v3, name
_OWN_SLOTS = {"pid": 0, "name": 4}


def _targets(vocabulary: str, kind: str) -> dict[str, Target]:
    """Each own field of a record kind and where it lands (the crawler-ingest API's fields land on themselves)."""
    if vocabulary == "metricType":
        return CRAWLER_RECORDS[kind]
    return {name: Target(kind, name) for name in KIND_FIELDS[kind]}


def _own_slot(target: Target) -> int:
    if target.field in _OWN_SLOTS:
        return _OWN_SLOTS[target.field]
    return 1 + KINDS[target.kind].fields.index(target.field)


def _divided(check: Check, divisor: int) -> Check:
    if divisor == 1:
        return check

    def divide(value: Any) -> Any:
        value = check(value)
        return None if value is None else value / divisor
    return divide


class FastPlan:
    """One record kind's compiled checks: ``load(record)`` returns the Rows marshmallow's load would
    lead to (one for the crawler-ingest API's kinds, five for the C++ crawler's ``gpu``), or raises Rejected.

    Values are filled straight into one flat list, with no dict in between: the first Row's eleven
    slots, then the own columns (pid, v1..v3, name) of each further Row. A one-Row kind is thus
    filled exactly as a Row is laid out, and made with a single ``_make``."""

    def __init__(self, vocabulary: str, kind: str, schema: Schema) -> None:
        targets = _targets(vocabulary, kind)
        kinds = list(dict.fromkeys(t.kind for t in targets.values()))
        self.codes = [KINDS[k].code for k in kinds]

        def slot(target: Target) -> int:  # own columns start at 6 in the first Row, at 11 + 5 (i - 1) after
            out = kinds.index(target.kind)
            return (6 if out == 0 else 6 + 5 * out) + _own_slot(target)

        self.checks: dict[str, tuple[int, Check]] = {}
        for name, field in schema.fields.items():
            target = targets.get(name)
            where = _LABEL_SLOTS[name] if target is None else slot(target)
            self.checks[field.data_key or name] = (where, _divided(_field_check(field), 1 if target is None
                                                                   else target.divisor))
        self.required = frozenset(key for key, f in schema.fields.items() if f.required)
        self.template = [None] * 6 + list(_OWN_TEMPLATE) * len(kinds)
        self.any_of = [slot(targets[name]) for name in schema.any_of]
        self.process = [slot(Target("process", "pid")) for k in kinds if k == "process"]

    def load(self, record: dict[str, Any]) -> list[Row]:
        checks = self.checks
        if not self.required.issubset(record):
            raise Rejected
        slots = self.template.copy()
        for key, value in record.items():
            entry = checks.get(key)
            if entry is None:
                raise Rejected
            slots[entry[0]] = entry[1](value)
        if self.any_of and all(slots[i] is None for i in self.any_of):
            raise Rejected
        for pid in self.process:
            if slots[pid] is None or slots[pid] == NO_PID:
                slots[pid] = missing_pid(slots[pid + 4])
        slots[0] = slots[0] or ""
        slots[2] = slots[2] or None
        slots[3] = slots[3] or None
        codes = self.codes
        slots[4] = codes[0]
        if len(codes) == 1:
            return [Row._make(slots)]
        labels = slots[:6]
        rows = [Row._make(slots[:11])]
        for i in range(1, len(codes)):
            labels[4] = codes[i]
            rows.append(Row._make(labels + slots[6 + 5 * i:11 + 5 * i]))
        return rows


#: The two vocabularies: the key naming a record's kind, and each kind's schema.
VOCABULARIES: dict[str, tuple[dict[str, Schema], Schema]] = {
    "metric": (SCHEMAS, BASE_SCHEMA), "metricType": (CRAWLER_SCHEMAS, CRAWLER_BASE_SCHEMA)}
PLANS: dict[str, dict[str, FastPlan]] = {
    vocabulary: {kind: FastPlan(vocabulary, kind, schema) for kind, schema in schemas.items()}
    for vocabulary, (schemas, _) in VOCABULARIES.items()}


def kind_key(record: dict[str, Any]) -> str:
    """``metricType`` only when the record has no ``metric``: one with both is the crawler-ingest API's
    and is refused for its unknown field, so no record is read two ways."""
    return "metricType" if "metric" not in record and "metricType" in record else "metric"


def fast_load(record: Any) -> list[Row]:
    if type(record) is not dict:
        raise Rejected
    key = kind_key(record)
    kind = record.get(key)
    plan = PLANS[key].get(kind) if type(kind) is str else None
    if plan is None:
        raise Rejected
    return plan.load(record)


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
    for name, target in _targets(key, record[key]).items():
        own = per_kind.setdefault(target.kind, list(_OWN_TEMPLATE))
        value = data.get(name)
        if value is not None:
            own[_own_slot(target)] = value if target.divisor == 1 else value / target.divisor
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
        for n, record in enumerate(records, 1):
            rows += fast_load(record)
            if not n % YIELD_EVERY:
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
