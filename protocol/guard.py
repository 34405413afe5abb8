"""Length guard for request bodies, run before kio's native decoder (pure).

kio's Rust reader pre-allocates arrays from the count on the wire: a 40-byte request whose
compact-array count says 2**34 makes it allocate ~100 GiB and the process *aborts* (no
Python exception). Kafka's own parser refuses counts larger than the bytes left. This
module walks a request body with the same schema (kio's dataclasses) without building
anything and raises ``GuardError`` when

- an array count, string or bytes length, or tagged-field size exceeds the bytes left
  (every array element takes at least one byte on the wire), or
- the body ends before the schema does, or
- a field the schema declares non-nullable is sent as null (Kafka's parser refuses that
  too; kio would hand the handler a ``None`` where a list is promised).

Only bounds are checked; values are left to kio. Plans are compiled once per class.
Wire rules: legacy arrays/bytes use int32 lengths, legacy strings int16 (-1 = null);
flexible (compact) ones use an unsigned varint holding length + 1 (0 = null); nullable
structs carry an int8 marker (-1 null); flexible structs end with tagged fields
(uvarint count, then per field uvarint tag, uvarint size, payload).
"""

from __future__ import annotations

import functools
from dataclasses import fields
from typing import Any

from kio.serial._introspect import (
    EntityField,
    EntityTupleField,
    PrimitiveTupleField,
    classify_field,
    is_optional,
)

_FIXED = {
    "int8": 1, "uint8": 1, "bool": 1, "int16": 2, "uint16": 2, "error_code": 2,
    "int32": 4, "uint32": 4, "timedelta_i32": 4, "int64": 8, "uint64": 8, "float64": 8,
    "timedelta_i64": 8, "datetime_i64": 8, "uuid": 16,
}


class GuardError(ValueError):
    """The body cannot match its schema: a length or count exceeds the bytes left."""


# Plan steps (tuples, first item the kind):
#   ("fixed", n) | ("string", flexible, nullable) | ("bytes", flexible, nullable)
#   ("array", flexible, element_step, nullable) | ("struct", plan, nullable)
# A struct plan is (steps, tagged: dict[tag, step], flexible).


def _element_step(kafka_type: str, flexible: bool, nullable: bool) -> tuple[Any, ...]:
    if kafka_type in _FIXED:
        return ("fixed", _FIXED[kafka_type])
    if kafka_type == "string":
        return ("string", flexible, nullable)
    if kafka_type in ("bytes", "records"):
        return ("bytes", flexible, nullable)
    raise TypeError(f"unknown kafka type {kafka_type!r}")


@functools.cache
def plan_for(cls: type) -> tuple[tuple[tuple[Any, ...], ...], dict[int, tuple[Any, ...]], bool]:
    flexible = bool(getattr(cls, "__flexible__", False))
    steps: list[tuple[Any, ...]] = []
    tagged: dict[int, tuple[Any, ...]] = {}
    for f in fields(cls):
        fc = classify_field(f)
        tag = f.metadata.get("tag")
        nullable = tag is not None or is_optional(f)
        if isinstance(fc, EntityField):
            step: tuple[Any, ...] = ("struct", plan_for(fc.type_), is_optional(f))
        elif isinstance(fc, EntityTupleField):
            step = ("array", flexible, ("struct", plan_for(fc.type_), False), nullable)
        elif isinstance(fc, PrimitiveTupleField):
            element = _element_step(f.metadata["kafka_type"], flexible, False)
            step = ("array", flexible, element, nullable)
        else:
            step = _element_step(f.metadata["kafka_type"], flexible, nullable)
        if tag is None:
            steps.append(step)
        else:
            tagged[int(tag)] = step
    return tuple(steps), tagged, flexible


def _uvarint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    value = 0
    shift = 0
    while True:
        if pos >= end:
            raise GuardError("body ends inside a varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise GuardError("varint too long")


def _int(buf: memoryview, pos: int, size: int, end: int) -> tuple[int, int]:
    if end - pos < size:
        raise GuardError("body ends inside a length")
    return int.from_bytes(buf[pos : pos + size], "big", signed=True), pos + size


def _length(
    buf: memoryview, pos: int, end: int, flexible: bool, legacy_size: int, nullable: bool
) -> tuple[int, int]:
    """(length or -1 for null, new position); checks the length fits in what is left."""
    if flexible:
        raw, pos = _uvarint(buf, pos, end)
        n = raw - 1
    else:
        n, pos = _int(buf, pos, legacy_size, end)
        if n < -1:
            raise GuardError(f"negative length {n}")
    if n > end - pos:
        raise GuardError(f"length {n} exceeds the {end - pos} bytes left")
    if n < 0 and not nullable:
        raise GuardError("non-nullable field sent as null")
    return n, pos


def _walk(step: tuple[Any, ...], buf: memoryview, pos: int, end: int) -> int:
    kind = step[0]
    if kind == "fixed":
        pos += step[1]
        if pos > end:
            raise GuardError("body ends inside a field")
        return pos
    if kind == "string":
        n, pos = _length(buf, pos, end, step[1], 2, step[2])
        return pos + max(n, 0)
    if kind == "bytes":
        n, pos = _length(buf, pos, end, step[1], 4, step[2])
        return pos + max(n, 0)
    if kind == "array":
        n, pos = _length(buf, pos, end, step[1], 4, step[3])
        element = step[2]
        if element[0] == "fixed":
            pos += max(n, 0) * element[1]
            if pos > end:
                raise GuardError("body ends inside an array")
            return pos
        for _ in range(max(n, 0)):
            pos = _walk(element, buf, pos, end)
        return pos
    # struct
    plan, nullable = step[1], step[2]
    if nullable:
        marker, pos = _int(buf, pos, 1, end)
        if marker < 0:
            return pos
    return _walk_struct(plan, buf, pos, end)


def _walk_struct(plan: Any, buf: memoryview, pos: int, end: int) -> int:
    steps, tagged, flexible = plan
    for step in steps:
        pos = _walk(step, buf, pos, end)
    if flexible:
        count, pos = _uvarint(buf, pos, end)
        if count > end - pos:
            raise GuardError(f"{count} tagged fields exceed the {end - pos} bytes left")
        for _ in range(count):
            tag, pos = _uvarint(buf, pos, end)
            size, pos = _uvarint(buf, pos, end)
            if size > end - pos:
                raise GuardError(f"tagged field of {size} bytes exceeds what is left")
            step = tagged.get(tag)
            if step is not None:
                _walk(step, buf, pos, pos + size)
            pos += size
    return pos


def check_body(cls: type, buf: Any, offset: int) -> None:
    """Raise GuardError unless ``buf[offset:]`` can hold a ``cls`` body (bounds only)."""
    view = memoryview(buf)
    _walk_struct(plan_for(cls), view, offset, len(view))
