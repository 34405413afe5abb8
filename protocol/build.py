"""Version-agnostic construction of kio entities from plain mappings (sans-I/O).

Handlers describe a response once, as nested dicts holding the union of the fields of all
the versions they serve; ``build(ResponseClass, values)`` keeps what that version's kio
class declares and drops the rest. Rules per declared field:

- present in ``values``: nested mappings become nested entities, lists/tuples of mappings
  become tuples of entities; an ``int`` for a ``timedelta_*`` field is milliseconds; an
  ``int`` for a ``datetime_i64`` field is epoch milliseconds; an ``int`` for an
  ``error_code`` field becomes ``ErrorCode``;
- absent: the schema default if it has one, otherwise ``None`` for nullable fields and
  the protocol's zero value (0, "", b"", False, zero UUID, empty array, NONE) otherwise.

Field introspection is done once per class and cached.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Mapping
from dataclasses import MISSING, fields
from typing import Any
from uuid import UUID

from kio.schema.errors import ErrorCode
from kio.serial._introspect import (
    EntityField,
    EntityTupleField,
    PrimitiveTupleField,
    classify_field,
    is_optional,
)

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_ZERO_UUID = UUID(int=0)

_ZERO_BY_KAFKA_TYPE: dict[str, Any] = {
    "int8": 0,
    "int16": 0,
    "int32": 0,
    "int64": 0,
    "uint8": 0,
    "uint16": 0,
    "uint32": 0,
    "uint64": 0,
    "float64": 0.0,
    "string": "",
    "bytes": b"",
    "records": b"",
    "bool": False,
    "uuid": _ZERO_UUID,
    "error_code": ErrorCode.none,
    "timedelta_i32": datetime.timedelta(0),
    "timedelta_i64": datetime.timedelta(0),
    "datetime_i64": _EPOCH,
}

# field kinds
_PRIMITIVE, _ENTITY, _ENTITY_TUPLE, _PRIMITIVE_TUPLE = range(4)


@functools.cache
def _spec(cls: type) -> tuple[tuple[str, int, Any, bool, bool, str | None], ...]:
    """(name, kind, nested class, optional, has_default, kafka_type) per field."""
    out = []
    for f in fields(cls):
        fc = classify_field(f)
        if isinstance(fc, EntityField):
            kind, sub = _ENTITY, fc.type_
        elif isinstance(fc, EntityTupleField):
            kind, sub = _ENTITY_TUPLE, fc.type_
        elif isinstance(fc, PrimitiveTupleField):
            kind, sub = _PRIMITIVE_TUPLE, None
        else:
            kind, sub = _PRIMITIVE, None
        has_default = f.default is not MISSING or f.default_factory is not MISSING
        out.append(
            (f.name, kind, sub, is_optional(f), has_default, f.metadata.get("kafka_type"))
        )
    return tuple(out)


def _convert_primitive(value: Any, kafka_type: str | None) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        if kafka_type == "timedelta_i32" or kafka_type == "timedelta_i64":
            return datetime.timedelta(milliseconds=value)
        if kafka_type == "datetime_i64":
            return _EPOCH + datetime.timedelta(milliseconds=value)
        if kafka_type == "error_code" and not isinstance(value, ErrorCode):
            return ErrorCode(value)
    return value


def build(cls: type, values: Mapping[str, Any]) -> Any:
    """Construct a ``cls`` (kio entity) from ``values``; see the module doc for rules."""
    kwargs: dict[str, Any] = {}
    for name, kind, sub, optional, has_default, kafka_type in _spec(cls):
        if name in values:
            value = values[name]
            if value is None:
                pass  # null entity / null array / null primitive, as given
            elif kind == _ENTITY:
                if isinstance(value, Mapping):
                    value = build(sub, value)
            elif kind == _ENTITY_TUPLE:
                value = tuple(build(sub, v) if isinstance(v, Mapping) else v for v in value)
            elif kind == _PRIMITIVE_TUPLE:
                value = tuple(_convert_primitive(v, kafka_type) for v in value)
            else:
                value = _convert_primitive(value, kafka_type)
            kwargs[name] = value
        elif has_default:
            continue
        elif optional:
            kwargs[name] = None
        elif kind == _ENTITY:
            kwargs[name] = build(sub, {})
        elif kind in (_ENTITY_TUPLE, _PRIMITIVE_TUPLE):
            kwargs[name] = ()
        else:
            kwargs[name] = _ZERO_BY_KAFKA_TYPE.get(kafka_type or "", 0)
    return cls(**kwargs)
