"""Kafka RecordBatch v2 (magic 2): header codec, in-place rewrites and record codec.

Layout of one batch, byte by byte (all integers big-endian, two's complement)::

    offset  size  field                  notes
    0       8     base_offset            int64; first offset of the batch (assigned by leader)
    8       4     batch_length           int32; bytes that follow this field (total - 12)
    12      4     partition_leader_epoch int32; stamped by the leader; NOT covered by the CRC
    16      1     magic                  int8; always 2 here
    17      4     crc                    uint32; CRC-32C of bytes [21, end)
    21      2     attributes             int16; bits 0-2 compression (0 none, 1 gzip,
                                         2 snappy, 3 lz4, 4 zstd), bit 3 timestamp type
                                         (0 CreateTime, 1 LogAppendTime), bit 4
                                         transactional, bit 5 control, bit 6 delete
                                         horizon set (KIP-534)
    23      4     last_offset_delta      int32; last offset - base_offset
    27      8     base_timestamp         int64; timestamp of the first record
    35      8     max_timestamp          int64; largest record timestamp (or the log
                                         append time when bit 3 is set)
    43      8     producer_id            int64; -1 when not idempotent
    51      2     producer_epoch         int16; -1 when not idempotent
    53      4     base_sequence          int32; sequence of the first record, -1 if none
    57      4     records_count          int32
    61      ..    records                possibly compressed (attributes bits 0-2)

Because base_offset, batch_length and partition_leader_epoch lie before the CRC'd range,
a leader rewrites offsets and epochs in place without touching the CRC. Only setting
LogAppendTime (attributes + max_timestamp) needs the CRC recomputed.

One record (inside the possibly-compressed records section)::

    length            varint   bytes of the rest of this record
    attributes        int8     unused (0)
    timestamp_delta   varlong  record timestamp - base_timestamp
    offset_delta      varint   record offset - base_offset
    key_length        varint   -1 for a null key
    key               bytes
    value_length      varint   -1 for a null value (a tombstone)
    value             bytes
    headers_count     varint
    headers           [key_length varint, key utf-8, value_length varint, value bytes]

Varints are zig-zag encoded base-128 (protobuf ``sint``). A control record (bit 5) has
key ``version:int16, type:int16`` (type 0 = ABORT, 1 = COMMIT) and value
``version:int16, coordinator_epoch:int32``.

The produce and fetch hot paths only use :func:`iter_batches` / :func:`parse_header`
and the in-place setters: a batch stays opaque bytes. :func:`decode_batch_records` and
:func:`build_batch` are for compaction, tests and tools; :func:`decode_records` and
:func:`encode_record` also serve protocol/recompress.py (topics whose compression.type is
not "producer"). Every malformation raises
:class:`InvalidRecordBatch`; nothing else escapes for any input bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from crc32c import crc32c

from protocol import compression

HEADER_SIZE = 61
LOG_OVERHEAD = 12  # base_offset + batch_length: bytes not counted by batch_length
MIN_BATCH_LENGTH = HEADER_SIZE - LOG_OVERHEAD
MAGIC = 2

BASE_OFFSET_POS = 0
BATCH_LENGTH_POS = 8
PARTITION_LEADER_EPOCH_POS = 12
MAGIC_POS = 16
CRC_POS = 17
ATTRIBUTES_POS = 21
MAX_TIMESTAMP_POS = 35

COMPRESSION_MASK = 0x07
TIMESTAMP_TYPE_BIT = 0x08
TRANSACTIONAL_BIT = 0x10
CONTROL_BIT = 0x20
DELETE_HORIZON_BIT = 0x40

CREATE_TIME = 0
LOG_APPEND_TIME = 1

CONTROL_ABORT = 0
CONTROL_COMMIT = 1

_HEADER = struct.Struct(">qiibIhiqqqhii")
_PREFIX = struct.Struct(">qi")
_Q = struct.Struct(">q")
_I = struct.Struct(">i")
_CRC = struct.Struct(">I")
_H = struct.Struct(">h")
_CONTROL_KEY = struct.Struct(">hh")
_CONTROL_VALUE = struct.Struct(">hi")

Buffer = bytes | bytearray | memoryview


class InvalidRecordBatch(ValueError):
    """A record batch is malformed; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class BatchHeader:
    """The fixed 61-byte header of a RecordBatch v2 (see the module docstring)."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def compression(self) -> int:
        return self.attributes & COMPRESSION_MASK

    @property
    def timestamp_type(self) -> int:
        return LOG_APPEND_TIME if self.attributes & TIMESTAMP_TYPE_BIT else CREATE_TIME

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_BIT)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_BIT)

    @property
    def has_delete_horizon(self) -> bool:
        return bool(self.attributes & DELETE_HORIZON_BIT)

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def size_in_bytes(self) -> int:
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_sequence(self) -> int:
        """Sequence of the last record (wraps at 2**31 like Kafka), -1 if not idempotent."""
        if self.base_sequence < 0:
            return -1
        return (self.base_sequence + self.last_offset_delta) & 0x7FFFFFFF


def parse_header(buf: Buffer, pos: int = 0) -> BatchHeader:
    """Parse the batch header at ``pos``; checks header presence, length and magic only.

    The body is not required to be present and the CRC is not checked (see
    :func:`iter_batches` / :func:`verify_crc`).
    """
    if pos < 0 or len(buf) - pos < HEADER_SIZE:
        raise InvalidRecordBatch(
            f"batch header at position {pos} is truncated: {max(0, len(buf) - pos)} bytes "
            f"available, {HEADER_SIZE} needed"
        )
    h = BatchHeader(*_HEADER.unpack_from(buf, pos))
    if h.batch_length < MIN_BATCH_LENGTH:
        raise InvalidRecordBatch(
            f"batch at position {pos} has batch_length {h.batch_length} < {MIN_BATCH_LENGTH}"
        )
    if h.magic != MAGIC:
        raise InvalidRecordBatch(
            f"batch at position {pos} has magic {h.magic}; only magic 2 (RecordBatch v2) "
            "is supported"
        )
    if h.last_offset_delta < 0:
        raise InvalidRecordBatch(
            f"batch at position {pos} has negative last_offset_delta {h.last_offset_delta}"
        )
    if h.records_count < 0:
        raise InvalidRecordBatch(
            f"batch at position {pos} has negative records_count {h.records_count}"
        )
    return h


def compute_crc(buf: Buffer, pos: int, size: int) -> int:
    """CRC-32C over the CRC'd range [pos + 21, pos + size) of the batch at ``pos``."""
    return crc32c(memoryview(buf)[pos + ATTRIBUTES_POS : pos + size])


def verify_crc(buf: Buffer, pos: int, header: BatchHeader) -> None:
    """Raise InvalidRecordBatch unless the stored CRC matches the batch bytes."""
    actual = compute_crc(buf, pos, header.size_in_bytes)
    if actual != header.crc:
        raise InvalidRecordBatch(
            f"batch at offset {header.base_offset} (position {pos}) fails its CRC-32C check: "
            f"stored {header.crc:#010x}, computed {actual:#010x}"
        )


# Indices into the raw header tuples of iter_header_tuples (BatchHeader field order).
T_BASE_OFFSET, T_BATCH_LENGTH, T_LEADER_EPOCH, T_MAGIC, T_CRC, T_ATTRIBUTES = range(6)
T_LAST_OFFSET_DELTA, T_BASE_TIMESTAMP, T_MAX_TIMESTAMP, T_PRODUCER_ID = range(6, 10)
T_PRODUCER_EPOCH, T_BASE_SEQUENCE, T_RECORDS_COUNT = range(10, 13)


def iter_header_tuples(
    buf: Buffer, *, verify_crc: bool = True
) -> Iterator[tuple[int, tuple[int, ...]]]:
    """Like :func:`iter_batches` but yields the raw 13-field header tuple (same order as
    BatchHeader's fields; ``BatchHeader(*t)`` makes the object). For hot paths."""
    view = memoryview(buf)
    end = len(view)
    pos = 0
    unpack = _HEADER.unpack_from
    while pos < end:
        if end - pos < HEADER_SIZE:
            raise InvalidRecordBatch(
                f"partial batch at position {pos}: {end - pos} bytes left, header needs "
                f"{HEADER_SIZE}"
            )
        t = unpack(view, pos)
        if t[1] < MIN_BATCH_LENGTH or t[3] != MAGIC or t[6] < 0 or t[12] < 0:
            parse_header(view, pos)  # raises with the precise message
        size = t[1] + LOG_OVERHEAD
        if pos + size > end:
            raise InvalidRecordBatch(
                f"partial batch at position {pos}: batch needs {size} bytes, "
                f"{end - pos} available"
            )
        if verify_crc and crc32c(view[pos + ATTRIBUTES_POS : pos + size]) != t[4]:
            raise InvalidRecordBatch(
                f"batch at position {pos} fails its CRC-32C check (stored {t[4]:#010x})"
            )
        yield pos, t
        pos += size


def iter_batches(buf: Buffer, *, verify_crc: bool = True) -> Iterator[tuple[int, BatchHeader]]:
    """Yield (position, header) for each batch of a concatenation of whole batches.

    Raises InvalidRecordBatch on a malformed header, a partial trailing batch, or (with
    ``verify_crc``) a CRC mismatch. Nothing is copied; records are not decoded.
    """
    for pos, t in iter_header_tuples(buf, verify_crc=verify_crc):
        yield pos, BatchHeader(*t)


# ---------------------------------------------------------------------------------------
# In-place rewrites (on a bytearray or writable memoryview)


def set_base_offset(buf: bytearray | memoryview, pos: int, offset: int) -> None:
    """Overwrite base_offset of the batch at ``pos`` (outside the CRC: no CRC update)."""
    _Q.pack_into(buf, pos + BASE_OFFSET_POS, offset)


def set_partition_leader_epoch(buf: bytearray | memoryview, pos: int, epoch: int) -> None:
    """Overwrite partition_leader_epoch of the batch at ``pos`` (outside the CRC)."""
    _I.pack_into(buf, pos + PARTITION_LEADER_EPOCH_POS, epoch)


def set_max_timestamp_log_append(buf: bytearray | memoryview, pos: int, ts: int) -> None:
    """Mark the batch at ``pos`` as LogAppendTime with max_timestamp ``ts``; fix the CRC."""
    (attributes,) = _H.unpack_from(buf, pos + ATTRIBUTES_POS)
    _H.pack_into(buf, pos + ATTRIBUTES_POS, attributes | TIMESTAMP_TYPE_BIT)
    _Q.pack_into(buf, pos + MAX_TIMESTAMP_POS, ts)
    (length,) = _I.unpack_from(buf, pos + BATCH_LENGTH_POS)
    _CRC.pack_into(buf, pos + CRC_POS, compute_crc(buf, pos, length + LOG_OVERHEAD))


# ---------------------------------------------------------------------------------------
# Records


@dataclass(slots=True)
class Record:
    """One decoded record. ``offset``/``timestamp`` are absolute (-1 = unassigned)."""

    offset: int = -1
    timestamp: int = -1
    key: bytes | None = None
    value: bytes | None = None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)


def _read_varint(data: bytes, pos: int, n: int) -> tuple[int, int]:
    """Read a zig-zag varint (up to 10 bytes) at ``pos`` below ``n``; return (value, pos)."""
    shift = 0
    raw = 0
    while True:
        if pos >= n:
            raise InvalidRecordBatch("record varint runs past the end of the records")
        b = data[pos]
        pos += 1
        raw |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
        if shift > 63:
            raise InvalidRecordBatch("record varint is longer than 10 bytes")
    return (raw >> 1) ^ -(raw & 1), pos


def _write_varint(out: bytearray, value: int) -> None:
    raw = ((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF
    while raw >= 0x80:
        out.append((raw & 0x7F) | 0x80)
        raw >>= 7
    out.append(raw)


def _read_bytes(data: bytes, pos: int, limit: int, what: str) -> tuple[bytes | None, int]:
    n, pos = _read_varint(data, pos, limit)
    if n < 0:
        if n != -1:
            raise InvalidRecordBatch(f"record {what} has negative length {n}")
        return None, pos
    if pos + n > limit:
        raise InvalidRecordBatch(f"record {what} of {n} bytes runs past the end of the records")
    return data[pos : pos + n], pos + n


def records_payload(buf: Buffer, pos: int = 0, *, verify: bool = True) -> bytes:
    """The decompressed records section of the batch at ``pos``."""
    h = parse_header(buf, pos)
    end = pos + h.size_in_bytes
    if end > len(buf):
        raise InvalidRecordBatch(
            f"partial batch at position {pos}: needs {h.size_in_bytes} bytes, "
            f"{len(buf) - pos} available"
        )
    if verify:
        verify_crc(buf, pos, h)
    body = memoryview(buf)[pos + HEADER_SIZE : end]
    codec = h.compression
    if codec == compression.NONE:
        return bytes(body)
    if codec > compression.ZSTD:
        raise InvalidRecordBatch(f"batch at offset {h.base_offset} has unknown codec {codec}")
    try:
        return compression.decompress(codec, body)
    except compression.CompressionError as exc:
        raise InvalidRecordBatch(f"batch at offset {h.base_offset}: {exc}") from exc


def decode_batch_records(buf: Buffer, pos: int = 0, *, verify: bool = True) -> list[Record]:
    """Decode (and decompress) every record of the batch at ``pos``."""
    h = parse_header(buf, pos)
    return decode_records(h, records_payload(buf, pos, verify=verify))


def decode_records(h: BatchHeader, data: bytes) -> list[Record]:
    """Decode the records of a batch with header ``h`` from its decompressed records
    section ``data`` (as :func:`records_payload` returns it); InvalidRecordBatch unless
    ``data`` holds exactly ``h.records_count`` well-formed records."""
    out: list[Record] = []
    p = 0
    n = len(data)
    log_append = h.attributes & TIMESTAMP_TYPE_BIT
    for i in range(h.records_count):
        length, p = _read_varint(data, p, n)
        if length < 1 or p + length > n:
            raise InvalidRecordBatch(
                f"record {i} of batch at offset {h.base_offset} has bad length {length}"
            )
        end = p + length
        p += 1  # attributes
        ts_delta, p = _read_varint(data, p, end)
        off_delta, p = _read_varint(data, p, end)
        key, p = _read_bytes(data, p, end, "key")
        value, p = _read_bytes(data, p, end, "value")
        count, p = _read_varint(data, p, end)
        if count < 0:
            raise InvalidRecordBatch(f"record {i} has negative header count {count}")
        headers: list[tuple[str, bytes | None]] = []
        for _ in range(count):
            hk, p = _read_bytes(data, p, end, "header key")
            if hk is None:
                raise InvalidRecordBatch(f"record {i} has a null header key")
            hv, p = _read_bytes(data, p, end, "header value")
            try:
                headers.append((hk.decode(), hv))
            except UnicodeDecodeError as exc:
                raise InvalidRecordBatch(f"record {i} header key is not UTF-8") from exc
        if p != end:
            raise InvalidRecordBatch(
                f"record {i} of batch at offset {h.base_offset}: length says {length} bytes, "
                f"fields use {length + p - end}"
            )
        ts = h.max_timestamp if log_append else h.base_timestamp + ts_delta
        out.append(Record(h.base_offset + off_delta, ts, key, value, headers))
    if p != n:
        raise InvalidRecordBatch(
            f"batch at offset {h.base_offset} has {n - p} bytes after its "
            f"{h.records_count} records"
        )
    return out


def encode_record(out: bytearray, rec: Record, offset_delta: int, timestamp_delta: int) -> None:
    """Append one encoded record (see the module docstring) to ``out``."""
    body = bytearray(b"\x00")
    _write_varint(body, timestamp_delta)
    _write_varint(body, offset_delta)
    for item in (rec.key, rec.value):
        if item is None:
            _write_varint(body, -1)
        else:
            _write_varint(body, len(item))
            body += item
    _write_varint(body, len(rec.headers))
    for hk, hv in rec.headers:
        kb = hk.encode()
        _write_varint(body, len(kb))
        body += kb
        if hv is None:
            _write_varint(body, -1)
        else:
            _write_varint(body, len(hv))
            body += hv
    _write_varint(out, len(body))
    out += body


def build_batch(
    records: Sequence[Record],
    *,
    base_offset: int = 0,
    compression: int = 0,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    is_transactional: bool = False,
    is_control: bool = False,
    partition_leader_epoch: int = -1,
    timestamp_type: int = CREATE_TIME,
    last_offset_delta: int | None = None,
    base_timestamp: int | None = None,
    max_timestamp: int | None = None,
    delete_horizon_ms: int | None = None,
    compression_level: int | None = None,
) -> bytes:
    """Encode one RecordBatch v2.

    Offset deltas: if every record has ``offset >= base_offset`` and offsets strictly
    increase, delta = offset - base_offset (gaps allowed, as compaction leaves them);
    otherwise records get deltas 0..n-1. ``last_offset_delta`` defaults to the last
    record's delta (compaction passes the original to keep the batch's offset span).
    Record timestamps of -1 are kept as -1 (``timestamp_delta`` relative to the first
    record). ``max_timestamp`` defaults to the largest record timestamp.
    ``delete_horizon_ms`` (KIP-534, set by the log cleaner) sets attribute bit 6 and stores
    the horizon as base_timestamp; record timestamp deltas are relative to it.
    ``compression_level`` goes to the codec (protocol/compression.py; None = its default).
    """
    offsets = [r.offset for r in records]
    explicit = bool(records) and all(o >= base_offset for o in offsets) and all(
        a < b for a, b in zip(offsets, offsets[1:], strict=False)
    )
    deltas = [o - base_offset for o in offsets] if explicit else list(range(len(records)))
    stamps = [r.timestamp for r in records]
    if delete_horizon_ms is not None:
        base_timestamp = delete_horizon_ms
    elif base_timestamp is None:
        base_timestamp = stamps[0] if stamps else -1
    if max_timestamp is None:
        max_timestamp = max(stamps) if stamps else -1
    if last_offset_delta is None:
        last_offset_delta = deltas[-1] if deltas else 0
    body = bytearray()
    for rec, delta in zip(records, deltas, strict=True):
        encode_record(body, rec, delta, rec.timestamp - base_timestamp)
    payload = compression_codec_compress(compression, body, compression_level)
    attributes = compression & COMPRESSION_MASK
    if timestamp_type == LOG_APPEND_TIME:
        attributes |= TIMESTAMP_TYPE_BIT
    if is_transactional:
        attributes |= TRANSACTIONAL_BIT
    if is_control:
        attributes |= CONTROL_BIT
    if delete_horizon_ms is not None:
        attributes |= DELETE_HORIZON_BIT
    batch_length = HEADER_SIZE - LOG_OVERHEAD + len(payload)
    out = bytearray(HEADER_SIZE)
    _HEADER.pack_into(
        out,
        0,
        base_offset,
        batch_length,
        partition_leader_epoch,
        MAGIC,
        0,
        attributes,
        last_offset_delta,
        base_timestamp,
        max_timestamp,
        producer_id,
        producer_epoch,
        base_sequence,
        len(records),
    )
    out += payload
    _CRC.pack_into(out, CRC_POS, compute_crc(out, 0, len(out)))
    return bytes(out)


def compression_codec_compress(
    codec: int, body: bytes | bytearray | memoryview, level: int | None = None
) -> bytes:
    """Compress a records section with ``codec`` at ``level`` (None: the codec default);
    InvalidRecordBatch on an unknown codec or a level out of the codec's range."""
    if codec == compression.NONE:
        return bytes(body)
    try:
        return compression.compress(codec, body, level)
    except compression.CompressionError as exc:
        raise InvalidRecordBatch(str(exc)) from exc


# ---------------------------------------------------------------------------------------
# Control batches (transaction markers)


def build_control_batch(
    *,
    producer_id: int,
    producer_epoch: int,
    commit: bool,
    coordinator_epoch: int = 0,
    timestamp: int = -1,
    base_offset: int = 0,
    partition_leader_epoch: int = -1,
) -> bytes:
    """A transaction marker: one control record COMMIT or ABORT, transactional + control."""
    key = _CONTROL_KEY.pack(0, CONTROL_COMMIT if commit else CONTROL_ABORT)
    value = _CONTROL_VALUE.pack(0, coordinator_epoch)
    return build_batch(
        [Record(base_offset, timestamp, key, value, [])],
        base_offset=base_offset,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        is_transactional=True,
        is_control=True,
        partition_leader_epoch=partition_leader_epoch,
    )


def control_record_type(record: Record) -> int:
    """CONTROL_ABORT or CONTROL_COMMIT for a control record; InvalidRecordBatch otherwise."""
    if record.key is None or len(record.key) < 4:
        raise InvalidRecordBatch("control record key is shorter than 4 bytes")
    _version, kind = _CONTROL_KEY.unpack_from(record.key, 0)
    if kind not in (CONTROL_ABORT, CONTROL_COMMIT):
        raise InvalidRecordBatch(f"unknown control record type {kind}")
    return kind


def control_batch_type(buf: Buffer, pos: int = 0) -> int:
    """The marker type (abort/commit) of the control batch at ``pos``."""
    recs = decode_batch_records(buf, pos)
    if not recs:
        raise InvalidRecordBatch("control batch has no records")
    return control_record_type(recs[0])


def control_batch_marker(buf: Buffer, pos: int = 0) -> tuple[int, int]:
    """(marker type, coordinator epoch) of the control batch at ``pos`` (Kafka's
    EndTransactionMarker); the epoch is -1 when the record's value is too short for it."""
    recs = decode_batch_records(buf, pos)
    if not recs:
        raise InvalidRecordBatch("control batch has no records")
    kind = control_record_type(recs[0])
    value = recs[0].value
    if value is None or len(value) < _CONTROL_VALUE.size:
        return kind, -1
    return kind, _CONTROL_VALUE.unpack_from(value, 0)[1]


def batch_has_null_key(buf: Buffer, pos: int = 0) -> bool:
    """True when any record of the (non-control) batch at ``pos`` has a null key."""
    return any(r.key is None for r in decode_batch_records(buf, pos, verify=False))


def batch_timestamp_bounds(buf: Buffer, pos: int = 0) -> tuple[int, int] | None:
    """(smallest, largest) record timestamp of the batch at ``pos``, None if it has none.

    Records carrying no timestamp (-1) are left out. Reads only each record's length,
    attributes and timestamp delta (the rest is skipped); decompresses if need be. For a
    LogAppendTime batch the header's max timestamp is every record's timestamp.
    """
    h = parse_header(buf, pos)
    if h.attributes & TIMESTAMP_TYPE_BIT:
        return None if h.max_timestamp == -1 else (h.max_timestamp, h.max_timestamp)
    data = records_payload(buf, pos, verify=False)
    base = h.base_timestamp
    lo = hi = None
    p = 0
    n = len(data)
    for i in range(h.records_count):
        length, p = _read_varint(data, p, n)
        end = p + length
        if length < 1 or end > n:
            raise InvalidRecordBatch(
                f"record {i} of batch at offset {h.base_offset} has bad length {length}"
            )
        delta, _ = _read_varint(data, p + 1, end)
        p = end
        ts = base + delta
        if ts == -1:
            continue
        if lo is None or ts < lo:
            lo = ts
        if hi is None or ts > hi:
            hi = ts
    if lo is None or hi is None:
        return None
    return lo, hi
