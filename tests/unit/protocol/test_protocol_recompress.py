"""protocol/recompress.py: rebuilding a RecordBatch v2 in another codec (KIP-390)."""

from __future__ import annotations

import pytest

from protocol import compression
from protocol.recompress import needs_recompression, recompress_batch, recompress_batches
from protocol.records import (
    CONTROL_BIT,
    CRC_POS,
    HEADER_SIZE,
    TIMESTAMP_TYPE_BIT,
    TRANSACTIONAL_BIT,
    InvalidRecordBatch,
    Record,
    build_batch,
    build_control_batch,
    compute_crc,
    decode_batch_records,
    iter_batches,
    iter_header_tuples,
    parse_header,
)

CODECS = [compression.NONE, compression.GZIP, compression.SNAPPY, compression.LZ4,
          compression.ZSTD]


def _records(n: int = 20) -> list[Record]:
    return [
        Record(i, 1_700_000_000_000 + 7 * i if i != 3 else -1,
               None if i == 2 else f"key-{i}".encode(),
               None if i == 4 else (f"value-{i}-" * 30).encode(),
               [("h", f"{i}".encode()), ("empty", None)] if i % 2 else [])
        for i in range(n)
    ]


def _batch(codec: int, **kw: object) -> bytes:
    args: dict[str, object] = dict(producer_id=42, producer_epoch=3, base_sequence=1000,
                                   is_transactional=True, partition_leader_epoch=9)
    args.update(kw)
    return build_batch(_records(), compression=codec, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize("source", CODECS)
@pytest.mark.parametrize("target", CODECS)
def test_every_codec_pair_keeps_records_and_header(source: int, target: int) -> None:
    src = _batch(source)
    out = recompress_batch(src, 0, target)
    (_, h), = iter_batches(out)  # CRC-32C valid
    old = parse_header(src)
    assert h.compression == target
    assert h.attributes & ~0x07 == old.attributes & ~0x07
    for name in ("base_offset", "partition_leader_epoch", "last_offset_delta",
                 "base_timestamp", "max_timestamp", "producer_id", "producer_epoch",
                 "base_sequence", "records_count"):
        assert getattr(h, name) == getattr(old, name), name
    assert decode_batch_records(out) == decode_batch_records(src)
    if source == target:  # same records section, same codec: same bytes
        assert out == src


def test_non_consecutive_offset_deltas_are_renumbered() -> None:
    recs = [Record(o, 5_000 + o, b"k", b"v") for o in (0, 2, 5)]
    src = build_batch(recs, compression=compression.GZIP, last_offset_delta=2)
    out = recompress_batch(src, 0, compression.LZ4)
    got = decode_batch_records(out)
    assert [r.offset for r in got] == [0, 1, 2]
    assert [r.timestamp for r in got] == [5_000, 5_002, 5_005]
    assert parse_header(out).last_offset_delta == 2


def test_levels_are_passed_to_the_codec() -> None:
    recs = [Record(i, 1, b"k%d" % i, bytes(range(256)) * 8 + b"x" * (i % 7)) for i in range(200)]
    src = build_batch(recs, compression=compression.GZIP)
    fast = recompress_batch(src, 0, compression.ZSTD, 1)
    best = recompress_batch(src, 0, compression.ZSTD, 19)
    assert fast != best and len(best) <= len(fast)
    assert decode_batch_records(fast) == decode_batch_records(best) == decode_batch_records(src)
    gz1 = recompress_batch(src, 0, compression.GZIP, 1)
    gz9 = recompress_batch(src, 0, compression.GZIP, 9)
    assert gz1 != gz9
    lz_default = recompress_batch(src, 0, compression.LZ4)
    assert recompress_batch(src, 0, compression.LZ4, 9) == lz_default
    assert decode_batch_records(recompress_batch(src, 0, compression.LZ4, 17)) == recs
    with pytest.raises(InvalidRecordBatch, match="level"):
        recompress_batch(src, 0, compression.ZSTD, 23)


def test_needs_recompression_skips_control_and_same_codec() -> None:
    assert needs_recompression(compression.GZIP, compression.LZ4)
    assert not needs_recompression(compression.LZ4 | TRANSACTIONAL_BIT, compression.LZ4)
    assert not needs_recompression(CONTROL_BIT | TRANSACTIONAL_BIT, compression.LZ4)
    assert needs_recompression(TIMESTAMP_TYPE_BIT, compression.ZSTD)


def test_recompress_batches_rebuilds_only_what_qualifies() -> None:
    same = _batch(compression.LZ4)
    marker = build_control_batch(producer_id=42, producer_epoch=3, commit=True)
    other = _batch(compression.GZIP)
    assert recompress_batches(same + marker, list(iter_header_tuples(same + marker)),
                              compression.LZ4) is None
    buf = same + other + marker
    out = recompress_batches(buf, list(iter_header_tuples(buf)), compression.LZ4)
    assert out is not None
    parts = [out[p : p + h.size_in_bytes] for p, h in iter_batches(out)]
    assert parts[0] == same and parts[2] == marker
    assert parse_header(parts[1]).compression == compression.LZ4
    assert decode_batch_records(parts[1]) == decode_batch_records(other)


def test_damage_is_refused() -> None:
    src = bytearray(_batch(compression.GZIP))
    src[HEADER_SIZE + 12] ^= 0xFF
    with pytest.raises(InvalidRecordBatch):
        recompress_batch(bytes(src), 0, compression.LZ4)
    # a CRC-valid batch whose records do not decode
    bogus = bytearray(build_batch([Record(0, 1, b"k", b"v")]))
    bogus[HEADER_SIZE] = 0x7F  # record length varint too large
    bogus[CRC_POS : CRC_POS + 4] = compute_crc(bogus, 0, len(bogus)).to_bytes(4, "big")
    with pytest.raises(InvalidRecordBatch):
        recompress_batch(bytes(bogus), 0, compression.LZ4)
