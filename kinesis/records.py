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

import binascii
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from protocol import compression
from protocol.records import (
    CRC_POS,
    HEADER_SIZE,
    LOG_OVERHEAD,
    MAGIC,
    TIMESTAMP_TYPE_BIT,
    InvalidRecordBatch,
    compute_crc,
    iter_batches,
    records_payload,
)

EXPLICIT_HASH_KEY_HEADER = "kinesis.explicit.hash.key"
#: RecordBatch v2 header (protocol.records' layout): base offset, batch length, partition
#: leader epoch, magic, CRC, attributes, last offset delta, base and max timestamp,
#: producer id, epoch, base sequence, record count
_BATCH_HEADER = struct.Struct(">qiibIhiqqqhii")
_CRC = struct.Struct(">I")
_SMALL = 1 << 14


def _zigzag_varint(value: int) -> bytes:
    """The zig-zag varint of a non-negative ``value`` (Kafka's record varints)."""
    raw = value << 1
    out = bytearray()
    while raw >= 0x80:
        out.append((raw & 0x7F) | 0x80)
        raw >>= 7
    out.append(raw)
    return bytes(out)


#: zig-zag varints of 0.._SMALL-1 (record lengths and offset deltas of common records)
_VARINTS = tuple(_zigzag_varint(v) for v in range(_SMALL))
#: one header (count 1) named EXPLICIT_HASH_KEY_HEADER; its value follows
_EHK_HEADER = b"\x02" + _VARINTS[len(EXPLICIT_HASH_KEY_HEADER)] \
    + EXPLICIT_HASH_KEY_HEADER.encode("ascii")


def _v(value: int) -> bytes:
    return _VARINTS[value] if value < _SMALL else _zigzag_varint(value)


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
    """One uncompressed RecordBatch v2 holding ``entries`` in order (CreateTime ``now_ms``
    for all, offset deltas 0..n-1, producer id -1): the bytes ``protocol.records.
    build_batch`` makes of the same records, encoded in one pass without ``Record``
    objects (PutRecords' hot path)."""
    parts = []
    for i, e in enumerate(entries):
        key = e.partition_key.encode("utf-8")
        data = e.data
        if e.explicit_hash_key is None:
            tail = b"\x00"  # no headers
        else:
            ehk = e.explicit_hash_key.encode("ascii")
            tail = _EHK_HEADER + _v(len(ehk)) + ehk
        delta, klen, dlen = _v(i), _v(len(key)), _v(len(data))
        size = 2 + len(delta) + len(klen) + len(key) + len(dlen) + len(data) + len(tail)
        # length, attributes 0, timestamp delta 0, offset delta, key, value, headers
        parts.append(b"%b\x00\x00%b%b%b%b%b%b" % (_v(size), delta, klen, key, dlen, data,
                                                 tail))
    body = b"".join(parts)
    n = len(entries)
    out = bytearray(HEADER_SIZE + len(body))
    _BATCH_HEADER.pack_into(out, 0, 0, HEADER_SIZE - LOG_OVERHEAD + len(body), -1, MAGIC, 0,
                            0, max(n - 1, 0), now_ms, now_ms, -1, -1, -1, n)
    out[HEADER_SIZE:] = body
    _CRC.pack_into(out, CRC_POS, compute_crc(out, 0, len(out)))
    return bytes(out)


#: a fetched record: (offset, timestamp ms, key or None, value or None)
Fetched = tuple[int, int, "bytes | memoryview | None", "bytes | memoryview | None"]


def scan(buf: bytes | memoryview, from_offset: int, limit: int, end_offset: int = 1 << 62
         ) -> tuple[list[Fetched], int]:
    """Up to ``limit`` data records at or after ``from_offset`` and below ``end_offset``
    from fetched bytes (whole batches, as a fetch returns them; InvalidRecordBatch
    otherwise; headers skipped), as (offset, timestamp, key, value). Returns (records,
    next offset): the offset after the last record returned, ``end_offset`` when it was
    reached, or after the last whole batch read when the limit was not reached (so
    offsets of control batches and compacted gaps are passed). The hot path of
    GetRecords: one loop, varints of one byte read inline."""
    out: list[Fetched] = []
    next_offset = from_offset
    for pos, h in iter_batches(buf, verify_crc=False):
        if h.is_control or h.next_offset <= from_offset:
            next_offset = max(next_offset, h.next_offset)
            continue
        if h.base_offset >= end_offset:
            return out, max(next_offset, end_offset)
        if h.compression == compression.NONE and type(buf) is bytes:
            data: bytes | memoryview = buf
            p = pos + HEADER_SIZE
            stop = pos + h.size_in_bytes
        else:
            data = records_payload(buf, pos, verify=False)
            p, stop = 0, len(data)
        base, count = h.base_offset, h.records_count
        fixed_ts = h.max_timestamp if h.attributes & TIMESTAMP_TYPE_BIT else None
        base_ts = h.base_timestamp
        try:
            for _ in range(count):
                b = data[p]
                if b < 0x80:
                    length, p = (b >> 1) ^ -(b & 1), p + 1
                elif data[p + 1] < 0x80:  # two bytes: records of 64 B to 8 KiB
                    raw = (b & 0x7F) | (data[p + 1] << 7)
                    length, p = (raw >> 1) ^ -(raw & 1), p + 2
                else:
                    length, p = _read_varint(data, p)
                rec_end = p + length
                if length < 1 or rec_end > stop:
                    raise InvalidRecordBatch(f"record at offset {base} has a bad length")
                b = data[p + 1]
                if b < 0x80:
                    ts_delta, p = (b >> 1) ^ -(b & 1), p + 2
                else:
                    ts_delta, p = _read_varint(data, p + 1)
                b = data[p]
                if b < 0x80:
                    off_delta, p = (b >> 1) ^ -(b & 1), p + 1
                else:
                    off_delta, p = _read_varint(data, p)
                offset = base + off_delta
                if offset < from_offset:
                    p = rec_end
                    continue
                if offset >= end_offset:
                    return out, end_offset
                if len(out) >= limit:
                    return out, next_offset
                b = data[p]
                if b < 0x80:
                    n, p = (b >> 1) ^ -(b & 1), p + 1
                else:
                    n, p = _read_varint(data, p)
                key = None
                if n >= 0:
                    key = data[p:p + n]
                    p += n
                b = data[p]
                if b < 0x80:
                    n, p = (b >> 1) ^ -(b & 1), p + 1
                elif data[p + 1] < 0x80:
                    raw = (b & 0x7F) | (data[p + 1] << 7)
                    n, p = (raw >> 1) ^ -(raw & 1), p + 2
                else:
                    n, p = _read_varint(data, p)
                if p + max(n, 0) > rec_end:
                    raise InvalidRecordBatch(f"record at offset {base} overruns")
                value = data[p:p + n] if n >= 0 else None
                out.append((offset, base_ts + ts_delta if fixed_ts is None else fixed_ts,
                            key, value))
                next_offset = offset + 1
                p = rec_end
        except IndexError:
            raise InvalidRecordBatch(f"batch at offset {base} is truncated") from None
        next_offset = max(next_offset, h.next_offset)
    return out, next_offset


def decode(buf: bytes | memoryview, from_offset: int, limit: int
           ) -> tuple[list[KinesisRecord], int]:
    """``scan``'s records as ``KinesisRecord`` (keys decoded as UTF-8)."""
    got, next_offset = scan(buf, from_offset, limit)
    return [KinesisRecord(offset, ts, bytes(key).decode("utf-8", "replace")
                          if key is not None else None, bytes(value or b""))
            for offset, ts, key, value in got], next_offset


def json_records(got: Sequence[Fetched], shard: int) -> list[bytes]:
    """GetRecords' ``Records`` entries of ``scan``'s records as AWS JSON 1.1 objects,
    each ready to join into an array (SequenceNumber as ``sequence.encode``,
    ApproximateArrivalTimestamp in epoch seconds, Data base64, PartitionKey)."""
    prefix = b"%b%020d" % (b"49", shard)  # sequence.encode's layout: 49, shard, offset
    keys: dict[bytes, bytes] = {}
    stamps: dict[int, bytes] = {}
    out = []
    b64 = binascii.b2a_base64
    for offset, ts, key, value in got:
        kb = b"" if key is None else key if type(key) is bytes else bytes(key)
        kj = keys.get(kb)
        if kj is None:
            kj = keys[kb] = orjson.dumps(kb.decode("utf-8", "replace"))
        tj = stamps.get(ts)
        if tj is None:
            tj = stamps[ts] = orjson.dumps(ts / 1000)
        out.append(b'{"SequenceNumber":"%b%020d","ApproximateArrivalTimestamp":%b,'
                   b'"Data":"%b","PartitionKey":%b}'
                   % (prefix, offset, tj, b64(value or b"", newline=False), kj))
    return out


def _read_varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """A zig-zag varint at ``pos``: (value, next position); IndexError past the end."""
    raw, shift = 0, 0
    while True:
        b = data[pos]
        pos += 1
        raw |= (b & 0x7F) << shift
        if b < 0x80:
            return (raw >> 1) ^ -(raw & 1), pos
        shift += 7
        if shift > 63:
            raise InvalidRecordBatch("varint longer than 10 bytes")
