"""Pure parts of the tools' client in net/: Kafka's murmur2 partitioner, addresses,
consumer-protocol assignments, and decoding fetched batches (partial tails, control
batches, offsets before the position)."""

from __future__ import annotations

import struct

import pytest

from net.consumer import decode_fetched
from net.groups import decode_assignment
from net.partitioner import murmur2, partition_for_key
from net.session import parse_address, parse_bootstrap
from protocol.records import Record, build_batch, build_control_batch


def test_murmur2_matches_kafka() -> None:
    # the values of Kafka's UtilsTest.testMurmur2
    assert murmur2(b"21") == -973932308
    assert murmur2(b"foobar") == -790332482
    assert murmur2(b"a-little-bit-long-string") == -985981536
    assert murmur2(b"a-little-bit-longer-string") == -1486304829
    assert murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") == -58897971
    assert murmur2(b"abc") == 479470107
    assert 0 <= partition_for_key(b"any", 7) < 7


def test_addresses() -> None:
    assert parse_address("localhost:9092") == ("localhost", 9092)
    assert parse_address("[::1]:9093") == ("::1", 9093)
    assert parse_bootstrap(" a:1, b:2 ,") == [("a", 1), ("b", 2)]
    for bad in ("", "host", "host:", ":9092", "host:0", "host:x", "host:70000"):
        with pytest.raises(ValueError):
            parse_bootstrap(bad)


def _assignment(parts: dict[str, list[int]]) -> bytes:
    out = struct.pack(">hi", 0, len(parts))
    for topic, ps in parts.items():
        out += struct.pack(">h", len(topic)) + topic.encode() + struct.pack(">i", len(ps))
        out += b"".join(struct.pack(">i", p) for p in ps)
    return out + struct.pack(">i", -1)


def test_decode_assignment() -> None:
    assert decode_assignment(_assignment({"b": [1], "a": [2, 0]})) == (
        ("a", 0), ("a", 2), ("b", 1))
    assert decode_assignment(b"") == ()
    assert decode_assignment(_assignment({"a": [0, 1]})[:-9]) == ()  # truncated: not guessed


def test_decode_fetched_skips_control_and_partial_and_old() -> None:
    first = build_batch([Record(-1, 1000, b"k0", b"v0"), Record(-1, 1001, None, b"v1",
                                                                [("h", b"x")])], base_offset=10)
    marker = build_control_batch(base_offset=12, producer_id=1, producer_epoch=0,
                                 commit=True, timestamp=1002)
    third = build_batch([Record(-1, 1003, None, b"v3")], base_offset=13)
    data = first + marker + third
    records, position = decode_fetched("t", 0, data + third[:20], 11)
    assert [(r.offset, r.key, r.value, r.headers) for r in records] == [
        (11, None, b"v1", (("h", b"x"),)), (13, None, b"v3", ())]
    assert position == 14  # past the last whole batch; the partial tail is fetched again
