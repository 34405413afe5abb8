"""Shard iterators: a position in a shard, signed so clients cannot forge or alter it, and
valid for five minutes after it was issued (Kinesis' rule).

Wire form: standard base64 of ``payload || mac`` where payload is
``version:u8 (1) | issued_ms:u64 | topic_id:16 bytes | shard:u32 | offset:u64 |
stream name (UTF-8, the rest)`` and mac the first 16 bytes of HMAC-SHA256(key, payload).
The topic id ties an iterator to one incarnation of a stream (a recreated stream with the
same name does not accept old iterators).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
import uuid
from dataclasses import dataclass

from kinesis.errors import KinesisError, invalid

VERSION = 1
TTL_MS = 300_000
_HEAD = struct.Struct(">BQ16sIQ")
_MAC = 16


@dataclass(frozen=True, slots=True)
class Position:
    stream: str
    topic_id: uuid.UUID
    shard: int
    offset: int


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()[:_MAC]


def encode(key: bytes, position: Position, issued_ms: int) -> str:
    payload = _HEAD.pack(VERSION, issued_ms, position.topic_id.bytes, position.shard,
                         position.offset) + position.stream.encode("utf-8")
    return base64.b64encode(payload + _mac(key, payload)).decode("ascii")


def decode(key: bytes, iterator: str, now_ms: int) -> Position:
    """The position of a valid iterator. InvalidArgumentException when it is malformed or
    its signature does not match; ExpiredIteratorException after ``TTL_MS``."""
    try:
        raw = base64.b64decode(iterator.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise invalid("Invalid ShardIterator.") from None
    if len(raw) < _HEAD.size + _MAC:
        raise invalid("Invalid ShardIterator.")
    payload, mac = raw[:-_MAC], raw[-_MAC:]
    if not hmac.compare_digest(mac, _mac(key, payload)):
        raise invalid("Invalid ShardIterator.")
    version, issued, topic_id, shard, offset = _HEAD.unpack_from(payload)
    if version != VERSION:
        raise invalid("Invalid ShardIterator.")
    if now_ms - issued > TTL_MS:
        raise KinesisError(
            "ExpiredIteratorException",
            f"Iterator expired. The iterator was created at time {issued} while right now "
            f"it is {now_ms} which is further in the future than the tolerated delay of "
            f"{TTL_MS} milliseconds.")
    try:
        stream = payload[_HEAD.size:].decode("utf-8")
    except UnicodeDecodeError:
        raise invalid("Invalid ShardIterator.") from None
    return Position(stream, uuid.UUID(bytes=topic_id), shard, offset)
