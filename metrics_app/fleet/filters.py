"""``?hostname=``, ``?gpuId=``, ``?metric=`` (each repeatable) for ``GET /fleet`` and ``WS /ws/fleet``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate
from werkzeug.datastructures import MultiDict

from ..errors import ApiError
from ..ingest.schemas import NO_NUL
from ..storage.kinds import KINDS
from .table import Entry


class FleetFilterSchema(Schema):
    """Unknown parameters are refused, as on the history side: a typo must not widen the stream."""

    class Meta:
        unknown = RAISE

    hostname = fields.List(fields.String(validate=NO_NUL),
                           metadata={"description": "Host name (exact match; repeat for several)"})
    gpuId = fields.List(fields.String(validate=NO_NUL), metadata={"description": "GPU UUID (repeatable)"})
    metric = fields.List(fields.String(validate=validate.OneOf(tuple(KINDS))),
                         metadata={"description": "Record kind (repeatable)"})
    #: Browsers cannot set headers on a WebSocket: the read token may come here (auth.py checks it).
    token = fields.String(load_only=True, metadata={"description": "Read token, WebSocket handshakes only"})


@dataclass(frozen=True, slots=True)
class FleetFilter:
    hostnames: frozenset[str] = frozenset()
    gpu_ids: frozenset[str] = frozenset()
    metric_codes: frozenset[int] = frozenset()

    @property
    def empty(self) -> bool:
        return not (self.hostnames or self.gpu_ids or self.metric_codes)

    def __call__(self, entry: Entry) -> bool:
        hostname, _index, code, _pid = entry.key
        return ((not self.hostnames or hostname in self.hostnames)
                and (not self.gpu_ids or entry.row.gpu_uuid in self.gpu_ids)
                and (not self.metric_codes or code in self.metric_codes))


_SCHEMA = FleetFilterSchema()


def _string_keys(messages: Any) -> Any:
    """marshmallow keys a repeated parameter's problems by position (an int); JSON needs strings."""
    if isinstance(messages, dict):
        return {str(key): _string_keys(value) for key, value in messages.items()}
    return messages


def parse_filter(args: MultiDict[str, str]) -> FleetFilter:
    try:
        data: dict[str, Any] = _SCHEMA.load(
            {name: values if name != "token" else values[-1] for name, values in args.lists()})
    except ValidationError as exc:
        details = _string_keys(exc.normalized_messages())
        raise ApiError(400, "invalid_parameter", f"invalid query parameter(s): {', '.join(sorted(details))}",
                       details) from exc
    return FleetFilter(frozenset(data.get("hostname", ())), frozenset(data.get("gpuId", ())),
                       frozenset(KINDS[name].code for name in data.get("metric", ())))
