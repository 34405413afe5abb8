"""Settings of share groups, named and defaulted as Kafka 4.2's broker properties. Pure.

========================================== ============================ =========
property                                   field                        default
========================================== ============================ =========
share.version                              share_version (0 = off)      1
group.share.session.timeout.ms             session_timeout_ms           45000
group.share.heartbeat.interval.ms          heartbeat_interval_ms        5000
group.share.max.size                       max_size                     200
group.share.record.lock.duration.ms        record_lock_duration_ms      30000
group.share.delivery.count.limit           delivery_count_limit         5
group.share.partition.max.record.locks     partition_max_record_locks   2000
group.share.max.share.sessions             max_share_sessions           2000
share.coordinator.state.topic.num.partitions state_topic_num_partitions 50
share.coordinator.state.topic.segment.bytes  state_topic_segment_bytes  104857600
========================================== ============================ =========

``share.version`` stands in for Kafka's finalized feature level of the same name (Strom
has no UpdateFeatures; ApiVersions v3+ advertises the level, see ``broker.features``): at
1 the share-group APIs are registered and advertised, at 0 none is. Kafka's per-group
``share.auto.offset.reset`` is ``latest``: a share-partition
starts at the log end when first fetched (AlterShareGroupOffsets sets it explicitly).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ShareGroupConfig:
    share_version: int = 1
    session_timeout_ms: int = 45_000
    heartbeat_interval_ms: int = 5_000
    max_size: int = 200
    record_lock_duration_ms: int = 30_000
    delivery_count_limit: int = 5
    partition_max_record_locks: int = 2000
    max_share_sessions: int = 2000
    state_topic_num_partitions: int = 50
    state_topic_segment_bytes: int = 104_857_600

    @property
    def enabled(self) -> bool:
        return self.share_version >= 1


#: broker config attribute -> field
_ATTRIBUTES = {
    "share_version": "share_version",
    "group_share_session_timeout_ms": "session_timeout_ms",
    "group_share_heartbeat_interval_ms": "heartbeat_interval_ms",
    "group_share_max_size": "max_size",
    "group_share_record_lock_duration_ms": "record_lock_duration_ms",
    "group_share_delivery_count_limit": "delivery_count_limit",
    "group_share_partition_max_record_locks": "partition_max_record_locks",
    "group_share_max_share_sessions": "max_share_sessions",
    "share_coordinator_state_topic_num_partitions": "state_topic_num_partitions",
    "share_coordinator_state_topic_segment_bytes": "state_topic_segment_bytes",
}


def share_config_from(broker_config: Any) -> ShareGroupConfig:
    """ShareGroupConfig from the broker's settings (missing attributes keep defaults)."""
    values = {}
    for attr, name in _ATTRIBUTES.items():
        value = getattr(broker_config, attr, None)
        if value is not None:
            values[name] = int(value)
    return ShareGroupConfig(**values)
