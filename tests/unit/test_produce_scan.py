"""``protocol.produce_scan``: over-size record sets are found in place and replaced, the
rest of the request decodes exactly as kio decodes it, and anything unwalkable is left to
the ordinary decoder."""

from __future__ import annotations

import pytest

from protocol.build import build
from protocol.codec import decode_request, encode_request, request_type
from protocol.headers import parse_request_header
from protocol.produce_scan import (
    OversizedRecords,
    decode_produce_eliding,
    first_oversized_batch,
    scan_produce,
)
from protocol.records import Record, build_batch


def batch(value_size: int) -> bytes:
    return bytes(build_batch([Record(key=None, value=b"v" * value_size)], base_offset=0))


SMALL, BIG = batch(10), batch(500)
LIMIT = 300


def frame(version: int, txn: str | None = None) -> tuple[memoryview, int]:
    body = build(request_type(0, version), dict(
        transactional_id=txn, acks=-1, timeout=5000, topic_data=[
            dict(name="a", partition_data=[dict(index=0, records=SMALL),
                                           dict(index=1, records=SMALL + BIG),
                                           dict(index=2, records=None)]),
            dict(name="b", partition_data=[dict(index=7, records=BIG)])]))
    view = memoryview(encode_request(0, version, 5, "client", body))[4:]
    return view, parse_request_header(view).body_offset


@pytest.mark.parametrize("version", [3, 7, 8, 9, 11, 12])
def test_oversized_record_sets_are_replaced_and_the_rest_decodes_as_kio(version: int) -> None:
    view, offset = frame(version, txn="t1" if version >= 8 else None)
    fields = scan_produce(version, view, offset)
    assert [(f.topic, f.partition, bytes(view[f.data:f.end]) if not f.null else None)
            for f in fields] == [("a", 0, SMALL), ("a", 1, SMALL + BIG), ("a", 2, None),
                                 ("b", 7, BIG)]
    limits = {"a": LIMIT, "b": 10_000}
    got = decode_produce_eliding(version, view, offset, limits.__getitem__)
    want = decode_request(0, version, view, offset)
    assert (got.transactional_id, got.acks, got.timeout) == (
        want.transactional_id, want.acks, want.timeout)
    a, b = got.topic_data
    assert a.partition_data[0] == want.topic_data[0].partition_data[0]
    oversized = a.partition_data[1].records
    assert isinstance(oversized, OversizedRecords)
    assert oversized.size == len(SMALL + BIG) and oversized.batch_bytes == len(BIG)
    assert oversized.message == f"batch of {len(BIG)} bytes exceeds max.message.bytes {LIMIT}"
    assert a.partition_data[2].records is None
    assert b == want.topic_data[1]  # topic b allows the batch: kept, copied as usual


def test_nothing_over_size_or_nothing_walkable_means_decode_as_usual() -> None:
    view, offset = frame(9)
    assert decode_produce_eliding(9, view, offset, lambda _t: 10_000) is None
    assert scan_produce(13, view, offset) is None  # topic ids: not walked
    assert scan_produce(9, view[:offset + 20], offset) is None  # truncated
    assert decode_produce_eliding(9, view[:offset + 20], offset, lambda _t: 1) is None


def test_batch_headers_are_walked_not_read() -> None:
    records = SMALL + BIG + SMALL
    assert first_oversized_batch(records, 0, len(records), LIMIT) == len(BIG)
    assert first_oversized_batch(records, 0, len(records), 10_000) is None
    # a batch length of exactly the limit - 12 is allowed (storage: length + 12 > limit)
    assert first_oversized_batch(BIG, 0, len(BIG), len(BIG)) is None
    assert first_oversized_batch(BIG, 0, len(BIG), len(BIG) - 1) == len(BIG)
    assert first_oversized_batch(b"\x00" * 8, 0, 8, 1) is None  # header cut short
