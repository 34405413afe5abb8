"""Admission rules for topic changes (the broker's and the active controller's). Pure:
values in, values or TopicError out.

Each ``check_*`` function answers the question a handler asks ("may this topic be created
like this?") with the normalized result, or raises :class:`TopicError` carrying the Kafka
error code and Kafka's message wording.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from kio.schema.errors import ErrorCode

from common.topics.configs import (
    BrokerDefaults,
    InvalidConfig,
    normalize_overrides,
    validate_effective,
)
from common.topics.model import TopicInfo
from common.topics.names import (
    InvalidTopicName,
    find_collision,
    reserved_prefix_error,
    validate_topic_name,
)

#: Refuse absurd partition counts (each partition is a directory with open files).
MAX_PARTITIONS_PER_TOPIC = 10_000
#: ... and absurd totals on one node (each partition is a directory, files and memory).
MAX_PARTITIONS_PER_NODE = 100_000


class TopicError(Exception):
    """A refused topic operation: ``error_code`` (kio ErrorCode) and a human message."""

    def __init__(self, error_code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message

    def __repr__(self) -> str:
        return f"TopicError({self.error_code.name}, {self.message!r})"


def check_name(name: str | None) -> str:
    try:
        validate_topic_name(name)
    except InvalidTopicName as exc:
        raise TopicError(ErrorCode.invalid_topic_exception, str(exc)) from None
    assert name is not None
    return name


def check_configs(configs: Mapping[str, object], broker: BrokerDefaults) -> dict[str, str]:
    """Validate topic config overrides (names, values, cross-key rules) → canonical strings."""
    try:
        normalized = normalize_overrides(configs)
        validate_effective(normalized, broker)
    except InvalidConfig as exc:
        raise TopicError(ErrorCode.invalid_config, str(exc)) from None
    return normalized


def check_node_total(existing: Mapping[str, TopicInfo], adding: int) -> None:
    """Refuse growth past MAX_PARTITIONS_PER_NODE partitions on this node."""
    total = sum(t.partitions for t in existing.values())
    if total + adding > MAX_PARTITIONS_PER_NODE:
        raise TopicError(
            ErrorCode.invalid_partitions,
            f"Adding {adding} partitions would exceed this broker's limit of "
            f"{MAX_PARTITIONS_PER_NODE} partitions ({total} exist).",
        )


def check_partition_count(count: int) -> None:
    if count < 1:
        raise TopicError(
            ErrorCode.invalid_partitions, "Number of partitions must be larger than 0."
        )
    if count > MAX_PARTITIONS_PER_TOPIC:
        raise TopicError(
            ErrorCode.invalid_partitions,
            f"Number of partitions {count} exceeds this broker's limit of "
            f"{MAX_PARTITIONS_PER_TOPIC} per topic.",
        )


def check_replication_factor(factor: int, broker: BrokerDefaults, live_brokers: int) -> int:
    """-1 → default.replication.factor; anything but a factor the live brokers can hold fails."""
    if factor == -1:
        factor = broker.default_replication_factor
    if factor < 1:
        raise TopicError(
            ErrorCode.invalid_replication_factor,
            "Replication factor must be larger than 0, or -1 to use the default value.",
        )
    if factor > live_brokers:
        raise TopicError(
            ErrorCode.invalid_replication_factor,
            f"Unable to replicate the partition {factor} time(s): The target replication factor "
            f"of {factor} cannot be reached because only {live_brokers} broker(s) are registered.",
        )
    return factor


def check_create(
    existing: Mapping[str, TopicInfo],
    name: str | None,
    num_partitions: int,
    replication_factor: int,
    configs: Mapping[str, object],
    broker: BrokerDefaults,
    *,
    node_id: int,
    assignments: Sequence[tuple[int, Sequence[int]]] = (),
    live_brokers: int,
    registered: Collection[int],
) -> tuple[int, int, dict[str, str]]:
    """CreateTopics admission → (partitions, replication_factor, canonical config overrides).

    ``assignments`` is the manual replica assignment [(partition_index, broker_ids)], which
    Kafka allows instead of num_partitions/replication_factor (both then -1).
    ``live_brokers`` (unfenced) bounds the replication factor; ``registered`` are the broker
    ids an assignment may name.
    """
    name = check_name(name)
    reserved = reserved_prefix_error(name)
    if reserved is not None:
        raise TopicError(ErrorCode.invalid_topic_exception, reserved)
    if name in existing:
        raise TopicError(ErrorCode.topic_already_exists, f"Topic '{name}' already exists.")
    collision = find_collision(name, existing)
    if collision is not None:
        raise TopicError(
            ErrorCode.invalid_topic_exception,
            f"Topic '{name}' collides with existing topic: {collision}",
        )
    if assignments:
        if num_partitions != -1 or replication_factor != -1:
            raise TopicError(
                ErrorCode.invalid_request,
                "Both numPartitions or replicationFactor and replicasAssignments were set. "
                "Both cannot be used at the same time.",
            )
        num_partitions, replication_factor = check_assignments(
            assignments, node_id, registered=registered)
    else:
        if num_partitions == -1:
            num_partitions = broker.num_partitions
        replication_factor = check_replication_factor(replication_factor, broker, live_brokers)
    check_partition_count(num_partitions)
    check_node_total(existing, num_partitions)
    return num_partitions, replication_factor, check_configs(configs, broker)


def check_assignments(
    assignments: Sequence[tuple[int, Sequence[int]]], node_id: int, first_partition: int = 0,
    *, registered: Collection[int],
) -> tuple[int, int]:
    """A manual assignment → (partition count, replication factor): consecutive partition
    indexes, each with distinct brokers among ``registered`` and one replication factor for
    all (``node_id``: this broker, named in the message when it is the only one)."""
    known = set(registered)
    indexes = sorted(index for index, _ in assignments)
    expected = list(range(first_partition, first_partition + len(assignments)))
    if indexes != expected:
        raise TopicError(
            ErrorCode.invalid_replica_assignment,
            f"Partitions in the replica assignment must be consecutive from {first_partition}; "
            f"got {indexes}.",
        )
    for index, brokers in assignments:
        if len(brokers) == 0:
            raise TopicError(
                ErrorCode.invalid_replica_assignment,
                f"The manual partition assignment for partition {index} is empty.",
            )
        if len(set(brokers)) != len(brokers):
            raise TopicError(
                ErrorCode.invalid_replica_assignment,
                f"The manual partition assignment for partition {index} contains duplicates.",
            )
        unknown = [b for b in brokers if b not in known]
        if unknown:
            only = (f"broker {node_id} is" if known == {node_id}
                    else f"brokers {sorted(known)} are")
            raise TopicError(
                ErrorCode.invalid_replica_assignment,
                f"The manual partition assignment includes broker(s) {unknown}, but only "
                f"{only} registered.",
            )
    factors = {len(brokers) for _, brokers in assignments}
    if len(factors) > 1:
        raise TopicError(
            ErrorCode.invalid_replica_assignment,
            "All partitions in the manual partition assignment must have the same number "
            "of replicas.",
        )
    return len(assignments), factors.pop()


def check_create_partitions(
    topic: TopicInfo | None, name: str, count: int,
    assignments: Sequence[Sequence[int]] | None, *, node_id: int,
    registered: Collection[int],
) -> int:
    """CreatePartitions admission: the new total must exceed the current count."""
    if topic is None:
        raise TopicError(
            ErrorCode.unknown_topic_or_partition, f"This server does not host topic '{name}'."
        )
    if count < topic.partitions:
        raise TopicError(
            ErrorCode.invalid_partitions,
            f"Topic currently has {topic.partitions} partitions, which is higher than the "
            f"requested {count}.",
        )
    if count == topic.partitions:
        raise TopicError(
            ErrorCode.invalid_partitions, f"Topic already has {topic.partitions} partitions."
        )
    check_partition_count(count)
    if assignments is not None:
        if len(assignments) != count - topic.partitions:
            raise TopicError(
                ErrorCode.invalid_replica_assignment,
                f"Increasing the number of partitions by {count - topic.partitions} but "
                f"{len(assignments)} assignments provided.",
            )
        check_assignments(
            [(topic.partitions + i, b) for i, b in enumerate(assignments)],
            node_id, topic.partitions, registered=registered,
        )
    return count


def unknown_topic(name: str) -> TopicError:
    return TopicError(
        ErrorCode.unknown_topic_or_partition, f"This server does not host topic '{name}'."
    )
