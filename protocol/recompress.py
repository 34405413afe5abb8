"""Broker-side recompression of RecordBatch v2 (KIP-390 ``compression.type``). Pure.

A topic whose ``compression.type`` names a codec (``uncompressed``, ``gzip``, ``snappy``,
``lz4``, ``zstd``) stores every client batch in that codec, as Kafka's LogValidator does;
``producer`` keeps the producer's codec and never calls this module.

Contract of :func:`recompress_batch` (one batch in, one batch out):

- the records section is decompressed and decoded (so malformed records are refused with
  :class:`~protocol.records.InvalidRecordBatch`, as Kafka refuses them when it rebuilds);
- when the records' offset deltas are 0..n-1 (what every client writes) the decompressed
  records section is recompressed byte for byte; otherwise the records are re-encoded with
  deltas 0..n-1 (Kafka renumbers inner offsets the same way), keys, values, headers and
  timestamps unchanged;
- the 61-byte header is copied: base offset, partition leader epoch, last offset delta,
  base and max timestamp, producer id, producer epoch, base sequence and records count
  stay as they were, so idempotent-producer sequence checks see the same batch;
  attributes keep every bit except the codec (bits 0-2); batch_length and the CRC-32C are
  recomputed.

:func:`needs_recompression` says which batches qualify: control batches (transaction
markers) and batches already in the target codec stay opaque bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from protocol.records import (
    ATTRIBUTES_POS,
    BATCH_LENGTH_POS,
    COMPRESSION_MASK,
    CONTROL_BIT,
    CRC_POS,
    HEADER_SIZE,
    LOG_OVERHEAD,
    T_ATTRIBUTES,
    T_BATCH_LENGTH,
    Buffer,
    compression_codec_compress,
    compute_crc,
    decode_records,
    encode_record,
    parse_header,
    records_payload,
)

_H = struct.Struct(">h")
_I = struct.Struct(">i")
_CRC = struct.Struct(">I")


def needs_recompression(attributes: int, codec: int) -> bool:
    """True when a client batch with ``attributes`` must be rebuilt to be stored in
    ``codec``: it is not a control batch and its codec (bits 0-2) differs."""
    return not attributes & CONTROL_BIT and (attributes & COMPRESSION_MASK) != codec


def recompress_batch(
    buf: Buffer, pos: int, codec: int, level: int | None = None, *, verify: bool = True
) -> bytes:
    """The batch at ``pos`` rebuilt in ``codec`` at ``level`` (see the module docstring).

    ``verify`` checks the source CRC first (pass False when the caller has checked it).
    Raises InvalidRecordBatch for a damaged batch, an unknown source codec, malformed
    records or a level out of the codec's range.
    """
    h = parse_header(buf, pos)
    data = records_payload(buf, pos, verify=verify)
    records = decode_records(h, data)
    base = h.base_offset
    if any(r.offset - base != i for i, r in enumerate(records)):
        body = bytearray()
        log_append = h.timestamp_type
        for i, r in enumerate(records):
            delta = 0 if log_append else r.timestamp - h.base_timestamp
            encode_record(body, r, i, delta)
        payload = compression_codec_compress(codec, body, level)
    else:
        payload = compression_codec_compress(codec, data, level)
    out = bytearray(memoryview(buf)[pos : pos + HEADER_SIZE])
    _H.pack_into(out, ATTRIBUTES_POS, (h.attributes & ~COMPRESSION_MASK) | codec)
    _I.pack_into(out, BATCH_LENGTH_POS, HEADER_SIZE - LOG_OVERHEAD + len(payload))
    out += payload
    _CRC.pack_into(out, CRC_POS, compute_crc(out, 0, len(out)))
    return bytes(out)


def recompress_batches(
    buf: Buffer,
    batches: Sequence[tuple[int, tuple[int, ...]]],
    codec: int,
    level: int | None = None,
    *,
    verify: bool = True,
) -> bytes | None:
    """A request's batches with every qualifying one rebuilt in ``codec``.

    ``batches`` are (position, raw header tuple) pairs as
    :func:`protocol.records.iter_header_tuples` yields them for ``buf``. Returns None when
    no batch qualifies (the caller keeps its buffer untouched), else the new
    concatenation: rebuilt batches, the others copied byte for byte, in order.
    """
    if not any(needs_recompression(t[T_ATTRIBUTES], codec) for _, t in batches):
        return None
    view = memoryview(buf)
    parts: list[bytes] = []
    for pos, t in batches:
        if needs_recompression(t[T_ATTRIBUTES], codec):
            parts.append(recompress_batch(view, pos, codec, level, verify=verify))
        else:
            parts.append(bytes(view[pos : pos + t[T_BATCH_LENGTH] + LOG_OVERHEAD]))
    return b"".join(parts)

