"""Kinesis records <-> Kafka records.

A put record is stored as one Kafka record: key = the partition key (UTF-8), value = the
data, timestamp = the broker's clock at the append (CreateTime set by the broker, or the
log append time when the topic says LogAppendTime), and the explicit hash key, when
given, in the header ``kinesis.explicit.hash.key``. Data passes through untouched, so
KPL-aggregated records stay aggregated. Reading turns every data record of the fetched
batches at or after an offset into a ``KinesisRecord``; control batches (transaction
markers) are skipped, as Kafka consumers skip them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from protocol.records import (
    TIMESTAMP_TYPE_BIT,
    BatchHeader,
    InvalidRecordBatch,
    Record,
    build_batch,
    iter_batches,
    records_payload,
)

EXPLICIT_HASH_KEY_HEADER = "kinesis.explicit.hash.key"


@dataclass(frozen=True, slots=True)
class PutEntry:
    partition_key: str
    data: bytes
    explicit_hash_key: str | None = None


@dataclass(frozen=True, slots=True)
class KinesisRecord:
    offset: int
    timestamp_ms: int
    partition_key: str | None
    data: bytes


def build(entries: Sequence[PutEntry], now_ms: int) -> bytes:
    """One uncompressed RecordBatch v2 holding ``entries`` in order."""
    records = [Record(-1, now_ms, e.partition_key.encode("utf-8"), e.data,
                      [(EXPLICIT_HASH_KEY_HEADER, e.explicit_hash_key.encode("ascii"))]
                      if e.explicit_hash_key is not None else [])
               for e in entries]
    return build_batch(records, base_timestamp=now_ms)


def decode(buf: bytes | memoryview, from_offset: int, limit: int
           ) -> tuple[list[KinesisRecord], int]:
    """Up to ``limit`` records at or after ``from_offset`` from fetched bytes (whole
    batches, as a fetch returns them; InvalidRecordBatch otherwise). Returns (records,
    next offset): the offset after the last record returned, or after the last whole
    batch read when the limit was not reached (so offsets of control batches and
    compacted gaps are passed)."""
    out: list[KinesisRecord] = []
    next_offset = from_offset
    for pos, header in iter_batches(buf, verify_crc=False):
        if header.is_control:
            next_offset = max(next_offset, header.next_offset)
            continue
        if header.next_offset <= from_offset:
            next_offset = max(next_offset, header.next_offset)
            continue
        payload = records_payload(buf, pos, verify=False)
        for offset, ts, key, value in _records(header, payload):
            if offset < from_offset:
                continue
            if len(out) >= limit:
                return out, next_offset
            out.append(KinesisRecord(offset, ts, key.decode("utf-8", "replace")
                                     if key is not None else None, value or b""))
            next_offset = offset + 1
        next_offset = max(next_offset, header.next_offset)
    return out, next_offset


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """A zig-zag varint at ``pos``: (value, next position); IndexError past the end."""
    b = data[pos]
    if b < 0x80:  # one byte: most lengths and deltas of small records
        return (b >> 1) ^ -(b & 1), pos + 1
    raw, shift = b & 0x7F, 7
    pos += 1
    while True:
        b = data[pos]
        pos += 1
        raw |= (b & 0x7F) << shift
        if b < 0x80:
            return (raw >> 1) ^ -(raw & 1), pos
        shift += 7
        if shift > 63:
            raise InvalidRecordBatch("varint longer than 10 bytes")


def _records(h: BatchHeader, data: bytes) -> Iterator[tuple[int, int, bytes | None,
                                                           bytes | None]]:
    """(offset, timestamp, key, value) of each record of a decompressed records section
    (the hot path of GetRecords; headers are skipped). InvalidRecordBatch when a record
    does not fit its length."""
    log_append = h.attributes & TIMESTAMP_TYPE_BIT
    pos = 0
    try:
        for _ in range(h.records_count):
            length, pos = _varint(data, pos)
            end = pos + length
            if length < 1 or end > len(data):
                raise InvalidRecordBatch(f"record at offset {h.base_offset} has a bad length")
            pos += 1  # attributes
            ts_delta, pos = _varint(data, pos)
            off_delta, pos = _varint(data, pos)
            n, pos = _varint(data, pos)
            key = None if n < 0 else data[pos:pos + n]
            pos += max(n, 0)
            n, pos = _varint(data, pos)
            value = None if n < 0 else data[pos:pos + n]
            if pos + max(n, 0) > end:
                raise InvalidRecordBatch(f"record at offset {h.base_offset} overruns")
            yield (h.base_offset + off_delta,
                   h.max_timestamp if log_append else h.base_timestamp + ts_delta, key, value)
            pos = end
    except IndexError:
        raise InvalidRecordBatch(f"batch at offset {h.base_offset} is truncated") from None
