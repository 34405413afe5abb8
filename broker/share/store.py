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
through ``broker.share.persister`` (Read/Write/DeleteShareGroupState). The topic
mechanics are shared with the other coordinators (``broker.internal_topic``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kio.schema.errors import ErrorCode

from broker.group.partitioner import partition_for
from broker.internal_topic import InternalTopic
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
from common.logging import get_logger

log = get_logger("strom.share")

TOPIC = "__share_group_state"


class ShareStateStore:
    def __init__(self, broker: Any, config: ShareGroupConfig,
                 clock: Callable[[], int]) -> None:
        self.broker = broker
        self.config = config
        self.clock = clock
        self.topic = InternalTopic(
            broker, TOPIC, partitions=config.state_topic_num_partitions,
            segment_bytes=config.state_topic_segment_bytes, replication_factor=3, log=log,
            event="share_state")

    def partition_of(self, key: ShareStateKey) -> int:
        count = self.partition_count() or self.config.state_topic_num_partitions
        return partition_for(f"{key.group_id}:{key.topic_id}:{key.partition}", count)

    def partition_count(self) -> int:
        return self.topic.partition_count()

    def ensure_topic(self) -> ErrorCode:
        return self.topic.ensure()

    async def ensure_topic_ready(self, timeout_s: float = 5.0) -> None:
        """Create the topic through the cluster's controller if it is missing and wait
        (bounded) until this broker's registry has it; later writes report what is left."""
        await self.topic.ensure_ready(timeout_s)

    def write(self, key: ShareStateKey, snapshot: ShareSnapshot | None) -> ErrorCode:
        """Append the key's latest snapshot (None: a tombstone) to its partition, which
        must be led here (NOT_COORDINATOR otherwise); NONE or the error."""
        error = self.ensure_topic()
        if error is not ErrorCode.none:
            return error
        value = None if snapshot is None else encode_snapshot(snapshot)
        # not led here: the share coordinator moved (see broker.share.persister)
        return self.topic.append(self.partition_of(key), [(encode_key(key), value)],
                                 now=self.clock(), missing=ErrorCode.not_coordinator)

    def replay_partition(self, partition: int) -> dict[ShareStateKey, ShareSnapshot]:
        """The latest snapshot of every key stored in ``partition`` (a local replica)."""
        out: dict[ShareStateKey, ShareSnapshot] = {}
        for batch in self.topic.replay_batches(partition):
            for rec in batch.records:
                if rec.key is None:
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
        return out

    def replay(self) -> dict[ShareStateKey, ShareSnapshot]:
        """The latest snapshot of every key stored in the local replicas."""
        out: dict[ShareStateKey, ShareSnapshot] = {}
        for partition in range(self.partition_count()):
            out.update(self.replay_partition(partition))
        return out
