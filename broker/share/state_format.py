"""Records of ``__share_group_state``: Kafka's ShareSnapshot shape, byte by byte. Pure.

One record per share-partition (group id, topic id, partition); the topic is compacted
so the latest snapshot per key is what a restart reads. A null value (tombstone) deletes
the share-partition's state (DeleteShareGroupOffsets, or a deleted group).

Key (big-endian)::

    int16  record type      0 = ShareSnapshot (Kafka's ShareSnapshotKey; 1 = ShareUpdate
                            is Kafka's delta record, not written by Strom)
    int16  group id length  then that many UTF-8 bytes
    16     topic id         UUID bytes
    int32  partition

Value (ShareSnapshotValue, version 0)::

    int16  version          0
    int32  snapshot epoch   +1 per snapshot written for the key
    int32  state epoch      +1 per AlterShareGroupOffsets / re-initialisation
    int32  leader epoch     of the partition when written (-1 unknown)
    int64  start offset     the SPSO
    int64  create timestamp ms
    int64  write timestamp  ms
    int32  batch count      then per batch:
      int64 first offset, int64 last offset, int8 delivery state, int16 delivery count

(Kafka encodes the same fields in its flexible message format; the fields and their
meaning are Kafka's, the framing is fixed-width.)
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass

from broker.share.partition import StateBatch

SNAPSHOT_KEY = 0
_HEAD = struct.Struct(">hiiiqqqi")
_BATCH = struct.Struct(">qqbh")
_PARTITION = struct.Struct(">i")


class StateFormatError(ValueError):
    """A stored record that is not a ShareSnapshot of a known version."""


@dataclass(frozen=True, slots=True)
class ShareStateKey:
    group_id: str
    topic_id: uuid.UUID
    partition: int


@dataclass(frozen=True, slots=True)
class ShareSnapshot:
    snapshot_epoch: int
    state_epoch: int
    leader_epoch: int
    start_offset: int
    create_timestamp: int
    write_timestamp: int
    state_batches: tuple[StateBatch, ...]


def encode_key(key: ShareStateKey) -> bytes:
    group = key.group_id.encode()
    return (struct.pack(">hh", SNAPSHOT_KEY, len(group)) + group + key.topic_id.bytes
            + _PARTITION.pack(key.partition))


def decode_key(data: bytes) -> ShareStateKey:
    try:
        kind, length = struct.unpack_from(">hh", data, 0)
        if kind != SNAPSHOT_KEY or length < 0:
            raise StateFormatError(f"unknown share state record type {kind}")
        group = data[4:4 + length].decode()
        topic = uuid.UUID(bytes=bytes(data[4 + length:20 + length]))
        (partition,) = _PARTITION.unpack_from(data, 20 + length)
        if len(data) != 24 + length:
            raise StateFormatError("trailing bytes after the share state key")
    except (struct.error, UnicodeDecodeError, ValueError) as exc:
        raise StateFormatError(f"bad share state key: {exc}") from exc
    return ShareStateKey(group, topic, partition)


def encode_snapshot(s: ShareSnapshot) -> bytes:
    out = [_HEAD.pack(0, s.snapshot_epoch, s.state_epoch, s.leader_epoch, s.start_offset,
                      s.create_timestamp, s.write_timestamp, len(s.state_batches))]
    out.extend(_BATCH.pack(b.first_offset, b.last_offset, b.state, b.delivery_count)
               for b in s.state_batches)
    return b"".join(out)


def decode_snapshot(data: bytes) -> ShareSnapshot:
    try:
        version, snap, state, leader, start, created, written, n = _HEAD.unpack_from(data, 0)
        if version != 0:
            raise StateFormatError(f"unknown ShareSnapshotValue version {version}")
        if n < 0 or len(data) != _HEAD.size + n * _BATCH.size:
            raise StateFormatError("share snapshot length does not match its batch count")
        batches = tuple(
            StateBatch(*_BATCH.unpack_from(data, _HEAD.size + i * _BATCH.size))
            for i in range(n))
    except struct.error as exc:
        raise StateFormatError(f"bad share snapshot: {exc}") from exc
    return ShareSnapshot(snap, state, leader, start, created, written, batches)
