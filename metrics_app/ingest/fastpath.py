"""The fast path: each record kind's marshmallow schema compiled once, at import, into one plain function.

Every field of a kind's schema becomes a few lines of straight Python (a type test, its range,
length or choices, inlined), and the function ends by building the kind's Rows as tuples. Generated
source rather than a closure per field because the call per field was the cost: closures called
from C (``map``) with Rows cut out by ``itemgetter`` took 0.9-1.15x the time of the closures
they replaced; this code takes half (bench/validation.py: 1,000 crawler-ingest API records
3.0 -> 1.5 ms, 1,000 C++ crawler ``gpu`` records 7.2 -> 3.5 ms). ``validation.PLANS[vocabulary][kind].__source__``
shows a kind's code, and tracebacks show its lines.

A shape of field or validator not mirrored here raises NotImplementedError at import: the fast path
never guesses. tests/ingest/test_validation.py checks both paths agree on good and bad records.
"""
from __future__ import annotations

import linecache
import math
from typing import Any, Callable

from marshmallow import Schema, fields, missing
from marshmallow.validate import ContainsNoneOf, Length, OneOf, Range

from ..storage.kinds import KINDS, NO_PID, missing_pid
from ..storage.writer import Row
from .schemas import CRAWLER_RECORDS, KIND_FIELDS, StrictNumber, Target, UtcTimestamp, to_epoch_ms

Load = Callable[[dict[str, Any]], list[Row]]


class Rejected(Exception):
    """The fast path found a problem; marshmallow will say which."""


class EpochMs(dict[str, int]):
    """Timestamp text -> epoch ms, parsed once: a crawler sends every record of a window with the
    same string (48 records a second in bench/ingest.py's batches), and a hit (~0.03 µs, a dict
    lookup from C) costs a tenth of a parse. Only parses that succeed are kept, so a bad timestamp is
    refused every time; cleared when full, so a stream of distinct strings cannot grow it. Threads
    may share it: whoever wrote an entry, it is right for its key."""

    LIMIT = 4096

    def __missing__(self, value: str) -> int:
        try:
            ms = to_epoch_ms(value)
        except ValueError:
            raise Rejected from None
        if len(self) >= self.LIMIT:
            self.clear()
        self[value] = ms
        return ms


EPOCH_MS = EpochMs()
#: Row columns 0-5 and the label fields they are read from (column 4 is each Row's kind code); a
#: blank hostname is stored as "", a blank GPU id or name as NULL.
_LABEL_COLUMNS = {"hostname": 0, "gpuIndex": 1, "gpuId": 2, "gpuName": 3, "timestamp": 5}
_BLANKS = {"hostname": "''", "gpuId": "None", "gpuName": "None"}
OWN_TEMPLATE = (NO_PID, None, None, None, None)  # pid, v1, v2, v3, name
_OWN_SLOTS = {"pid": 0, "name": 4}


def targets(vocabulary: str, kind: str) -> dict[str, Target]:
    """Each own field of a record kind and where it lands (the crawler-ingest API's fields land on themselves)."""
    if vocabulary == "metricType":
        return CRAWLER_RECORDS[kind]
    return {name: Target(kind, name) for name in KIND_FIELDS[kind]}


def own_column(target: Target) -> int:
    """A target's place among a Row's own columns (pid, v1, v2, v3, name)."""
    if target.field in _OWN_SLOTS:
        return _OWN_SLOTS[target.field]
    return 1 + KINDS[target.kind].fields.index(target.field)


def _literal(value: Any) -> str:
    if value is None or type(value) in (str, int) or (type(value) is float and math.isfinite(value)):
        return repr(value)
    raise NotImplementedError(f"fast path cannot write {value!r} as a literal")


def _number_test(field: StrictNumber) -> tuple[str, str]:
    """One closed range, also what refuses NaN and infinities (as ``to_number`` does) and bool (not int)."""
    if len(field.validators) != 1 or type(bound := field.validators[0]) is not Range:
        raise NotImplementedError(f"fast path mirrors numbers with one Range only: {field!r}")
    if bound.min is None or bound.max is None or not (bound.min_inclusive and bound.max_inclusive):
        raise NotImplementedError(f"fast path mirrors closed, inclusive ranges only: {bound!r}")
    in_range = f"{_literal(bound.min)} <= value <= {_literal(bound.max)}"
    if field.integer:
        return f"type(value) is int and {in_range}", "value"
    return f"(type(value) is int or type(value) is float) and {in_range}", "float(value)"


def _string_test(field: fields.String) -> tuple[str, str]:
    tests = ["type(value) is str"]
    for validator in field.validators:
        if type(validator) is Length and (validator.min, validator.equal) == (None, None) and validator.max is not None:
            tests.append(f"len(value) <= {_literal(validator.max)}")
        elif type(validator) is ContainsNoneOf and all(type(c) is str and len(c) == 1 for c in validator.iterable):
            tests += [f"{_literal(char)} not in value" for char in validator.iterable]
        elif type(validator) is OneOf and all(type(c) is str for c in validator.choices):
            tests.append(f"value in {tuple(validator.choices)!r}")
        else:
            raise NotImplementedError(f"fast path cannot mirror validator {validator!r}")
    return " and ".join(tests), "value"


def _field_source(name: str, field: fields.Field, divisor: int) -> list[str]:
    """Lines that read one field into ``f_<name>`` or raise Rejected. A missing field reads as null,
    right only because a required field refuses null and an optional one allows it: checked here."""
    if field.required == field.allow_none or field.load_default is not missing:
        raise NotImplementedError(f"fast path reads a missing field as null, so {name} must be required "
                                  "and not nullable, or optional, nullable and without a default")
    if type(field) is StrictNumber:
        test, result = _number_test(field)
    elif type(field) is UtcTimestamp and not field.validators:
        test, result = "type(value) is str", "EPOCH_MS[value]"
    elif type(field) is fields.String:
        test, result = _string_test(field)
    else:
        raise NotImplementedError(f"fast path cannot mirror field {field!r}")
    if divisor != 1:
        result = f"{result} / {divisor!r}"
    blank = _BLANKS.get(name)
    if blank is not None:
        result = f"{result} or {blank}"
    lines = [f"value = get({_literal(field.data_key or name)})", f"if {test}:", f"    f_{name} = {result}"]
    if field.allow_none:
        lines += ["elif value is None:", f"    f_{name} = {blank or 'None'}"]
    return lines + ["else:", "    raise Rejected"]


def _rows_source(vocabulary: str, kind: str, schema: Schema) -> list[str]:
    """The Rows a record leads to, one tuple each: labels, kind code, own columns."""
    lands = targets(vocabulary, kind)
    lines = []
    if schema.any_of:
        lines += [f"if {' and '.join(f'f_{name} is None' for name in schema.any_of)}:", "    raise Rejected"]
    rows = []
    for out in dict.fromkeys(t.kind for t in lands.values()):
        own = [_literal(value) for value in OWN_TEMPLATE]
        for name, target in lands.items():
            if target.kind == out:
                own[own_column(target)] = f"f_{name}"
        if out == "process":  # a pid sent as null or left out: distinct per process name
            if own[0] == _literal(NO_PID):
                raise NotImplementedError("fast path needs the process kind's pid field")
            lines += [f"if {own[0]} is None:", f"    {own[0]} = missing_pid({own[4]})"]
        labels = [f"f_{name}" for name in _LABEL_COLUMNS]
        labels.insert(4, _literal(KINDS[out].code))
        rows.append(f"    new(Row, ({', '.join(labels + own)})),")
    return lines + ["return [", *rows, "]"]


def _is_choice_of(field: fields.Field, kind: str) -> bool:
    """Whether ``field`` accepts exactly the text ``kind``, as each kind's ``metric`` or ``metricType`` does."""
    choices = field.validators[0] if len(field.validators) == 1 else None
    return (type(field) is fields.String and field.required and not field.allow_none
            and type(choices) is OneOf and list(choices.choices) == [kind])


def compile_plan(vocabulary: str, kind: str, schema: Schema) -> Load:
    """One kind's fast check: the Rows marshmallow's load would lead to, or Rejected. Called by
    ``validation.fast_load`` only, which picks it by the record's ``vocabulary`` value: that field,
    when it takes ``kind`` alone, is not checked again."""
    lands = targets(vocabulary, kind)
    body = ["if not KNOWN.issuperset(record):", "    raise Rejected", "get = record.get"]
    if set(schema.fields) != (expected := {*lands, *_LABEL_COLUMNS, vocabulary}):
        raise NotImplementedError(f"fast path puts exactly {sorted(expected)} in Rows, not {sorted(schema.fields)}")
    for name, field in schema.fields.items():
        if name == vocabulary and _is_choice_of(field, kind):  # ~7 % of a record's check
            body.append(f"# {name} is {kind!r}: fast_load chose this function by it")
        else:
            body += _field_source(name, field, lands[name].divisor if name in lands else 1)
    body += _rows_source(vocabulary, kind, schema)
    filename = f"<fast path: {vocabulary} {kind}>"
    source = "def load(record):\n" + "".join(f"    {line}\n" for line in body)
    namespace = {"KNOWN": frozenset(f.data_key or n for n, f in schema.fields.items()), "Rejected": Rejected,
                 "EPOCH_MS": EPOCH_MS, "Row": Row, "new": tuple.__new__, "missing_pid": missing_pid}
    exec(compile(source, filename, "exec"), namespace)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    load = namespace["load"]
    load.__source__ = source
    return load
