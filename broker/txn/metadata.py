"""What the coordinator knows about one transactional id (Kafka's TransactionMetadata)
and the values that cross the pure coordinator's boundary. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field

from broker.txn.log_format import TxnLogValue, group_partitions
from broker.txn.state import TransactionState

TopicPartition = tuple[str, int]
NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
#: Kafka bumps to a new producer id once the epoch reaches Short.MAX_VALUE - 1
MAX_EPOCH = 32766


def epoch_exhausted(epoch: int) -> bool:
    return epoch >= MAX_EPOCH


@dataclass(slots=True)
class TxnMetadata:
    transactional_id: str
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: TransactionState = TransactionState.EMPTY
    partitions: set[TopicPartition] = field(default_factory=set)
    start_ms: int = -1
    last_update_ms: int = -1
    #: the id/epoch before the last bump (KIP-360 retries; not in the log, as in Kafka)
    last_producer_id: int = NO_PRODUCER_ID
    last_producer_epoch: int = NO_PRODUCER_EPOCH

    def to_log(self) -> TxnLogValue:
        keep = self.state in (TransactionState.ONGOING, TransactionState.PREPARE_COMMIT,
                              TransactionState.PREPARE_ABORT)
        return TxnLogValue(
            producer_id=self.producer_id, producer_epoch=self.producer_epoch,
            transaction_timeout_ms=self.timeout_ms, state=int(self.state),
            partitions=group_partitions(self.partitions) if keep else (),
            last_update_timestamp_ms=self.last_update_ms, start_timestamp_ms=self.start_ms)

    @classmethod
    def from_log(cls, transactional_id: str, v: TxnLogValue) -> TxnMetadata:
        return cls(transactional_id, v.producer_id, v.producer_epoch, v.transaction_timeout_ms,
                   TransactionState(v.state),
                   {(t, p) for t, ps in v.partitions for p in ps},
                   v.start_timestamp_ms, v.last_update_timestamp_ms,
                   last_producer_id=v.previous_producer_id)


@dataclass(frozen=True, slots=True)
class MarkerJob:
    """Markers to write for a decided transaction, then its Complete state. The shell
    writes a COMMIT/ABORT control batch (``producer_id``, ``producer_epoch``,
    ``coordinator_epoch``) to every partition, then calls ``complete_transaction``."""

    transactional_id: str
    producer_id: int
    producer_epoch: int
    commit: bool
    coordinator_epoch: int
    partitions: frozenset[TopicPartition]


@dataclass(frozen=True, slots=True)
class InitResult:
    error: int
    producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = NO_PRODUCER_EPOCH


@dataclass(frozen=True, slots=True)
class TxnDescription:
    """DescribeTransactions / ListTransactions view of one transactional id."""

    transactional_id: str
    state: TransactionState
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    start_ms: int
    partitions: tuple[TopicPartition, ...]
