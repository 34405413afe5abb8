"""Per-partition log configuration with Kafka's defaults and Kafka's property names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from protocol import compression

LONG_MAX = 2**63 - 1
DAY_MS = 24 * 60 * 60 * 1000

#: compression.type value → codec id stored in the batch attributes ("producer": keep).
COMPRESSION_TYPES: dict[str, int | None] = {
    "producer": None,
    "uncompressed": compression.NONE,
    "gzip": compression.GZIP,
    "snappy": compression.SNAPPY,
    "lz4": compression.LZ4,
    "zstd": compression.ZSTD,
}


@dataclass(frozen=True)
class LogConfig:
    """Settings of one partition log; field names are Kafka topic configs with '_' for '.'.

    ``cleanup_policy`` is a frozenset of "delete" and/or "compact".
    ``message_timestamp_type`` is "CreateTime" or "LogAppendTime".
    ``compression_type`` is a key of :data:`COMPRESSION_TYPES` (KIP-390): "producer" stores
    batches as sent; a codec name makes the leader rebuild client batches in that codec
    (protocol/recompress.py) at ``compression_<codec>_level``.
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
    compression_type: str = "producer"
    compression_gzip_level: int = -1
    compression_lz4_level: int = 9
    compression_zstd_level: int = 3

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
    def target_codec(self) -> int | None:
        """Codec id every client batch is stored in; None for "producer" (as sent)."""
        return COMPRESSION_TYPES[self.compression_type]

    @property
    def target_level(self) -> int | None:
        """The configured level of :attr:`target_codec` (None: it has no level)."""
        return {
            compression.GZIP: self.compression_gzip_level,
            compression.LZ4: self.compression_lz4_level,
            compression.ZSTD: self.compression_zstd_level,
        }.get(COMPRESSION_TYPES[self.compression_type] or 0)

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
            elif name == "compression_type":
                if raw not in COMPRESSION_TYPES:
                    raise ValueError(f"invalid compression.type {raw!r}")
                changes[name] = raw
            elif name.startswith("compression_") and name.endswith("_level"):
                codec = COMPRESSION_TYPES[name.split("_")[1]]
                assert codec is not None
                low, high = compression.LEVEL_RANGES[codec]
                level = int(raw)
                if not (low <= level <= high or (codec == compression.GZIP and level == -1)):
                    raise ValueError(f"invalid {key} {raw!r}")
                changes[name] = level
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
