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
feeds each record, in offset order, to ``GroupCoordinator.load_record``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from kio.schema.errors import ErrorCode

from broker.group.config import GroupConfig
from broker.group.coordinator import GroupCoordinator
from broker.group.log_format import LogFormatError
from common.logging import get_logger
from protocol.records import (
    CONTROL_COMMIT,
    InvalidRecordBatch,
    Record,
    build_batch,
    control_batch_type,
    decode_batch_records,
    iter_batches,
)
from storage.errors import RecordTooLargeError, StorageError

log = get_logger("strom.group")

TOPIC = "__consumer_offsets"
_READ_CHUNK = 4 * 1024 * 1024


class OffsetsTopicStore:
    """``OffsetsStore`` port on the broker's topic registry, logs and replica manager."""

    def __init__(self, broker: Any, config: GroupConfig, clock: Callable[[], int]) -> None:
        self.broker = broker
        self.config = config
        self.clock = clock
        #: partition -> log end offset after this store's last write not yet awaited
        self.unreplicated: dict[int, int] = {}

    # ------------------------------------------------------------------ topic
    def exists(self) -> bool:
        return self.broker.topics.get(TOPIC) is not None

    def ensure_topic(self) -> ErrorCode:
        """Create ``__consumer_offsets`` if missing; NONE or the creation error."""
        topics = self.broker.topics
        if topics.get(TOPIC) is not None:
            return ErrorCode.none
        try:
            topics.create_topic(
                TOPIC,
                partitions=self.config.offsets_topic_num_partitions,
                replication_factor=1,
                configs={
                    "cleanup.policy": "compact",
                    "segment.bytes": str(self.config.offsets_topic_segment_bytes),
                    "compression.type": "producer",
                },
            )
        except Exception as exc:
            code = getattr(exc, "error_code", None)
            if code == ErrorCode.topic_already_exists:
                return ErrorCode.none
            log.error("offsets_topic_create_failed", error=repr(exc))
            return ErrorCode.coordinator_not_available
        log.info("offsets_topic_created", partitions=self.config.offsets_topic_num_partitions)
        return ErrorCode.none

    def is_local(self, partition: int) -> bool:
        """This node leads the partition (always, on one node; before the topic exists
        the first append creates it here)."""
        if self.broker.topics.get(TOPIC) is None:
            return True
        return self.broker.replica_manager.log(TOPIC, partition) is not None

    def partition_count(self) -> int:
        info = self.broker.topics.get(TOPIC)
        return info.partitions if info is not None else 0

    # ------------------------------------------------------------------ OffsetsStore
    async def wait_replicated(self, timeout_s: float) -> None:
        """Wait (bounded) until every ``__consumer_offsets`` write made so far is below its
        partition's high watermark, so an answered commit survives a coordinator failover
        (Kafka writes offsets with acks=all). A write that cannot be replicated in time is
        logged; the answer is not changed."""
        # every caller waits for all writes made so far, a concurrent caller's included:
        # taking the entries away let that caller answer before its own write was
        # replicated; an entry goes once the offset it names has been waited for
        pending = dict(self.unreplicated)
        for partition, offset in sorted(pending.items()):
            code = await self.broker.replica_manager.wait_replicated(
                (TOPIC, partition), offset, timeout_s)
            if code:
                log.warning("offsets_not_replicated", partition=partition, offset=offset,
                            error=ErrorCode(code).name)
            elif self.unreplicated.get(partition) == offset:
                del self.unreplicated[partition]

    def append(self, partition: int, records: Sequence[tuple[bytes, bytes | None]]) -> ErrorCode:
        error = self.ensure_topic()
        if error is not ErrorCode.none:
            return error
        replicas = self.broker.replica_manager
        plog = replicas.log(TOPIC, partition)  # only a partition led here
        if plog is None:
            return ErrorCode(replicas.missing_error(TOPIC, partition))
        now = self.clock()
        batch = build_batch([Record(timestamp=now, key=k, value=v) for k, v in records])
        try:
            self.broker.replica_manager.append(plog, batch, now)
            self.unreplicated[partition] = plog.log_end_offset
        except RecordTooLargeError:
            return ErrorCode.message_too_large
        except StorageError as exc:
            log.error("offsets_append_failed", partition=partition, error=repr(exc))
            return ErrorCode.unknown_server_error
        except OSError as exc:
            log.error("offsets_append_failed", partition=partition, error=repr(exc))
            return ErrorCode.kafka_storage_error
        return ErrorCode.none

    def append_txn(self, partition: int, records: Sequence[tuple[bytes, bytes | None]],
                   producer_id: int, producer_epoch: int) -> ErrorCode:
        """``append`` inside a transactional batch of the producer (TxnOffsetCommit): the
        offsets count once the transaction's COMMIT marker follows them."""
        error = self.ensure_topic()
        if error is not ErrorCode.none:
            return error
        replicas = self.broker.replica_manager
        plog = replicas.log(TOPIC, partition)
        if plog is None:
            return ErrorCode(replicas.missing_error(TOPIC, partition))
        now = self.clock()
        batch = build_batch([Record(timestamp=now, key=k, value=v) for k, v in records],
                            producer_id=producer_id, producer_epoch=producer_epoch,
                            is_transactional=True)
        try:
            replicas.append(plog, batch, now)
            self.unreplicated[partition] = plog.log_end_offset
        except RecordTooLargeError:
            return ErrorCode.message_too_large
        except StorageError as exc:
            if exc.error_code > 0:
                return ErrorCode(exc.error_code)
            log.error("offsets_append_failed", partition=partition, error=repr(exc))
            return ErrorCode.unknown_server_error
        except OSError as exc:
            log.error("offsets_append_failed", partition=partition, error=repr(exc))
            return ErrorCode.kafka_storage_error
        return ErrorCode.none

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
        plog = self.broker.logs.get(TOPIC, partition)
        if plog is None:
            return 0
        offset = plog.log_start_offset
        end = plog.log_end_offset
        while offset < end:
            data = plog.read(offset, _READ_CHUNK).records
            if not data:
                break
            next_offset = offset
            try:
                for pos, header in iter_batches(data):
                    next_offset = header.last_offset + 1
                    if header.last_offset < offset:
                        continue
                    if header.is_control:  # a transaction marker settles pending offsets
                        if header.producer_id >= 0:
                            coordinator.load_txn_marker(
                                header.producer_id,
                                control_batch_type(data, pos) == CONTROL_COMMIT, partition)
                        continue
                    for rec in decode_batch_records(data, pos):
                        if rec.offset < offset:
                            continue
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
            except InvalidRecordBatch as exc:
                log.error(
                    "offsets_replay_stopped", partition=partition, offset=offset, error=str(exc)
                )
                break
            if next_offset <= offset:
                break
            offset = next_offset
        return count
