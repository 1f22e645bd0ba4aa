"""Batch validation: a fast path derived from the marshmallow schemas, marshmallow for the details.

``schema.load`` costs ~25 µs per record, most of a 1,000-record batch's budget. Every good batch is
checked instead by plain functions compiled once from the schemas' own fields and validators
(type, range, length, choices, required, unknown), producing the same dicts ``load`` would. Only
when that check rejects a record does marshmallow run, to word the 422's per-field errors. Compiling
fails loudly at import if a schema gains a field or validator the fast path cannot mirror, and
tests/ingest/test_validation.py checks that both paths agree on good and bad records.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from marshmallow import Schema, ValidationError, fields
from marshmallow.validate import Length, OneOf, Range

from ..errors import ApiError
from ..storage.kinds import KINDS, NO_PID
from ..storage.writer import Row
from .schemas import BASE_SCHEMA, SCHEMAS, StrictNumber, UtcTimestamp

log = logging.getLogger(__name__)
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


def _field_check(field: fields.Field) -> Check:
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


class FastPlan:
    """One kind's compiled checks: ``load(record)`` returns what ``schema.load`` would, or raises Rejected."""

    def __init__(self, schema: Schema) -> None:
        self.checks = {(f.data_key or name): (name, _field_check(f)) for name, f in schema.fields.items()}
        self.required = frozenset(key for key, (name, _) in self.checks.items() if schema.fields[name].required)

    def load(self, record: dict[str, Any]) -> dict[str, Any]:
        checks = self.checks
        if not self.required.issubset(record):
            raise Rejected
        out = {}
        for key, value in record.items():
            entry = checks.get(key)
            if entry is None:
                raise Rejected
            out[entry[0]] = entry[1](value)
        return out


PLANS: dict[str, FastPlan] = {kind: FastPlan(schema) for kind, schema in SCHEMAS.items()}


def fast_load(record: Any) -> dict[str, Any]:
    if type(record) is not dict:
        raise Rejected
    plan = PLANS.get(record.get("metric")) if type(record.get("metric")) is str else None
    if plan is None:
        raise Rejected
    return plan.load(record)


def marshmallow_errors(record: Any) -> dict[str, list[str]]:
    """The full schema's verdict on one record: {} when valid, else messages by field."""
    if not isinstance(record, dict):
        return {"_record": ["Each record must be a JSON object."]}
    metric = record.get("metric")
    schema = SCHEMAS.get(metric) if isinstance(metric, str) else None
    if schema is None:
        errors = BASE_SCHEMA.validate(record)
        if "metric" in record:
            errors["metric"] = [f"Unknown metric {str(metric)[:64]!r}; expected one of: {', '.join(sorted(KINDS))}."]
        return errors
    try:
        schema.load(record)
    except ValidationError as exc:
        return exc.normalized_messages()
    return {}


def to_row(data: dict[str, Any]) -> Row:
    kind = KINDS[data["metric"]]
    values = [data[name] for name in kind.fields] + [None] * (3 - len(kind.fields))
    return Row(data.get("hostname") or "", data["gpuIndex"], data.get("gpuId") or None,
               data.get("gpuName") or None, kind.code, data["timestamp"], data.get("pid", NO_PID), *values)


def load_batch(payload: Any, max_batch: int) -> list[Row]:
    """Validate a request body (one record or an array) as a whole: every row, or an ApiError."""
    if isinstance(payload, dict):
        records = [payload]
    elif isinstance(payload, list):
        records = payload
    else:
        raise ApiError(400, "invalid_body", "Expected a JSON object (one record) or an array of records, "
                       f"got {type(payload).__name__}.")
    if len(records) > max_batch:
        raise ApiError(413, "batch_too_large", f"{len(records)} records in one batch; MAX_BATCH is {max_batch}.",
                       {"received": len(records), "max_batch": max_batch})
    try:
        return [to_row(fast_load(record)) for record in records]
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
        return [to_row(SCHEMAS[record["metric"]].load(record)) for record in records]
    raise ApiError(422, "invalid_records",
                   f"{len({p['index'] for p in problems})} of {len(records)} records are invalid; nothing was stored.",
                   problems)
