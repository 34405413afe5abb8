"""Group coordinator settings, named and defaulted as Kafka's broker properties."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

#: Kafka property name -> GroupConfig field
PROPERTY_NAMES: dict[str, str] = {
    "group.min.session.timeout.ms": "min_session_timeout_ms",
    "group.max.session.timeout.ms": "max_session_timeout_ms",
    "group.initial.rebalance.delay.ms": "initial_rebalance_delay_ms",
    "group.max.size": "max_size",
    "offsets.retention.minutes": "offsets_retention_minutes",
    "offsets.retention.check.interval.ms": "offsets_retention_check_interval_ms",
    "offset.metadata.max.bytes": "offset_metadata_max_bytes",
    "offsets.topic.num.partitions": "offsets_topic_num_partitions",
    "offsets.topic.segment.bytes": "offsets_topic_segment_bytes",
}


@dataclass(frozen=True, slots=True)
class GroupConfig:
    """Knobs of the classic group coordinator (Kafka defaults)."""

    min_session_timeout_ms: int = 6_000
    max_session_timeout_ms: int = 1_800_000
    initial_rebalance_delay_ms: int = 3_000
    max_size: int = 2**31 - 1
    offsets_retention_minutes: int = 10_080
    offsets_retention_check_interval_ms: int = 600_000
    offset_metadata_max_bytes: int = 4_096
    offsets_topic_num_partitions: int = 50
    offsets_topic_segment_bytes: int = 104_857_600
    #: Kafka's GroupCoordinator.NewMemberJoinTimeoutMs (not a broker property)
    new_member_join_timeout_ms: int = 300_000

    @property
    def offsets_retention_ms(self) -> int:
        return self.offsets_retention_minutes * 60_000

    @classmethod
    def from_properties(cls, props: Mapping[str, Any]) -> GroupConfig:
        """Build from Kafka property names (``group.initial.rebalance.delay.ms`` ...) or
        field names; unknown keys are ignored, bad values raise ValueError naming the key."""
        names = {f.name for f in fields(cls)}
        values: dict[str, int] = {}
        for key, raw in props.items():
            name = PROPERTY_NAMES.get(key, key.replace(".", "_") if key in names else key)
            if name not in names:
                continue
            try:
                values[name] = int(raw)
            except (TypeError, ValueError):
                raise ValueError(f"{key}: expected an integer, got {raw!r}") from None
        cfg = cls(**values)
        if cfg.offsets_topic_num_partitions < 1:
            raise ValueError("offsets.topic.num.partitions must be >= 1")
        if cfg.min_session_timeout_ms > cfg.max_session_timeout_ms:
            raise ValueError("group.min.session.timeout.ms > group.max.session.timeout.ms")
        if cfg.initial_rebalance_delay_ms < 0:
            raise ValueError("group.initial.rebalance.delay.ms must be >= 0")
        return cfg
