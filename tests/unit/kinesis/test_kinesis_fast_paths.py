"""The hot-path encoders of PutRecords and GetRecords against the reference codecs: the
one-pass batch builder against ``protocol.records.build_batch``, and GetRecords' JSON
array (``records.json_records``) against what ``codec.encode`` makes of plain values."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kinesis import codec, sequence
from kinesis import records as krecords
from protocol.records import (
    LOG_APPEND_TIME,
    InvalidRecordBatch,
    Record,
    build_batch,
    decode_batch_records,
)

_keys = st.text(min_size=1, max_size=40)  # any Unicode, quotes and control characters too
_entries = st.lists(
    st.tuples(_keys, st.binary(max_size=300),
              st.none() | st.integers(0, 2**128 - 1).map(str)),
    min_size=1, max_size=150)  # > 63 records: offset deltas of two varint bytes


@settings(max_examples=60, deadline=None)
@given(_entries, st.integers(0, 2**41))
def test_one_pass_build_is_build_batch(items: list, now: int) -> None:
    puts = [krecords.PutEntry(k, d, e) for k, d, e in items]
    reference = build_batch(
        [Record(-1, now, k.encode("utf-8"), d,
                [(krecords.EXPLICIT_HASH_KEY_HEADER, e.encode("ascii"))] if e else [])
         for k, d, e in items], base_timestamp=now)
    batch = krecords.build(puts, now)
    assert batch == reference
    decoded = decode_batch_records(batch, 0)  # CRC verified
    assert [(r.offset, r.key, r.value) for r in decoded] == [
        (i, k.encode("utf-8"), d) for i, (k, d, _e) in enumerate(items)]


def _plain_json(got: list, shard: int) -> list:
    """GetRecords' Records as before the fast path: plain values through codec.encode."""
    return orjson.loads(codec.encode(False, [
        {"SequenceNumber": sequence.encode(shard, off),
         "ApproximateArrivalTimestamp": codec.Timestamp(ts),
         "Data": bytes(v) if v is not None else b"",
         "PartitionKey": bytes(k).decode("utf-8", "replace") if k is not None else ""}
        for off, ts, k, v in got]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.none() | st.binary(max_size=20), st.none() | st.binary(
    max_size=200), st.integers(0, 2**41)), min_size=1, max_size=80),
       st.integers(0, 10**6), st.booleans(), st.integers(0, 40))
def test_json_records_equal_the_plain_encoding(items: list, shard: int, log_append: bool,
                                               start: int) -> None:
    """Keys that are not UTF-8 or need escaping, null keys and values, both timestamp
    types: the same JSON, record for record."""
    batch = build_batch([Record(-1, ts, k, v, []) for k, v, ts in items], base_offset=10,
                        timestamp_type=LOG_APPEND_TIME if log_append else 0,
                        max_timestamp=1_700_000_000_123 if log_append else None)
    got, nxt = krecords.scan(batch, start, 1000)
    assert [g[0] for g in got] == list(range(max(start, 10), 10 + len(items)))
    assert nxt == max(start, 10 + len(items))
    array = b"[" + b",".join(krecords.json_records(got, shard)) + b"]"
    assert orjson.loads(array) == _plain_json(got, shard)
    if log_append and got:
        assert {g[1] for g in got} == {1_700_000_000_123}


def test_scan_stops_at_limit_and_end_offset() -> None:
    batches = b"".join(build_batch([Record(-1, 5, b"k", b"v%d" % i, []) for i in range(5)],
                                   base_offset=base) for base in (0, 5, 10))
    got, nxt = krecords.scan(batches, 3, 4)
    assert [g[0] for g in got] == [3, 4, 5, 6] and nxt == 7
    got, nxt = krecords.scan(batches, 3, 100, end_offset=8)  # a closed shard's end
    assert [g[0] for g in got] == [3, 4, 5, 6, 7] and nxt == 8
    got, nxt = krecords.scan(batches, 2, 100, end_offset=5)  # ends at a batch boundary
    assert [g[0] for g in got] == [2, 3, 4] and nxt == 5
    got, nxt = krecords.scan(batches, 15, 100)  # past everything fetched
    assert got == [] and nxt == 15


def test_scan_refuses_a_truncated_or_overrunning_record() -> None:
    batch = bytearray(build_batch([Record(-1, 5, b"key", b"value" * 30, [])]))
    with pytest.raises(InvalidRecordBatch):
        krecords.scan(bytes(batch[:-20]), 0, 10)  # partial batch
    body = 61
    batch[body] = 0x04  # record length 2: its key and value cannot fit
    with pytest.raises(InvalidRecordBatch):
        krecords.scan(bytes(batch), 0, 10)


def test_scan_reads_varints_of_every_width() -> None:
    """Lengths of one, two and three varint bytes (records up to 64 B, 8 KiB, 1 MiB)."""
    values = [b"a" * 10, b"b" * 1000, b"c" * 100_000, b""]
    batch = build_batch([Record(-1, 7, b"k" * n, v, []) for n, v in zip(
        (1, 200, 70_000, 0), values, strict=True)])
    got, nxt = krecords.scan(batch, 0, 10)
    assert [(bytes(k or b""), v) for _o, _t, k, v in got] == [
        (b"k" * n, v) for n, v in zip((1, 200, 70_000, 0), values, strict=True)]
    assert nxt == 4
