"""RecordBatch v2 codec: header parsing, CRC, in-place rewrites, records, codecs."""

from __future__ import annotations

import struct

import pytest

from protocol import compression
from protocol.records import (
    CONTROL_ABORT,
    CONTROL_COMMIT,
    HEADER_SIZE,
    LOG_APPEND_TIME,
    InvalidRecordBatch,
    Record,
    build_batch,
    build_control_batch,
    control_batch_type,
    decode_batch_records,
    iter_batches,
    parse_header,
    set_base_offset,
    set_max_timestamp_log_append,
    set_partition_leader_epoch,
)


def _records(n: int = 5) -> list[Record]:
    return [
        Record(-1, 1_000 + i, f"k{i}".encode(), b"v" * (i * 37), [("h", b"x"), ("n", None)])
        for i in range(n)
    ]


@pytest.mark.parametrize("codec", [0, 1, 2, 3, 4])
def test_round_trip_every_codec(codec: int) -> None:
    recs = _records(20) + [Record(-1, 5, None, None, [])]
    buf = build_batch(recs, base_offset=40, compression=codec, producer_id=7,
                      producer_epoch=2, base_sequence=11)
    [(pos, h)] = list(iter_batches(buf))
    assert pos == 0 and h.compression == codec and h.records_count == 21
    assert (h.base_offset, h.last_offset, h.next_offset) == (40, 60, 61)
    assert (h.producer_id, h.producer_epoch, h.base_sequence) == (7, 2, 11)
    assert h.size_in_bytes == len(buf) and h.max_timestamp == 1019
    out = decode_batch_records(buf)
    assert [r.offset for r in out] == list(range(40, 61))
    assert [(r.key, r.value, r.timestamp, r.headers) for r in out] == [
        (r.key, r.value, r.timestamp, r.headers) for r in recs
    ]


def test_header_fields_and_layout() -> None:
    buf = build_batch(_records(3), base_offset=9, partition_leader_epoch=4)
    assert struct.unpack_from(">q", buf, 0)[0] == 9
    assert struct.unpack_from(">i", buf, 8)[0] == len(buf) - 12
    assert buf[16] == 2
    h = parse_header(buf)
    assert h.partition_leader_epoch == 4 and h.last_offset_delta == 2
    assert not h.is_control and not h.is_transactional and h.timestamp_type == 0


def test_in_place_rewrites_keep_crc_valid() -> None:
    buf = bytearray(build_batch(_records(4)))
    set_base_offset(buf, 0, 1234)
    set_partition_leader_epoch(buf, 0, 77)
    [(_, h)] = list(iter_batches(buf))  # CRC still valid: both fields are outside it
    assert (h.base_offset, h.partition_leader_epoch) == (1234, 77)
    set_max_timestamp_log_append(buf, 0, 999_999)
    [(_, h)] = list(iter_batches(buf))
    assert h.timestamp_type == LOG_APPEND_TIME and h.max_timestamp == 999_999
    assert all(r.timestamp == 999_999 for r in decode_batch_records(buf))


def test_crc_mismatch_is_reported() -> None:
    buf = bytearray(build_batch(_records(2)))
    buf[-1] ^= 0xFF
    with pytest.raises(InvalidRecordBatch, match="CRC"):
        list(iter_batches(buf))
    assert list(iter_batches(buf, verify_crc=False))


def test_concatenation_and_partial_tail() -> None:
    a = build_batch(_records(2), base_offset=0)
    b = build_batch(_records(3), base_offset=2)
    both = a + b
    assert [p for p, _ in iter_batches(both)] == [0, len(a)]
    with pytest.raises(InvalidRecordBatch, match="partial"):
        list(iter_batches(both[:-1]))
    with pytest.raises(InvalidRecordBatch, match="partial"):
        list(iter_batches(both[: len(a) + 30]))


def test_bad_magic_and_length() -> None:
    buf = bytearray(build_batch(_records(1)))
    buf[16] = 1
    with pytest.raises(InvalidRecordBatch, match="magic"):
        parse_header(buf)
    buf = bytearray(build_batch(_records(1)))
    struct.pack_into(">i", buf, 8, 10)
    with pytest.raises(InvalidRecordBatch, match="batch_length"):
        list(iter_batches(buf))
    with pytest.raises(InvalidRecordBatch, match="truncated"):
        parse_header(buf[: HEADER_SIZE - 1])


def test_control_batches_recognised() -> None:
    commit = build_control_batch(producer_id=5, producer_epoch=1, commit=True,
                                 coordinator_epoch=3)
    abort = build_control_batch(producer_id=5, producer_epoch=1, commit=False)
    h = parse_header(commit)
    assert h.is_control and h.is_transactional
    assert control_batch_type(commit) == CONTROL_COMMIT
    assert control_batch_type(abort) == CONTROL_ABORT


def test_xerial_and_raw_snappy_both_decode() -> None:
    import cramjam

    payload = b"hello snappy " * 10_000
    xerial = compression.compress(compression.SNAPPY, payload)
    assert xerial.startswith(compression.XERIAL_MAGIC)
    raw = bytes(cramjam.snappy.compress_raw(payload))
    assert compression.decompress(compression.SNAPPY, xerial) == payload
    assert compression.decompress(compression.SNAPPY, raw) == payload


def test_zstd_without_content_size_and_gzip_bomb_guard() -> None:
    import zstandard

    payload = b"z" * 100_000
    streamed = zstandard.ZstdCompressor(write_content_size=False).compress(payload)
    assert compression.decompress(compression.ZSTD, streamed) == payload
    gz = compression.compress(compression.GZIP, b"\0" * 1_000_000)
    with pytest.raises(compression.CompressionError, match="exceeds"):
        compression.decompress(compression.GZIP, gz, max_output=1000)


def test_corrupt_compressed_payload_raises_invalid_batch() -> None:
    buf = bytearray(build_batch(_records(5), compression=compression.LZ4))
    buf[HEADER_SIZE + 8 : HEADER_SIZE + 16] = b"\xff" * 8
    with pytest.raises(InvalidRecordBatch):
        decode_batch_records(buf, verify=False)
