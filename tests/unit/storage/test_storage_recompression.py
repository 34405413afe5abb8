"""compression.type on the leader (KIP-390): what PartitionLog stores for each setting."""

from __future__ import annotations

import pytest

from protocol import compression
from protocol.records import (
    BatchHeader,
    Record,
    build_batch,
    build_control_batch,
    decode_batch_records,
    iter_batches,
)
from storage.errors import (
    DuplicateSequenceError,
    OutOfOrderSequenceError,
    RecordTooLargeError,
)
from storage.log_config import LogConfig
from storage.partition_log import PartitionLog


def _records(n: int = 10) -> list[Record]:
    return [
        Record(i, 1_000 + i, f"k{i}".encode() if i != 1 else None,
               None if i == 2 else b"value %d " % i * 20,
               [("trace", b"%d" % i)] if i % 3 == 0 else [])
        for i in range(n)
    ]


def _stored(log: PartitionLog) -> list[tuple[bytes, BatchHeader]]:
    data = bytes(log.read(0, 10**7).records)
    return [(data[p : p + h.size_in_bytes], h) for p, h in iter_batches(data)]


def test_gzip_batch_on_an_lz4_topic_is_stored_as_lz4(open_log) -> None:
    log = open_log(LogConfig(compression_type="lz4"))
    log.append_as_leader(build_batch(_records(3)), leader_epoch=1, now_ms=5)
    src = build_batch(_records(), compression=compression.GZIP, producer_id=7,
                      producer_epoch=0, base_sequence=0)
    result = log.append_as_leader(src, leader_epoch=1, now_ms=5)
    assert (result.first_offset, result.last_offset) == (3, 12)
    (_, first), (raw, h) = _stored(log)
    assert first.compression == h.compression == compression.LZ4
    assert (h.base_offset, h.last_offset, h.partition_leader_epoch) == (3, 12, 1)
    assert (h.producer_id, h.producer_epoch, h.base_sequence) == (7, 0, 0)
    got = decode_batch_records(raw)  # CRC-32C recomputed: decoding verifies it
    want = _records()
    assert [r.offset for r in got] == list(range(3, 13))
    assert [(r.timestamp, r.key, r.value, r.headers) for r in got] == [
        (r.timestamp, r.key, r.value, r.headers) for r in want
    ]


def test_uncompressed_stores_uncompressed(open_log) -> None:
    log = open_log(LogConfig(compression_type="uncompressed"))
    for codec in (compression.ZSTD, compression.SNAPPY, compression.NONE):
        log.append_as_leader(build_batch(_records(), compression=codec), leader_epoch=0,
                             now_ms=0)
    stored = _stored(log)
    assert [h.compression for _, h in stored] == [compression.NONE] * 3
    assert all(decode_batch_records(raw)[5].value == b"value 5 " * 20 for raw, _ in stored)


def test_batch_already_in_the_target_codec_is_stored_byte_identical(open_log) -> None:
    producer = open_log(LogConfig(), name="p-0")
    zstd = open_log(LogConfig(compression_type="zstd", compression_zstd_level=19), name="z-0")
    src = build_batch(_records(), compression=compression.ZSTD)  # written at level 3
    producer.append_as_leader(src, leader_epoch=2, now_ms=0)
    zstd.append_as_leader(src, leader_epoch=2, now_ms=0)
    assert _stored(zstd)[0][0] == _stored(producer)[0][0]


def test_producer_keeps_every_codec(open_log) -> None:
    log = open_log(LogConfig(compression_type="producer"))
    sent = [build_batch(_records(), compression=c) for c in (1, 2, 3, 4, 0)]
    for b in sent:
        log.append_as_leader(b, leader_epoch=0, now_ms=0)
    stored = _stored(log)
    assert [h.compression for _, h in stored] == [1, 2, 3, 4, 0]
    # bytes as sent except base offset and partition leader epoch (outside the CRC)
    assert [raw[16:] for raw, _ in stored] == [b[16:] for b in sent]


def test_control_batches_stay_as_written(open_log) -> None:
    log = open_log(LogConfig(compression_type="gzip"))
    log.append_as_leader(build_batch(_records(2), producer_id=3, producer_epoch=0,
                                     base_sequence=0, is_transactional=True),
                         leader_epoch=0, now_ms=0)
    marker = build_control_batch(producer_id=3, producer_epoch=0, commit=True, timestamp=9)
    log.append_as_leader(marker, leader_epoch=0, now_ms=0, origin="coordinator")
    (_, data), (raw, ctl) = _stored(log)
    assert data.compression == compression.GZIP
    assert ctl.is_control and ctl.compression == compression.NONE
    assert raw[16:] == marker[16:]


def test_levels_reach_the_codec(open_log) -> None:
    recs = [Record(i, 1, b"k", bytes(range(256)) * 16) for i in range(100)]
    src = build_batch(recs, compression=compression.GZIP)
    sizes = {}
    for level in (1, 19):
        log = open_log(LogConfig(compression_type="zstd", compression_zstd_level=level),
                       name=f"z{level}-0")
        log.append_as_leader(src, leader_epoch=0, now_ms=0)
        (raw, h), = _stored(log)
        assert h.compression == compression.ZSTD
        assert [r.value for r in decode_batch_records(raw)] == [r.value for r in recs]
        sizes[level] = raw
    assert sizes[1] != sizes[19]


def test_idempotent_sequences_survive_recompression(open_log) -> None:
    log = open_log(LogConfig(compression_type="lz4"))

    def send(seq: int) -> bytes:
        return build_batch(_records(4), compression=compression.GZIP, producer_id=11,
                           producer_epoch=0, base_sequence=seq)

    log.append_as_leader(send(0), leader_epoch=0, now_ms=0)
    log.append_as_leader(send(4), leader_epoch=0, now_ms=0)
    with pytest.raises(DuplicateSequenceError) as dup:  # a retry of the second batch
        log.append_as_leader(send(4), leader_epoch=0, now_ms=0)
    assert (dup.value.first_offset, dup.value.last_offset) == (4, 7)
    assert log.producer_state[11].last_sequence == 7
    with pytest.raises(OutOfOrderSequenceError):
        log.append_as_leader(send(9), leader_epoch=0, now_ms=0)
    assert log.log_end_offset == 8


def test_log_append_time_with_recompression(open_log) -> None:
    log = open_log(LogConfig(compression_type="snappy", message_timestamp_type="LogAppendTime"))
    r = log.append_as_leader(build_batch(_records(), compression=compression.LZ4),
                             leader_epoch=0, now_ms=4242)
    assert r.log_append_time == 4242
    (raw, h), = _stored(log)
    assert h.compression == compression.SNAPPY and h.max_timestamp == 4242
    assert {x.timestamp for x in decode_batch_records(raw)} == {4242}


def test_max_message_bytes_applies_to_the_rebuilt_batch(open_log) -> None:
    recs = [Record(i, 1, b"k", b"z" * 2000) for i in range(20)]
    src = build_batch(recs, compression=compression.ZSTD)
    assert len(src) < 1000
    log = open_log(LogConfig(compression_type="uncompressed", max_message_bytes=10_000))
    with pytest.raises(RecordTooLargeError, match="recompression"):
        log.append_as_leader(src, leader_epoch=0, now_ms=0)
    assert log.log_end_offset == 0


def test_followers_keep_the_leaders_bytes(open_log) -> None:
    follower = open_log(LogConfig(compression_type="lz4"))
    src = build_batch(_records(), compression=compression.GZIP, base_offset=0)
    follower.append_as_follower(src)
    assert _stored(follower)[0][0] == src
