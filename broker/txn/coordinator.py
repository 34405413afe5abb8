"""The transaction coordinator as a pure state machine (Kafka's TransactionCoordinator,
transaction version 1: KIP-98 with KIP-360 epoch bumps and KIP-588 PRODUCER_FENCED).

Rules of this module (sans-I/O, as the group coordinator):

- No asyncio, sockets, clock or randomness: every event carries ``now_ms``; a new
  producer id is passed in by the shell (``needs_producer_id`` says when one is needed;
  ids come from the cluster-wide allocation, which is asynchronous).
- Records go to ``__transaction_state`` through the ``TxnStore`` port, synchronously and
  before the in-memory state changes (a failed write changes nothing), as Kafka answers
  only after its log append.
- Transaction markers are asynchronous: a decided transaction (EndTxn, a timeout, the
  fencing InitProducerId of a new incarnation, a Prepare state found at load) becomes a
  ``MarkerJob`` that the shell collects with ``drain_jobs()`` after any event, writes to
  every partition, and reports with ``complete_transaction``. Until then the id stays in
  PrepareCommit/PrepareAbort and its requests answer CONCURRENT_TRANSACTIONS (retriable).
- Error codes are Kafka's; handlers map PRODUCER_FENCED to INVALID_PRODUCER_EPOCH for the
  request versions that predate it.

Which coordinator owns an id: ``partition_for(transactional_id)`` of ``__transaction_state``
(Kafka's ``abs(hashCode) % transaction.state.log.num.partitions``); an id whose partition
this node does not lead (``TxnStore.owns``) answers NOT_COORDINATOR.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from kio.schema.errors import ErrorCode

from broker.group.partitioner import partition_for
from broker.txn.log_format import decode_key, decode_value, encode_key, encode_value
from broker.txn.metadata import (
    NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID,
    InitResult,
    MarkerJob,
    TopicPartition,
    TxnDescription,
    TxnMetadata,
    epoch_exhausted,
)
from broker.txn.state import TransactionState, can_transition

E = ErrorCode
S = TransactionState


class TxnStore(Protocol):
    """Where the coordinator's records go (``broker.txn.persistence``)."""

    def append(self, partition: int, key: bytes, value: bytes | None) -> ErrorCode:
        """Append one record to ``__transaction_state`` partition ``partition``."""
        ...

    def owns(self, partition: int) -> bool:
        """This node leads the partition (and so coordinates its ids)."""
        ...

    def coordinator_epoch(self, partition: int) -> int:
        """The partition's leader epoch: the coordinator epoch stamped in markers."""
        ...


@dataclass(frozen=True, slots=True)
class TxnConfig:
    num_partitions: int = 50
    max_timeout_ms: int = 900_000
    expiration_ms: int = 604_800_000


class TransactionCoordinator:
    def __init__(self, config: TxnConfig, store: TxnStore) -> None:
        self.config = config
        self.store = store
        self.txns: dict[str, TxnMetadata] = {}
        #: partitions being loaded: their ids answer COORDINATOR_LOAD_IN_PROGRESS
        self.loading: set[int] = set()
        self._jobs: list[MarkerJob] = []
        #: ids whose markers the shell is writing (no second job for them)
        self.in_flight: set[str] = set()

    # ---- plumbing -----------------------------------------------------------------------
    def partition_for(self, transactional_id: str) -> int:
        return _partition_of(transactional_id, self.config.num_partitions)

    def drain_jobs(self) -> list[MarkerJob]:
        jobs, self._jobs = self._jobs, []
        return jobs

    def _route(self, transactional_id: str) -> ErrorCode | None:
        partition = self.partition_for(transactional_id)
        if partition in self.loading:
            return E.coordinator_load_in_progress
        if not self.store.owns(partition):
            return E.not_coordinator
        return None

    def _persist(self, meta: TxnMetadata, target: TxnMetadata) -> ErrorCode:
        """Write ``target`` (a changed copy of ``meta``) and adopt it in memory."""
        if not can_transition(meta.state, target.state):
            return E.invalid_txn_state
        partition = self.partition_for(meta.transactional_id)
        error = self.store.append(partition, encode_key(meta.transactional_id),
                                  encode_value(target.to_log()))
        if error != E.none:
            return _store_error(error)
        self.txns[meta.transactional_id] = target
        return E.none

    @staticmethod
    def _copy(meta: TxnMetadata, **changes: object) -> TxnMetadata:
        values = {f: getattr(meta, f) for f in TxnMetadata.__slots__}
        values["partitions"] = set(meta.partitions)
        values.update(changes)
        return TxnMetadata(**values)  # type: ignore[arg-type]

    # ---- InitProducerId -----------------------------------------------------------------
    def needs_producer_id(self, transactional_id: str) -> bool:
        """Whether ``init_producer_id`` will want a fresh producer id for this id."""
        meta = self.txns.get(transactional_id)
        return meta is None or epoch_exhausted(meta.producer_epoch)

    def init_producer_id(self, now_ms: int, transactional_id: str, timeout_ms: int, *,
                         fresh_producer_id: int | None,
                         expected_producer_id: int = NO_PRODUCER_ID,
                         expected_epoch: int = NO_PRODUCER_EPOCH) -> InitResult:
        """InitProducerId with a transactional id (Kafka's handleInitProducerId)."""
        if not transactional_id:
            return InitResult(E.invalid_request)
        if timeout_ms <= 0 or timeout_ms > self.config.max_timeout_ms:
            return InitResult(E.invalid_transaction_timeout)
        routed = self._route(transactional_id)
        if routed is not None:
            return InitResult(routed)
        meta = self.txns.get(transactional_id)
        if meta is None:
            if fresh_producer_id is None:
                return InitResult(E.coordinator_load_in_progress)
            meta = TxnMetadata(transactional_id, fresh_producer_id, NO_PRODUCER_EPOCH,
                               timeout_ms, S.EMPTY, set(), -1, now_ms)
            self.txns[transactional_id] = meta  # only in memory until the write below
            result = self._init_existing(now_ms, meta, timeout_ms, fresh_producer_id,
                                         expected_producer_id, expected_epoch)
            if result.error != E.none and self.txns.get(transactional_id) is meta:
                del self.txns[transactional_id]
            return result
        return self._init_existing(now_ms, meta, timeout_ms, fresh_producer_id,
                                   expected_producer_id, expected_epoch)

    def _init_existing(self, now_ms: int, meta: TxnMetadata, timeout_ms: int,
                       fresh: int | None, expected_pid: int, expected_epoch: int
                       ) -> InitResult:
        if meta.transactional_id in self.in_flight or meta.state.is_prepare \
                or meta.state is S.PREPARE_EPOCH_FENCE:
            return InitResult(E.concurrent_transactions)
        if expected_pid != NO_PRODUCER_ID and not (
                meta.producer_epoch == NO_PRODUCER_EPOCH
                or expected_pid == meta.producer_id
                or (expected_pid == meta.last_producer_id and epoch_exhausted(expected_epoch))):
            return InitResult(E.producer_fenced)
        if meta.state is S.ONGOING:
            # a new incarnation: fence the old one and abort its transaction; the client
            # retries on CONCURRENT_TRANSACTIONS until the abort is complete
            error = self._fence_and_abort(now_ms, meta)
            return InitResult(error if error != E.none else E.concurrent_transactions)
        if meta.state is S.DEAD:
            return InitResult(E.concurrent_transactions)
        # Empty, CompleteCommit, CompleteAbort: bump the epoch (or a new id when exhausted).
        # With an expected epoch (KIP-360): the current one bumps, the one before the last
        # bump is a retry whose answer the producer never got, anything else is fenced.
        if expected_epoch != NO_PRODUCER_EPOCH and meta.producer_epoch != NO_PRODUCER_EPOCH \
                and expected_epoch != meta.producer_epoch:
            if expected_epoch == meta.last_producer_epoch:
                return InitResult(E.none, meta.producer_id, meta.producer_epoch)
            return InitResult(E.producer_fenced)
        if epoch_exhausted(meta.producer_epoch):
            if fresh is None:
                return InitResult(E.coordinator_load_in_progress)
            target = self._copy(meta, producer_id=fresh, producer_epoch=0,
                                last_producer_id=meta.producer_id,
                                last_producer_epoch=meta.producer_epoch)
        else:
            target = self._copy(meta, producer_epoch=meta.producer_epoch + 1,
                                last_producer_id=meta.producer_id,
                                last_producer_epoch=meta.producer_epoch)
        target.state = S.EMPTY
        target.timeout_ms = timeout_ms
        target.partitions = set()
        target.start_ms = -1
        target.last_update_ms = now_ms
        error = self._persist(meta, target)
        if error != E.none:
            return InitResult(error)
        return InitResult(E.none, target.producer_id, target.producer_epoch)

    def _fence_and_abort(self, now_ms: int, meta: TxnMetadata) -> ErrorCode:
        """Bump the epoch (PrepareEpochFence, in memory only, as Kafka) and abort the
        ongoing transaction with it, so the old incarnation's writes are refused."""
        epoch = meta.producer_epoch if epoch_exhausted(meta.producer_epoch) \
            else meta.producer_epoch + 1
        fenced = self._copy(meta, producer_epoch=epoch, state=S.PREPARE_EPOCH_FENCE,
                            last_producer_epoch=NO_PRODUCER_EPOCH)
        target = self._copy(fenced, state=S.PREPARE_ABORT, last_update_ms=now_ms)
        error = self._persist(fenced, target)
        if error == E.none:
            self._schedule(target, commit=False)
        return error

    # ---- AddPartitionsToTxn / AddOffsetsToTxn ---------------------------------------------
    def add_partitions(self, now_ms: int, transactional_id: str, producer_id: int,
                       producer_epoch: int, partitions: Iterable[TopicPartition]
                       ) -> ErrorCode:
        """Add partitions (AddOffsetsToTxn adds the group's ``__consumer_offsets``
        partition) to the ongoing transaction, starting it if none is."""
        wanted = set(partitions)
        error, meta = self._check_producer(transactional_id, producer_id, producer_epoch)
        if meta is None:
            return error
        if meta.transactional_id in self.in_flight or meta.state.is_prepare \
                or meta.state is S.PREPARE_EPOCH_FENCE:
            return E.concurrent_transactions
        if meta.state is S.DEAD:
            return E.invalid_txn_state
        if meta.state is S.ONGOING and wanted <= meta.partitions:
            return E.none
        target = self._copy(meta, state=S.ONGOING, last_update_ms=now_ms)
        if meta.state is not S.ONGOING:
            target.partitions = set()
            target.start_ms = now_ms
        target.partitions |= wanted
        return self._persist(meta, target)

    def _check_producer(self, transactional_id: str, producer_id: int, producer_epoch: int
                        ) -> tuple[ErrorCode, TxnMetadata | None]:
        if not transactional_id:
            return E.invalid_request, None
        routed = self._route(transactional_id)
        if routed is not None:
            return routed, None
        meta = self.txns.get(transactional_id)
        if meta is None or meta.producer_id != producer_id:
            return E.invalid_producer_id_mapping, None
        if meta.producer_epoch != producer_epoch:
            return E.producer_fenced, None
        return E.none, meta

    def verify(self, transactional_id: str, producer_id: int, producer_epoch: int,
               partitions: Iterable[TopicPartition]) -> dict[TopicPartition, ErrorCode]:
        """Whether a transactional write to each partition is part of the ongoing
        transaction (KIP-890 part 1's check, used for Produce and TxnOffsetCommit):
        NONE, or INVALID_TXN_STATE / the producer's error."""
        wanted = list(partitions)
        error, meta = self._check_producer(transactional_id, producer_id, producer_epoch)
        if meta is None:
            return dict.fromkeys(wanted, error)
        ongoing = meta.state is S.ONGOING
        return {tp: E.none if ongoing and tp in meta.partitions else E.invalid_txn_state
                for tp in wanted}

    # ---- EndTxn -------------------------------------------------------------------------
    def end_txn(self, now_ms: int, transactional_id: str, producer_id: int,
                producer_epoch: int, commit: bool) -> ErrorCode:
        """EndTxn: Ongoing becomes PrepareCommit/PrepareAbort (markers follow); a retry
        of a decided transaction answers NONE or CONCURRENT_TRANSACTIONS."""
        error, meta = self._check_producer(transactional_id, producer_id, producer_epoch)
        if meta is None:
            return error
        state = meta.state
        if state is S.ONGOING:
            if meta.transactional_id in self.in_flight:
                return E.concurrent_transactions
            target = self._copy(meta, state=S.PREPARE_COMMIT if commit else S.PREPARE_ABORT,
                                last_update_ms=now_ms)
            error = self._persist(meta, target)
            if error == E.none:
                self._schedule(target, commit=commit)
            return error
        if state is S.COMPLETE_COMMIT:
            return E.none if commit else E.invalid_txn_state
        if state is S.COMPLETE_ABORT:
            return E.none if not commit else E.invalid_txn_state
        if state is S.PREPARE_COMMIT:
            return E.concurrent_transactions if commit else E.invalid_txn_state
        if state is S.PREPARE_ABORT:
            return E.concurrent_transactions if not commit else E.invalid_txn_state
        return E.invalid_txn_state  # Empty, Dead, PrepareEpochFence

    def _schedule(self, meta: TxnMetadata, *, commit: bool) -> None:
        if meta.transactional_id in self.in_flight:
            return
        self.in_flight.add(meta.transactional_id)
        partition = self.partition_for(meta.transactional_id)
        self._jobs.append(MarkerJob(meta.transactional_id, meta.producer_id,
                                    meta.producer_epoch, commit,
                                    self.store.coordinator_epoch(partition),
                                    frozenset(meta.partitions)))

    def complete_transaction(self, now_ms: int, job: MarkerJob) -> ErrorCode:
        """Every marker of ``job`` is written: the id moves to CompleteCommit/
        CompleteAbort. NONE also when the id moved on meanwhile (nothing to do); an
        error means the Complete record was not written (the shell retries)."""
        meta = self.txns.get(job.transactional_id)
        expected = S.PREPARE_COMMIT if job.commit else S.PREPARE_ABORT
        if meta is None or meta.state is not expected or meta.producer_id != job.producer_id \
                or meta.producer_epoch != job.producer_epoch:
            self.in_flight.discard(job.transactional_id)
            return E.none
        routed = self._route(job.transactional_id)
        if routed is not None:
            return routed  # still in flight: the shell retries or abandons the job
        target = self._copy(meta, state=S.COMPLETE_COMMIT if job.commit else S.COMPLETE_ABORT,
                            partitions=set(), last_update_ms=now_ms)
        error = self._persist(meta, target)
        if error == E.none:
            self.in_flight.discard(job.transactional_id)
        return error

    def abandon_job(self, job: MarkerJob) -> None:
        """The shell gave up on ``job`` (this node stopped coordinating the id)."""
        self.in_flight.discard(job.transactional_id)

    # ---- timers -------------------------------------------------------------------------
    def abort_timed_out(self, now_ms: int) -> list[str]:
        """Abort (with an epoch bump, as Kafka) every Ongoing transaction older than its
        timeout; returns their ids."""
        aborted = []
        for meta in list(self.txns.values()):
            if meta.state is S.ONGOING and meta.transactional_id not in self.in_flight \
                    and meta.start_ms >= 0 and now_ms > meta.start_ms + meta.timeout_ms \
                    and self._route(meta.transactional_id) is None \
                    and self._fence_and_abort(now_ms, meta) == E.none:
                aborted.append(meta.transactional_id)
        # decided transactions whose marker job gave up (this node lost and regained the
        # partition, a write failed): write their markers again, as Kafka retries
        for meta in self.txns.values():
            if meta.state.is_prepare and meta.transactional_id not in self.in_flight \
                    and self._route(meta.transactional_id) is None:
                self._schedule(meta, commit=meta.state is S.PREPARE_COMMIT)
        return aborted

    def expire_transactional_ids(self, now_ms: int) -> list[str]:
        """Forget ids idle (Empty, CompleteCommit, CompleteAbort) for longer than
        ``transactional.id.expiration.ms``: a tombstone goes to the log."""
        expired = []
        for meta in list(self.txns.values()):
            if meta.state in (S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT) \
                    and meta.transactional_id not in self.in_flight \
                    and now_ms - meta.last_update_ms > self.config.expiration_ms \
                    and self._route(meta.transactional_id) is None:
                partition = self.partition_for(meta.transactional_id)
                if self.store.append(partition, encode_key(meta.transactional_id),
                                     None) == E.none:
                    del self.txns[meta.transactional_id]
                    expired.append(meta.transactional_id)
        return expired

    # ---- admin --------------------------------------------------------------------------
    def describe(self, transactional_id: str) -> tuple[ErrorCode, TxnDescription | None]:
        routed = self._route(transactional_id)
        if routed is not None:
            return routed, None
        meta = self.txns.get(transactional_id)
        if meta is None:
            return E.transactional_id_not_found, None
        return E.none, _describe(meta)

    def list_transactions(self, states: Iterable[str] = (), producer_ids: Iterable[int] = (),
                          duration_ms: int = -1, now_ms: int = 0) -> list[TxnDescription]:
        """ListTransactions filters (empty = any): state names, producer ids, and
        (v1, KIP-994) transactions started more than ``duration_ms`` ago."""
        wanted_states = set(states)
        wanted_pids = set(producer_ids)
        out = []
        for meta in self.txns.values():
            if self._route(meta.transactional_id) is not None:
                continue
            if wanted_states and meta.state.kafka_name not in wanted_states:
                continue
            if wanted_pids and meta.producer_id not in wanted_pids:
                continue
            if duration_ms >= 0 and now_ms - meta.start_ms <= duration_ms:
                continue  # Kafka's test, whatever the state (start -1 when never begun)
            out.append(_describe(meta))
        return sorted(out, key=lambda d: d.transactional_id)

    # ---- loading ------------------------------------------------------------------------
    def begin_load(self, partition: int) -> None:
        self.loading.add(partition)
        for tid in [t for t in self.txns if self.partition_for(t) == partition]:
            del self.txns[tid]

    def load_record(self, key: bytes | None, value: bytes | None) -> None:
        """Apply one ``__transaction_state`` record in log order (the last value per key
        wins; a null value removes the id). Raises LogFormatError."""
        if key is None:
            return
        tid = decode_key(key)
        if tid is None:
            return
        if value is None:
            self.txns.pop(tid, None)
            return
        self.txns[tid] = TxnMetadata.from_log(tid, decode_value(value))

    def complete_load(self, partition: int) -> None:
        """The partition is replayed: transactions found decided but not complete get
        their markers (again: writing a marker twice is harmless)."""
        self.loading.discard(partition)
        for meta in self.txns.values():
            if self.partition_for(meta.transactional_id) != partition:
                continue
            if meta.state is S.PREPARE_COMMIT:
                self._schedule(meta, commit=True)
            elif meta.state is S.PREPARE_ABORT:
                self._schedule(meta, commit=False)

    def unload_partition(self, partition: int) -> None:
        """This node no longer leads ``partition``: forget its ids."""
        self.loading.discard(partition)
        for tid in [t for t in self.txns if self.partition_for(t) == partition]:
            del self.txns[tid]
            self.in_flight.discard(tid)


@functools.lru_cache(maxsize=4096)
def _partition_of(transactional_id: str, num_partitions: int) -> int:
    """``partition_for``, remembered: every request of a transaction asks it several
    times, and Java's string hash is a Python loop over the id."""
    return partition_for(transactional_id, num_partitions)


def _describe(meta: TxnMetadata) -> TxnDescription:
    return TxnDescription(meta.transactional_id, meta.state, meta.producer_id,
                          meta.producer_epoch, meta.timeout_ms, meta.start_ms,
                          tuple(sorted(meta.partitions)))


def _store_error(error: ErrorCode) -> ErrorCode:
    """Kafka's mapping of a failed ``__transaction_state`` append for clients."""
    if error in (E.unknown_topic_or_partition, E.not_enough_replicas,
                 E.not_enough_replicas_after_append, E.request_timed_out):
        return E.coordinator_not_available
    if error in (E.not_leader_or_follower, E.kafka_storage_error):
        return E.not_coordinator
    if error in (E.message_too_large, E.record_list_too_large):
        return E.unknown_server_error
    return error
