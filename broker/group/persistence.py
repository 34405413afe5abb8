"""``__consumer_offsets`` on storage: the coordinator's ``OffsetsStore`` and the replay.

The topic is created lazily (first group request, as Kafka does on the first
FindCoordinator) through the topic registry, so it shows up in Metadata with
``is_internal=true`` and clients that list topics hide it. It is compacted
(``cleanup.policy=compact``, ``segment.bytes`` = ``offsets.topic.segment.bytes``).

Each ``append`` builds one uncompressed RecordBatch v2 (``protocol.records.build_batch``)
holding the coordinator's key/value records and appends it as leader through the
ReplicaManager (assigns offsets, advances the high watermark, wakes fetches). The data
reaches the OS before ``append`` returns, so a kill -9 of the broker loses nothing that
was answered; replay at startup reads every partition from its log start offset and
feeds each record, in offset order, to ``GroupCoordinator.load_record``. The topic
mechanics are shared with the other coordinators (``broker.internal_topic``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from kio.schema.errors import ErrorCode

from broker.group.config import GroupConfig
from broker.group.coordinator import GroupCoordinator
from broker.group.log_format import LogFormatError
from broker.internal_topic import InternalTopic
from common.logging import get_logger

log = get_logger("strom.group")

TOPIC = "__consumer_offsets"


class OffsetsTopicStore:
    """``OffsetsStore`` port on the broker's topic registry, logs and replica manager."""

    def __init__(self, broker: Any, config: GroupConfig, clock: Callable[[], int]) -> None:
        self.broker = broker
        self.config = config
        self.clock = clock
        self.topic = InternalTopic(
            broker, TOPIC, partitions=config.offsets_topic_num_partitions,
            segment_bytes=config.offsets_topic_segment_bytes, replication_factor=1, log=log,
            event="offsets")
        #: partition -> log end offset after this store's last write not yet awaited
        self.unreplicated = self.topic.unreplicated

    # ------------------------------------------------------------------ topic
    def exists(self) -> bool:
        return self.broker.topics.get(TOPIC) is not None

    def ensure_topic(self) -> ErrorCode:
        """Create ``__consumer_offsets`` if missing; NONE or the creation error."""
        self.topic.partitions = self.config.offsets_topic_num_partitions  # config may change
        return self.topic.ensure()

    def is_local(self, partition: int) -> bool:
        """This node leads the partition (always, on one node; before the topic exists
        the first append creates it here)."""
        if self.broker.topics.get(TOPIC) is None:
            return True
        return self.broker.replica_manager.log(TOPIC, partition) is not None

    def partition_count(self) -> int:
        return self.topic.partition_count()

    # ------------------------------------------------------------------ OffsetsStore
    async def wait_replicated(self, timeout_s: float) -> None:
        """Wait (bounded) until every ``__consumer_offsets`` write made so far is below its
        partition's high watermark, so an answered commit survives a coordinator failover
        (Kafka writes offsets with acks=all). A write that cannot be replicated in time is
        logged; the answer is not changed."""
        await self.topic.wait_replicated(timeout_s)

    def append(self, partition: int, records: Sequence[tuple[bytes, bytes | None]]) -> ErrorCode:
        error = self.ensure_topic()
        if error is not ErrorCode.none:
            return error
        return self.topic.append(partition, records, now=self.clock())

    def append_txn(self, partition: int, records: Sequence[tuple[bytes, bytes | None]],
                   producer_id: int, producer_epoch: int) -> ErrorCode:
        """``append`` inside a transactional batch of the producer (TxnOffsetCommit): the
        offsets count once the transaction's COMMIT marker follows them."""
        error = self.ensure_topic()
        if error is not ErrorCode.none:
            return error
        return self.topic.append(partition, records, now=self.clock(), producer_id=producer_id,
                                 producer_epoch=producer_epoch, transactional=True)

    # ------------------------------------------------------------------ replay
    def replay(self, coordinator: GroupCoordinator, now_ms: int) -> int:
        """Feed every stored record of the partitions led here to
        ``coordinator.load_record``; returns the count."""
        return sum(
            self.replay_partition(coordinator, p, now_ms)
            for p in range(self.partition_count())
            if self.is_local(p)
        )

    def replay_partition(self, coordinator: GroupCoordinator, partition: int, now_ms: int) -> int:
        """Feed one partition's records, in offset order, to ``coordinator.load_record``.
        Undecodable records are logged and skipped (one bad record never hides a group)."""
        count = 0
        for batch in self.topic.replay_batches(partition, markers=True):
            header = batch.header
            if header.is_control:  # a transaction marker settles pending offsets
                if header.producer_id >= 0:
                    coordinator.load_txn_marker(header.producer_id, batch.commit, partition)
                continue
            for rec in batch.records:
                try:
                    if header.is_transactional:
                        coordinator.load_txn_offset_record(
                            header.producer_id, rec.key, rec.value, now_ms)
                        count += 1
                        continue
                    coordinator.load_record(rec.key, rec.value, now_ms)
                    count += 1
                except LogFormatError as exc:
                    log.warning(
                        "offsets_record_skipped",
                        partition=partition,
                        offset=rec.offset,
                        error=str(exc),
                    )
        return count
