"""Per-partition log configuration with Kafka's defaults and Kafka's property names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

LONG_MAX = 2**63 - 1
DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class LogConfig:
    """Settings of one partition log; field names are Kafka topic configs with '_' for '.'.

    ``cleanup_policy`` is a frozenset of "delete" and/or "compact".
    ``message_timestamp_type`` is "CreateTime" or "LogAppendTime".
    """

    segment_bytes: int = 1024 * 1024 * 1024
    segment_ms: int = 7 * DAY_MS
    index_interval_bytes: int = 4096
    segment_index_bytes: int = 10 * 1024 * 1024
    retention_ms: int = 7 * DAY_MS
    retention_bytes: int = -1
    cleanup_policy: frozenset[str] = frozenset({"delete"})
    delete_retention_ms: int = DAY_MS
    min_compaction_lag_ms: int = 0
    flush_messages: int = LONG_MAX
    flush_ms: int = LONG_MAX
    max_message_bytes: int = 1048588
    message_timestamp_type: str = "CreateTime"
    message_timestamp_difference_max_ms: int = LONG_MAX
    message_timestamp_before_max_ms: int = LONG_MAX
    message_timestamp_after_max_ms: int = LONG_MAX
    max_compaction_lag_ms: int = LONG_MAX
    min_cleanable_dirty_ratio: float = 0.5
    segment_jitter_ms: int = 0
    preallocate: bool = False
    file_delete_delay_ms: int = 60000
    producer_id_expiration_ms: int = DAY_MS  # broker-wide in Kafka; idle producers dropped

    @property
    def compact(self) -> bool:
        return "compact" in self.cleanup_policy

    @property
    def delete(self) -> bool:
        return "delete" in self.cleanup_policy

    @property
    def log_append_time(self) -> bool:
        return self.message_timestamp_type == "LogAppendTime"

    @property
    def timestamp_before_max_ms(self) -> int:
        """How far in the past a CreateTime timestamp may lie. As in Kafka 3.6+, the
        deprecated message.timestamp.difference.max.ms applies while this is unset."""
        if self.message_timestamp_before_max_ms != LONG_MAX:
            return self.message_timestamp_before_max_ms
        return self.message_timestamp_difference_max_ms

    @property
    def timestamp_after_max_ms(self) -> int:
        """How far in the future a CreateTime timestamp may lie (see the "before" bound)."""
        if self.message_timestamp_after_max_ms != LONG_MAX:
            return self.message_timestamp_after_max_ms
        return self.message_timestamp_difference_max_ms

    @property
    def max_segment_ms(self) -> int:
        """segment.ms, capped by max.compaction.lag.ms on compacted topics (Kafka's
        LogConfig.maxSegmentMs): the active segment is never cleaned, so it must roll
        for its records to become cleanable in time."""
        if self.compact and self.max_compaction_lag_ms > 0:
            return min(self.max_compaction_lag_ms, self.segment_ms)
        return self.segment_ms

    def with_properties(self, props: Mapping[str, str | int]) -> LogConfig:
        """A copy with Kafka topic properties applied ("retention.ms" -> retention_ms).

        Unknown keys are ignored (they belong to other layers); bad values raise ValueError.
        """
        names = {f.name for f in fields(self)}
        changes: dict[str, object] = {}
        for key, raw in props.items():
            name = key.replace(".", "_")
            if name not in names:
                continue
            if name == "cleanup_policy":
                parts = frozenset(p.strip() for p in str(raw).split(",") if p.strip())
                if not parts or not parts <= {"delete", "compact"}:
                    raise ValueError(f"invalid cleanup.policy {raw!r}")
                changes[name] = parts
            elif name == "message_timestamp_type":
                if raw not in ("CreateTime", "LogAppendTime"):
                    raise ValueError(f"invalid message.timestamp.type {raw!r}")
                changes[name] = raw
            elif name == "min_cleanable_dirty_ratio":
                ratio = float(raw)
                if not 0.0 <= ratio <= 1.0:
                    raise ValueError(f"invalid min.cleanable.dirty.ratio {raw!r}")
                changes[name] = ratio
            elif name == "preallocate":
                text = str(raw).strip().lower()
                if text not in ("true", "false"):
                    raise ValueError(f"invalid preallocate {raw!r}")
                changes[name] = text == "true"
            else:
                changes[name] = int(raw)
        return replace(self, **changes)  # type: ignore[arg-type]
