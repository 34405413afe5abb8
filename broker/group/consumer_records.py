"""``__consumer_offsets`` records of KIP-848 consumer groups, byte-compatible with Kafka 4.0.

The record type is the key's version (int16, first two bytes of the key); keys are not
flexible (``string`` = int16 length + UTF-8). Values start with their own int16 version
(always 0) and are *flexible*: compact strings and arrays (unsigned varint length + 1,
0 = null), ``uuid`` = 16 raw bytes, and a tagged-field section (unsigned varint count, then
tag/size/bytes) after every struct. Tagged fields we do not know are skipped on read.

type key fields               value (v0) fields
3    group                    ConsumerGroupMetadataValue: epoch:int32
4    group                    ConsumerGroupPartitionMetadataValue: topics:[topic_id:uuid
                              topic_name:string num_partitions:int32 partition_metadata:
                              [partition:int32 racks:[string]]]  (we write no racks)
5    group member             ConsumerGroupMemberMetadataValue: instance_id:string?
                              rack_id:string? client_id:string client_host:string
                              subscribed_topic_names:[string] subscribed_topic_regex:string?
                              rebalance_timeout_ms:int32 server_assignor:string?
                              tag 0 (members that joined with JoinGroup): classic member
                              metadata: session_timeout_ms:int32 supported_protocols:
                              [name:string metadata:bytes]
6    group                    ConsumerGroupTargetAssignmentMetadataValue: assignment_epoch:int32
7    group member             ConsumerGroupTargetAssignmentMemberValue:
                              topic_partitions:[topic_id:uuid partitions:[int32]]
8    group member             ConsumerGroupCurrentMemberAssignmentValue: member_epoch:int32
                              previous_member_epoch:int32 state:int8
                              assigned_partitions:[topic_id:uuid partitions:[int32]]
                              partitions_pending_revocation:[same]

A null value is a tombstone (the member or the group left). Kafka writes type 16
(ConsumerGroupRegularExpression) for resolved regexes; we resolve them from the topic
metadata on load instead, so those records are ignored. Pure.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from broker.group.log_format import LogFormatError, _Reader

GROUP_METADATA = 3
PARTITION_METADATA = 4
MEMBER_METADATA = 5
TARGET_ASSIGNMENT_METADATA = 6
TARGET_ASSIGNMENT_MEMBER = 7
CURRENT_MEMBER_ASSIGNMENT = 8
REGULAR_EXPRESSION = 16
#: record types whose key carries a member id
MEMBER_TYPES = frozenset({MEMBER_METADATA, TARGET_ASSIGNMENT_MEMBER, CURRENT_MEMBER_ASSIGNMENT})
CONSUMER_TYPES = frozenset(
    {GROUP_METADATA, PARTITION_METADATA, TARGET_ASSIGNMENT_METADATA, REGULAR_EXPRESSION}
) | MEMBER_TYPES

_H = struct.Struct(">h")
_I = struct.Struct(">i")
_Q = struct.Struct(">q")

#: topic id -> partitions
Assignment = Mapping[uuid.UUID, frozenset[int]]


@dataclass(frozen=True, slots=True)
class ConsumerKey:
    record_type: int
    group_id: str
    member_id: str | None = None


@dataclass(frozen=True, slots=True)
class TopicMetadata:
    topic_id: uuid.UUID
    name: str
    num_partitions: int


@dataclass(frozen=True, slots=True)
class MemberMetadataValue:
    instance_id: str | None
    rack_id: str | None
    client_id: str
    client_host: str
    subscribed_topic_names: tuple[str, ...]
    subscribed_topic_regex: str | None
    rebalance_timeout_ms: int
    server_assignor: str | None
    #: tag 0 ClassicMemberMetadata of a member that joined with JoinGroup:
    #: (session timeout ms, ((protocol name, metadata), ...)); None for KIP-848 members
    classic: tuple[int, tuple[tuple[str, bytes], ...]] | None = None


@dataclass(frozen=True, slots=True)
class CurrentAssignmentValue:
    member_epoch: int
    previous_member_epoch: int
    state: int
    assigned: dict[uuid.UUID, frozenset[int]]
    pending_revocation: dict[uuid.UUID, frozenset[int]]


def record_type(key: bytes) -> int | None:
    """The record type (key version) of a ``__consumer_offsets`` key, None if too short."""
    return _H.unpack_from(key)[0] if len(key) >= 2 else None


# ---------------------------------------------------------------- writing


def _str(s: str) -> bytes:
    raw = s.encode()
    if len(raw) > 32767:
        raise LogFormatError(f"string of {len(raw)} bytes does not fit an int16 length")
    return _H.pack(len(raw)) + raw


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _cstr(s: str | None) -> bytes:
    if s is None:
        return b"\x00"
    raw = s.encode()
    return _uvarint(len(raw) + 1) + raw


def _carray_len(n: int) -> bytes:
    return _uvarint(n + 1)


_NO_TAGS = b"\x00"


def encode_key(key: ConsumerKey) -> bytes:
    out = _H.pack(key.record_type) + _str(key.group_id)
    if key.record_type in MEMBER_TYPES:
        if key.member_id is None:
            raise LogFormatError(f"record type {key.record_type} needs a member id")
        out += _str(key.member_id)
    return out


def _value(body: bytes) -> bytes:
    return _H.pack(0) + body + _NO_TAGS


def encode_epoch_value(epoch: int) -> bytes:
    """ConsumerGroupMetadataValue (type 3) and TargetAssignmentMetadataValue (type 6)."""
    return _value(_I.pack(epoch))


def encode_partition_metadata(topics: Mapping[str, TopicMetadata]) -> bytes:
    parts = [_carray_len(len(topics))]
    for name in sorted(topics):
        t = topics[name]
        parts += [t.topic_id.bytes, _cstr(t.name), _I.pack(t.num_partitions),
                  _carray_len(0), _NO_TAGS]
    return _value(b"".join(parts))


def _cbytes(b: bytes) -> bytes:
    return _uvarint(len(b) + 1) + b


def encode_member_metadata(v: MemberMetadataValue) -> bytes:
    parts = [_cstr(v.instance_id), _cstr(v.rack_id), _cstr(v.client_id), _cstr(v.client_host),
             _carray_len(len(v.subscribed_topic_names))]
    parts += [_cstr(n) for n in v.subscribed_topic_names]
    parts += [_cstr(v.subscribed_topic_regex), _I.pack(v.rebalance_timeout_ms),
              _cstr(v.server_assignor)]
    if v.classic is None:
        return _value(b"".join(parts))
    session, protocols = v.classic
    classic = [_I.pack(session), _carray_len(len(protocols))]
    for name, metadata in protocols:
        classic += [_cstr(name), _cbytes(metadata), _NO_TAGS]
    classic.append(_NO_TAGS)
    field = b"".join(classic)
    # tagged fields: count, then tag 0, size, the ClassicMemberMetadata struct
    return _H.pack(0) + b"".join(parts) + _uvarint(1) + _uvarint(0) + _uvarint(len(field)) + field


def _encode_partitions(assignment: Assignment) -> bytes:
    parts = [_carray_len(len(assignment))]
    for topic_id in sorted(assignment, key=str):
        ps = sorted(assignment[topic_id])
        parts += [topic_id.bytes, _carray_len(len(ps))]
        parts += [_I.pack(p) for p in ps]
        parts.append(_NO_TAGS)
    return b"".join(parts)


def encode_target_member(assignment: Assignment) -> bytes:
    return _value(_encode_partitions(assignment))


def encode_current_assignment(v: CurrentAssignmentValue) -> bytes:
    return _value(
        _I.pack(v.member_epoch) + _I.pack(v.previous_member_epoch) + bytes([v.state & 0xFF])
        + _encode_partitions(v.assigned) + _encode_partitions(v.pending_revocation)
    )


# ---------------------------------------------------------------- reading


def decode_key(buf: bytes) -> ConsumerKey | None:
    """A consumer-group key; None for record types that are not consumer-group records."""
    r = _Reader(buf, "__consumer_offsets key")
    kind = r.i16()
    if kind not in CONSUMER_TYPES:
        return None
    group = r.req_string()
    if kind == REGULAR_EXPRESSION:
        return ConsumerKey(kind, group)
    member = r.req_string() if kind in MEMBER_TYPES else None
    return ConsumerKey(kind, group, member)


def _open(buf: bytes, what: str) -> _Reader:
    r = _Reader(buf, what)
    version = r.i16()
    if version != 0:
        raise LogFormatError(f"{what}: unknown version {version}")
    return r


def _uuid(r: _Reader) -> uuid.UUID:
    return uuid.UUID(bytes=bytes(r._take(16)))


def _i8(r: _Reader) -> int:
    b = r._take(1)[0]
    return b - 256 if b >= 128 else b


def decode_epoch_value(buf: bytes) -> int:
    r = _open(buf, "ConsumerGroup epoch value")
    epoch = r.i32()
    r.skip_tags()
    return epoch


def decode_partition_metadata(buf: bytes) -> dict[str, TopicMetadata]:
    r = _open(buf, "ConsumerGroupPartitionMetadataValue")
    out: dict[str, TopicMetadata] = {}
    for _ in range(r.array_len(compact=True)):
        topic_id = _uuid(r)
        name = r.req_string(compact=True)
        count = r.i32()
        for _ in range(r.array_len(compact=True)):
            r.i32()
            for _ in range(r.array_len(compact=True)):
                r.req_string(compact=True)
            r.skip_tags()
        r.skip_tags()
        out[name] = TopicMetadata(topic_id, name, count)
    r.skip_tags()
    return out


def decode_member_metadata(buf: bytes) -> MemberMetadataValue:
    r = _open(buf, "ConsumerGroupMemberMetadataValue")
    instance_id = r.string(nullable=True, compact=True)
    rack_id = r.string(nullable=True, compact=True)
    client_id = r.req_string(compact=True)
    client_host = r.req_string(compact=True)
    names = tuple(r.req_string(compact=True) for _ in range(r.array_len(compact=True)))
    regex = r.string(nullable=True, compact=True)
    rebalance = r.i32()
    assignor = r.string(nullable=True, compact=True)
    classic = None
    for _ in range(r.uvarint()):
        tag, size = r.uvarint(), r.uvarint()
        if tag != 0:
            r._take(size)
            continue
        t = _Reader(bytes(r._take(size)), "ClassicMemberMetadata")
        session = t.i32()
        protocols = []
        for _ in range(t.array_len(compact=True)):
            name = t.req_string(compact=True)
            protocols.append((name, t.bytes_(compact=True)))
            t.skip_tags()
        t.skip_tags()
        classic = (session, tuple(protocols))
    return MemberMetadataValue(instance_id, rack_id, client_id, client_host, names, regex,
                               rebalance, assignor, classic)


def _decode_partitions(r: _Reader) -> dict[uuid.UUID, frozenset[int]]:
    out: dict[uuid.UUID, frozenset[int]] = {}
    for _ in range(r.array_len(compact=True)):
        topic_id = _uuid(r)
        out[topic_id] = frozenset(r.i32() for _ in range(r.array_len(compact=True)))
        r.skip_tags()
    return out


def decode_target_member(buf: bytes) -> dict[uuid.UUID, frozenset[int]]:
    r = _open(buf, "ConsumerGroupTargetAssignmentMemberValue")
    out = _decode_partitions(r)
    r.skip_tags()
    return out


def decode_current_assignment(buf: bytes) -> CurrentAssignmentValue:
    r = _open(buf, "ConsumerGroupCurrentMemberAssignmentValue")
    epoch, previous, state = r.i32(), r.i32(), _i8(r)
    assigned = _decode_partitions(r)
    pending = _decode_partitions(r)
    r.skip_tags()
    return CurrentAssignmentValue(epoch, previous, state, assigned, pending)
