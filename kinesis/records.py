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

from collections.abc import Sequence
from dataclasses import dataclass

from protocol.records import Record, build_batch, decode_batch_records, iter_batches

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
    batches; a trailing partial batch is ignored). Returns (records, next offset): the
    offset after the last record returned, or after the last whole batch read when the
    limit was not reached (so offsets of control batches and compacted gaps are
    passed)."""
    out: list[KinesisRecord] = []
    next_offset = from_offset
    for pos, header in iter_batches(buf, verify_crc=False):
        if header.is_control:
            next_offset = max(next_offset, header.next_offset)
            continue
        for r in decode_batch_records(buf, pos, verify=False):
            if r.offset < from_offset:
                continue
            if len(out) >= limit:
                return out, next_offset
            key = r.key.decode("utf-8", "replace") if r.key is not None else None
            out.append(KinesisRecord(r.offset, r.timestamp, key, r.value or b""))
            next_offset = r.offset + 1
        next_offset = max(next_offset, header.next_offset)
    return out, next_offset
