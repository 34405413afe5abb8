"""``__transaction_state`` on storage: the coordinator's ``TxnStore`` and the replay.

The topic is compacted (``cleanup.policy=compact``, ``segment.bytes`` =
``transaction.state.log.segment.bytes``, ``compression.type=uncompressed``),
``transaction.state.log.num.partitions`` partitions (50) and
``transaction.state.log.replication.factor`` replicas (3) capped by the brokers present,
``min.insync.replicas`` = ``transaction.state.log.min.isr`` capped by that factor. It is
created through the controller on the first FindCoordinator for a transactional id
(``topic_request``), as Kafka creates it.

``append`` builds one uncompressed RecordBatch v2 holding one key/value record and
appends it as leader through the ReplicaManager; the bytes reach the OS before it
returns (a kill -9 loses nothing answered), and the shell waits for the in-sync replicas
(``wait_replicated``) before it answers the client, as Kafka appends with acks=all.
Replay feeds every record of a partition, in offset order, to
``TransactionCoordinator.load_record``. The topic mechanics are shared with the other
coordinators (``broker.internal_topic``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kio.schema.errors import ErrorCode

from broker.internal_topic import InternalTopic
from broker.topics import NewTopicRequest
from broker.txn.coordinator import TransactionCoordinator
from broker.txn.log_format import LogFormatError
from common.logging import get_logger

log = get_logger("strom.txn")

TOPIC = "__transaction_state"


def _topic(broker: Any, config: Any) -> InternalTopic:
    return InternalTopic(
        broker, TOPIC, partitions=config.transaction_state_log_num_partitions,
        segment_bytes=config.transaction_state_log_segment_bytes,
        replication_factor=config.transaction_state_log_replication_factor, log=log,
        event="txn_state", compression="uncompressed",
        min_isr=config.transaction_state_log_min_isr)


def topic_request(config: Any, brokers_present: int) -> NewTopicRequest:
    """The CreateTopics entry for ``__transaction_state`` (Kafka's defaults, the
    replication factor capped by the brokers present)."""
    return _topic(None, config).request(brokers_present)


class TxnStateStore:
    """``TxnStore`` port on the broker's topic registry, logs and replica manager."""

    def __init__(self, broker: Any, clock: Callable[[], int]) -> None:
        self.broker = broker
        self.clock = clock
        #: the topic's creation goes through ``topic_request``; this only writes and reads
        self.topic = InternalTopic(broker, TOPIC, partitions=0, segment_bytes=0,
                                   replication_factor=1, log=log, event="txn_state")
        #: partition -> log end offset after a write not yet awaited
        self.unreplicated = self.topic.unreplicated

    def partition_count(self) -> int:
        return self.topic.partition_count()

    def owns(self, partition: int) -> bool:
        return self.broker.replica_manager.log(TOPIC, partition) is not None

    def coordinator_epoch(self, partition: int) -> int:
        return max(self.broker.replica_manager.leader_epoch(TOPIC, partition), 0)

    def append(self, partition: int, key: bytes, value: bytes | None) -> ErrorCode:
        return self.topic.append(partition, [(key, value)], now=self.clock())

    async def wait_replicated(self, timeout_s: float) -> int:
        """Wait (bounded) until every write made so far is below its partition's high
        watermark: NONE, or the first error (REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS...)."""
        return await self.topic.wait_replicated(timeout_s)

    def replay_partition(self, coordinator: TransactionCoordinator, partition: int) -> int:
        """Feed one partition's records, in offset order, to ``load_record``; returns the
        count. An undecodable record is logged and skipped."""
        count = 0
        for batch in self.topic.replay_batches(partition):
            for rec in batch.records:
                try:
                    coordinator.load_record(rec.key, rec.value)
                    count += 1
                except LogFormatError as exc:
                    log.warning("txn_state_record_skipped", partition=partition,
                                offset=rec.offset, error=str(exc))
        return count
