"""Replica placement (rack-aware round robin) and leader election from the ISR."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest

from controller.metadata import NO_LEADER, NO_LEADER_CHANGE, PartitionRegistration
from controller.metadata.election import (
    choose_leader,
    elect,
    on_broker_fenced,
    on_broker_unfenced,
)
from controller.metadata.placement import PlacementError, arrange_by_rack, place_replicas

T = uuid.UUID(int=7)


def test_leaders_and_replicas_spread_evenly_without_racks() -> None:
    brokers = [(1, None), (2, None), (3, None)]
    placed = place_replicas(brokers, 6, 2)
    assert Counter(r[0] for r in placed) == {1: 2, 2: 2, 3: 2}
    assert Counter(b for r in placed for b in r) == {1: 4, 2: 4, 3: 4}
    assert all(len(set(r)) == 2 for r in placed)


def test_start_index_rotates_the_first_leader() -> None:
    brokers = [(1, None), (2, None), (3, None)]
    assert [r[0] for r in place_replicas(brokers, 3, 1, start_index=1)] == [2, 3, 1]


def test_followers_shift_every_round() -> None:
    brokers = [(b, None) for b in range(1, 5)]
    placed = place_replicas(brokers, 8, 2)
    assert placed[0] != placed[4]  # same leader, different follower after n partitions
    assert placed[0][0] == placed[4][0]


def test_rack_arrangement_alternates_racks() -> None:
    brokers = [(1, "a"), (2, "a"), (3, "b"), (4, "b"), (5, "c")]
    assert arrange_by_rack(brokers) == [1, 3, 5, 2, 4]


@pytest.mark.parametrize("rf", [2, 3])
def test_rack_aware_placement_uses_distinct_racks(rf: int) -> None:
    brokers = [(1, "a"), (2, "a"), (3, "b"), (4, "b"), (5, "c"), (6, "c")]
    racks = dict(brokers)
    for start in range(6):
        for replicas in place_replicas(brokers, 12, rf, start_index=start, replica_shift=start):
            assert len(set(replicas)) == rf
            assert len({racks[b] for b in replicas}) == rf
    placed = place_replicas(brokers, 12, rf)
    assert Counter(r[0] for r in placed) == {b: 2 for b in range(1, 7)}


def test_more_replicas_than_racks_still_covers_every_rack() -> None:
    brokers = [(1, "a"), (2, "a"), (3, "b"), (4, "b")]
    racks = dict(brokers)
    for replicas in place_replicas(brokers, 8, 3):
        assert len(set(replicas)) == 3 and {racks[b] for b in replicas} == {"a", "b"}


def test_partial_rack_information_falls_back_to_plain_round_robin() -> None:
    placed = place_replicas([(1, "a"), (2, None), (3, "b")], 3, 3)
    assert all(sorted(r) == [1, 2, 3] for r in placed)


@pytest.mark.parametrize(("brokers", "parts", "rf", "problem"), [
    ([], 1, 1, "no available brokers"),
    ([(1, None)], 1, 2, "larger than the 1 available"),
    ([(1, None)], 0, 1, "at least 1"),
    ([(1, None)], 1, 0, "at least 1"),
])
def test_placement_errors(brokers: list, parts: int, rf: int, problem: str) -> None:
    with pytest.raises(PlacementError, match=problem):
        place_replicas(brokers, parts, rf)


def part(replicas: tuple, isr: tuple, leader: int) -> PartitionRegistration:
    return PartitionRegistration(replicas, isr, leader, 3, 7)


def test_preferred_leader_wins_when_eligible() -> None:
    assert choose_leader(part((2, 1, 3), (1, 2, 3), 1), {1, 2, 3}) == (2, (1, 2, 3))
    assert choose_leader(part((2, 1, 3), (1, 3), 1), {1, 2, 3}) == (1, (1, 3))


def test_no_unclean_election_unless_configured() -> None:
    p = part((1, 2), (1,), 1)
    assert choose_leader(p, {2}) == (NO_LEADER, (1,))
    assert choose_leader(p, {2}, unclean=True) == (2, (2,))


def test_fencing_the_leader_moves_leadership_within_the_isr() -> None:
    change = on_broker_fenced(T, 0, part((1, 2, 3), (1, 2, 3), 1), 1, {2, 3})
    assert change is not None and change.leader == 2 and change.isr == (2, 3)


def test_fencing_a_follower_only_shrinks_the_isr() -> None:
    change = on_broker_fenced(T, 0, part((1, 2, 3), (1, 2, 3), 1), 3, {1, 2})
    assert change is not None and change.leader == NO_LEADER_CHANGE and change.isr == (1, 2)
    assert on_broker_fenced(T, 0, part((1, 2), (1, 2), 1), 5, {1, 2}) is None


def test_fencing_the_last_isr_member_leaves_the_partition_leaderless() -> None:
    change = on_broker_fenced(T, 0, part((1, 2), (1,), 1), 1, {2})
    assert change is not None and change.leader == NO_LEADER and change.isr is None
    back = on_broker_unfenced(T, 0, part((1, 2), (1,), NO_LEADER), {1, 2})
    assert back is not None and back.leader == 1


def test_rf1_partition_is_unavailable_while_its_broker_is_fenced() -> None:
    change = on_broker_fenced(T, 0, part((1,), (1,), 1), 1, {2, 3})
    assert change is not None and change.leader == NO_LEADER
    assert on_broker_unfenced(T, 0, part((1,), (1,), NO_LEADER), {2, 3}) is None


def test_elect_is_a_no_op_for_a_live_leader() -> None:
    assert elect(T, 0, part((1, 2), (1, 2), 1), {1, 2}) is None
