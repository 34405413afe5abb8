"""What the facade needs from the cluster besides appends and reads, provided by the
broker (the composition root): the topics of the metadata image and admin changes that
go through the active controller (so every broker sees the same streams)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class TopicView:
    name: str
    topic_id: uuid.UUID
    #: partition index -> leader broker id (-1: none)
    leaders: Mapping[int, int]
    #: the topic's config overrides (``kinesis.stream`` among them)
    configs: Mapping[str, str]
    #: the effective ``retention.ms`` (-1: unlimited)
    retention_ms: int


class StreamCluster(Protocol):
    """Admin results are (Kafka error code, message); 0 is success and means the change
    is visible in this broker's image when the call returns."""

    def topic(self, name: str) -> TopicView | None: ...

    def topic_names(self) -> list[str]: ...

    def kinesis_address(self, broker_id: int) -> tuple[str, int] | None:
        """Where broker ``broker_id`` serves the Kinesis API (its registered listener
        ``KINESIS``), None when it does not."""
        ...

    async def create_topic(self, name: str, partitions: int,
                           configs: Mapping[str, str]) -> tuple[int, str | None]: ...

    async def delete_topic(self, name: str) -> tuple[int, str | None]: ...

    async def add_partitions(self, name: str, total: int) -> tuple[int, str | None]:
        """Grow the topic to ``total`` partitions, each with a leader when it returns."""
        ...

    async def alter_topic_configs(self, name: str, changes: Mapping[str, str | None]
                                  ) -> tuple[int, str | None]: ...
