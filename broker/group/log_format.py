"""Records of the internal topic ``__consumer_offsets``, byte-compatible with Kafka.

Every record is a key/value pair inside an ordinary RecordBatch; a null value is a
tombstone (the topic is compacted, so the latest value per key wins). All integers are
big-endian; ``string`` = int16 length + UTF-8 (length -1 = null); ``bytes`` = int32
length + raw bytes; ``array`` = int32 count + items. Version 4 values are "flexible":
compact strings/bytes/arrays (unsigned varint length + 1, 0 = null) and a tagged-field
section (unsigned varint count, then tag/size/bytes) after each struct.

Keys (``>h`` version first)::

    OffsetCommitKey   v0/v1  version:int16 group:string topic:string partition:int32
    GroupMetadataKey  v2     version:int16 group:string

OffsetCommitValue (``>h`` version first)::

    v0  offset:int64 metadata:string commit_timestamp:int64
    v1  offset:int64 metadata:string commit_timestamp:int64 expire_timestamp:int64
    v2  offset:int64 metadata:string commit_timestamp:int64
    v3  offset:int64 leader_epoch:int32 metadata:string commit_timestamp:int64
    v4  (flexible) offset:int64 leader_epoch:int32 metadata:compact_string
        commit_timestamp:int64 tagged_fields

We write v3, or v1 when an explicit expire timestamp exists (OffsetCommit v2-v4
``retention_time_ms``), exactly the versions Kafka 3.x writes.

GroupMetadataValue (``>h`` version first)::

    protocol_type:string generation:int32 protocol:nullable_string
    leader:nullable_string [current_state_timestamp:int64 (v2+)]
    members:array of
        member_id:string [group_instance_id:nullable_string (v3+)] client_id:string
        client_host:string [rebalance_timeout:int32 (v1+)] session_timeout:int32
        subscription:bytes assignment:bytes

We write v3. ``subscription`` is the member's metadata for the selected protocol.
Unknown key versions (Kafka 3.7+ records of the new consumer protocol) decode to None
and are skipped on replay.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

OFFSET_COMMIT_KEY_VERSION = 1
GROUP_METADATA_KEY_VERSION = 2
GROUP_METADATA_VALUE_VERSION = 3

_H = struct.Struct(">h")
_I = struct.Struct(">i")
_Q = struct.Struct(">q")


class LogFormatError(ValueError):
    """A ``__consumer_offsets`` record that cannot be decoded (says what and where)."""


@dataclass(frozen=True, slots=True)
class OffsetKey:
    group_id: str
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class GroupKey:
    group_id: str


@dataclass(frozen=True, slots=True)
class OffsetValue:
    offset: int
    leader_epoch: int  # -1 = unknown
    metadata: str
    commit_timestamp: int
    expire_timestamp: int | None = None


@dataclass(frozen=True, slots=True)
class MemberValue:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    subscription: bytes
    assignment: bytes


@dataclass(frozen=True, slots=True)
class GroupValue:
    protocol_type: str
    generation_id: int
    protocol_name: str | None
    leader_id: str | None
    current_state_timestamp: int  # -1 = unknown (v0/v1)
    members: tuple[MemberValue, ...] = field(default=())


# ---------------------------------------------------------------- writing


def _str(s: str | None) -> bytes:
    if s is None:
        return _H.pack(-1)
    raw = s.encode()
    if len(raw) > 32767:
        raise LogFormatError(f"string of {len(raw)} bytes does not fit an int16 length")
    return _H.pack(len(raw)) + raw


def _bytes(b: bytes) -> bytes:
    return _I.pack(len(b)) + b


def encode_offset_key(key: OffsetKey) -> bytes:
    return (
        _H.pack(OFFSET_COMMIT_KEY_VERSION)
        + _str(key.group_id)
        + _str(key.topic)
        + _I.pack(key.partition)
    )


def encode_group_key(key: GroupKey) -> bytes:
    return _H.pack(GROUP_METADATA_KEY_VERSION) + _str(key.group_id)


def encode_offset_value(value: OffsetValue) -> bytes:
    if value.expire_timestamp is not None:
        return (
            _H.pack(1)
            + _Q.pack(value.offset)
            + _str(value.metadata)
            + _Q.pack(value.commit_timestamp)
            + _Q.pack(value.expire_timestamp)
        )
    return (
        _H.pack(3)
        + _Q.pack(value.offset)
        + _I.pack(value.leader_epoch)
        + _str(value.metadata)
        + _Q.pack(value.commit_timestamp)
    )


def encode_group_value(value: GroupValue) -> bytes:
    parts = [
        _H.pack(GROUP_METADATA_VALUE_VERSION),
        _str(value.protocol_type),
        _I.pack(value.generation_id),
        _str(value.protocol_name),
        _str(value.leader_id),
        _Q.pack(value.current_state_timestamp),
        _I.pack(len(value.members)),
    ]
    for m in value.members:
        parts += [
            _str(m.member_id),
            _str(m.group_instance_id),
            _str(m.client_id),
            _str(m.client_host),
            _I.pack(m.rebalance_timeout_ms),
            _I.pack(m.session_timeout_ms),
            _bytes(m.subscription),
            _bytes(m.assignment),
        ]
    return b"".join(parts)


# ---------------------------------------------------------------- reading


class _Reader:
    __slots__ = ("buf", "pos", "what")

    def __init__(self, buf: bytes, what: str) -> None:
        self.buf = memoryview(buf)
        self.pos = 0
        self.what = what

    def _take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.buf):
            raise LogFormatError(f"{self.what}: truncated at byte {self.pos} (need {n})")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def i16(self) -> int:
        return _H.unpack(self._take(2))[0]

    def i32(self) -> int:
        return _I.unpack(self._take(4))[0]

    def i64(self) -> int:
        return _Q.unpack(self._take(8))[0]

    def uvarint(self) -> int:
        shift = result = 0
        while True:
            b = self._take(1)[0]
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 35:
                raise LogFormatError(f"{self.what}: varint too long at byte {self.pos}")

    def string(self, *, nullable: bool = False, compact: bool = False) -> str | None:
        n = self.uvarint() - 1 if compact else self.i16()
        if n < 0:
            if nullable:
                return None
            raise LogFormatError(f"{self.what}: null where a string is required")
        try:
            return bytes(self._take(n)).decode()
        except UnicodeDecodeError as exc:
            raise LogFormatError(f"{self.what}: invalid UTF-8 ({exc})") from None

    def req_string(self, *, compact: bool = False) -> str:
        s = self.string(compact=compact)
        assert s is not None
        return s

    def bytes_(self, *, compact: bool = False) -> bytes:
        n = self.uvarint() - 1 if compact else self.i32()
        if n < 0:
            return b""
        return bytes(self._take(n))

    def array_len(self, *, compact: bool = False) -> int:
        n = self.uvarint() - 1 if compact else self.i32()
        return max(n, 0)

    def skip_tags(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()
            self._take(self.uvarint())


def decode_key(buf: bytes) -> OffsetKey | GroupKey | None:
    """Decode a record key; None for key versions this coordinator does not know."""
    r = _Reader(buf, "__consumer_offsets key")
    version = r.i16()
    if version in (0, 1):
        return OffsetKey(r.req_string(), r.req_string(), r.i32())
    if version == 2:
        return GroupKey(r.req_string())
    return None


def decode_offset_value(buf: bytes) -> OffsetValue:
    r = _Reader(buf, "OffsetCommitValue")
    version = r.i16()
    if version == 0:
        offset, meta, ts = r.i64(), r.req_string(), r.i64()
        return OffsetValue(offset, -1, meta, ts)
    if version == 1:
        offset, meta, ts, expire = r.i64(), r.req_string(), r.i64(), r.i64()
        return OffsetValue(offset, -1, meta, ts, None if expire < 0 else expire)
    if version == 2:
        offset, meta, ts = r.i64(), r.req_string(), r.i64()
        return OffsetValue(offset, -1, meta, ts)
    if version in (3, 4):
        compact = version == 4
        offset, epoch = r.i64(), r.i32()
        meta = r.req_string(compact=compact)
        ts = r.i64()
        return OffsetValue(offset, epoch, meta, ts)
    raise LogFormatError(f"OffsetCommitValue: unknown version {version}")


def decode_group_value(buf: bytes) -> GroupValue:
    r = _Reader(buf, "GroupMetadataValue")
    version = r.i16()
    if not 0 <= version <= 4:
        raise LogFormatError(f"GroupMetadataValue: unknown version {version}")
    c = version >= 4
    protocol_type = r.req_string(compact=c)
    generation = r.i32()
    protocol = r.string(nullable=True, compact=c)
    leader = r.string(nullable=True, compact=c)
    state_ts = r.i64() if version >= 2 else -1
    members = []
    for _ in range(r.array_len(compact=c)):
        member_id = r.req_string(compact=c)
        instance_id = r.string(nullable=True, compact=c) if version >= 3 else None
        client_id = r.req_string(compact=c)
        client_host = r.req_string(compact=c)
        session_timeout = -1
        rebalance_timeout = r.i32() if version >= 1 else -1
        session_timeout = r.i32()
        if rebalance_timeout < 0:
            rebalance_timeout = session_timeout
        subscription = r.bytes_(compact=c)
        assignment = r.bytes_(compact=c)
        if c:
            r.skip_tags()
        members.append(
            MemberValue(
                member_id,
                instance_id,
                client_id,
                client_host,
                rebalance_timeout,
                session_timeout,
                subscription,
                assignment,
            )
        )
    return GroupValue(protocol_type, generation, protocol, leader, state_ts, tuple(members))


def parse_subscribed_topics(metadata: bytes) -> set[str] | None:
    """Topics in a ConsumerProtocolSubscription (``version:int16 topics:[string] ...``; the
    prefix is the same in v0-v3). None when the bytes are not a subscription."""
    try:
        r = _Reader(metadata, "ConsumerProtocolSubscription")
        if r.i16() < 0:
            return None
        n = r.i32()
        if n < 0 or n > len(metadata):
            return None
        return {r.req_string() for _ in range(n)}
    except LogFormatError:
        return None
