"""The pure share-group coordinator (heartbeats, epochs, simple assignor, session expiry),
the share session cache and the ShareSnapshot record format."""

from __future__ import annotations

import uuid

import pytest

from broker.group.consumer_records import TopicMetadata
from broker.share.config import ShareGroupConfig
from broker.share.group import (
    FENCED_MEMBER_EPOCH,
    GROUP_ID_NOT_FOUND,
    GROUP_MAX_SIZE_REACHED,
    INVALID_REQUEST,
    NONE,
    NOT_COORDINATOR,
    UNKNOWN_MEMBER_ID,
    ShareGroupCoordinator,
    simple_assign,
)
from broker.share.partition import ACKNOWLEDGED, ARCHIVED, AVAILABLE, StateBatch
from broker.share.sessions import (
    INVALID_SHARE_SESSION_EPOCH,
    SHARE_SESSION_LIMIT_REACHED,
    SHARE_SESSION_NOT_FOUND,
    ShareSessionCache,
)
from broker.share.state_format import (
    ShareSnapshot,
    ShareStateKey,
    StateFormatError,
    decode_key,
    decode_snapshot,
    encode_key,
    encode_snapshot,
)

T1, T2 = uuid.UUID(int=1), uuid.UUID(int=2)


def coordinator(**kw: int) -> ShareGroupCoordinator:
    c = ShareGroupCoordinator(ShareGroupConfig(session_timeout_ms=1000, **kw))
    c.update_topic_metadata(0, {"a": TopicMetadata(T1, "a", 1), "b": TopicMetadata(T2, "b", 4)})
    return c


def hb(c: ShareGroupCoordinator, member: str, epoch: int, topics: list[str] | None = None,
       now: int = 0, group: str = "g"):
    return c.heartbeat(now, group_id=group, member_id=member, member_epoch=epoch,
                       rack_id=None, subscribed_topic_names=topics)


def test_simple_assignor_shares_partitions_only_when_members_outnumber_them() -> None:
    subs = {m: [T1, T2] for m in ("m1", "m2", "m3")}
    out = simple_assign(subs, {T1: 1, T2: 4}, {})
    # T1 has one partition: all three share it; T2's four are split, none shared
    assert all(out[m][T1] == frozenset({0}) for m in subs)
    t2 = [out[m][T2] for m in sorted(subs)]
    assert sorted(p for ps in t2 for p in ps) == [0, 1, 2, 3]
    assert sorted(len(ps) for ps in t2) == [1, 1, 2]
    # more members than partitions: member i gets partition i mod P
    many = simple_assign({f"m{i}": [T2] for i in range(6)}, {T2: 4}, {})
    assert [sorted(many[f"m{i}"][T2]) for i in range(6)] == [[0], [1], [2], [3], [0], [1]]
    # sticky: a member keeps what it had when the group grows within the partition count
    before = simple_assign({"m1": [T2], "m2": [T2]}, {T2: 4}, {})
    after = simple_assign({"m1": [T2], "m2": [T2], "m3": [T2]}, {T2: 4}, before)
    assert after["m1"][T2] <= before["m1"][T2] and after["m2"][T2] <= before["m2"][T2]


def test_heartbeat_epochs_errors_and_leave() -> None:
    c = coordinator(max_size=2)
    assert hb(c, "", 0, ["a"]).error == INVALID_REQUEST
    assert hb(c, "m1", 0, None).error == INVALID_REQUEST
    assert hb(c, "m1", 4).error == UNKNOWN_MEMBER_ID
    r1 = hb(c, "m1", 0, ["a"])
    assert (r1.error, r1.member_epoch, r1.assignment) == (NONE, 1, {T1: frozenset({0})})
    r2 = hb(c, "m2", 0, ["a"])
    assert r2.member_epoch == 2 and r2.assignment == {T1: frozenset({0})}
    assert hb(c, "m3", 0, ["a"]).error == GROUP_MAX_SIZE_REACHED
    assert hb(c, "m1", 7).error == FENCED_MEMBER_EPOCH
    again = hb(c, "m1", 1)
    assert again.member_epoch == 2 and again.error == NONE
    steady = hb(c, "m1", 2)
    assert steady.assignment is None  # unchanged: not sent
    # a subscription change bumps the epoch and brings the new topic's partitions
    moved = hb(c, "m1", 2, ["a", "b"])
    assert moved.member_epoch == 3 and moved.assignment is not None
    assert moved.assignment[T2] == frozenset(range(4))
    left = hb(c, "m2", 2, None)
    assert left.error == NONE
    assert hb(c, "m2", -1).member_epoch == -1
    assert set(c.groups["g"].members) == {"m1"}


def test_session_expiry_and_new_partitions_bump_the_epoch() -> None:
    c = coordinator()
    hb(c, "m1", 0, ["b"], now=0)
    hb(c, "m2", 0, ["b"], now=500)
    assert c.next_deadline() == 1000
    assert c.tick(1000) == [("g", "m1")]
    c.update_topic_metadata(1100, {"b": TopicMetadata(T2, "b", 6)})
    r = hb(c, "m2", 2, now=1200)
    assert r.member_epoch == 4 and r.assignment == {T2: frozenset(range(6))}


def test_group_ids_of_other_types_and_other_coordinators_are_refused() -> None:
    c = ShareGroupCoordinator(ShareGroupConfig(), is_local=lambda g: g != "far",
                              other_group_type=lambda g: "consumer" if g == "cg" else None)
    assert hb(c, "m", 0, ["a"], group="cg").error == GROUP_ID_NOT_FOUND
    assert hb(c, "m", 0, ["a"], group="far").error == NOT_COORDINATOR
    [d] = c.describe(["nope"])
    assert d.error == GROUP_ID_NOT_FOUND
    c.stored.add("kept")  # a group with stored share state exists, empty, after a restart
    assert [g.group_id for g in c.list_groups()] == ["kept"]


def test_share_sessions_epochs() -> None:
    cache = ShareSessionCache(max_sessions=1)
    k = (T1, 0)
    assert cache.update("g", "m", 1, [], [])[0] == SHARE_SESSION_NOT_FOUND
    err, s = cache.update("g", "m", 0, [k], [])
    assert err == 0 and s is not None and list(s.partitions) == [k]
    assert cache.update("g", "x", 0, [], [])[0] == SHARE_SESSION_LIMIT_REACHED
    assert cache.update("g", "m", 2, [], [])[0] == INVALID_SHARE_SESSION_EPOCH
    err, s = cache.update("g", "m", 1, [(T2, 1)], [k])
    assert err == 0 and s is not None and list(s.partitions) == [(T2, 1)]
    assert cache.update("g", "m", 2, [], [])[0] == 0
    err, s = cache.update("g", "m", -1, [], [])
    assert err == 0 and cache.get("g", "m") is None


def test_a_full_share_session_cache_evicts_only_an_idle_session() -> None:
    cache = ShareSessionCache(max_sessions=1, idle_ms=1000)
    assert cache.update("g", "dead", 0, [], [], now_ms=0)[0] == 0
    assert cache.update("g", "new", 0, [], [], now_ms=999)[0] == SHARE_SESSION_LIMIT_REACHED
    assert cache.update("g", "new", 0, [], [], now_ms=1000)[0] == 0
    assert cache.get("g", "dead") is None and cache.get("g", "new") is not None
    assert cache.update("g", "new", 1, [], [], now_ms=1500)[0] == 0  # used: kept
    assert cache.update("g", "x", 0, [], [], now_ms=2000)[0] == SHARE_SESSION_LIMIT_REACHED


def test_share_snapshot_records_round_trip_and_reject_garbage() -> None:
    key = ShareStateKey("grp-é", T2, 7)
    assert decode_key(encode_key(key)) == key
    snap = ShareSnapshot(3, 1, 0, 42, 1000, 2000, (
        StateBatch(42, 44, AVAILABLE, 2), StateBatch(45, 45, ACKNOWLEDGED, 1),
        StateBatch(46, 50, ARCHIVED, 5)))
    assert decode_snapshot(encode_snapshot(snap)) == snap
    for bad in (b"", b"\x00\x07", encode_key(key) + b"x"):
        with pytest.raises(StateFormatError):
            decode_key(bad)
    with pytest.raises(StateFormatError):
        decode_snapshot(encode_snapshot(snap)[:-3])
