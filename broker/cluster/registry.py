"""Topics and leadership of a cluster node, read from the metadata image.

In cluster mode the single source of truth for topics is the ``MetadataImage`` built from
``__cluster_metadata``; the node-local JSON table (``__strom_topics.json``) is neither read
nor written for topics. ``ClusterTopicRegistry`` keeps ``TopicRegistry``'s read interface
(``get``, ``list``, ``effective_configs``, ``log_config``, ``describe_configs`` ... used by
Metadata, Produce, the admin and group code) and fills it from each new image
(``apply_image``): topic name, id, partition count, replication factor and config
overrides. It also keeps the local logs in step: a partition whose replicas include this
broker gets a log; a topic that leaves the image (deleted) loses its logs here; a
changed topic config is pushed to the live logs.

Changes never happen here: admin requests are forwarded to the active controller
(``broker.cluster.handlers``). ``create_topics`` — reached only through topic
auto-creation (Metadata) and the group coordinator's ``__consumer_offsets`` — asks the
controller to create the topics in the background and answers LEADER_NOT_AVAILABLE, as
Kafka does while an auto-created topic is on its way; the client retries.

``ClusterReplicaManager`` serves a partition only while the image names this broker its
leader; for a partition led elsewhere ``missing_error`` is NOT_LEADER_OR_FOLLOWER, so
clients refresh metadata and reroute.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

from kio.schema.errors import ErrorCode

from broker.replica_manager import ReplicaManager
from broker.topics import NewTopicRequest, TopicError, TopicInfo, TopicRegistry
from common.logging import get_logger
from controller.metadata.image import MetadataImage

log = get_logger("strom.cluster")


class ClusterTopicRegistry(TopicRegistry):
    """``TopicRegistry`` whose topics come from the metadata image (see module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.image = MetadataImage()
        #: set by the cluster node: ``request_create(requests)`` forwards in the background
        self.request_create: Callable[[Sequence[NewTopicRequest]], None] | None = None

    def open(self, now_ms: int | None = None) -> list[str]:
        """Nothing to load: topics arrive with the metadata image."""
        return []

    # ---- image -> registry -------------------------------------------------------------
    def apply_image(self, image: MetadataImage) -> None:
        old = self.image
        self.image = image
        if image.topics is old.topics and image.configs is old.configs:
            return
        topics: dict[str, TopicInfo] = {}
        for topic in image.topics.values():
            parts = topic.partitions
            rf = len(next(iter(parts.values())).replicas) if parts else 1
            topics[topic.name] = TopicInfo(
                name=topic.name, topic_id=topic.topic_id, partitions=len(parts),
                replication_factor=rf, configs=dict(image.topic_config(topic.name)))
        changed = [n for n in set(topics) | set(self._topics)
                   if topics.get(n) != self._topics.get(n)]
        removed = [info for name, info in self._topics.items()
                   if name not in topics or topics[name].topic_id != info.topic_id]
        self._set(topics)
        if self.log_manager is not None:
            for info in removed:
                for partition in range(info.partitions):
                    with contextlib.suppress(OSError, KeyError):
                        self.log_manager.delete(info.name, partition)
                log.info("topic_logs_deleted", topic=info.name)
            for name in changed:
                if name in topics:
                    self._sync_logs(image, name)
        for name in sorted(changed):
            self._notify(name)

    def _sync_logs(self, image: MetadataImage, name: str) -> None:
        assert self.log_manager is not None
        topic = image.topic(name)
        if topic is None:
            return
        config = self.log_config(name)
        for index, part in sorted(topic.partitions.items()):
            if self.node_id in part.replicas and self.log_manager.get(name, index) is None:
                try:
                    self.log_manager.create(name, index, config)
                except OSError as exc:
                    log.error("partition_log_create_failed", topic=name, partition=index,
                              error=repr(exc))
        with contextlib.suppress(KeyError, OSError):
            self.log_manager.update_config(name, config)

    # ---- changes go through the controller -----------------------------------------------
    def create_topics(self, requests: Sequence[NewTopicRequest], *,
                      validate_only: bool = False, now_ms: int | None = None
                      ) -> list[TopicInfo | TopicError]:
        results: list[TopicInfo | TopicError] = []
        wanted = []
        for r in requests:
            if r.name in self._topics:
                results.append(TopicError(ErrorCode.topic_already_exists,
                                          f"Topic '{r.name}' already exists."))
                continue
            wanted.append(r)
            results.append(TopicError(ErrorCode.leader_not_available,
                                      f"Topic '{r.name}' is being created."))
        if wanted and not validate_only and self.request_create is not None:
            self.request_create(wanted)
        return results

    def _not_here(self, *args: Any, **kwargs: Any) -> Any:
        raise TopicError(ErrorCode.not_controller,
                         "topic changes go through the active controller in a cluster")

    delete_topics = _not_here
    create_partitions = _not_here
    alter_configs = _not_here
    incremental_alter_configs = _not_here


class ClusterReplicaManager(ReplicaManager):
    """Serves a partition only while the metadata image names this broker its leader."""

    def __init__(self, *args: Any, image: Callable[[], MetadataImage], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._image = image

    def log(self, topic: str, partition: int) -> Any | None:
        part = self._image().partition(topic, partition)
        if part is None or part.leader != self.node_id:
            return None
        return self.log_manager.get(topic, partition)

    def missing_error(self, topic: str, partition: int) -> int:
        part = self._image().partition(topic, partition)
        if part is None:
            return int(ErrorCode.unknown_topic_or_partition)
        if part.leader < 0:
            return int(ErrorCode.leader_not_available)
        return int(ErrorCode.not_leader_or_follower)

    def leader_epoch(self, topic: str, partition: int) -> int:
        part = self._image().partition(topic, partition)
        return part.leader_epoch if part is not None else 0
