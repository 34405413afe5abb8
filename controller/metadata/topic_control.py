"""The active controller's topic decisions as pure functions (Kafka's
ReplicationControlManager): a request plus the current ``MetadataImage`` in, the records to
append (one atomic batch) or a Kafka error out. Nothing here touches the image: the
records take effect once committed and applied.

Every function returns a ``Decision``: ``records`` to propose (empty on error) and
``error_code``/``message`` for the response. Randomness (topic ids, placement start) comes
from the ``random.Random`` the caller passes.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from common.topics.names import InvalidTopicName
from common.topics.names import validate_topic_name as _check_name
from controller.metadata.image import MetadataImage
from controller.metadata.placement import PlacementError, place_replicas
from controller.metadata.records import (
    RESOURCE_TOPIC,
    ConfigRecord,
    MetadataRecord,
    PartitionRecord,
    RemoveTopicRecord,
    TopicRecord,
)
from protocol.errors import ErrorCode

NONE = 0


@dataclass(frozen=True, slots=True)
class Decision:
    records: tuple[MetadataRecord, ...] = ()
    error_code: int = NONE
    message: str | None = None
    topic_id: uuid.UUID | None = None
    assignments: tuple[tuple[int, ...], ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.error_code == NONE


def _fail(code: ErrorCode, message: str) -> Decision:
    return Decision(error_code=int(code.value), message=message)


def validate_topic_name(name: str) -> str | None:
    """Kafka's topic name rules (``common.topics.names``); returns the problem or None."""
    try:
        _check_name(name)
    except InvalidTopicName as exc:
        return str(exc)
    return None


def new_topic_id(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def create_topic(
    image: MetadataImage,
    name: str,
    *,
    num_partitions: int = -1,
    replication_factor: int = -1,
    assignments: Mapping[int, Sequence[int]] | None = None,
    configs: Mapping[str, str | None] | None = None,
    default_partitions: int = 1,
    default_replication_factor: int = 1,
    rng: random.Random,
) -> Decision:
    """CreateTopics for one topic: TopicRecord + a PartitionRecord per partition (leader =
    first replica, ISR = all replicas) + ConfigRecords. -1 means "broker default"."""
    problem = validate_topic_name(name)
    if problem:
        return _fail(ErrorCode.invalid_topic_exception, problem)
    if image.topic(name) is not None:
        return _fail(ErrorCode.topic_already_exists, f"topic {name!r} already exists")
    live = [(b.broker_id, b.rack) for b in image.unfenced_brokers()]
    if assignments:
        if num_partitions != -1 or replication_factor != -1:
            return _fail(ErrorCode.invalid_request, "give either assignments or partition "
                         "count and replication factor, not both")
        placed = _check_assignments(image, assignments, 0)
        if isinstance(placed, Decision):
            return placed
    else:
        partitions = default_partitions if num_partitions == -1 else num_partitions
        rf = default_replication_factor if replication_factor == -1 else replication_factor
        if partitions < 1:
            return _fail(ErrorCode.invalid_partitions,
                         f"number of partitions must be at least 1, got {partitions}")
        if rf < 1 or rf > max(len(live), 1) or not live:
            return _fail(ErrorCode.invalid_replication_factor,
                         f"replication factor {rf} is not within 1..{len(live)} "
                         f"(unfenced brokers)")
        try:
            placed = place_replicas(live, partitions, rf,
                                    start_index=rng.randrange(len(live)),
                                    replica_shift=rng.randrange(len(live)))
        except PlacementError as exc:
            return _fail(ErrorCode.invalid_replication_factor, str(exc))
    topic_id = new_topic_id(rng)
    while topic_id in image.topics:
        topic_id = new_topic_id(rng)
    return _new_topic(name, topic_id, placed, {b for b, _ in live}, configs)


def adopt_topic(image: MetadataImage, name: str, topic_id: uuid.UUID, partitions: int,
                configs: Mapping[str, str], broker_id: int) -> Decision:
    """Bring a topic whose logs ``broker_id`` already holds into the metadata log with its
    own id (a lone node's topic table from before the metadata log): ``partitions``
    partitions, each with the one replica ``broker_id`` as leader."""
    problem = validate_topic_name(name)
    if problem:
        return _fail(ErrorCode.invalid_topic_exception, problem)
    if image.topic(name) is not None or topic_id in image.topics:
        return _fail(ErrorCode.topic_already_exists,
                     f"topic {name!r} or its id {topic_id} already exists")
    if partitions < 1:
        return _fail(ErrorCode.invalid_partitions,
                     f"number of partitions must be at least 1, got {partitions}")
    return _new_topic(name, topic_id, [[broker_id]] * partitions, {broker_id}, configs)


def _new_topic(name: str, topic_id: uuid.UUID, placed: Sequence[Sequence[int]],
               live_ids: set[int], configs: Mapping[str, str | None] | None) -> Decision:
    """TopicRecord + a PartitionRecord per partition (leader = first live replica, ISR =
    all replicas) + a ConfigRecord per set config."""
    records: list[MetadataRecord] = [TopicRecord(name, topic_id)]
    for index, replicas in enumerate(placed):
        leader = next((r for r in replicas if r in live_ids), -1)
        records.append(PartitionRecord(index, topic_id, tuple(replicas), tuple(replicas),
                                       leader))
    for key, value in sorted((configs or {}).items()):
        if value is not None:
            records.append(ConfigRecord(RESOURCE_TOPIC, name, key, value))
    return Decision(tuple(records), topic_id=topic_id,
                    assignments=tuple(tuple(r) for r in placed))


def _check_assignments(image: MetadataImage, assignments: Mapping[int, Sequence[int]],
                       first: int) -> list[tuple[int, ...]] | Decision:
    indexes = sorted(assignments)
    if indexes != list(range(first, first + len(indexes))):
        return _fail(ErrorCode.invalid_replica_assignment,
                     f"partition indexes must be {first}..{first + len(indexes) - 1}")
    out = []
    sizes = set()
    for index in indexes:
        replicas = tuple(assignments[index])
        if not replicas or len(set(replicas)) != len(replicas):
            return _fail(ErrorCode.invalid_replica_assignment,
                         f"partition {index}: replicas must be non-empty and distinct")
        unknown = [r for r in replicas if r not in image.brokers]
        if unknown:
            return _fail(ErrorCode.invalid_replica_assignment,
                         f"partition {index}: unknown brokers {unknown}")
        sizes.add(len(replicas))
        out.append(replicas)
    if len(sizes) > 1:
        return _fail(ErrorCode.invalid_replica_assignment,
                     "all partitions must have the same replication factor")
    return out


def delete_topic(image: MetadataImage, name: str) -> Decision:
    topic = image.topic(name)
    if topic is None:
        return _fail(ErrorCode.unknown_topic_or_partition, f"topic {name!r} does not exist")
    return Decision((RemoveTopicRecord(topic.topic_id),), topic_id=topic.topic_id)


def create_partitions(image: MetadataImage, name: str, count: int, *,
                      assignments: Sequence[Sequence[int]] | None = None,
                      rng: random.Random) -> Decision:
    """CreatePartitions: grow ``name`` to ``count`` partitions (never shrink)."""
    topic = image.topic(name)
    if topic is None:
        return _fail(ErrorCode.unknown_topic_or_partition, f"topic {name!r} does not exist")
    current = len(topic.partitions)
    if count <= current:
        return _fail(ErrorCode.invalid_partitions,
                     f"topic {name!r} has {current} partitions; the new count {count} must "
                     "be larger")
    # the replication factor: the first partition's replicas not being added by a
    # reassignment (during one, its replicas are the target plus those being removed)
    first = topic.partitions.get(0) or next(iter(topic.partitions.values()), None)
    rf = len(first.replicas) - len(first.adding_replicas) if first else 1
    live = [(b.broker_id, b.rack) for b in image.unfenced_brokers()]
    if assignments is not None:
        if len(assignments) != count - current:
            return _fail(ErrorCode.invalid_replica_assignment,
                         f"{len(assignments)} assignments for {count - current} new partitions")
        placed = _check_assignments(image, dict(enumerate(assignments, current)), current)
        if isinstance(placed, Decision):
            return placed
    else:
        try:
            placed = place_replicas(live, count - current, rf,
                                    start_index=rng.randrange(max(len(live), 1)),
                                    first_partition=current)
        except PlacementError as exc:
            return _fail(ErrorCode.invalid_replication_factor, str(exc))
    live_ids = {b for b, _ in live}
    records = tuple(
        PartitionRecord(current + i, topic.topic_id, tuple(r), tuple(r),
                        next((b for b in r if b in live_ids), -1))
        for i, r in enumerate(placed))
    return Decision(records, topic_id=topic.topic_id, assignments=tuple(placed))


def alter_topic_configs(image: MetadataImage, name: str,
                        changes: Mapping[str, str | None]) -> Decision:
    """Set (value) or delete (None) topic configs. Validation of keys/values belongs to
    the caller (the broker's topic-config rules); this only checks the topic exists."""
    if image.topic(name) is None:
        return _fail(ErrorCode.unknown_topic_or_partition, f"topic {name!r} does not exist")
    return Decision(tuple(ConfigRecord(RESOURCE_TOPIC, name, k, v)
                          for k, v in sorted(changes.items())))
