"""Helpers for the admin unit tests: in-memory stand-ins for storage objects, and
``OneNodeCluster`` (a lone node's controller and broker registry, wired as in production)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from broker.cluster.registry import ClusterTopicRegistry
from broker.cluster.staging import StagingRegistry
from broker.topics import BrokerDefaults, NewTopicRequest, TopicError, TopicInfo
from controller.metadata.image import MetadataImage, apply_all
from controller.metadata.records import Endpoint, RegisterBrokerRecord
from storage.log_config import LogConfig

T = TypeVar("T")


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


class OneNodeCluster:
    """The live path of a lone node without sockets: admin changes are decided by the
    active controller's ``StagingRegistry`` against the metadata image (as
    ``broker.cluster.controller_api`` does), the staged records are committed to the image,
    and the broker's ``ClusterTopicRegistry`` (``broker``) applies each new image to its
    logs. Broker ``NODE`` is registered and unfenced."""

    NODE = 1

    def __init__(self, log_dir: Path, logs: RecordingLogs | None = None,
                 **props: str) -> None:
        self.defaults = BrokerDefaults.from_properties(
            {k.replace("_", "."): v for k, v in props.items()})
        self.image = apply_all(MetadataImage(), [RegisterBrokerRecord(
            self.NODE, uuid.uuid4(), 1, (Endpoint("PLAINTEXT", "127.0.0.1", 9092),),
            fenced=False)])
        self.logs = logs if logs is not None else RecordingLogs()
        self.broker = ClusterTopicRegistry(log_dir, self.defaults, log_manager=self.logs,
                                           node_id=self.NODE)
        self.notes = self.broker.open()
        self.broker.apply_image(self.image)
        self.rng = random.Random(7)

    def staging(self) -> StagingRegistry:
        """What the controller decides a request against (commit its ``records``)."""
        return StagingRegistry(self.image, self.broker.broker,
                               default_partitions=self.defaults.num_partitions,
                               default_replication_factor=1, rng=self.rng,
                               node_id=self.NODE)

    def commit(self, staging: StagingRegistry) -> None:
        self.image = apply_all(self.image, staging.records)
        self.broker.apply_image(self.image)

    def decide(self, change: Callable[[StagingRegistry], T]) -> T:
        """Run ``change`` on the controller's view and commit what it staged (also when
        it raised, as the controller proposes whatever the request staged)."""
        staging = self.staging()
        try:
            return change(staging)
        finally:
            self.commit(staging)

    def create_topic(self, name: str, partitions: int = -1, replication_factor: int = -1,
                     configs: Mapping[str, object] | None = None, *,
                     assignments: Sequence[tuple[int, Sequence[int]]] = (),
                     validate_only: bool = False) -> TopicInfo:
        request = NewTopicRequest(name, partitions, replication_factor, configs or {},
                                  tuple(assignments))
        [result] = self.decide(lambda s: s.create_topics([request],
                                                         validate_only=validate_only))
        if isinstance(result, TopicError):
            raise result
        return result
