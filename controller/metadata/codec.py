"""Byte encoding of metadata records, big-endian.

One record (a *frame*)::

    type     u16   the record's TYPE (Kafka's metadata record api key)
    version  u16   0, except RegisterBrokerRecord, PartitionRecord and
                   PartitionChangeRecord: 1 when they carry their newer fields
    body           the fields of that version in declaration order, encoded by kind:

    i8/i16/i32/i64  signed integers         bool  1 byte, 0 or 1
    str   u16 length + UTF-8 bytes          str?  like str; length 0xFFFF means None
    uuid  16 bytes                          [i32] i32 count + count x i32
    [i32]?  like [i32]; count -1 means None
    endpoints  i32 count + count x (str name, str host, u16 port, i16 security_protocol)
    [uuid]  i32 count + count x 16 bytes
    bytes  i32 length + the bytes
    f64   IEEE 754 double               entity  i32 count + count x (str type, str? name)

Versions: RegisterBrokerRecord v1 appends ``log_dirs`` ([uuid]); v0 (no directory ids,
written before they existed and still whenever ``log_dirs`` is empty, so older readers
keep reading it) decodes with ``log_dirs`` empty = unknown. PartitionRecord v1 appends
``removing_replicas`` and ``adding_replicas`` ([i32] each), PartitionChangeRecord v1 the
same as [i32]? (None = unchanged); both are written as v0 while no reassignment is in
them (empty / None), and v0 decodes with none. Every other type is v0. In general a
record is written with the oldest version whose omitted fields all hold their defaults.

A Raft entry carries a *batch* of records applied atomically (a topic and all its
partitions, say)::

    count  u32, then per record: length u32 + frame

``decode_*`` raises ``MetadataDecodeError`` (a ValueError) naming what is wrong: unknown
type, unsupported version, truncated data, trailing bytes, invalid UTF-8.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Sequence
from dataclasses import fields

from controller.metadata.records import (
    RECORD_TYPES,
    AccessControlEntryRecord,
    ClientQuotaRecord,
    ConfigRecord,
    Endpoint,
    FenceBrokerRecord,
    MetadataRecord,
    PartitionChangeRecord,
    PartitionRecord,
    ProducerIdsRecord,
    RegisterBrokerRecord,
    RemoveAccessControlEntryRecord,
    RemoveTopicRecord,
    RemoveUserScramCredentialRecord,
    TopicRecord,
    UnfenceBrokerRecord,
    UnregisterBrokerRecord,
    UserScramCredentialRecord,
)

VERSION = 0


class MetadataDecodeError(ValueError):
    pass


# field kinds per record type, in dataclass field order
SCHEMAS: dict[type, tuple[str, ...]] = {
    RegisterBrokerRecord: ("i32", "uuid", "i64", "endpoints", "str?", "bool", "[uuid]"),
    UnregisterBrokerRecord: ("i32", "i64"),
    TopicRecord: ("str", "uuid"),
    PartitionRecord: ("i32", "uuid", "[i32]", "[i32]", "i32", "i32", "i32", "[i32]", "[i32]"),
    ConfigRecord: ("i8", "str", "str", "str?"),
    PartitionChangeRecord: ("i32", "uuid", "[i32]?", "i32", "[i32]?", "[i32]?", "[i32]?"),
    FenceBrokerRecord: ("i32", "i64"),
    UnfenceBrokerRecord: ("i32", "i64"),
    RemoveTopicRecord: ("uuid",),
    ProducerIdsRecord: ("i32", "i64", "i64"),
    AccessControlEntryRecord: ("uuid", "i8", "str", "i8", "str", "str", "i8", "i8"),
    RemoveAccessControlEntryRecord: ("uuid",),
    UserScramCredentialRecord: ("str", "i8", "bytes", "bytes", "bytes", "i32"),
    RemoveUserScramCredentialRecord: ("str", "i8"),
    ClientQuotaRecord: ("entity", "str", "f64", "bool"),
}
#: types whose newest version is not VERSION: type -> newest version (SCHEMAS holds it)
NEWEST: dict[type, int] = {RegisterBrokerRecord: 1, PartitionRecord: 1,
                           PartitionChangeRecord: 1}
#: older versions still decoded: (type, version) -> the leading fields they carry (the
#: fields after them take their dataclass defaults)
OLDER: dict[tuple[type, int], tuple[str, ...]] = {
    (RegisterBrokerRecord, 0): SCHEMAS[RegisterBrokerRecord][:-1],
    (PartitionRecord, 0): SCHEMAS[PartitionRecord][:-2],
    (PartitionChangeRecord, 0): SCHEMAS[PartitionChangeRecord][:-2],
}

_INT = {"i8": struct.Struct(">b"), "i16": struct.Struct(">h"), "i32": struct.Struct(">i"),
        "i64": struct.Struct(">q")}
_U16 = struct.Struct(">H")
_F64 = struct.Struct(">d")
_U32 = struct.Struct(">I")
_HEAD = struct.Struct(">HH")


def _put_str(out: bytearray, value: str | None) -> None:
    if value is None:
        out += _U16.pack(0xFFFF)
        return
    raw = value.encode()
    if len(raw) >= 0xFFFF:
        raise ValueError(f"string too long for a metadata record ({len(raw)} bytes)")
    out += _U16.pack(len(raw)) + raw


def _put(out: bytearray, kind: str, value: object) -> None:
    if kind in _INT:
        out += _INT[kind].pack(value)
    elif kind == "bool":
        out.append(1 if value else 0)
    elif kind in ("str", "str?"):
        if value is None and kind == "str":
            raise ValueError("a required string is None")
        _put_str(out, value)  # type: ignore[arg-type]
    elif kind == "uuid":
        out += value.bytes  # type: ignore[union-attr]
    elif kind in ("[i32]", "[i32]?"):
        if value is None:
            if kind == "[i32]":
                raise ValueError("a required array is None")
            out += _INT["i32"].pack(-1)
            return
        items = list(value)  # type: ignore[call-overload]
        out += _INT["i32"].pack(len(items))
        out += struct.pack(f">{len(items)}i", *items)
    elif kind == "f64":
        out += _F64.pack(value)
    elif kind == "entity":
        pairs = list(value)  # type: ignore[call-overload]
        out += _INT["i32"].pack(len(pairs))
        for entity_type, name in pairs:
            _put_str(out, entity_type)
            _put_str(out, name)
    elif kind == "bytes":
        raw = bytes(value)  # type: ignore[arg-type]
        out += _INT["i32"].pack(len(raw)) + raw
    elif kind == "[uuid]":
        ids = list(value)  # type: ignore[call-overload]
        out += _INT["i32"].pack(len(ids))
        for item in ids:
            out += item.bytes
    elif kind == "endpoints":
        items = list(value)  # type: ignore[call-overload]
        out += _INT["i32"].pack(len(items))
        for ep in items:
            _put_str(out, ep.name)
            _put_str(out, ep.host)
            out += _U16.pack(ep.port) + _INT["i16"].pack(ep.security_protocol)
    else:
        raise AssertionError(kind)


class _Reader:
    def __init__(self, buf: bytes | memoryview) -> None:
        self.buf = memoryview(buf)
        self.pos = 0

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.buf):
            raise MetadataDecodeError(f"truncated: need {n} bytes at {self.pos}, "
                                      f"have {len(self.buf) - self.pos}")
        view = self.buf[self.pos : self.pos + n]
        self.pos += n
        return view

    def unpack(self, st: struct.Struct) -> int:
        return st.unpack(self.take(st.size))[0]

    def string(self, nullable: bool) -> str | None:
        n = self.unpack(_U16)
        if n == 0xFFFF:
            if not nullable:
                raise MetadataDecodeError("null in a required string")
            return None
        try:
            return bytes(self.take(n)).decode()
        except UnicodeDecodeError as exc:
            raise MetadataDecodeError(f"invalid UTF-8 in a string: {exc}") from exc

    def get(self, kind: str) -> object:
        if kind in _INT:
            return self.unpack(_INT[kind])
        if kind == "bool":
            b = self.take(1)[0]
            if b > 1:
                raise MetadataDecodeError(f"bool byte {b}")
            return b == 1
        if kind in ("str", "str?"):
            return self.string(kind == "str?")
        if kind == "uuid":
            return uuid.UUID(bytes=bytes(self.take(16)))
        if kind in ("[i32]", "[i32]?"):
            n = self.unpack(_INT["i32"])
            if n == -1 and kind == "[i32]?":
                return None
            if n < 0:
                raise MetadataDecodeError(f"negative array length {n}")
            return tuple(struct.unpack(f">{n}i", self.take(4 * n)))
        if kind == "f64":
            return self.unpack(_F64)
        if kind == "entity":
            n = self.unpack(_INT["i32"])
            if n < 0:
                raise MetadataDecodeError(f"negative array length {n}")
            return tuple((self.string(False), self.string(True)) for _ in range(n))
        if kind == "bytes":
            n = self.unpack(_INT["i32"])
            if n < 0:
                raise MetadataDecodeError(f"negative bytes length {n}")
            return bytes(self.take(n))
        if kind == "[uuid]":
            n = self.unpack(_INT["i32"])
            if n < 0:
                raise MetadataDecodeError(f"negative array length {n}")
            return tuple(uuid.UUID(bytes=bytes(self.take(16))) for _ in range(n))
        if kind == "endpoints":
            n = self.unpack(_INT["i32"])
            if n < 0:
                raise MetadataDecodeError(f"negative array length {n}")
            eps = []
            for _ in range(n):
                name = self.string(False)
                host = self.string(False)
                port = self.unpack(_U16)
                proto = self.unpack(_INT["i16"])
                eps.append(Endpoint(name, host, port, proto))  # type: ignore[arg-type]
            return tuple(eps)
        raise AssertionError(kind)


def _write_version(record: MetadataRecord) -> tuple[int, tuple[str, ...]]:
    """The version ``record`` is written with and its field kinds: the oldest version
    that holds every field value that is not the default (so a reader that predates a
    field keeps reading the records that do not use it)."""
    cls = type(record)
    all_fields = fields(cls)
    for version in sorted(v for c, v in OLDER if c is cls):
        kinds = OLDER[(cls, version)]
        if all(getattr(record, f.name) == f.default for f in all_fields[len(kinds):]):
            return version, kinds
    return NEWEST.get(cls, VERSION), SCHEMAS[cls]


def encode_record(record: MetadataRecord) -> bytes:
    cls = type(record)
    version, kinds = _write_version(record)
    out = bytearray(_HEAD.pack(cls.TYPE, version))
    for f, kind in zip(fields(cls), kinds, strict=False):
        _put(out, kind, getattr(record, f.name))
    return bytes(out)


def decode_record(buf: bytes | memoryview) -> MetadataRecord:
    r = _Reader(buf)
    rtype = r.unpack(_U16)
    version = r.unpack(_U16)
    cls = RECORD_TYPES.get(rtype)
    if cls is None:
        raise MetadataDecodeError(f"unknown metadata record type {rtype}")
    if version == NEWEST.get(cls, VERSION):
        kinds = SCHEMAS[cls]
    elif (cls, version) in OLDER:
        kinds = OLDER[(cls, version)]
    else:
        raise MetadataDecodeError(f"unsupported version {version} of {cls.__name__}")
    values = [r.get(kind) for kind in kinds]
    if r.pos != len(r.buf):
        raise MetadataDecodeError(f"{len(r.buf) - r.pos} trailing bytes after {cls.__name__}")
    return cls(*values)


def encode_batch(records: Sequence[MetadataRecord]) -> bytes:
    """Records that must be applied together, as one Raft entry payload."""
    out = bytearray(_U32.pack(len(records)))
    for record in records:
        frame = encode_record(record)
        out += _U32.pack(len(frame)) + frame
    return bytes(out)


def decode_batch(buf: bytes | memoryview) -> list[MetadataRecord]:
    r = _Reader(buf)
    count = r.unpack(_U32)
    if count > len(r.buf):
        raise MetadataDecodeError(f"batch claims {count} records in {len(r.buf)} bytes")
    records = [decode_record(r.take(r.unpack(_U32))) for _ in range(count)]
    if r.pos != len(r.buf):
        raise MetadataDecodeError(f"{len(r.buf) - r.pos} trailing bytes after the batch")
    return records

