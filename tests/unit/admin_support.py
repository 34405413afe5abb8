"""Helpers for the admin unit tests: in-memory stand-ins for storage objects only."""

from __future__ import annotations

from storage.log_config import LogConfig


class RecordingLogs:
    """Stands in for storage's LogManager: remembers which logs exist and their configs."""

    def __init__(self, existing: list[tuple[str, int]] | None = None) -> None:
        self.logs: dict[tuple[str, int], LogConfig | None] = dict.fromkeys(existing or [])
        self.topic_configs: dict[str, LogConfig] = {}

    def get(self, topic: str, partition: int) -> object | None:
        return (topic, partition) if (topic, partition) in self.logs else None

    def create(self, topic: str, partition: int, config: LogConfig) -> object:
        self.logs[(topic, partition)] = config
        self.topic_configs[topic] = config  # as LogManager.create: the topic's config now
        return config

    def delete(self, topic: str, partition: int) -> None:
        self.logs.pop((topic, partition), None)

    def update_config(self, topic: str, config: LogConfig) -> None:
        self.topic_configs[topic] = config
        for key in self.logs:
            if key[0] == topic:
                self.logs[key] = config

    def partitions(self) -> list[tuple[str, int]]:
        return sorted(self.logs)


class MemoryPartition:
    """The slice of a PartitionLog DeleteRecords uses: offsets and delete_records_before."""

    def __init__(self, log_start_offset: int, high_watermark: int) -> None:
        self.log_start_offset = log_start_offset
        self.high_watermark = high_watermark

    def delete_records_before(self, offset: int) -> int:
        self.log_start_offset = max(self.log_start_offset, offset)
        return self.log_start_offset
