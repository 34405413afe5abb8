"""The pure parts of the ``strom`` tools: positions, tables/JSON, lag and reset plans,
health findings, record lines and templates."""

from __future__ import annotations

import json

import pytest

from broker.tools.plans import (
    PartitionState,
    health_findings,
    lag_rows,
    parse_pairs,
    reset_plan,
    shifted,
)
from broker.tools.positions import (
    Position,
    parse_duration_ms,
    parse_position,
    parse_timestamp_ms,
)
from broker.tools.record_text import (
    parse_line,
    record_json,
    render_template,
    unescape,
)
from broker.tools.render import table, to_json
from net.consumer import ConsumedRecord

NOW = 1_700_000_000_000


@pytest.mark.parametrize(("text", "expected"), [
    ("earliest", Position("earliest")), ("BEGINNING", Position("earliest")),
    ("end", Position("latest")), ("latest", Position("latest")),
    ("0", Position("offset", 0)), ("42", Position("offset", 42)),
    ("@1699999999000", Position("timestamp", 1_699_999_999_000)),
    ("@2023-11-14T22:13:20Z", Position("timestamp", NOW)),
    ("@2023-11-14T22:13:20", Position("timestamp", NOW)),  # no zone: UTC
    ("@2023-11-15T00:13:20+02:00", Position("timestamp", NOW)),
    ("-1h", Position("timestamp", NOW - 3_600_000)),
    ("-1h30m", Position("timestamp", NOW - 5_400_000)),
    ("-500ms", Position("timestamp", NOW - 500)),
    ("-PT2H", Position("timestamp", NOW - 7_200_000)),
    ("-P1DT1S", Position("timestamp", NOW - 86_401_000)),
])
def test_positions(text: str, expected: Position) -> None:
    assert parse_position(text, NOW) == expected


@pytest.mark.parametrize("text", ["", "x", "-", "-1", "1.5", "-1q", "-h1", "@", "@yesterday",
                                  "+3", "-PT", "-1h 2m"])
def test_malformed_positions_name_the_forms(text: str) -> None:
    with pytest.raises(ValueError, match="bad position"):
        parse_position(text, NOW)


def test_durations_and_timestamps() -> None:
    assert parse_duration_ms("2d") == 2 * 86_400_000
    assert parse_duration_ms("1w1s") == 7 * 86_400_000 + 1000
    assert parse_duration_ms("PT0.5S") == 500
    with pytest.raises(ValueError):
        parse_duration_ms("10")
    assert parse_timestamp_ms("0") == 0
    with pytest.raises(ValueError, match="ISO-8601"):
        parse_timestamp_ms("31/01/2026")


def test_table_aligns_and_marks_missing() -> None:
    assert table(("A", "LONGER"), [(1, None), ("wide-cell", [1, 2]), (True, ())]).splitlines() == [
        "A          LONGER", "1          -", "wide-cell  1,2", "yes        -"]
    assert table(("ONLY",), []) == "ONLY"


def test_json_handles_dataclasses_and_bytes() -> None:
    rows = lag_rows({("t", 0): 1}, {("t", 0): 5}, {})
    assert json.loads(to_json({"rows": rows, "raw": b"\xff\x00", "text": b"ok"})) == {
        "rows": [{"topic": "t", "partition": 0, "committed": 1, "log_end": 5, "lag": 4,
                  "member": None}],
        "raw": {"base64": "/wA="}, "text": "ok"}


def test_lag_rows() -> None:
    rows = lag_rows({("a", 0): 10, ("a", 1): 7}, {("a", 0): 15, ("a", 1): 5, ("b", 0): 3},
                    {("a", 0): "m1", ("b", 0): "m2"})
    assert [(r.topic, r.partition, r.committed, r.log_end, r.lag, r.member) for r in rows] == [
        ("a", 0, 10, 15, 5, "m1"), ("a", 1, 7, 5, 0, None), ("b", 0, None, 3, None, "m2")]


def test_reset_plan_clamps_into_the_log() -> None:
    tps = [("t", 0), ("t", 1), ("t", 2)]
    earliest = {("t", 0): 5, ("t", 1): 0, ("t", 2): 0}
    latest = {("t", 0): 20, ("t", 1): 8, ("t", 2): 4}
    plan = reset_plan(tps, {("t", 0): 10}, earliest, latest,
                      {("t", 0): 2, ("t", 1): 100, ("t", 2): -1})
    assert [(r.partition, r.current, r.new) for r in plan] == [(0, 10, 5), (1, None, 8),
                                                              (2, None, 4)]
    assert shifted({("t", 0): 10}, tps, latest, -3) == {("t", 0): 7, ("t", 1): 5, ("t", 2): 1}


def test_parse_pairs() -> None:
    assert parse_pairs(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_pairs(["novalue"])


def test_health_findings() -> None:
    healthy = health_findings(brokers=[1, 2, 3], unreachable={}, partitions=[
        PartitionState("t", 0, 1, (1, 2, 3), (1, 2, 3))], quorum_leader=1,
        voter_fetch_age_ms={2: 100, 3: 200}, max_voter_age_ms=5000)
    assert healthy == []
    problems = health_findings(brokers=[1, 2], unreachable={2: "refused"}, partitions=[
        PartitionState("t", 0, 1, (1, 2, 3), (1, 2)), PartitionState("t", 1, -1, (3,), ())],
        quorum_leader=1, voter_fetch_age_ms={2: 100, 3: 9000}, max_voter_age_ms=5000)
    assert problems == ["broker 2 does not answer: refused",
                        "quorum voter 3 last fetched 9000 ms ago (more than 5000 ms)",
                        "1 offline partition(s): t-1", "1 under-replicated partition(s): t-0"]
    assert "the metadata quorum has no leader" in health_findings(
        brokers=[1], unreachable={}, partitions=[], quorum_leader=-1, voter_fetch_age_ms={},
        max_voter_age_ms=1)


def test_lines_and_templates_round_trip() -> None:
    assert unescape("a\\tb\\nc\\\\d\\x") == "a\tb\nc\\d\\x"
    headers, key, value = parse_line(b"h1=a,h2=|k\tv\twith tab", b"\t", b"|")
    assert (headers, key, value) == ([("h1", b"a"), ("h2", b"")], b"k", b"v\twith tab")
    assert parse_line(b"no separator", b"\t") == ([], None, b"no separator")
    assert parse_line(b"|v", None, b"|") == ([], None, b"v")
    with pytest.raises(ValueError, match="header separator"):
        parse_line(b"plain", None, b"|")
    rec = ConsumedRecord("t", 2, 7, 123, "CreateTime", b"k", b"v\tx", (("h1", b"a"),
                                                                       ("h2", None)))
    assert render_template(unescape("%h|%k\\t%v\\n"), rec) == b"h1=a,h2|k\tv\tx\n"
    assert render_template("%t-%p@%o %T 100%%", rec) == b"t-2@7 123 100%"
    with pytest.raises(ValueError, match="unknown field"):
        render_template("%z", rec)
    assert json.loads(record_json(rec)) == {
        "topic": "t", "partition": 2, "offset": 7, "timestamp": 123,
        "timestamp_type": "CreateTime", "key": "k", "value": "v\tx",
        "headers": [{"key": "h1", "value": "a"}, {"key": "h2", "value": None}]}
