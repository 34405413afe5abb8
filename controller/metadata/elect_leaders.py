"""Administrative and periodic leader elections as pure functions (Kafka's
``ReplicationControlManager.electLeaders`` / ``maybeBalancePartitionLeaders`` and the
ZooKeeper controller's ``checkAndTriggerAutoLeaderRebalance``): the image in, the
``PartitionChangeRecord``s to write (one atomic batch) and the per-partition answers out.

ElectLeaders (KIP-460), per partition, against the unfenced ("live") brokers of the image:
- unknown topic or partition → UNKNOWN_TOPIC_OR_PARTITION;
- PREFERRED (0): the preferred replica is the first of the assignment. It already leads →
  ELECTION_NOT_NEEDED; it is live and in the ISR → it becomes leader (NONE); otherwise
  PREFERRED_LEADER_NOT_AVAILABLE and nothing changes;
- UNCLEAN (1): a live leader → ELECTION_NOT_NEEDED; otherwise the first live ISR member in
  assignment order, else the first live replica with the ISR reset to it alone (this may
  lose committed records: the admin request means it, whatever the topic's
  ``unclean.leader.election.enable`` says) → NONE; no live replica →
  ELIGIBLE_LEADERS_NOT_AVAILABLE;
- any other election type → INVALID_REQUEST for the whole request;
- ``topic_partitions`` None means every partition of every topic; then, as Kafka does,
  every topic is listed but partitions answered ELECTION_NOT_NEEDED are left out.
Each election sees the ones before it in the same request (a partition named twice is
elected once, then ELECTION_NOT_NEEDED).

Leader rebalance (``auto.leader.rebalance.enable``): partitions are grouped by preferred
replica; for a broker whose imbalance ratio (its preferred partitions led by someone else,
over all its preferred partitions) exceeds ``leader.imbalance.per.broker.percentage`` /
100, each of those partitions whose preferred replica is live and in the ISR is handed
back to it. At most ``limit`` changes per batch (the caller checks again at once when more
remain).

``unclean_enabled`` resolves ``unclean.leader.election.enable`` for a topic: the topic's
own config in the image, else the broker default given by the caller;
``elect_unclean_leaderless`` is the periodic check that applies it to partitions already
offline (the config may have been turned on after they lost their leader).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence, Set
from dataclasses import dataclass

from controller.metadata.election import choose_leader, elect
from controller.metadata.image import MetadataImage, PartitionRegistration, apply
from controller.metadata.records import PartitionChangeRecord
from protocol.errors import ErrorCode

PREFERRED = 0
UNCLEAN = 1
UNCLEAN_KEY = "unclean.leader.election.enable"

NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = int(ErrorCode.unknown_topic_or_partition.value)
ELECTION_NOT_NEEDED = int(ErrorCode.election_not_needed.value)
PREFERRED_LEADER_NOT_AVAILABLE = int(ErrorCode.preferred_leader_not_available.value)
ELIGIBLE_LEADERS_NOT_AVAILABLE = int(ErrorCode.eligible_leaders_not_available.value)
INVALID_REQUEST = int(ErrorCode.invalid_request.value)

#: Kafka's default messages for the errors this module answers with
MESSAGES = {
    ELECTION_NOT_NEEDED: "Leader election not needed for topic partition.",
    PREFERRED_LEADER_NOT_AVAILABLE: "The preferred leader was not available.",
    ELIGIBLE_LEADERS_NOT_AVAILABLE: "Eligible topic partition leaders are not available.",
}
#: Kafka's cap on the elections of one rebalance batch (``maxElectionsPerImbalance``)
MAX_ELECTIONS_PER_BALANCE = 1000


@dataclass(frozen=True, slots=True)
class PartitionResult:
    partition: int
    error_code: int = NONE
    message: str | None = None


@dataclass(frozen=True, slots=True)
class ElectLeadersDecision:
    """``records`` to write as one batch; ``results`` per topic in request order (every
    topic of the image, by name, for an all-partitions request); ``error_code`` is the
    top-level error (NONE unless the request itself is invalid)."""

    records: tuple[PartitionChangeRecord, ...] = ()
    results: tuple[tuple[str, tuple[PartitionResult, ...]], ...] = ()
    error_code: int = NONE
    message: str | None = None


def unclean_enabled(image: MetadataImage, topic: str, default: bool) -> bool:
    """``unclean.leader.election.enable`` of ``topic``: its own config in the image, else
    ``default`` (the broker's setting). Kafka's boolean parsing: "true" in any case."""
    value = image.topic_config(topic).get(UNCLEAN_KEY)
    if value is None:
        return default
    return value.strip().lower() == "true"


def live_brokers(image: MetadataImage) -> frozenset[int]:
    return frozenset(b.broker_id for b in image.unfenced_brokers())


def elect_partition(image: MetadataImage, topic: str, index: int, election_type: int,
                    live: Set[int]) -> tuple[PartitionChangeRecord | None, PartitionResult]:
    """One partition's election (see the module doc): the record to write (or None) and
    the answer. ``election_type`` must be PREFERRED or UNCLEAN."""
    t = image.topic(topic)
    if t is None:
        return None, PartitionResult(index, UNKNOWN_TOPIC_OR_PARTITION,
                                     f"No such topic as {topic}")
    part = t.partitions.get(index)
    if part is None:
        return None, PartitionResult(index, UNKNOWN_TOPIC_OR_PARTITION,
                                     f"No such partition as {topic}-{index}")
    if election_type == PREFERRED:
        if part.leader == part.replicas[0]:
            return None, _failed(index, ELECTION_NOT_NEEDED)
        record = preferred_change(t.topic_id, index, part, live)
        if record is None:
            return None, _failed(index, PREFERRED_LEADER_NOT_AVAILABLE)
        return record, PartitionResult(index)
    if part.leader in live:
        return None, _failed(index, ELECTION_NOT_NEEDED)
    leader, isr = choose_leader(part, live, unclean=True)
    if leader < 0:
        return None, _failed(index, ELIGIBLE_LEADERS_NOT_AVAILABLE)
    return PartitionChangeRecord(index, t.topic_id, isr=None if isr == part.isr else isr,
                                 leader=leader), PartitionResult(index)


def preferred_change(topic_id: uuid.UUID, index: int, part: PartitionRegistration,
                     live: Set[int]) -> PartitionChangeRecord | None:
    """The change that makes the preferred replica leader, if it does not lead and is
    live and in the ISR; else None."""
    preferred = part.replicas[0]
    if part.leader == preferred or preferred not in live or preferred not in part.isr:
        return None
    return PartitionChangeRecord(index, topic_id, leader=preferred)


def _failed(index: int, code: int) -> PartitionResult:
    return PartitionResult(index, code, MESSAGES.get(code))


def elect_leaders(image: MetadataImage, election_type: int,
                  topic_partitions: Sequence[tuple[str, Sequence[int]]] | None
                  ) -> ElectLeadersDecision:
    """ElectLeaders against ``image`` (see the module doc). ``topic_partitions``: (topic,
    partitions) in request order, or None for every partition."""
    if election_type not in (PREFERRED, UNCLEAN):
        message = f"Unknown election type {election_type}"
        named = [] if topic_partitions is None else topic_partitions
        return ElectLeadersDecision(
            results=tuple((topic, tuple(PartitionResult(p, INVALID_REQUEST, message)
                                        for p in parts)) for topic, parts in named),
            error_code=INVALID_REQUEST, message=message)
    everything = topic_partitions is None
    if topic_partitions is None:
        topic_partitions = [(t.name, sorted(t.partitions))
                            for t in sorted(image.topics.values(), key=lambda t: t.name)]
    live = live_brokers(image)
    working = image
    records: list[PartitionChangeRecord] = []
    results = []
    for topic, partitions in topic_partitions:
        answers = []
        for index in partitions:
            record, answer = elect_partition(working, topic, int(index), election_type, live)
            if record is not None:
                records.append(record)
                working = apply(working, record)
            if not (everything and answer.error_code == ELECTION_NOT_NEEDED):
                answers.append(answer)
        results.append((topic, tuple(answers)))
    return ElectLeadersDecision(tuple(records), tuple(results))


def imbalance_ratios(image: MetadataImage) -> dict[int, float]:
    """Preferred replica → the share of its preferred partitions led by someone else."""
    total: dict[int, int] = {}
    elsewhere: dict[int, int] = {}
    for t in image.topics.values():
        for part in t.partitions.values():
            preferred = part.replicas[0]
            total[preferred] = total.get(preferred, 0) + 1
            if part.leader != preferred:
                elsewhere[preferred] = elsewhere.get(preferred, 0) + 1
    return {b: elsewhere.get(b, 0) / n for b, n in sorted(total.items())}


def elect_unclean_leaderless(image: MetadataImage, unclean_default: bool, *,
                             limit: int = MAX_ELECTIONS_PER_BALANCE
                             ) -> tuple[tuple[PartitionChangeRecord, ...], bool]:
    """The periodic unclean check (Kafka's ``unclean.leader.election.interval.ms``,
    KAFKA-12670): every partition without a live leader, of a topic that allows unclean
    election (its config, else ``unclean_default``), gets a live ISR member or else the
    first live replica with the ISR reset to it — so turning the config on at runtime
    brings offline partitions back. (records, whether more remained beyond ``limit``)."""
    live = live_brokers(image)
    records: list[PartitionChangeRecord] = []
    for t in sorted(image.topics.values(), key=lambda t: t.name):
        if not unclean_enabled(image, t.name, unclean_default):
            continue
        for index, part in sorted(t.partitions.items()):
            change = elect(t.topic_id, index, part, live, unclean=True)
            if change is None or change.leader < 0:
                continue
            if len(records) >= limit:
                return tuple(records), True
            records.append(change)
    return tuple(records), False


def rebalance_leaders(image: MetadataImage, imbalance_percentage: int, *,
                      limit: int = MAX_ELECTIONS_PER_BALANCE
                      ) -> tuple[tuple[PartitionChangeRecord, ...], bool]:
    """The preferred-leader elections of one auto-rebalance check (see the module doc):
    (records, whether more elections remained beyond ``limit``)."""
    ratios = imbalance_ratios(image)
    over = {b for b, ratio in ratios.items() if ratio > imbalance_percentage / 100}
    if not over:
        return (), False
    live = live_brokers(image)
    records: list[PartitionChangeRecord] = []
    for t in sorted(image.topics.values(), key=lambda t: t.name):
        for index, part in sorted(t.partitions.items()):
            if part.replicas[0] not in over:
                continue
            record = preferred_change(t.topic_id, index, part, live)
            if record is None:
                continue
            if len(records) >= limit:
                return tuple(records), True
            records.append(record)
    return tuple(records), False


__all__ = [
    "ELECTION_NOT_NEEDED", "ELIGIBLE_LEADERS_NOT_AVAILABLE", "INVALID_REQUEST",
    "MAX_ELECTIONS_PER_BALANCE", "PREFERRED",
    "PREFERRED_LEADER_NOT_AVAILABLE", "UNCLEAN", "UNCLEAN_KEY",
    "UNKNOWN_TOPIC_OR_PARTITION", "ElectLeadersDecision", "PartitionResult",
    "elect_leaders", "elect_unclean_leaderless", "elect_partition", "imbalance_ratios",
    "live_brokers", "preferred_change", "rebalance_leaders", "unclean_enabled",
]
