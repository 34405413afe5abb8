"""The pure transaction coordinator against an in-memory ``__transaction_state``: Kafka's
transitions and error codes, markers as jobs, replay after a crash."""

from __future__ import annotations

import pytest
from kio.schema.errors import ErrorCode as E

from broker.txn.coordinator import TransactionCoordinator, TxnConfig
from broker.txn.state import VALID_PREVIOUS, TransactionState, can_transition

S = TransactionState
T1 = ("out", 0)
T2 = ("out", 1)


class MemoryStore:
    def __init__(self) -> None:
        self.records: list[tuple[int, bytes, bytes | None]] = []
        self.fail: E | None = None
        self.led = True

    def append(self, partition: int, key: bytes, value: bytes | None) -> E:
        if self.fail is not None:
            return self.fail
        self.records.append((partition, key, value))
        return E.none

    def owns(self, partition: int) -> bool:
        return self.led

    def coordinator_epoch(self, partition: int) -> int:
        return 3


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def coord(store: MemoryStore) -> TransactionCoordinator:
    return TransactionCoordinator(TxnConfig(max_timeout_ms=60_000, expiration_ms=1_000_000),
                                  store)


def init(coord: TransactionCoordinator, tid: str = "tx", now: int = 0, **kw: int):
    return coord.init_producer_id(now, tid, 10_000, fresh_producer_id=kw.pop("fresh", 100),
                                  **kw)


def replay(store: MemoryStore) -> TransactionCoordinator:
    fresh = TransactionCoordinator(TxnConfig(max_timeout_ms=60_000), store)
    fresh.begin_load(0)
    for _p, key, value in store.records:
        fresh.load_record(key, value)
    for p in range(50):
        fresh.complete_load(p)
    return fresh


def test_transitions_are_kafkas() -> None:
    assert can_transition(S.ONGOING, S.PREPARE_COMMIT)
    assert not can_transition(S.EMPTY, S.PREPARE_COMMIT)
    assert not can_transition(S.PREPARE_COMMIT, S.COMPLETE_ABORT)
    assert VALID_PREVIOUS[S.PREPARE_ABORT] == {S.ONGOING, S.PREPARE_EPOCH_FENCE}


def test_new_id_gets_epoch_0_then_bumps(coord: TransactionCoordinator,
                                        store: MemoryStore) -> None:
    assert coord.needs_producer_id("tx")
    r = init(coord)
    assert (r.error, r.producer_id, r.producer_epoch) == (E.none, 100, 0)
    assert not coord.needs_producer_id("tx")
    r2 = init(coord, fresh=None)
    assert (r2.producer_id, r2.producer_epoch) == (100, 1)
    assert len(store.records) == 2


def test_commit_flow_emits_markers_then_completes(coord: TransactionCoordinator) -> None:
    r = init(coord)
    assert coord.add_partitions(5, "tx", r.producer_id, r.producer_epoch, [T1, T2]) == E.none
    assert coord.txns["tx"].state is S.ONGOING and coord.txns["tx"].start_ms == 5
    assert coord.verify("tx", r.producer_id, r.producer_epoch, [T1, ("x", 0)]) == {
        T1: E.none, ("x", 0): E.invalid_txn_state}
    assert coord.end_txn(6, "tx", r.producer_id, r.producer_epoch, True) == E.none
    [job] = coord.drain_jobs()
    assert job.commit and job.partitions == {T1, T2} and job.coordinator_epoch == 3
    # decided, not complete: the client's next steps wait
    assert coord.add_partitions(7, "tx", r.producer_id, r.producer_epoch, [T1]) \
        == E.concurrent_transactions
    assert coord.end_txn(7, "tx", r.producer_id, r.producer_epoch, True) \
        == E.concurrent_transactions
    assert coord.end_txn(7, "tx", r.producer_id, r.producer_epoch, False) == E.invalid_txn_state
    assert coord.complete_transaction(8, job) == E.none
    meta = coord.txns["tx"]
    assert meta.state is S.COMPLETE_COMMIT and not meta.partitions
    assert coord.end_txn(9, "tx", r.producer_id, r.producer_epoch, True) == E.none  # retry
    assert coord.end_txn(9, "tx", r.producer_id, r.producer_epoch, False) == E.invalid_txn_state


def test_bad_input_gets_kafkas_codes(coord: TransactionCoordinator) -> None:
    assert coord.end_txn(0, "nobody", 1, 0, True) == E.invalid_producer_id_mapping
    r = init(coord)
    assert coord.end_txn(0, "tx", r.producer_id + 1, 0, True) == E.invalid_producer_id_mapping
    assert coord.end_txn(0, "tx", r.producer_id, r.producer_epoch + 5, True) \
        == E.producer_fenced
    assert coord.end_txn(0, "tx", r.producer_id, r.producer_epoch, True) == E.invalid_txn_state
    assert coord.init_producer_id(0, "tx", 60_001, fresh_producer_id=None).error \
        == E.invalid_transaction_timeout
    assert coord.init_producer_id(0, "tx", 0, fresh_producer_id=None).error \
        == E.invalid_transaction_timeout
    assert coord.init_producer_id(0, "", 1000, fresh_producer_id=1).error == E.invalid_request


def test_new_incarnation_fences_and_aborts_the_ongoing_one(
        coord: TransactionCoordinator) -> None:
    old = init(coord)
    coord.add_partitions(1, "tx", old.producer_id, old.producer_epoch, [T1])
    assert init(coord, now=2).error == E.concurrent_transactions  # fence + abort
    [job] = coord.drain_jobs()
    assert not job.commit and job.producer_epoch == old.producer_epoch + 1
    assert coord.txns["tx"].state is S.PREPARE_ABORT
    # the zombie is fenced from here on
    assert coord.add_partitions(3, "tx", old.producer_id, old.producer_epoch, [T1]) \
        == E.producer_fenced
    assert init(coord, now=3).error == E.concurrent_transactions  # abort not complete yet
    coord.complete_transaction(4, job)
    new = init(coord, now=5)
    assert new.error == E.none and new.producer_epoch == old.producer_epoch + 2
    assert coord.end_txn(6, "tx", old.producer_id, old.producer_epoch, True) \
        == E.producer_fenced


def test_kip360_expected_epoch(coord: TransactionCoordinator) -> None:
    r = init(coord)
    bumped = init(coord, expected_producer_id=r.producer_id, expected_epoch=r.producer_epoch)
    assert bumped.producer_epoch == r.producer_epoch + 1
    retry = init(coord, expected_producer_id=r.producer_id, expected_epoch=r.producer_epoch)
    assert (retry.error, retry.producer_epoch) == (E.none, bumped.producer_epoch)
    assert init(coord, expected_producer_id=r.producer_id, expected_epoch=40).error \
        == E.producer_fenced
    assert init(coord, expected_producer_id=999, expected_epoch=0).error == E.producer_fenced


def test_exhausted_epoch_takes_a_new_producer_id(coord: TransactionCoordinator) -> None:
    init(coord)
    coord.txns["tx"].producer_epoch = 32766
    assert coord.needs_producer_id("tx")
    r = init(coord, fresh=555)
    assert (r.producer_id, r.producer_epoch) == (555, 0)


def test_timeout_aborts_with_an_epoch_bump(coord: TransactionCoordinator) -> None:
    r = init(coord)
    coord.add_partitions(1_000, "tx", r.producer_id, r.producer_epoch, [T1])
    assert coord.abort_timed_out(1_000 + 10_000) == []
    assert coord.abort_timed_out(1_000 + 10_001) == ["tx"]
    [job] = coord.drain_jobs()
    assert not job.commit and job.producer_epoch == r.producer_epoch + 1
    assert coord.end_txn(0, "tx", r.producer_id, r.producer_epoch, True) == E.producer_fenced


def test_failed_write_changes_nothing(coord: TransactionCoordinator, store: MemoryStore) -> None:
    r = init(coord)
    store.fail = E.not_enough_replicas
    assert coord.add_partitions(1, "tx", r.producer_id, r.producer_epoch, [T1]) \
        == E.coordinator_not_available
    assert coord.txns["tx"].state is S.EMPTY
    store.fail = None
    store.led = False
    assert coord.add_partitions(1, "tx", r.producer_id, r.producer_epoch, [T1]) \
        == E.not_coordinator
    coord.loading.add(coord.partition_for("tx"))
    assert coord.end_txn(1, "tx", r.producer_id, r.producer_epoch, True) \
        == E.coordinator_load_in_progress


def test_replay_resumes_prepare_commit_and_keeps_ongoing(coord: TransactionCoordinator,
                                                         store: MemoryStore) -> None:
    a = init(coord, "a", fresh=1)
    coord.add_partitions(1, "a", a.producer_id, a.producer_epoch, [T1, T2])
    coord.end_txn(2, "a", a.producer_id, a.producer_epoch, True)
    b = init(coord, "b", fresh=2)
    coord.add_partitions(3, "b", b.producer_id, b.producer_epoch, [T1])
    coord.drain_jobs()  # the crash: "a"'s markers never written
    after = replay(store)
    assert after.txns["a"].state is S.PREPARE_COMMIT
    assert after.txns["b"].state is S.ONGOING and after.txns["b"].partitions == {T1}
    [job] = after.drain_jobs()
    assert job.transactional_id == "a" and job.commit and job.partitions == {T1, T2}
    assert after.complete_transaction(10, job) == E.none
    assert after.abort_timed_out(3 + 10_001) == ["b"]


def test_expiry_tombstones_idle_ids(coord: TransactionCoordinator, store: MemoryStore) -> None:
    init(coord, now=0)
    assert coord.expire_transactional_ids(1_000_000) == []
    assert coord.expire_transactional_ids(1_000_001) == ["tx"]
    assert store.records[-1][2] is None
    assert "tx" not in replay(store).txns


def test_list_and_describe(coord: TransactionCoordinator) -> None:
    r = init(coord, "a", fresh=1)
    coord.add_partitions(100, "a", r.producer_id, r.producer_epoch, [T1])
    init(coord, "b", fresh=2)
    code, d = coord.describe("a")
    assert code == E.none and d.state is S.ONGOING and d.partitions == (T1,)
    assert coord.describe("zz")[0] == E.transactional_id_not_found
    assert [d.transactional_id for d in coord.list_transactions()] == ["a", "b"]
    assert [d.transactional_id for d in coord.list_transactions(["Ongoing"])] == ["a"]
    assert [d.transactional_id for d in coord.list_transactions(producer_ids=[2])] == ["b"]
    # KIP-994: started more than the duration ago ("b" never began: start -1, as Kafka)
    assert [d.transactional_id
            for d in coord.list_transactions(duration_ms=50, now_ms=200)] == ["a", "b"]
    assert [d.transactional_id
            for d in coord.list_transactions(["Ongoing"], duration_ms=50, now_ms=200)] == ["a"]
    assert coord.list_transactions(duration_ms=500, now_ms=200) == []
