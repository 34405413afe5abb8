"""KIP-848 pure logic without I/O: server-side assignors, the reconciliation rule
(revocation before assignment), member epoch validation and the records' bytes."""

from __future__ import annotations

import uuid

from broker.group.consumer_assignors import range_assign, uniform_assign
from broker.group.consumer_group import (
    ConsumerMember,
    MemberState,
    epoch_is_valid,
    reconcile,
    subscribed_topic_names,
)
from broker.group.consumer_records import (
    CURRENT_MEMBER_ASSIGNMENT,
    GROUP_METADATA,
    MEMBER_METADATA,
    ConsumerKey,
    CurrentAssignmentValue,
    MemberMetadataValue,
    TopicMetadata,
    decode_current_assignment,
    decode_epoch_value,
    decode_key,
    decode_member_metadata,
    decode_partition_metadata,
    decode_target_member,
    encode_current_assignment,
    encode_epoch_value,
    encode_key,
    encode_member_metadata,
    encode_partition_metadata,
    encode_target_member,
)

T1 = uuid.UUID(int=1)
T2 = uuid.UUID(int=2)


def _count(assignment: dict) -> dict[str, int]:
    return {m: sum(len(ps) for ps in topics.values()) for m, topics in assignment.items()}


def _all_partitions(assignment: dict) -> list[tuple[uuid.UUID, int]]:
    return sorted(
        ((t, p) for topics in assignment.values() for t, ps in topics.items() for p in ps),
        key=lambda x: (str(x[0]), x[1]),
    )


# ---------------------------------------------------------------- assignors


def test_uniform_balances_identical_subscriptions_and_covers_every_partition_once():
    subs = {m: {T1} for m in ("a", "b", "c")}
    out = uniform_assign(subs, {T1: 7}, {})
    assert sorted(_count(out).values()) == [2, 2, 3]
    assert _all_partitions(out) == [(T1, p) for p in range(7)]


def test_uniform_is_sticky_when_a_member_joins():
    subs = {"a": {T1}, "b": {T1}}
    first = uniform_assign(subs, {T1: 6}, {})
    subs["c"] = {T1}
    second = uniform_assign(subs, {T1: 6}, first)
    assert _count(second) == {"a": 2, "b": 2, "c": 2}
    for m in ("a", "b"):  # the old members only lose partitions, never swap them
        assert second[m][T1] <= first[m][T1]
    assert _all_partitions(second) == [(T1, p) for p in range(6)]


def test_uniform_respects_heterogeneous_subscriptions():
    subs = {"a": {T1}, "b": {T1, T2}, "c": {T2}}
    out = uniform_assign(subs, {T1: 4, T2: 4}, {})
    assert T2 not in out.get("a", {}) and T1 not in out.get("c", {})
    assert _all_partitions(out) == sorted(
        [(T1, p) for p in range(4)] + [(T2, p) for p in range(4)],
        key=lambda x: (str(x[0]), x[1]))
    assert max(_count(out).values()) - min(_count(out).values()) <= 1


def test_range_gives_contiguous_ranges_the_first_members_one_more():
    subs = {"a": {T1, T2}, "b": {T1, T2}}
    out = range_assign(subs, {T1: 5, T2: 3}, {})
    assert out["a"] == {T1: frozenset({0, 1, 2}), T2: frozenset({0, 1})}
    assert out["b"] == {T1: frozenset({3, 4}), T2: frozenset({2})}


def test_members_subscribed_to_nothing_get_nothing():
    out = uniform_assign({"a": set(), "b": {T1}}, {T1: 2}, {})
    assert out.get("a", {}) == {} and out["b"] == {T1: frozenset({0, 1})}


# ---------------------------------------------------------------- reconciliation


def _member(mid: str, epoch: int, assigned: dict | None = None) -> ConsumerMember:
    m = ConsumerMember(mid, member_epoch=epoch, previous_member_epoch=epoch - 1)
    m.assigned = {t: frozenset(ps) for t, ps in (assigned or {}).items()}
    return m


def test_revocation_before_assignment():
    """A holds all 4 partitions at epoch 1; the new target (epoch 2) gives 2-3 to B. B may
    not get 2-3 until A has reported them revoked."""
    a = _member("a", 1, {T1: {0, 1, 2, 3}})
    b = _member("b", 0)
    owners = {(T1, p): a for p in range(4)}

    def owner_epoch_for(me: ConsumerMember):
        def f(t, p):
            o = owners.get((t, p))
            return -1 if o is None or o.member_id == me.member_id else o.member_epoch
        return f

    target_a = {T1: frozenset({0, 1})}
    target_b = {T1: frozenset({2, 3})}
    b1 = reconcile(b, 2, target_b, {}, owner_epoch_for(b))
    assert b1.member_epoch == 2 and b1.assigned == {}
    assert b1.state is MemberState.UNRELEASED_PARTITIONS
    # A still reports everything: it must revoke 2-3 first, keeping its epoch
    a1 = reconcile(a, 2, target_a, {T1: frozenset({0, 1, 2, 3})}, owner_epoch_for(a))
    assert a1.state is MemberState.UNREVOKED_PARTITIONS and a1.member_epoch == 1
    assert a1.assigned == {T1: frozenset({0, 1})}
    assert a1.pending_revocation == {T1: frozenset({2, 3})}
    # a heartbeat still owning 2: nothing moves
    assert reconcile(a1, 2, target_a, {T1: frozenset({0, 1, 2})}, owner_epoch_for(a)) is a1
    # A reports 0-1 only: it reaches epoch 2, and the partitions are free
    a2 = reconcile(a1, 2, target_a, {T1: frozenset({0, 1})}, owner_epoch_for(a))
    assert (a2.state, a2.member_epoch, a2.previous_member_epoch) == (MemberState.STABLE, 2, 1)
    assert a2.pending_revocation == {}
    for p in (2, 3):
        del owners[(T1, p)]
    b2 = reconcile(b1, 2, target_b, {}, owner_epoch_for(b1))
    assert b2.state is MemberState.STABLE and b2.assigned == target_b


def test_a_member_that_already_revoked_moves_on_at_once():
    a = _member("a", 1, {T1: {0, 1}})
    a1 = reconcile(a, 2, {T1: frozenset({0})}, {T1: frozenset({0})}, lambda t, p: -1)
    assert a1.state is MemberState.STABLE and a1.member_epoch == 2


def test_member_epoch_validation():
    m = _member("a", 5, {T1: {0, 1}})
    m.previous_member_epoch = 4
    assert epoch_is_valid(m, 5, None)
    assert not epoch_is_valid(m, 6, None)  # from the future: fenced
    assert epoch_is_valid(m, 4, {T1: frozenset({0})})  # our answer got lost
    assert not epoch_is_valid(m, 4, {T1: frozenset({0, 7})})  # owns what it was not given
    assert not epoch_is_valid(m, 3, None)


def test_regex_subscription_full_match_without_internal_topics():
    topics = {n: TopicMetadata(uuid.uuid4(), n, 1)
              for n in ("orders", "orders-eu", "xorders", "__consumer_offsets")}
    m = ConsumerMember("a", subscribed_topic_regex="orders.*|__.*")
    assert subscribed_topic_names(m, topics) == {"orders", "orders-eu"}
    m2 = ConsumerMember("b", subscribed_topic_names=("xorders", "missing"))
    assert subscribed_topic_names(m2, topics) == {"xorders"}


# ---------------------------------------------------------------- records


def test_record_keys_are_kafkas():
    key = encode_key(ConsumerKey(GROUP_METADATA, "g"))
    assert key == b"\x00\x03\x00\x01g"
    mkey = encode_key(ConsumerKey(CURRENT_MEMBER_ASSIGNMENT, "g", "m1"))
    assert mkey == b"\x00\x08\x00\x01g\x00\x02m1"
    assert decode_key(mkey) == ConsumerKey(CURRENT_MEMBER_ASSIGNMENT, "g", "m1")
    assert decode_key(b"\x00\x01\x00\x01g\x00\x01t\x00\x00\x00\x00") is None  # offsets


def test_epoch_value_bytes_and_round_trips():
    # version 0, epoch int32, empty tagged fields
    assert encode_epoch_value(7) == b"\x00\x00\x00\x00\x00\x07\x00"
    assert decode_epoch_value(encode_epoch_value(7)) == 7
    meta = {"t": TopicMetadata(T1, "t", 6)}
    assert decode_partition_metadata(encode_partition_metadata(meta)) == meta
    v = MemberMetadataValue("inst", None, "cid", "/127.0.0.1", ("a", "b"), "^p.*", 30000,
                            "range")
    assert decode_member_metadata(encode_member_metadata(v)) == v
    target = {T1: frozenset({0, 2}), T2: frozenset({1})}
    assert decode_target_member(encode_target_member(target)) == target
    cur = CurrentAssignmentValue(3, 2, 1, {T1: frozenset({0})}, {T2: frozenset({4, 5})})
    assert decode_current_assignment(encode_current_assignment(cur)) == cur
    assert MEMBER_METADATA == 5
