"""Transactional offset commits in the pure group coordinator (broker/group/txn_offsets.py):
pending until the marker, committed on COMMIT, dropped on ABORT, replayed from
transactional batches and markers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from kio.schema.errors import ErrorCode as E

from broker.group.config import GroupConfig
from broker.group.coordinator import GroupCoordinator, OffsetCommit

TP = ("in", 0)


@dataclass
class TxnMemoryStore:
    """Plain and transactional appends, in log order: (producer id or None, records)."""

    log: list[tuple[int | None, list[tuple[bytes, bytes | None]]]] = field(default_factory=list)
    fail_with: E | None = None

    def append(self, partition: int, records: Sequence[tuple[bytes, bytes | None]]) -> E:
        self.log.append((None, list(records)))
        return E.none

    def append_txn(self, partition: int, records: Sequence[tuple[bytes, bytes | None]],
                   producer_id: int, producer_epoch: int) -> E:
        if self.fail_with is not None:
            return self.fail_with
        self.log.append((producer_id, list(records)))
        return E.none

    def is_local(self, partition: int) -> bool:
        return True


def coordinator(store: TxnMemoryStore) -> GroupCoordinator:
    c = GroupCoordinator(GroupConfig(initial_rebalance_delay_ms=0), store,
                         new_member_id=lambda p: f"{p}-1")
    c.complete_load(0)
    return c


def commit(c: GroupCoordinator, offset: int, pid: int = 7, **kw: object) -> dict:
    return c.commit_txn_offsets(1, group_id="g", producer_id=pid, producer_epoch=0,
                                generation_id=kw.pop("generation_id", -1),  # type: ignore[arg-type]
                                member_id=kw.pop("member_id", ""),  # type: ignore[arg-type]
                                group_instance_id=None,
                                offsets=[OffsetCommit(*TP, offset, -1, "m", None)])


def fetched(c: GroupCoordinator) -> int | None:
    error, offsets = c.fetch_offsets("g", [TP])
    assert error == E.none
    got = offsets[TP]
    return got.offset if got is not None else None


def test_pending_until_commit_marker() -> None:
    store = TxnMemoryStore()
    c = coordinator(store)
    assert commit(c, 10) == {TP: E.none}
    assert fetched(c) is None and c.has_pending_txn_offset("g", TP)
    assert c.complete_txn_offsets(7, True, c.partition_for("g")) == 1
    assert fetched(c) == 10 and not c.has_pending_txn_offset("g", TP)


def test_abort_drops_and_other_partitions_wait() -> None:
    c = coordinator(TxnMemoryStore())
    commit(c, 10)
    assert c.complete_txn_offsets(7, True, (c.partition_for("g") + 1) % 50) == 0
    assert c.has_pending_txn_offset("g", TP)
    c.complete_txn_offsets(7, False)
    assert fetched(c) is None and not c.has_pending_txn_offset("g", TP)


def test_member_checks_and_store_errors() -> None:
    store = TxnMemoryStore()
    c = coordinator(store)
    assert commit(c, 1, member_id="ghost") == {TP: E.unknown_member_id}
    assert commit(c, 1, generation_id=3) == {TP: E.illegal_generation}
    store.fail_with = E.invalid_producer_epoch
    assert commit(c, 1) == {TP: E.invalid_producer_epoch}
    store.fail_with = E.not_leader_or_follower
    assert commit(c, 1) == {TP: E.not_coordinator}
    assert not c.has_pending_txn_offset("g", TP)


def test_replay_settles_by_marker() -> None:
    store = TxnMemoryStore()
    c = coordinator(store)
    commit(c, 10, pid=7)
    commit(c, 20, pid=8)
    fresh = coordinator(TxnMemoryStore())
    part = fresh.partition_for("g")
    for pid, records in store.log:
        for key, value in records:
            assert pid is not None
            fresh.load_txn_offset_record(pid, key, value, 0)
    assert fresh.has_pending_txn_offset("g", TP) and fetched(fresh) is None
    fresh.load_txn_marker(7, True, part)
    assert fetched(fresh) == 10
    fresh.load_txn_marker(8, False, part)
    assert fetched(fresh) == 10 and not fresh.has_pending_txn_offset("g", TP)
