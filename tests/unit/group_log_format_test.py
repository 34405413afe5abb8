"""``__consumer_offsets`` record layout (byte-exact with Kafka) and the partitioner."""

from __future__ import annotations

import ast
import struct
from pathlib import Path

import pytest

from broker.group.log_format import (
    GroupKey,
    GroupValue,
    LogFormatError,
    MemberValue,
    OffsetKey,
    OffsetValue,
    decode_group_value,
    decode_key,
    decode_offset_value,
    encode_group_key,
    encode_group_value,
    encode_offset_key,
    encode_offset_value,
    parse_subscribed_topics,
)
from broker.group.partitioner import java_string_hashcode, partition_for


def test_offset_key_bytes() -> None:
    raw = encode_offset_key(OffsetKey("g", "t", 7))
    assert raw == b"\x00\x01" + b"\x00\x01g" + b"\x00\x01t" + b"\x00\x00\x00\x07"
    assert decode_key(raw) == OffsetKey("g", "t", 7)
    # version 0 keys (old brokers) read the same way
    assert decode_key(b"\x00\x00" + raw[2:]) == OffsetKey("g", "t", 7)


def test_group_key_bytes() -> None:
    raw = encode_group_key(GroupKey("grp"))
    assert raw == b"\x00\x02\x00\x03grp"
    assert decode_key(raw) == GroupKey("grp")
    assert decode_key(b"\x00\x09\x00\x00") is None  # newer record types are skipped


def test_offset_value_v3_and_v1() -> None:
    raw = encode_offset_value(OffsetValue(42, 5, "m", 1000))
    assert raw == struct.pack(">hqih1sq", 3, 42, 5, 1, b"m", 1000)
    assert decode_offset_value(raw) == OffsetValue(42, 5, "m", 1000)
    raw1 = encode_offset_value(OffsetValue(42, -1, "", 1000, 2000))
    assert raw1 == struct.pack(">hqhqq", 1, 42, 0, 1000, 2000)
    assert decode_offset_value(raw1) == OffsetValue(42, -1, "", 1000, 2000)
    raw0 = struct.pack(">hqh2sq", 0, 9, 2, b"ab", 5)
    assert decode_offset_value(raw0) == OffsetValue(9, -1, "ab", 5)
    raw4 = struct.pack(">hqiB2sqB", 4, 9, 1, 3, b"ab", 5, 0)  # flexible, no tags
    assert decode_offset_value(raw4) == OffsetValue(9, 1, "ab", 5)


def test_group_value_round_trip_and_v0() -> None:
    value = GroupValue(
        "consumer",
        3,
        "range",
        "m1",
        777,
        (MemberValue("m1", "inst", "cid", "/1.2.3.4", 30000, 10000, b"sub", b"asg"),),
    )
    raw = encode_group_value(value)
    assert raw[:2] == b"\x00\x03"
    assert decode_group_value(raw) == value
    empty = GroupValue("consumer", 4, None, None, 5, ())
    assert decode_group_value(encode_group_value(empty)) == empty
    v0 = (
        struct.pack(">hh8sih5sh2si", 0, 8, b"consumer", 2, 5, b"range", 2, b"m1", 1)
        + struct.pack(">h2sh1sh1si", 2, b"m1", 1, b"c", 1, b"h", 6000)
        + struct.pack(">i1si1s", 1, b"s", 1, b"a")
    )
    got = decode_group_value(v0)
    assert got.members[0].session_timeout_ms == 6000
    assert got.members[0].rebalance_timeout_ms == 6000
    assert got.current_state_timestamp == -1


def test_truncated_records_raise_log_format_error() -> None:
    raw = encode_group_value(GroupValue("consumer", 1, "r", "m", 0, ()))
    with pytest.raises(LogFormatError):
        decode_group_value(raw[:-3])
    with pytest.raises(LogFormatError):
        decode_offset_value(b"\x00\x03\x00")
    with pytest.raises(LogFormatError):
        decode_offset_value(b"\x00\x63" + b"\x00" * 30)


def test_subscription_topics() -> None:
    sub = struct.pack(">hih1sh2si", 1, 2, 1, b"a", 2, b"bc", -1)
    assert parse_subscribed_topics(sub) == {"a", "bc"}
    assert parse_subscribed_topics(b"junk") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("hello", 99162322),
        ("Hello World", -862545276),
        ("polygenelubricants", -(2**31)),
        ("\U0001f600", 0xD83D * 31 + 0xDE00),  # surrogate pair: two UTF-16 units
    ],
)
def test_java_hashcode(text: str, expected: int) -> None:
    assert java_string_hashcode(text) == expected


def test_partition_for_matches_kafka() -> None:
    assert partition_for("polygenelubricants", 50) == 0  # Utils.abs(MIN_VALUE) == 0
    assert partition_for("Hello World", 50) == 862545276 % 50
    assert all(0 <= partition_for(f"g{i}", 50) < 50 for i in range(100))


PURE = [
    "config",
    "state",
    "member",
    "group",
    "timers",
    "partitioner",
    "log_format",
    "events",
    "base",
    "membership",
    "offsets",
    "group_admin",
    "loading",
    "coordinator",
]


@pytest.mark.parametrize("module", PURE)
def test_core_modules_do_no_io(module: str) -> None:
    path = Path(__file__).resolve().parents[2] / "broker" / "group" / f"{module}.py"
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    assert not names & {
        "asyncio",
        "socket",
        "time",
        "os",
        "random",
        "threading",
        "uvloop",
        "storage",
        "pathlib",
    }
