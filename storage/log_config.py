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
            else:
                changes[name] = int(raw)
        return replace(self, **changes)  # type: ignore[arg-type]
