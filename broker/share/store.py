"""``__share_group_state`` on storage: where share-partition state survives restarts.

The internal topic is compacted and created on first use (``share.coordinator.state.
topic.num.partitions`` partitions, ``share.coordinator.state.topic.segment.bytes``
segments). A share-partition's records go to partition
``abs(javaHash("<group>:<topic id>:<partition>")) % partitions`` (Kafka's
SharePartitionKey routing). ``write`` appends one ShareSnapshot record (see
``broker.share.state_format``) as leader through the ReplicaManager, so the data reaches
the OS before the acknowledgement that caused it is answered: a kill -9 loses nothing
answered. ``replay`` reads every local partition from its log start and keeps the last
snapshot per key (a tombstone deletes it).

Only the partition's leader (the share coordinator of its keys) writes; other nodes go
through ``broker.share.persister`` (Read/Write/DeleteShareGroupState).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from kio.schema.errors import ErrorCode

from broker.group.partitioner import partition_for
from broker.share.config import ShareGroupConfig
from broker.share.state_format import (
    ShareSnapshot,
    ShareStateKey,
    StateFormatError,
    decode_key,
    decode_snapshot,
    encode_key,
    encode_snapshot,
)
from broker.topics import NewTopicRequest
from common.logging import get_logger
from protocol.records import (
    InvalidRecordBatch,
    Record,
    build_batch,
    decode_batch_records,
    iter_batches,
)
from storage.errors import RecordTooLargeError, StorageError

log = get_logger("strom.share")

TOPIC = "__share_group_state"
_READ_CHUNK = 4 * 1024 * 1024


class ShareStateStore:
    def __init__(self, broker: Any, config: ShareGroupConfig,
                 clock: Callable[[], int]) -> None:
        self.broker = broker
        self.config = config
        self.clock = clock

    def partition_of(self, key: ShareStateKey) -> int:
        count = self.partition_count() or self.config.state_topic_num_partitions
        return partition_for(f"{key.group_id}:{key.topic_id}:{key.partition}", count)

    def partition_count(self) -> int:
        info = self.broker.topics.get(TOPIC)
        return info.partitions if info is not None else 0

    def ensure_topic(self) -> ErrorCode:
        topics = self.broker.topics
        if topics.get(TOPIC) is not None:
            return ErrorCode.none
        try:
            topics.create_topic(
                TOPIC,
                partitions=self.config.state_topic_num_partitions,
                replication_factor=1,
                configs={
                    "cleanup.policy": "compact",
                    "segment.bytes": str(self.config.state_topic_segment_bytes),
                    "compression.type": "producer",
                },
            )
        except Exception as exc:
            if getattr(exc, "error_code", None) == ErrorCode.topic_already_exists:
                return ErrorCode.none
            log.error("share_state_topic_create_failed", error=repr(exc))
            return ErrorCode.coordinator_not_available
        log.info("share_state_topic_created", partitions=self.config.state_topic_num_partitions)
        return ErrorCode.none

    async def ensure_topic_ready(self, timeout_s: float = 5.0) -> None:
        """Create the topic through the cluster's controller if it is missing and wait
        (bounded) until this broker's registry has it; later writes report what is left."""
        if self.broker.topics.get(TOPIC) is not None:
            return
        cluster = getattr(self.broker, "cluster", None)
        if cluster is None:
            self.ensure_topic()
            return
        present = len(cluster.quorum.image.unfenced_brokers())
        request = NewTopicRequest(
            TOPIC, self.config.state_topic_num_partitions, max(1, min(3, present)),
            {"cleanup.policy": "compact",
             "segment.bytes": str(self.config.state_topic_segment_bytes),
             "compression.type": "producer"})
        await cluster.create_now([request])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.broker.topics.get(TOPIC) is None and loop.time() < deadline:
            await asyncio.sleep(0.05)

    def write(self, key: ShareStateKey, snapshot: ShareSnapshot | None) -> ErrorCode:
        """Append the key's latest snapshot (None: a tombstone) to its partition, which
        must be led here (NOT_COORDINATOR otherwise); NONE or the error."""
        error = self.ensure_topic()
        if error is not ErrorCode.none:
            return error
        partition = self.partition_of(key)
        replicas = self.broker.replica_manager
        plog = replicas.log(TOPIC, partition)
        if plog is None:  # the share coordinator moved (see broker.share.persister)
            return ErrorCode.not_coordinator
        now = self.clock()
        value = None if snapshot is None else encode_snapshot(snapshot)
        batch = build_batch([Record(timestamp=now, key=encode_key(key), value=value)])
        try:
            replicas.append(plog, batch, now)
        except RecordTooLargeError:
            return ErrorCode.message_too_large
        except StorageError as exc:
            log.error("share_state_append_failed", partition=partition, error=repr(exc))
            return ErrorCode.unknown_server_error
        except OSError as exc:
            log.error("share_state_append_failed", partition=partition, error=repr(exc))
            return ErrorCode.kafka_storage_error
        return ErrorCode.none

    def replay_partition(self, partition: int) -> dict[ShareStateKey, ShareSnapshot]:
        """The latest snapshot of every key stored in ``partition`` (a local replica)."""
        out: dict[ShareStateKey, ShareSnapshot] = {}
        plog = self.broker.logs.get(TOPIC, partition)
        if plog is None:
            return out
        offset, end = plog.log_start_offset, plog.log_end_offset
        while offset < end:
            data = plog.read(offset, _READ_CHUNK).records
            if not data:
                break
            next_offset = offset
            try:
                for pos, header in iter_batches(data):
                    next_offset = header.last_offset + 1
                    if header.last_offset < offset or header.is_control:
                        continue
                    for rec in decode_batch_records(data, pos):
                        if rec.offset < offset or rec.key is None:
                            continue
                        try:
                            key = decode_key(rec.key)
                            if rec.value is None:
                                out.pop(key, None)
                            else:
                                out[key] = decode_snapshot(rec.value)
                        except StateFormatError as exc:
                            log.warning("share_state_record_skipped", partition=partition,
                                        offset=rec.offset, error=str(exc))
            except InvalidRecordBatch as exc:
                log.error("share_state_replay_stopped", partition=partition,
                          offset=offset, error=str(exc))
                break
            if next_offset <= offset:
                break
            offset = next_offset
        return out

    def replay(self) -> dict[ShareStateKey, ShareSnapshot]:
        """The latest snapshot of every key stored in the local replicas."""
        out: dict[ShareStateKey, ShareSnapshot] = {}
        for partition in range(self.partition_count()):
            out.update(self.replay_partition(partition))
        return out
