"""Refusing over-size record batches of a Produce request without copying them (pure).

A Produce request's record sets are kio ``bytes`` fields: decoding a 100 MiB request copies
100 MiB (~0.1-0.15 s of the event loop) before the size check that refuses it. For large
frames the server first walks the request's structure in place (``scan_produce``: where
each partition's record set lies in the frame) and the batch headers inside each record
set (base offset int64, batch length int32, then the next batch at +12+length). A
partition with a batch of ``length + 12 > limit(topic)`` bytes — the check storage makes,
``max.message.bytes`` — is *elided*: ``decode_produce_eliding`` decodes a copy of the frame
in which those record sets are null (only the rest of the request is copied) and puts an
``OversizedRecords`` in their place, which the Produce handler answers MESSAGE_TOO_LARGE.

Request layout walked (Produce v3-12; other versions, or anything malformed, give None and
the caller decodes as usual, so the ordinary decoder reports the error): transactional_id
(nullable string), acks int16, timeout_ms int32, topics [name string, partitions [index
int32, records nullable bytes]]; v9+ is flexible (compact lengths as unsigned varints + 1,
tagged fields after each partition, each topic and the body).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from protocol.codec import decode_request

FIRST_VERSION, LAST_VERSION, FIRST_FLEXIBLE = 3, 12, 9
BATCH_OVERHEAD = 12  # base offset + batch length fields, outside the batch length


@dataclass(frozen=True, slots=True)
class OversizedRecords:
    """Stands for a record set left in the frame: ``batch_bytes`` of its first over-size
    batch exceeded ``limit`` (``max.message.bytes``); ``size`` is the record set's length."""

    size: int
    batch_bytes: int
    limit: int

    def __bool__(self) -> bool:
        return True

    def __len__(self) -> int:
        return self.size

    @property
    def message(self) -> str:
        return f"batch of {self.batch_bytes} bytes exceeds max.message.bytes {self.limit}"


@dataclass(frozen=True, slots=True)
class RecordsField:
    """One partition's record set: the length field at ``field``..``data`` and the bytes at
    ``data``..``end`` (``data == end`` and ``null`` for a null record set)."""

    topic: str
    partition: int
    field: int
    data: int
    end: int
    null: bool


class _Malformed(Exception):
    pass


class _Reader:
    __slots__ = ("buf", "pos", "end")

    def __init__(self, buf: memoryview, pos: int) -> None:
        self.buf, self.pos, self.end = buf, pos, len(buf)

    def take(self, n: int) -> int:
        start = self.pos
        if n < 0 or start + n > self.end:
            raise _Malformed
        self.pos = start + n
        return start

    def int_(self, n: int, signed: bool = True) -> int:
        start = self.take(n)
        return int.from_bytes(self.buf[start:start + n], "big", signed=signed)

    def uvarint(self) -> int:
        shift = value = 0
        while True:
            byte = self.buf[self.take(1)]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
            if shift > 28:
                raise _Malformed

    def length(self, flexible: bool, wide: bool = False) -> int:
        """A (nullable) string/bytes/array length: -1 for null."""
        if flexible:
            return self.uvarint() - 1
        return self.int_(4 if wide else 2)

    def string(self, flexible: bool) -> str | None:
        n = self.length(flexible)
        if n < 0:
            return None
        start = self.take(n)
        return bytes(self.buf[start:start + n]).decode("utf-8", errors="replace")

    def tags(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())


def scan_produce(version: int, frame: Any, offset: int) -> list[RecordsField] | None:
    """Where every partition's record set lies in ``frame`` (the body starts at
    ``offset``), or None for an unhandled version or a malformed body."""
    if not FIRST_VERSION <= version <= LAST_VERSION:
        return None
    flexible = version >= FIRST_FLEXIBLE
    r = _Reader(memoryview(frame), offset)
    out: list[RecordsField] = []
    try:
        r.string(flexible)  # transactional_id
        r.take(2 + 4)  # acks, timeout_ms
        topics = r.length(flexible, wide=True)
        for _ in range(max(topics, 0)):
            name = r.string(flexible)
            if name is None:
                raise _Malformed
            partitions = r.length(flexible, wide=True)
            for _ in range(max(partitions, 0)):
                index = r.int_(4)
                field = r.pos
                size = r.length(flexible, wide=True)
                data = r.pos
                r.take(max(size, 0))
                out.append(RecordsField(name, index, field, data, r.pos, size < 0))
                if flexible:
                    r.tags()
            if flexible:
                r.tags()
    except _Malformed:
        return None
    return out


def first_oversized_batch(frame: Any, start: int, end: int, limit: int) -> int | None:
    """The size (length + 12) of the first batch in ``frame[start:end]`` above ``limit``,
    or None (also when the headers run past ``end``: the decoder and storage judge it)."""
    view = memoryview(frame)
    pos = start
    while pos + BATCH_OVERHEAD <= end:
        length = int.from_bytes(view[pos + 8:pos + 12], "big", signed=True)
        if length < 0:
            return None
        if length + BATCH_OVERHEAD > limit:
            return length + BATCH_OVERHEAD
        pos += BATCH_OVERHEAD + length
    return None


def decode_produce_eliding(version: int, frame: Any, offset: int,
                           limit: Callable[[str], int]) -> Any | None:
    """The Produce request with every record set that holds a batch above ``limit(topic)``
    replaced by an ``OversizedRecords``, decoded without copying those record sets; None
    when nothing is over size (or the body is not walkable): decode as usual."""
    fields = scan_produce(version, frame, offset)
    if not fields:
        return None
    elided: dict[tuple[str, int], OversizedRecords] = {}
    view = memoryview(frame)
    parts: list[Any] = []
    pos = 0
    null = b"\x00" if version >= FIRST_FLEXIBLE else b"\xff\xff\xff\xff"
    for f in fields:
        if f.null:
            continue
        max_bytes = limit(f.topic)
        batch = first_oversized_batch(view, f.data, f.end, max_bytes)
        if batch is None or (f.topic, f.partition) in elided:
            continue
        elided[(f.topic, f.partition)] = OversizedRecords(f.end - f.data, batch, max_bytes)
        parts += [view[pos:f.field], null]
        pos = f.end
    if not elided:
        return None
    parts.append(view[pos:])
    slim = b"".join(parts)
    request = decode_request(0, version, slim, offset)
    topics = []
    for topic in request.topic_data:
        partitions = tuple(
            replace(p, records=elided[(topic.name, p.index)])
            if p.records is None and (topic.name, p.index) in elided else p
            for p in topic.partition_data)
        topics.append(replace(topic, partition_data=partitions))
    return replace(request, topic_data=tuple(topics))
