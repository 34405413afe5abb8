"""Records of ``__transaction_state``, byte-compatible with Kafka's TransactionLogKey /
TransactionLogValue (so Kafka's tools could read the log). Pure.

Every record is a key/value pair in an ordinary RecordBatch; the topic is compacted, so
the last value per key wins and a null value (tombstone) removes the transactional id.
Integers are big-endian; ``string`` = int16 length + UTF-8; ``array`` = int32 count
(-1 = null) + items. Version 1 values are "flexible": compact strings/arrays (unsigned
varint length + 1, 0 = null) and a tagged-field section (unsigned varint count, then
tag, size, bytes for each) after every struct.

Key::

    version:int16 (0)  transactional_id:string

Value (``version:int16`` first)::

    v0  producer_id:int64 producer_epoch:int16 transaction_timeout_ms:int32
        transaction_status:int8 (TransactionState id)
        transaction_partitions: nullable array of
            topic:string partition_ids: array of int32
        transaction_last_update_timestamp_ms:int64 transaction_start_timestamp_ms:int64
    v1  the same fields, flexible, with top-level tagged fields
        0 previous_producer_id:int64, 1 next_producer_id:int64,
        2 client_transaction_version:int16

We write v0 (what Kafka writes for transaction version 1 clients, the only version this
broker serves) and read both. Kafka writes the partition list only for Ongoing and the
Prepare states (an empty array otherwise); so do we.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

KEY_VERSION = 0
VALUE_VERSION = 0

_H = struct.Struct(">h")
_B = struct.Struct(">b")
_I = struct.Struct(">i")
_Q = struct.Struct(">q")


class LogFormatError(ValueError):
    """A ``__transaction_state`` record that cannot be decoded (says why)."""


@dataclass(frozen=True, slots=True)
class TxnLogValue:
    producer_id: int
    producer_epoch: int
    transaction_timeout_ms: int
    state: int  # TransactionState id
    partitions: tuple[tuple[str, tuple[int, ...]], ...] = ()
    last_update_timestamp_ms: int = -1
    start_timestamp_ms: int = -1
    #: tagged fields of v1 (defaults when absent, as in Kafka)
    previous_producer_id: int = -1
    next_producer_id: int = -1
    client_transaction_version: int = 0
    extra: dict[int, bytes] = field(default_factory=dict, compare=False)


def group_partitions(partitions: Iterable[tuple[str, int]]
                     ) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """(topic, partition) pairs -> Kafka's per-topic lists, sorted."""
    by_topic: dict[str, set[int]] = {}
    for topic, partition in partitions:
        by_topic.setdefault(topic, set()).add(partition)
    return tuple((t, tuple(sorted(ps))) for t, ps in sorted(by_topic.items()))


# ---- primitives ---------------------------------------------------------------------------
def _string(text: str) -> bytes:
    raw = text.encode()
    if len(raw) > 0x7FFF:
        raise ValueError("string longer than 32767 bytes")
    return _H.pack(len(raw)) + raw


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


class _Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0
        self.what = what

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise LogFormatError(f"{self.what}: truncated at byte {self.pos}")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, st: struct.Struct) -> int:
        return st.unpack(self.take(st.size))[0]

    def uvarint(self) -> int:
        shift = result = 0
        while True:
            byte = self.take(1)[0]
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7
            if shift > 35:
                raise LogFormatError(f"{self.what}: varint too long")

    def string(self, compact: bool) -> str:
        n = self.uvarint() - 1 if compact else self.unpack(_H)
        if n < 0:
            raise LogFormatError(f"{self.what}: null string")
        try:
            return self.take(n).decode()
        except UnicodeDecodeError as exc:
            raise LogFormatError(f"{self.what}: string is not UTF-8") from exc

    def array_len(self, compact: bool) -> int:
        return self.uvarint() - 1 if compact else self.unpack(_I)

    def tags(self) -> dict[int, bytes]:
        found: dict[int, bytes] = {}
        for _ in range(self.uvarint()):
            tag = self.uvarint()
            found[tag] = self.take(self.uvarint())
        return found


# ---- key ----------------------------------------------------------------------------------
def encode_key(transactional_id: str) -> bytes:
    return _H.pack(KEY_VERSION) + _string(transactional_id)


def decode_key(data: bytes) -> str | None:
    """The transactional id of a key; None for a key version this broker does not know
    (skipped on replay, as Kafka skips unknown record types)."""
    r = _Reader(data, "transaction log key")
    version = r.unpack(_H)
    if version != KEY_VERSION:
        return None
    return r.string(False)


# ---- value --------------------------------------------------------------------------------
def encode_value(v: TxnLogValue) -> bytes:
    """Version 0 bytes of ``v`` (its tagged fields are not written)."""
    out = bytearray(_H.pack(VALUE_VERSION))
    out += _Q.pack(v.producer_id) + _H.pack(v.producer_epoch) + _I.pack(v.transaction_timeout_ms)
    out += _B.pack(v.state)
    out += _I.pack(len(v.partitions))
    for topic, ids in v.partitions:
        out += _string(topic) + _I.pack(len(ids))
        for pid in ids:
            out += _I.pack(pid)
    out += _Q.pack(v.last_update_timestamp_ms) + _Q.pack(v.start_timestamp_ms)
    return bytes(out)


def encode_value_v1(v: TxnLogValue) -> bytes:
    """Version 1 (flexible) bytes of ``v``; Kafka writes it for transaction version 2
    clients. Tagged fields at their defaults are left out, as Kafka does."""
    out = bytearray(_H.pack(1))
    out += _Q.pack(v.producer_id) + _H.pack(v.producer_epoch) + _I.pack(v.transaction_timeout_ms)
    out += _B.pack(v.state)
    out += _uvarint(len(v.partitions) + 1)
    for topic, ids in v.partitions:
        raw = topic.encode()
        out += _uvarint(len(raw) + 1) + raw + _uvarint(len(ids) + 1)
        for pid in ids:
            out += _I.pack(pid)
        out += _uvarint(0)
    out += _Q.pack(v.last_update_timestamp_ms) + _Q.pack(v.start_timestamp_ms)
    tags = []
    if v.previous_producer_id != -1:
        tags.append((0, _Q.pack(v.previous_producer_id)))
    if v.next_producer_id != -1:
        tags.append((1, _Q.pack(v.next_producer_id)))
    if v.client_transaction_version != 0:
        tags.append((2, _H.pack(v.client_transaction_version)))
    out += _uvarint(len(tags))
    for tag, raw in tags:
        out += _uvarint(tag) + _uvarint(len(raw)) + raw
    return bytes(out)


def decode_value(data: bytes) -> TxnLogValue:
    """A v0 or v1 value; raises LogFormatError."""
    r = _Reader(data, "transaction log value")
    version = r.unpack(_H)
    if version not in (0, 1):
        raise LogFormatError(f"transaction log value version {version} is not supported")
    flexible = version >= 1
    producer_id = r.unpack(_Q)
    epoch = r.unpack(_H)
    timeout = r.unpack(_I)
    state = r.unpack(_B)
    count = r.array_len(flexible)
    partitions: list[tuple[str, tuple[int, ...]]] = []
    for _ in range(max(count, 0)):
        topic = r.string(flexible)
        ids = tuple(r.unpack(_I) for _ in range(max(r.array_len(flexible), 0)))
        if flexible:
            r.tags()
        partitions.append((topic, ids))
    last_update = r.unpack(_Q)
    start = r.unpack(_Q)
    tags = r.tags() if flexible else {}
    previous = _Q.unpack(tags.pop(0))[0] if len(tags.get(0, b"")) == 8 else -1
    nxt = _Q.unpack(tags.pop(1))[0] if len(tags.get(1, b"")) == 8 else -1
    ctv = _H.unpack(tags.pop(2))[0] if len(tags.get(2, b"")) == 2 else 0
    if not 0 <= state <= 7:
        raise LogFormatError(f"transaction log value: unknown state {state}")
    return TxnLogValue(producer_id, epoch, timeout, state, tuple(partitions), last_update,
                       start, previous, nxt, ctv, tags)
