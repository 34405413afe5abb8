"""The pure Partition rules (replication/partition.py), one rule per test: roles from the
assignment, the high watermark over the (maximal) ISR and min.insync.replicas, caught-up
times, ISR shrink and expansion, produce completion and replica-fetch epoch checks."""

from __future__ import annotations

from replication.partition import (
    FENCED_LEADER_EPOCH,
    NOT_ENOUGH_REPLICAS,
    NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    NOT_LEADER_OR_FOLLOWER,
    UNKNOWN_LEADER_EPOCH,
    Assignment,
    Partition,
    Role,
    Transition,
)

LAG = 1000


def leader(isr: tuple[int, ...] = (1, 2, 3), min_isr: int = 2, leo: int = 0,
           hw: int = 0) -> Partition:
    p = Partition("t", 0, 1, min_insync_replicas=min_isr)
    change = p.apply_assignment(Assignment(1, 5, 7, (1, 2, 3), isr), log_end_offset=leo,
                                high_watermark=hw, now_ms=0)
    assert change is Transition.BECAME_LEADER
    return p


def test_roles_follow_the_assignment() -> None:
    p = Partition("t", 0, 2)
    a = Assignment(1, 5, 7, (1, 2, 3), (1, 2, 3))
    assert p.apply_assignment(a, log_end_offset=4, high_watermark=9, now_ms=0) \
        is Transition.BECAME_FOLLOWER
    assert p.role is Role.FOLLOWER and p.high_watermark == 4  # capped by the log end
    assert p.apply_assignment(a, log_end_offset=4, high_watermark=4, now_ms=0) \
        is Transition.UPDATED
    new_epoch = Assignment(3, 6, 8, (1, 2, 3), (2, 3))
    assert p.apply_assignment(new_epoch, log_end_offset=4, high_watermark=4, now_ms=0) \
        is Transition.BECAME_FOLLOWER
    moved = Assignment(3, 6, 9, (1, 3, 4), (3,))
    assert p.apply_assignment(moved, log_end_offset=4, high_watermark=4, now_ms=0) \
        is Transition.STOPPED
    assert p.role is Role.NONE
    leaderless = Partition("t", 0, 2)
    assert leaderless.apply_assignment(Assignment(-1, 5, 7, (1, 2), (1, 2)), log_end_offset=0,
                                       high_watermark=0, now_ms=0) is Transition.UNCHANGED


def test_high_watermark_is_the_smallest_log_end_over_the_isr() -> None:
    p = leader(leo=10, hw=0)
    assert p.high_watermark == 0  # followers' log ends are unknown in the new epoch
    assert not p.on_follower_fetch(2, 6, 1)
    assert p.high_watermark == 0  # replica 3 unknown still
    assert p.on_follower_fetch(3, 4, 1)
    assert p.high_watermark == 4
    assert p.on_follower_fetch(3, 10, 2)
    assert p.high_watermark == 6
    assert not p.on_follower_fetch(2, 5, 3)  # never backwards
    assert p.high_watermark == 6


def test_high_watermark_stops_below_min_insync_replicas() -> None:
    p = leader(isr=(1,), min_isr=2, leo=3)
    assert p.high_watermark == 0 and not p.on_leader_append(5)
    one = leader(isr=(1,), min_isr=1, leo=3)
    assert one.high_watermark == 3 and one.on_leader_append(5) and one.high_watermark == 5


def test_a_minimum_above_the_replica_count_still_commits_acks_one() -> None:
    p = Partition("t", 0, 1, min_insync_replicas=2)
    p.apply_assignment(Assignment(1, 0, 0, (1,), (1,)), log_end_offset=0, high_watermark=0,
                       now_ms=0)
    assert p.check_produce(-1) == NOT_ENOUGH_REPLICAS and p.check_produce(1) == 0
    assert p.on_leader_append(2) and p.high_watermark == 2


def test_pending_expansion_counts_in_the_high_watermark() -> None:
    p = leader(isr=(1, 2), leo=10)
    p.on_follower_fetch(2, 10, 1)
    assert p.high_watermark == 10
    p.on_leader_append(20)
    p.on_follower_fetch(3, 10, 2)
    proposal = p.isr_to_expand({2, 3})
    assert proposal is not None and proposal.isr == (1, 2, 3)
    assert proposal.leader_epoch == 5 and proposal.partition_epoch == 7
    p.on_follower_fetch(2, 20, 3)
    assert p.high_watermark == 10  # replica 3, being added, holds it
    p.on_follower_fetch(3, 20, 4)
    assert p.high_watermark == 20


def test_expansion_needs_the_high_watermark_the_epoch_start_and_eligibility() -> None:
    p = leader(isr=(1, 2), leo=8, hw=8)
    p.on_follower_fetch(2, 8, 1)
    p.on_follower_fetch(3, 7, 1)
    assert p.isr_to_expand({2, 3}) is None  # below the HW and the epoch start (8)
    p.on_follower_fetch(3, 8, 2)
    assert p.isr_to_expand({2}) is None  # broker 3 fenced
    assert p.isr_to_expand({2, 3}) is not None
    assert p.isr_to_expand({2, 3}) is None  # one proposal at a time
    p.alter_failed()
    assert p.isr_to_expand({2, 3}) is not None


def test_shrink_drops_followers_not_caught_up_within_the_lag_time() -> None:
    p = leader(leo=10)
    p.on_follower_fetch(2, 10, 500)
    p.on_follower_fetch(3, 5, 500)  # behind: never caught up in this epoch
    assert p.isr_to_shrink(1000, LAG) is None  # ISR members start with a full lag period
    proposal = p.isr_to_shrink(1001, LAG)
    assert proposal is not None and proposal.isr == (1, 2)
    # the proposal is pending: the HW still waits for replica 3 until the image has it
    p.on_leader_append(12)
    p.on_follower_fetch(2, 12, 1002)
    assert p.high_watermark == 5
    p.apply_assignment(Assignment(1, 5, 8, (1, 2, 3), (1, 2)), log_end_offset=12,
                       high_watermark=5, now_ms=1003)
    assert p.isr == (1, 2) and p.pending_isr is None and p.high_watermark == 12


def test_a_follower_that_keeps_up_with_the_previous_fetch_stays_caught_up() -> None:
    p = leader(leo=10)
    p.on_follower_fetch(2, 10, 100)  # caught up at 100
    p.on_leader_append(20)
    p.on_follower_fetch(2, 10, 900)  # reached the leader's end of its previous fetch
    p.on_leader_append(30)
    p.on_follower_fetch(2, 20, 1800)  # ... and again: caught up as of 900
    p.on_follower_fetch(3, 30, 1800)
    assert p.followers[2].last_caught_up_ms == 900
    assert p.isr_to_shrink(1850, LAG) is None
    proposal = p.isr_to_shrink(1901, LAG)
    assert proposal is not None and proposal.isr == (1, 3)


def test_produce_completion() -> None:
    p = leader(leo=10)
    assert p.check_produce(-1) == 0 and p.produce_status(10) == (False, 0)
    p.on_follower_fetch(2, 10, 1)
    p.on_follower_fetch(3, 10, 1)
    assert p.produce_status(10) == (True, 0)
    p.apply_assignment(Assignment(1, 5, 8, (1, 2, 3), (1,)), log_end_offset=12,
                       high_watermark=10, now_ms=2)
    assert p.check_produce(-1) == NOT_ENOUGH_REPLICAS and p.check_produce(1) == 0
    assert p.produce_status(12) == (True, NOT_ENOUGH_REPLICAS_AFTER_APPEND)
    p.apply_assignment(Assignment(2, 6, 9, (1, 2, 3), (2, 3)), log_end_offset=12,
                       high_watermark=10, now_ms=3)
    assert p.produce_status(12) == (True, NOT_LEADER_OR_FOLLOWER)
    assert p.check_produce(1) == NOT_LEADER_OR_FOLLOWER


def test_replica_fetch_epoch_checks() -> None:
    p = leader()
    assert p.check_replica_fetch(2, 5) == 0
    assert p.check_replica_fetch(2, -1) == 0  # no epoch given: not checked
    assert p.check_replica_fetch(2, 4) == FENCED_LEADER_EPOCH
    assert p.check_replica_fetch(2, 6) == UNKNOWN_LEADER_EPOCH
    assert p.check_replica_fetch(9, 5) == NOT_LEADER_OR_FOLLOWER
    follower = Partition("t", 0, 2)
    follower.apply_assignment(Assignment(1, 5, 7, (1, 2, 3), (1, 2, 3)), log_end_offset=0,
                              high_watermark=0, now_ms=0)
    assert follower.check_replica_fetch(3, 5) == NOT_LEADER_OR_FOLLOWER


def test_follower_high_watermark_is_capped_by_its_log() -> None:
    p = Partition("t", 0, 2)
    p.apply_assignment(Assignment(1, 5, 7, (1, 2), (1, 2)), log_end_offset=3,
                       high_watermark=0, now_ms=0)
    p.on_leader_high_watermark(10, 3)
    assert p.high_watermark == 3
    p.on_leader_high_watermark(10, 12)
    assert p.high_watermark == 10
