"""Property tests for protocol/records.py: any bytes -> InvalidRecordBatch or a result."""

from __future__ import annotations

import contextlib
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.recompress import recompress_batch
from protocol.records import (
    InvalidRecordBatch,
    Record,
    build_batch,
    decode_batch_records,
    iter_batches,
    parse_header,
)

SETTINGS = settings(max_examples=300, deadline=None)

records_st = st.lists(
    st.builds(
        Record,
        offset=st.just(-1),
        timestamp=st.integers(0, 2**40),
        key=st.none() | st.binary(max_size=20),
        value=st.none() | st.binary(max_size=200),
        headers=st.lists(st.tuples(st.text(max_size=5), st.none() | st.binary(max_size=5)),
                         max_size=3),
    ),
    min_size=1,
    max_size=20,
)


def _consume(buf: bytes | bytearray) -> None:
    try:
        for pos, _h in iter_batches(buf, verify_crc=False):
            decode_batch_records(buf, pos, verify=False)
    except InvalidRecordBatch:
        pass
    with contextlib.suppress(InvalidRecordBatch):
        parse_header(buf)


@SETTINGS
@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_invalid_record_batch(data: bytes) -> None:
    _consume(data)


@SETTINGS
@given(st.binary(max_size=300), st.integers(0, 4), st.integers(0, 3))
def test_arbitrary_bodies_behind_a_valid_header(body: bytes, codec: int, attrs: int) -> None:
    """A well-formed header in front of garbage records, for every codec."""
    buf = bytearray(61) + body
    struct.pack_into(">qiibIhiqqqhii", buf, 0, 0, len(buf) - 12, 0, 2, 0,
                     codec | (attrs << 4), 3, 0, 0, -1, -1, -1, 4)
    _consume(buf)


@SETTINGS
@given(records_st, st.integers(0, 4), st.data())
def test_mutated_valid_batches_never_crash(recs: list[Record], codec: int, data) -> None:
    buf = bytearray(build_batch(recs, compression=codec))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(buf) - 1))
        buf[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(buf)))
    _consume(buf)
    _consume(buf[:cut])


@SETTINGS
@given(records_st, st.integers(0, 4), st.integers(0, 2**40), st.booleans())
def test_round_trip(recs: list[Record], codec: int, base: int, txn: bool) -> None:
    buf = build_batch(recs, base_offset=base, compression=codec, producer_id=5,
                      producer_epoch=1, base_sequence=0, is_transactional=txn)
    [(pos, h)] = list(iter_batches(buf))
    assert h.base_offset == base and h.records_count == len(recs) and h.is_transactional == txn
    assert h.max_timestamp == max(r.timestamp for r in recs)
    out = decode_batch_records(buf, pos)
    assert [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in out] == [
        (base + i, r.timestamp, r.key, r.value, r.headers) for i, r in enumerate(recs)
    ]


@SETTINGS
@given(records_st, st.integers(0, 4), st.integers(0, 4), st.integers(0, 2**40))
def test_recompression_keeps_records_and_header(
    recs: list[Record], source: int, target: int, base: int
) -> None:
    """protocol/recompress.py: any codec to any codec, same records and header fields."""
    buf = build_batch(recs, base_offset=base, compression=source, producer_id=9,
                      producer_epoch=2, base_sequence=77, partition_leader_epoch=4)
    out = recompress_batch(buf, 0, target)
    [(_, h)] = list(iter_batches(out))
    old = parse_header(buf)
    assert h.compression == target
    assert (h.attributes & ~7, h.base_offset, h.last_offset_delta, h.base_timestamp,
            h.max_timestamp, h.producer_id, h.producer_epoch, h.base_sequence,
            h.records_count, h.partition_leader_epoch) == (
        old.attributes & ~7, old.base_offset, old.last_offset_delta, old.base_timestamp,
        old.max_timestamp, old.producer_id, old.producer_epoch, old.base_sequence,
        old.records_count, old.partition_leader_epoch)
    assert decode_batch_records(out) == decode_batch_records(buf)


@SETTINGS
@given(records_st, st.integers(0, 4), st.data())
def test_recompressing_mutated_batches_raises_only_invalid_record_batch(
    recs: list[Record], codec: int, data
) -> None:
    buf = bytearray(build_batch(recs, compression=codec))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(61, len(buf) - 1)) if len(buf) > 61 else 0
        buf[i] = data.draw(st.integers(0, 255))
    with contextlib.suppress(InvalidRecordBatch):
        recompress_batch(buf, 0, data.draw(st.integers(0, 4)), verify=False)
