"""ClusterTopicRegistry on a real LogManager: topics and local logs follow the image.

- a partition assigned to this broker gets a log; one assigned elsewhere does not;
- a topic config in the image reaches the live log;
- a deleted topic's logs go;
- after a restart, logs left by an earlier topic of the same name (deleted and re-created
  while this broker was away) are never served as the new topic;
- logs of topics the image no longer has are removed by ``remove_strays``;
- the staging registry starts every new partition with every replica in the ISR;
- the replica manager leads what the image says this broker leads, with its epoch.
"""

from __future__ import annotations

import random
import uuid
from pathlib import Path

from broker.cluster.registry import ClusterTopicRegistry
from broker.cluster.staging import StagingRegistry
from broker.topics import BrokerDefaults, NewTopicRequest
from controller.metadata.image import MetadataImage, apply_all
from controller.metadata.records import (
    RESOURCE_TOPIC,
    ConfigRecord,
    Endpoint,
    PartitionRecord,
    RegisterBrokerRecord,
    RemoveTopicRecord,
    TopicRecord,
)
from protocol.errors import ErrorCode
from protocol.records import Record, build_batch
from replication.fetch_purgatory import FetchPurgatory
from replication.partition import Assignment
from replication.replica_manager import ReplicaManager
from storage.log_config import LogConfig
from storage.log_manager import LogManager

NODE = 1


def open_registry(data: Path) -> tuple[ClusterTopicRegistry, LogManager]:
    logs = LogManager(data, LogConfig())
    logs.startup(0)
    registry = ClusterTopicRegistry(data, BrokerDefaults(), log_manager=logs, node_id=NODE)
    assert registry.open() == []
    return registry, logs


def topic(image: MetadataImage, name: str, leaders: list[int]) -> tuple[MetadataImage, uuid.UUID]:
    tid = uuid.uuid4()
    records = [TopicRecord(name, tid)] + [
        PartitionRecord(i, tid, (leader,), (leader,), leader) for i, leader in enumerate(leaders)]
    return apply_all(image, records), tid


def test_logs_follow_the_image_and_stale_logs_are_never_served(tmp_path: Path) -> None:
    registry, logs = open_registry(tmp_path)
    image, tid = topic(MetadataImage(), "orders", [1, 2, 1])
    image = apply_all(image, [ConfigRecord(RESOURCE_TOPIC, "orders", "retention.ms", "60000")])
    registry.apply_image(image)
    info = registry.get("orders")
    assert info is not None and info.partitions == 3 and info.topic_id == tid
    assert sorted(logs.partitions()) == [("orders", 0), ("orders", 2)]
    assert logs.get("orders", 0).config.retention_ms == 60000

    replicas = replica_manager(logs, image)
    assert replicas.log("orders", 0) is not None
    assert replicas.log("orders", 1) is None
    assert replicas.missing_error("orders", 1) == ErrorCode.not_leader_or_follower
    assert replicas.missing_error("nope", 0) == ErrorCode.unknown_topic_or_partition
    replicas.append(logs.get("orders", 0), build_batch([Record(0, 0, b"k", b"old", [])]), 0)
    close(replicas)
    logs.shutdown()

    # restart: meanwhile "orders" was deleted and re-created with a new id
    registry, logs = open_registry(tmp_path)
    image2, tid2 = topic(MetadataImage(), "orders", [1])
    registry.apply_image(image2)
    assert registry.get("orders").topic_id == tid2  # type: ignore[union-attr]
    assert logs.get("orders", 0).log_end_offset == 0  # the old record is gone
    assert logs.get("orders", 2) is None

    # a topic the image does not know (deleted while away) goes once caught up
    logs.create("gone", 0, LogConfig())
    registry.remove_strays()
    assert sorted(logs.partitions()) == [("orders", 0)]

    registry.apply_image(apply_all(image2, [RemoveTopicRecord(tid2)]))
    assert registry.get("orders") is None and list(logs.partitions()) == []
    logs.shutdown()


def test_auto_creation_is_forwarded_and_answers_leader_not_available(tmp_path: Path) -> None:
    registry, logs = open_registry(tmp_path)
    asked: list[str] = []
    registry.request_create = lambda requests: asked.extend(r.name for r in requests)
    image, _ = topic(MetadataImage(), "exists", [1])
    registry.apply_image(image)
    [new, old] = registry.create_topics([NewTopicRequest("fresh"), NewTopicRequest("exists")])
    assert new.error_code == ErrorCode.leader_not_available  # type: ignore[union-attr]
    assert old.error_code == ErrorCode.topic_already_exists  # type: ignore[union-attr]
    assert asked == ["fresh"]
    logs.shutdown()


def test_new_partitions_start_with_every_replica_in_sync() -> None:
    image = apply_all(MetadataImage(), [
        RegisterBrokerRecord(b, uuid.uuid4(), b, (Endpoint("PLAINTEXT", "h", 9000 + b),),
                             fenced=False) for b in (1, 2, 3)])
    staging = StagingRegistry(image, BrokerDefaults(), default_partitions=1,
                              default_replication_factor=1, rng=random.Random(1))
    [info] = staging.create_topics([NewTopicRequest("rf3", 4, 3)])
    assert info.replication_factor == 3  # type: ignore[union-attr]
    parts = staging.image.topic("rf3").partitions  # type: ignore[union-attr]
    assert all(len(p.replicas) == 3 and p.isr == p.replicas for p in parts.values())
    staging.create_partitions("rf3", 6)
    parts = staging.image.topic("rf3").partitions  # type: ignore[union-attr]
    assert len(parts) == 6 and all(p.isr == p.replicas for p in parts.values())


def test_batches_carry_the_leader_epoch_of_the_image(tmp_path: Path) -> None:
    """After a leader change (epoch 0 → 1 → 2 while this broker leads at 0 and 2), every
    batch appended here carries the image's leader epoch; the log's leader-epoch cache
    (OffsetForLeaderEpoch) starts each epoch where its first batch landed."""
    from controller.metadata.records import PartitionChangeRecord
    from protocol.records import iter_batches

    registry, logs = open_registry(tmp_path)
    image, tid = topic(MetadataImage(), "moves", [NODE])
    image = apply_all(image, [PartitionChangeRecord(0, tid, replicas=(NODE, 2), isr=(NODE, 2))])
    registry.apply_image(image)
    replicas = replica_manager(logs, image)
    log = logs.get("moves", 0)
    replicas.append(log, build_batch([Record(0, 0, b"k", b"a", [])]), 0)
    image = apply_all(image, [PartitionChangeRecord(0, tid, leader=2)])
    image = apply_all(image, [PartitionChangeRecord(0, tid, leader=NODE)])
    registry.apply_image(image)
    assign(replicas, image)
    part = image.partition("moves", 0)
    assert part is not None and part.leader == NODE and part.leader_epoch == 2
    assert replicas.leader_epoch("moves", 0) == 2
    replicas.append(log, build_batch([Record(0, 0, b"k", b"b", [])]), 0)
    data = log.read(0, 1 << 20).records
    assert [h.partition_leader_epoch for _, h in iter_batches(bytes(data))] == [0, 2]
    assert log.end_offset_for_epoch(0) == (0, 1)
    assert log.end_offset_for_epoch(1) == (0, 1)
    assert log.end_offset_for_epoch(2) == (2, 2)

    # leader moves away and back (epoch 4) with no append yet: OffsetForLeaderEpoch
    # answers the current epoch from the log end, as Kafka's new leader does
    image = apply_all(image, [PartitionChangeRecord(0, tid, leader=2),
                              PartitionChangeRecord(0, tid, leader=NODE)])
    registry.apply_image(image)
    assign(replicas, image)
    assert replicas.leader_epoch("moves", 0) == 4
    assert offset_for_leader_epoch(replicas, "moves", [(4, 4), (2, 4), (0, 4), (5, 4), (4, 5)]
                                   ) == [(0, 4, 2), (0, 2, 2), (0, 0, 1), (0, 4, 2),
                                         (int(ErrorCode.unknown_leader_epoch), -1, -1)]
    close(replicas)
    logs.shutdown()


def replica_manager(logs: LogManager, image: MetadataImage) -> ReplicaManager:
    replicas = ReplicaManager(logs, NODE, FetchPurgatory())
    assign(replicas, image)
    return replicas


def assign(replicas: ReplicaManager, image: MetadataImage) -> None:
    """What the cluster node does with each image (this broker serving)."""
    replicas.apply_assignments(
        {(t.name, i): Assignment(p.leader, p.leader_epoch, p.partition_epoch, p.replicas,
                                 p.isr)
         for t in image.topics.values() for i, p in t.partitions.items()},
        topic_ids={t.name: t.topic_id for t in image.topics.values()},
        broker_epochs={NODE: 0}, eligible=frozenset({NODE}), serving=True, now_ms=0)


def close(replicas: ReplicaManager) -> None:
    import asyncio

    asyncio.run(replicas.close())


def offset_for_leader_epoch(replicas: ReplicaManager, topic: str,
                            asks: list[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """OffsetForLeaderEpoch v4 through its handler: [(leader_epoch, current_leader_epoch)]
    → [(error_code, leader_epoch, end_offset)]."""
    import asyncio
    from types import SimpleNamespace

    from kio.schema.offset_for_leader_epoch.v4 import request as req

    from broker.handlers import RequestContext
    from broker.handlers.offset_for_leader_epoch import handle
    from protocol.headers import RequestHeader

    ctx = RequestContext(SimpleNamespace(replica_manager=replicas),  # type: ignore[arg-type]
                         RequestHeader(23, 4, 1, "t", 2, 0), "test", 1)
    body = req.OffsetForLeaderEpochRequest(topics=(req.OffsetForLeaderTopic(
        topic=topic, partitions=tuple(
            req.OffsetForLeaderPartition(partition=0, leader_epoch=epoch,
                                         current_leader_epoch=current)
            for epoch, current in asks)),))
    response = asyncio.run(handle(ctx, body))
    return [(int(p.error_code), int(p.leader_epoch), int(p.end_offset))
            for p in response.topics[0].partitions]


def test_reassignment_creates_and_deletes_local_logs_only_once_caught_up(
        tmp_path: Path) -> None:
    """A reassignment adding this broker creates its log (the replication factor stays
    that of the replicas not being added); one removing it deletes the log, but only
    after ``remove_strays`` (caught up) and never while the image assigns it here."""
    from controller.metadata.records import PartitionChangeRecord

    registry, logs = open_registry(tmp_path)
    tid = uuid.uuid4()
    image = apply_all(MetadataImage(), [
        TopicRecord("moving", tid), PartitionRecord(0, tid, (2, 3), (2, 3), 2),
        PartitionRecord(1, tid, (1, 2), (1, 2), 1)])
    registry.apply_image(image)
    assert sorted(logs.partitions()) == [("moving", 1)]
    # partition 0 gains this broker: its log is created, the factor stays 2
    image = apply_all(image, [PartitionChangeRecord(
        0, tid, replicas=(1, 3, 2), removing_replicas=(2,), adding_replicas=(1,))])
    registry.apply_image(image)
    assert sorted(logs.partitions()) == [("moving", 0), ("moving", 1)]
    assert registry.get("moving").replication_factor == 2  # type: ignore[union-attr]
    # partition 1 moves away before this broker caught up: the log stays
    image = apply_all(image, [PartitionChangeRecord(1, tid, replicas=(2, 3), isr=(2, 3),
                                                    leader=2)])
    registry.apply_image(image)
    assert registry.remove_unassigned(image) == []
    assert ("moving", 1) in logs.partitions()
    # caught up: the log of partition 1 goes, partition 0's (still assigned) stays
    registry.remove_strays()
    assert sorted(logs.partitions()) == [("moving", 0)]
    # later moves delete at once (no event loop running here)
    image = apply_all(image, [PartitionChangeRecord(
        0, tid, replicas=(3, 2), isr=(3, 2), leader=3, removing_replicas=(),
        adding_replicas=())])
    registry.apply_image(image)
    assert sorted(logs.partitions()) == []
    assert (tmp_path / "moving-0").exists() is False
