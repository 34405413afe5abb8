"""The pure share-partition: acquisition, locks, delivery counts, acknowledge types, SPSO
movement, persistence round trip, and (seeded and hypothesis) the two safety rules: a
record is never held by two members at once, an acknowledged record is never delivered
again."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from broker.share.partition import (
    ACCEPT,
    ACKNOWLEDGED,
    ACQUIRED,
    ARCHIVED,
    AVAILABLE,
    GAP,
    INVALID_RECORD_STATE,
    INVALID_REQUEST,
    NONE,
    REJECT,
    RELEASE,
    RENEW,
    AcquiredRange,
    LogBatch,
    SharePartition,
)

LOCK = 1000


def batches(*spans: tuple[int, int]) -> list[LogBatch]:
    return [LogBatch(a, b) for a, b in spans]


def test_acquire_whole_batches_and_ranges() -> None:
    sp = SharePartition(0, lock_duration_ms=LOCK)
    got = sp.acquire("m1", 0, 3, batches((0, 4), (5, 9)))
    # batch-aligned: 3 asked, the first batch of 5 is finished, the second not started
    assert got == [AcquiredRange(0, 4, 1)]
    assert sp.end_offset == 5
    assert sp.acquire("m2", 0, 100, batches((5, 9))) == [AcquiredRange(5, 9, 1)]
    assert sp.state_of(3) == (ACQUIRED, 1, "m1")
    assert sp.state_of(7) == (ACQUIRED, 1, "m2")
    # nothing left for a third member
    assert sp.acquire("m3", 0, 100, ()) == []


def test_accept_advances_spso_and_is_never_redelivered() -> None:
    sp = SharePartition(10, lock_duration_ms=LOCK)
    sp.acquire("m", 0, 10, batches((10, 14)))
    assert sp.acknowledge("m", 10, 12, [ACCEPT], 1) == NONE
    assert sp.start_offset == 13
    assert sp.acknowledge("m", 14, 14, [ACCEPT], 1) == NONE
    assert sp.start_offset == 13  # 13 still acquired: the SPSO waits for the head
    sp.expire(10 * LOCK)
    assert sp.acquire("m2", 10 * LOCK, 10, ()) == [AcquiredRange(13, 13, 2)]
    assert sp.acknowledge("m2", 13, 13, [ACCEPT], 10 * LOCK) == NONE
    assert sp.start_offset == 15 and sp.end_offset == 15


def test_release_reject_gap_and_per_offset_types() -> None:
    sp = SharePartition(0, lock_duration_ms=LOCK)
    sp.acquire("m", 0, 10, batches((0, 3)))
    assert sp.acknowledge("m", 0, 3, [RELEASE, REJECT, GAP, ACCEPT], 5) == NONE
    assert sp.state_of(0) == (AVAILABLE, 1, None)
    assert sp.state_of(1)[0] == ARCHIVED
    assert sp.state_of(2)[0] == ARCHIVED
    assert sp.state_of(3)[0] == ACKNOWLEDGED
    assert sp.start_offset == 0
    # the released record is delivered again, with delivery count 2
    assert sp.acquire("m2", 6, 10, ()) == [AcquiredRange(0, 0, 2)]
    assert sp.acknowledge("m2", 0, 0, [REJECT], 7) == NONE
    assert sp.start_offset == 4


def test_acknowledge_checks_holder_and_state_atomically() -> None:
    sp = SharePartition(0, lock_duration_ms=LOCK)
    sp.acquire("a", 0, 2, batches((0, 1)))
    sp.acquire("b", 0, 2, batches((2, 3)))
    # a range touching another member's record changes nothing
    assert sp.acknowledge("a", 0, 2, [ACCEPT], 1) == INVALID_RECORD_STATE
    assert sp.state_of(0) == (ACQUIRED, 1, "a")
    assert sp.acknowledge("a", 5, 6, [ACCEPT], 1) == INVALID_RECORD_STATE
    assert sp.acknowledge("a", 1, 0, [ACCEPT], 1) == INVALID_REQUEST
    assert sp.acknowledge("a", 0, 1, [ACCEPT, ACCEPT, ACCEPT], 1) == INVALID_REQUEST
    assert sp.acknowledge("a", 0, 1, [9], 1) == INVALID_REQUEST
    assert sp.acknowledge("a", 0, 1, [ACCEPT], 1) == NONE
    assert sp.acknowledge("a", 0, 1, [ACCEPT], 1) == INVALID_RECORD_STATE  # already done


def test_lock_timeout_releases_and_renew_extends() -> None:
    sp = SharePartition(0, lock_duration_ms=LOCK)
    sp.acquire("m", 0, 10, batches((0, 1)))
    assert sp.next_deadline() == LOCK
    assert sp.acknowledge("m", 1, 1, [RENEW], 600) == NONE
    assert sp.expire(LOCK) == 1  # offset 0 expired, offset 1 renewed until 1600
    assert sp.state_of(0) == (AVAILABLE, 1, None)
    assert sp.state_of(1) == (ACQUIRED, 1, "m")
    assert sp.next_deadline() == 1600
    # the timed-out member's late acknowledgement is refused
    assert sp.acknowledge("m", 0, 0, [ACCEPT], LOCK + 1) == INVALID_RECORD_STATE


def test_delivery_count_limit_archives_poison_record() -> None:
    sp = SharePartition(0, lock_duration_ms=LOCK, delivery_count_limit=3)
    sp.acquire("m", 0, 10, batches((0, 1)))
    assert sp.acknowledge("m", 1, 1, [ACCEPT], 0) == NONE
    now = 0
    for delivery in (2, 3):
        now += LOCK
        sp.expire(now)
        assert sp.acquire("m", now, 10, ()) == [AcquiredRange(0, 0, delivery)]
    sp.acknowledge("m", 0, 0, [RELEASE], now)  # third delivery released: archived
    assert sp.start_offset == 2
    assert sp.acquire("m", now, 10, ()) == []


def test_max_in_flight_caps_the_window_but_never_stalls() -> None:
    sp = SharePartition(0, lock_duration_ms=LOCK, max_in_flight=4)
    # a batch larger than the cap is still taken when the window is empty
    assert sp.acquire("m", 0, 100, batches((0, 5))) == [AcquiredRange(0, 5, 1)]
    assert sp.acquire("m", 0, 100, batches((6, 6))) == []
    sp.acknowledge("m", 0, 5, [ACCEPT], 1)
    assert sp.acquire("m", 1, 100, batches((6, 7), (8, 9), (10, 12))) == [
        AcquiredRange(6, 9, 1)]


def test_control_batches_and_gaps_are_archived_not_delivered() -> None:
    sp = SharePartition(0, lock_duration_ms=LOCK)
    got = sp.acquire("m", 0, 100, [LogBatch(0, 1), LogBatch(2, 2, is_control=True),
                                   LogBatch(5, 6)])
    assert got == [AcquiredRange(0, 1, 1), AcquiredRange(5, 6, 1)]
    sp.acknowledge("m", 0, 1, [ACCEPT], 1)
    assert sp.start_offset == 5


def test_release_member_and_move_start_and_reset() -> None:
    sp = SharePartition(0, lock_duration_ms=LOCK)
    sp.acquire("a", 0, 2, batches((0, 1)))
    sp.acquire("b", 0, 2, batches((2, 3)))
    assert sp.release_member("a") == 2
    assert sp.acquired_by("a") == [] and sp.acquired_by("b") == [2, 3]
    sp.move_start(3)
    assert sp.start_offset == 3 and sp.end_offset == 4
    sp.reset(100)
    assert (sp.start_offset, sp.end_offset) == (100, 100)


def test_state_batches_round_trip_locks_become_available() -> None:
    sp = SharePartition(0, lock_duration_ms=LOCK)
    sp.acquire("m", 0, 10, batches((0, 5)))
    sp.acknowledge("m", 1, 2, [ACCEPT], 1)
    sp.acknowledge("m", 3, 3, [REJECT], 1)
    saved = sp.state_batches()
    again = SharePartition(0, lock_duration_ms=LOCK)
    again.load(sp.start_offset, saved)
    assert again.end_offset == 6
    assert [again.state_of(o)[:2] for o in range(6)] == [
        (AVAILABLE, 1), (ACKNOWLEDGED, 1), (ACKNOWLEDGED, 1), (ARCHIVED, 1), (AVAILABLE, 1),
        (AVAILABLE, 1)]
    # only the unacknowledged records come back, with their delivery counts
    assert again.acquire("n", 5, 10, ()) == [AcquiredRange(0, 0, 2), AcquiredRange(4, 5, 2)]


def _run(seed: int, steps: int) -> None:
    """Random members acquire, acknowledge and time out; check the rules every step."""
    rng = random.Random(seed)
    sp = SharePartition(0, lock_duration_ms=50, delivery_count_limit=4, max_in_flight=30)
    members = ["a", "b", "c"]
    log_end = 0
    now = 0
    done: set[int] = set()  # offsets acknowledged or archived
    held: dict[int, str] = {}  # offset -> member holding it (per our bookkeeping)
    for _ in range(steps):
        now += rng.randint(0, 20)
        # bookkeeping for expiries the partition applies lazily
        for offset, m in list(held.items()):
            if sp.state_of(offset)[2] != m:
                del held[offset]
        op = rng.random()
        if op < 0.15:
            size = rng.randint(1, 4)
            log_end += size
        member = rng.choice(members)
        if op < 0.5:
            start = sp.end_offset
            spans = []
            while start < log_end:
                last = min(log_end - 1, start + rng.randint(0, 3))
                spans.append(LogBatch(start, last))
                start = last + 1
            sp.expire(now)
            before = {o: sp.state_of(o) for o in range(sp.start_offset, sp.end_offset)}
            for rng_ in sp.acquire(member, now, rng.randint(1, 6), spans):
                for offset in range(rng_.first_offset, rng_.last_offset + 1):
                    assert offset not in done, f"seed {seed}: {offset} redelivered"
                    # only an AVAILABLE or never-fetched record may be acquired
                    assert before.get(offset, (AVAILABLE, 0, None))[0] == AVAILABLE, \
                        f"seed {seed}: {offset} acquired while {before[offset]}"
                    held[offset] = member
        elif op < 0.9:
            mine = [o for o, m in held.items() if m == member]
            if mine:
                o = rng.choice(mine)
                kind = rng.choice([ACCEPT, ACCEPT, RELEASE, REJECT])
                state_before = sp.state_of(o)
                code = sp.acknowledge(member, o, o, [kind], now)
                if state_before[0] == ACQUIRED and state_before[2] == member:
                    assert code == NONE
                    del held[o]
                    state = sp.state_of(o)[0]
                    if state in (ACKNOWLEDGED, ARCHIVED) or o < sp.start_offset:
                        done.add(o)
        else:
            sp.expire(now)
        # a record is ACQUIRED by at most one member and done records stay done
        for o in range(sp.start_offset, sp.end_offset):
            state, count, holder = sp.state_of(o)
            assert (state == ACQUIRED) == (holder is not None)
            assert count <= 4
            if o in done:
                assert state in (ACKNOWLEDGED, ARCHIVED), f"seed {seed}: {o} is {state}"
        for o in done:
            assert o < sp.start_offset or sp.state_of(o)[0] in (ACKNOWLEDGED, ARCHIVED)
        assert sp.start_offset <= sp.end_offset


def test_seeded_random_runs_keep_the_safety_rules() -> None:
    for seed in range(25):
        _run(seed, 300)


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=2**32), st.integers(min_value=10, max_value=200))
def test_property_no_double_acquire_no_redelivery(seed: int, steps: int) -> None:
    _run(seed, steps)


def test_record_limit_mode_acquires_part_of_a_batch() -> None:
    sp = SharePartition(0, lock_duration_ms=LOCK)
    assert sp.acquire("m", 0, 3, batches((0, 4)), strict=True) == [AcquiredRange(0, 2, 1)]
    assert sp.end_offset == 3
    # the rest of the batch is acquired by the next call
    assert sp.acquire("n", 0, 10, batches((0, 4)), strict=True) == [AcquiredRange(3, 4, 1)]
