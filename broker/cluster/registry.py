"""Topics and leadership of a cluster node, read from the metadata image.

The single source of truth for topics is the ``MetadataImage`` built from
``__cluster_metadata``; the node-local JSON table (``__strom_topics.json``) is neither read
nor written for topics: it keeps only this broker's dynamic broker configs (AlterConfigs
on BROKER resources, which are per broker), saved atomically and reloaded at start.

``ClusterTopicRegistry`` keeps ``TopicRegistry``'s read interface
(``get``, ``list``, ``effective_configs``, ``log_config``, ``describe_configs`` ... used by
Metadata, Produce, the admin and group code) and fills it from each new image
(``apply_image``): topic name, id, partition count, replication factor and config
overrides (the replication factor is the first partition's replicas not being added by a
reassignment). It also keeps the local logs in step: a partition whose replicas include
this broker gets a log (also when a reassignment adds it here); a topic that leaves the
image (deleted) loses its logs here; a changed topic config is pushed to the live logs.
A partition whose replicas no longer include this broker (a reassignment moved it away)
loses its log here (``remove_unassigned``), but only once this broker has caught up
(the node's ``remove_strays`` call, when the broker is first unfenced: its image is then
at least as new as its registration, never a stale one replayed at start), and only
after every listener of that image has run (scheduled on the loop, so replication has
stopped the partition first), checked against the newest image: a log the image still
assigns here is never deleted. The topic id of
the local logs is kept in ``__strom_metadata/local-topic-ids.json``: logs left by an
earlier topic of the same name (deleted and re-created while this broker was down) are
deleted, never served as the new topic; logs of topics the image no longer has are
removed once the broker has caught up (``remove_strays``).

Changes never happen here: admin requests are forwarded to the active controller
(``broker.cluster.handlers``). ``create_topics`` — reached only through topic
auto-creation (Metadata) and the group coordinator's ``__consumer_offsets`` — asks the
controller to create the topics in the background and answers LEADER_NOT_AVAILABLE, as
Kafka does while an auto-created topic is on its way; the client retries.

Leadership and replication (who leads, who follows, ISR) are not kept here: the node
hands each image to ``replication.ReplicaManager`` (``ClusterNode``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kio.schema.errors import ErrorCode

from broker.topics import NewTopicRequest, TopicError, TopicInfo, TopicRegistry
from common.logging import get_logger
from controller.metadata.image import MetadataImage
from storage.checkpoint import write_atomic

log = get_logger("strom.cluster")

#: topic name -> topic id of the local logs (Kafka keeps this in each partition's
#: ``partition.metadata``); inside a directory the LogManager does not take for a partition
LOCAL_IDS_FILE = "__strom_metadata/local-topic-ids.json"


class ClusterTopicRegistry(TopicRegistry):
    """``TopicRegistry`` whose topics come from the metadata image (see module doc)."""

    def __init__(self, log_dir: Path, *args: Any, **kwargs: Any) -> None:
        super().__init__(log_dir, *args, **kwargs)
        self.image = MetadataImage()
        #: set by the cluster node: ``request_create(requests)`` forwards in the background
        self.request_create: Callable[[Sequence[NewTopicRequest]], None] | None = None
        self.ids_path = Path(log_dir) / LOCAL_IDS_FILE
        self._local_ids: dict[str, str] = {}
        #: set by ``remove_strays``: this broker has caught up with the metadata log, so
        #: a partition its image does not assign here may lose its log
        self.caught_up = False
        self._unassigned_scheduled = False

    def open(self) -> list[str]:
        """Topics arrive with the metadata image; only this broker's dynamic broker configs
        (``__strom_topics.json``, its ``broker_configs`` part) and the topic ids of the
        local logs are loaded (a damaged ids file is ignored: logs are then trusted as they
        are)."""
        return super().open() + self._open_ids()

    def _open_ids(self) -> list[str]:
        try:
            loaded = json.loads(self.ids_path.read_bytes())
            self._local_ids = {str(k): str(v) for k, v in loaded.items()}
        except FileNotFoundError:
            pass
        except (ValueError, AttributeError) as exc:
            return [f"{self.ids_path}: ignored unreadable topic ids ({exc})"]
        return []

    def _save_ids(self) -> None:
        self.ids_path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.ids_path, json.dumps(self._local_ids, sort_keys=True).encode())

    def _delete_local(self, name: str, reason: str) -> None:
        assert self.log_manager is not None
        parts = [p for t, p in list(self.log_manager.partitions()) if t == name]
        for partition in parts:
            with contextlib.suppress(OSError, KeyError):
                self.log_manager.delete(name, partition)
        if parts:
            log.info("topic_logs_deleted", node_id=self.node_id, topic=name, reason=reason,
                     partitions=sorted(parts))
        if self._local_ids.pop(name, None) is not None:
            self._save_ids()

    def remove_unassigned(self, image: MetadataImage) -> list[tuple[str, int]]:
        """Delete the local logs of partitions whose replicas in ``image`` do not include
        this broker (a reassignment removed it); topics the image does not have are left
        to ``remove_strays``, a topic id other than the image's to ``apply_image``.
        Returns the deleted partitions. Call only with an image newer than this broker's
        registration (see the module doc): nothing happens before ``remove_strays``."""
        if self.log_manager is None or not self.caught_up:
            return []
        deleted = []
        for name, index in sorted(self.log_manager.partitions()):
            topic = image.topic(name)
            part = topic.partitions.get(index) if topic is not None else None
            if part is None or self.node_id in part.replicas \
                    or self._local_ids.get(name, str(topic.topic_id)) != str(topic.topic_id):
                continue
            try:
                self.log_manager.delete(name, index)
            except (OSError, KeyError) as exc:
                log.error("partition_log_delete_failed", topic=name, partition=index,
                          error=repr(exc))
                continue
            deleted.append((name, index))
        if deleted:
            log.info("partition_logs_deleted", node_id=self.node_id, partitions=deleted,
                     reason="no longer a replica")
        return deleted

    def remove_strays(self) -> None:
        """Once this broker has caught up with the metadata log: delete local logs of
        topics the image does not have (deleted while this broker was away)."""
        if self.log_manager is None:
            return
        for name in sorted({t for t, _ in self.log_manager.partitions()}):
            if self.image.topic(name) is None:
                self._delete_local(name, "topic not in the metadata image")
        self.caught_up = True
        self.remove_unassigned(self.image)

    def _schedule_unassigned(self) -> None:
        """``remove_unassigned`` of the newest image once the current image's listeners
        have all run (at once when no event loop runs)."""
        if self._unassigned_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.remove_unassigned(self.image)
            return

        def run() -> None:
            self._unassigned_scheduled = False
            self.remove_unassigned(self.image)

        self._unassigned_scheduled = True
        loop.call_soon(run)

    # ---- image -> registry -------------------------------------------------------------
    def apply_image(self, image: MetadataImage) -> None:
        old = self.image
        self.image = image
        if image.topics is old.topics and image.configs is old.configs:
            return
        topics: dict[str, TopicInfo] = {}
        for topic in image.topics.values():
            parts = topic.partitions
            first = parts.get(0) or next(iter(parts.values()), None)
            rf = len(first.replicas) - len(first.adding_replicas) if first else 1
            topics[topic.name] = TopicInfo(
                name=topic.name, topic_id=topic.topic_id, partitions=len(parts),
                replication_factor=rf, configs=dict(image.topic_config(topic.name)))
        changed = [n for n in set(topics) | set(self._topics)
                   if topics.get(n) != self._topics.get(n)]
        # partitions whose replicas changed (a reassignment) without the topic info
        moved = [t.name for tid, t in image.topics.items()
                 if t.name not in changed and (before := old.topics.get(tid)) is not None
                 and before is not t and _replica_sets(before) != _replica_sets(t)]
        removed = [info for name, info in self._topics.items()
                   if name not in topics or topics[name].topic_id != info.topic_id]
        self._set(topics)
        if self.log_manager is not None:
            for info in removed:
                self._delete_local(info.name, "topic deleted")
            for name in changed + moved:
                if name in topics:
                    self._sync_logs(image, name)
            if self.caught_up and (changed or moved):
                self._schedule_unassigned()
        for name in sorted(changed):
            self._notify(name)

    def _sync_logs(self, image: MetadataImage, name: str) -> None:
        assert self.log_manager is not None
        topic = image.topic(name)
        if topic is None:
            return
        topic_id = str(topic.topic_id)
        recorded = self._local_ids.get(name)
        if recorded is not None and recorded != topic_id:
            # the local logs belong to an earlier topic of this name (deleted and
            # re-created while this broker was away): they must not be served as this one
            self._delete_local(name, f"logs of an earlier topic id {recorded}")
        hosted = any(self.node_id in p.replicas for p in topic.partitions.values())
        if hosted and self._local_ids.get(name) != topic_id:
            self._local_ids[name] = topic_id
            self._save_ids()
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
    def create_topic(self, name: str, partitions: int = -1, replication_factor: int = -1,
                     configs: dict[str, object] | None = None) -> TopicInfo:
        """``create_topics`` for one topic: the TopicInfo, or raises its TopicError."""
        [result] = self.create_topics(
            [NewTopicRequest(name, partitions, replication_factor, configs or {})])
        if isinstance(result, TopicError):
            raise result
        return result

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


def _replica_sets(topic: Any) -> dict[int, tuple[int, ...]]:
    """Each partition's replicas (a topic image's part that decides the local logs)."""
    return {i: p.replicas for i, p in topic.partitions.items()}
