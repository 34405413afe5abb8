"""Partition reassignment (KIP-455; ``kafka-reassign-partitions.sh``, AdminClient
``alterPartitionReassignments`` / ``listPartitionReassignments``) as pure decisions of the
active controller (Kafka's ``ReplicationControlManager`` with ``PartitionChangeBuilder``):
the image in, the ``PartitionChangeRecord``s to write (one atomic batch) and the answers
out.

A reassignment moves a partition from its current replicas to a *target* list:
- Start: ``replicas`` becomes target + (current - target) (target first, so the target's
  first replica is the preferred leader), ``adding_replicas`` = target - current,
  ``removing_replicas`` = current - target. The ISR and the leader do not change: the
  new replicas' brokers create the log when they see themselves in the replicas and
  follow the leader, which adds them to the ISR (AlterPartition) once they caught up.
  A new target while a reassignment is in progress is taken against the replicas of the
  image (so a replica the earlier one was adding and the new one does not want is
  removed), except that a replica the earlier one was still adding stays *adding* when
  the new target keeps it (Kafka would count it as present; this waits until it is in
  sync). A target equal to the replicas with nothing in progress writes nothing.
- Completion (``completion``, ``fold_completion``): once every adding replica is in the
  ISR, the same change that made it so also writes replicas = target, ISR = ISR without
  the removed replicas, adding/removing cleared, and the leader epoch bumped when
  replicas leave (their fetches are fenced, as Kafka does); a leader being removed (or
  no leader) gives way to the first target replica in the ISR on a live broker (none:
  no leader). It waits while no ISR member would remain. The active controller folds it
  into every ISR change it writes (AlterPartition, ``isr_control``; fencing and
  unfencing, ``broker_control``; and, through ``complete_all`` on every batch it
  proposes, elections and lost-data changes), and into the start itself (a reassignment
  that only removes replicas, or adds ones already in sync, completes at once).
- Cancel (a null target): replicas = current - adding (in their current order), ISR
  without the adding replicas, adding/removing cleared, a new leader if the leader was
  one being added. If no ISR member would remain, the first remaining replica becomes
  the ISR only where unclean election is allowed for the topic; otherwise
  INVALID_REPLICA_ASSIGNMENT and nothing changes. No reassignment in progress →
  NO_REASSIGNMENT_IN_PROGRESS.

Per partition of AlterPartitionReassignments, in order: unknown topic or partition →
UNKNOWN_TOPIC_OR_PARTITION; an empty target, a broker named twice or a broker that is not
registered → INVALID_REPLICA_ASSIGNMENT; ``allow_replication_factor_change`` False (v1)
and a target whose size differs from the replication factor (the replicas not being
added) → INVALID_REPLICATION_FACTOR. Each partition's decision sees the earlier ones of
the same request.

ListPartitionReassignments (``ongoing``): every partition with a reassignment in progress
(or only those among the named ones; unknown names are skipped, as Kafka does), with its
replicas, adding and removing replicas.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence, Set
from dataclasses import dataclass

from controller.metadata.image import MetadataImage, PartitionRegistration, apply
from controller.metadata.records import (
    NO_LEADER,
    NO_LEADER_CHANGE,
    FenceBrokerRecord,
    MetadataRecord,
    PartitionChangeRecord,
    RegisterBrokerRecord,
    UnfenceBrokerRecord,
    UnregisterBrokerRecord,
)
from protocol.errors import ErrorCode

NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = int(ErrorCode.unknown_topic_or_partition)
INVALID_REPLICA_ASSIGNMENT = int(ErrorCode.invalid_replica_assignment)
INVALID_REPLICATION_FACTOR = int(ErrorCode.invalid_replication_factor)
NO_REASSIGNMENT_IN_PROGRESS = int(ErrorCode.no_reassignment_in_progress)

#: a target replica list, or None to cancel
Target = Sequence[int] | None


@dataclass(frozen=True, slots=True)
class PartitionResult:
    partition: int
    error_code: int = NONE
    message: str | None = None


@dataclass(frozen=True, slots=True)
class ReassignmentDecision:
    """``records`` to write as one batch; ``results`` per topic in request order."""

    records: tuple[PartitionChangeRecord, ...] = ()
    results: tuple[tuple[str, tuple[PartitionResult, ...]], ...] = ()


# ---- completion ---------------------------------------------------------------------
def merged(part: PartitionRegistration, change: PartitionChangeRecord) -> PartitionRegistration:
    """``part`` with ``change`` applied (as ``image.apply`` does, without its checks)."""
    leader, leader_epoch = part.leader, part.leader_epoch
    if change.leader != NO_LEADER_CHANGE:
        leader, leader_epoch = change.leader, part.leader_epoch + 1

    def pick(new: Sequence[int] | None, old: tuple[int, ...]) -> tuple[int, ...]:
        return old if new is None else tuple(new)

    return PartitionRegistration(
        pick(change.replicas, part.replicas), pick(change.isr, part.isr), leader, leader_epoch,
        part.partition_epoch + 1, pick(change.adding_replicas, part.adding_replicas),
        pick(change.removing_replicas, part.removing_replicas))


def completion(part: PartitionRegistration, live: Set[int]
               ) -> tuple[tuple[int, ...], tuple[int, ...], int] | None:
    """(replicas, ISR, leader) that complete ``part``'s reassignment, or None: none in
    progress, an adding replica not yet in the ISR, or no ISR member would remain."""
    if not part.reassigning or not set(part.adding_replicas) <= set(part.isr):
        return None
    removing = set(part.removing_replicas)
    replicas = tuple(r for r in part.replicas if r not in removing)
    isr = tuple(r for r in part.isr if r not in removing)
    if not isr:
        return None
    leader = part.leader
    if leader not in isr:
        leader = next((r for r in replicas if r in isr and r in live), NO_LEADER)
    return replicas, isr, leader


def fold_completion(before: PartitionRegistration, change: PartitionChangeRecord,
                    live: Set[int]) -> PartitionChangeRecord:
    """``change`` (to a partition now ``before``), extended to complete the partition's
    reassignment when the change makes it complete; else ``change`` itself."""
    done = completion(merged(before, change), live)
    if done is None:
        return change
    replicas, isr, leader = done
    shrinks = len(replicas) < len(before.replicas)
    if leader == before.leader and not shrinks and change.leader == NO_LEADER_CHANGE:
        leader = NO_LEADER_CHANGE
    return PartitionChangeRecord(
        change.partition_id, change.topic_id, isr=None if isr == before.isr else isr,
        leader=leader, replicas=None if replicas == before.replicas else replicas,
        removing_replicas=(), adding_replicas=())


def complete_all(image: MetadataImage, records: Sequence[MetadataRecord],
                 live: Set[int] | None = None) -> tuple[MetadataRecord, ...]:
    """``records`` (one batch against ``image``) with each partition change folded into
    the completion of its partition's reassignment where it completes one. ``live``:
    the unfenced brokers after the batch (default: those of the image after it)."""
    if not any(isinstance(r, PartitionChangeRecord) for r in records):
        return tuple(records)
    if live is None:
        live = {b.broker_id for b in image.unfenced_brokers()}
        for r in records:
            if isinstance(r, UnfenceBrokerRecord):
                live.add(r.broker_id)
            elif isinstance(r, FenceBrokerRecord | UnregisterBrokerRecord) \
                    or (isinstance(r, RegisterBrokerRecord) and r.fenced):
                live.discard(r.broker_id)
    out: list[MetadataRecord] = []
    parts: dict[tuple[uuid.UUID, int], PartitionRegistration] = {}
    for r in records:
        if isinstance(r, PartitionChangeRecord):
            key = (r.topic_id, r.partition_id)
            before = parts.get(key)
            if before is None:
                topic = image.topics.get(r.topic_id)
                before = topic.partitions.get(r.partition_id) if topic else None
            if before is not None:
                r = fold_completion(before, r, live)
                parts[key] = merged(before, r)
        out.append(r)
    return tuple(out)


# ---- AlterPartitionReassignments ----------------------------------------------------
def _invalid_target(image: MetadataImage, target: Sequence[int]) -> str | None:
    if not target:
        return "The manual partition assignment includes an empty replica list."
    if len(set(target)) != len(target):
        dup = next(r for r in target if list(target).count(r) > 1)
        return f"The manual partition assignment includes the broker {dup} more than once."
    for broker in target:
        if broker not in image.brokers:
            return (f"The manual partition assignment includes broker {broker}, but no "
                    "such broker is registered.")
    return None


def start(topic_id: uuid.UUID, index: int, part: PartitionRegistration,
          target: Sequence[int], live: Set[int]) -> PartitionChangeRecord | None:
    """The change that starts (or replaces) a reassignment of ``part`` to ``target`` (a
    valid list), with its completion folded in; None when nothing changes."""
    wanted = set(target)
    removing = tuple(r for r in part.replicas if r not in wanted)
    adding = tuple(r for r in target
                   if r not in part.replicas or r in part.adding_replicas)
    replicas = (*target, *removing)
    change = PartitionChangeRecord(
        index, topic_id,
        replicas=None if replicas == part.replicas else replicas,
        removing_replicas=None if removing == part.removing_replicas else removing,
        adding_replicas=None if adding == part.adding_replicas else adding)
    if change.replicas is None and change.removing_replicas is None \
            and change.adding_replicas is None:
        return None
    return fold_completion(part, change, live)


def cancel(topic_id: uuid.UUID, index: int, part: PartitionRegistration, live: Set[int],
           *, unclean: bool = False) -> PartitionChangeRecord | None:
    """The change that reverts ``part``'s reassignment; None when it would need an
    unclean election that ``unclean`` does not allow (callers check ``reassigning``)."""
    adding = set(part.adding_replicas)
    replicas = tuple(r for r in part.replicas if r not in adding)
    isr = tuple(r for r in part.isr if r not in adding)
    if not isr:
        if not unclean:
            return None
        isr = (replicas[0],)
    leader = part.leader
    if leader not in isr:
        leader = next((r for r in replicas if r in isr and r in live), NO_LEADER)
    shrinks = len(replicas) < len(part.replicas)
    return PartitionChangeRecord(
        index, topic_id, isr=None if isr == part.isr else isr,
        leader=leader if leader != part.leader or shrinks else NO_LEADER_CHANGE,
        replicas=None if replicas == part.replicas else replicas,
        removing_replicas=(), adding_replicas=())


def alter_reassignments(image: MetadataImage,
                        requests: Sequence[tuple[str, Sequence[tuple[int, Target]]]], *,
                        allow_replication_factor_change: bool = True,
                        unclean: Set[str] = frozenset()) -> ReassignmentDecision:
    """AlterPartitionReassignments (module doc): ``requests`` is [(topic, [(partition,
    target or None)])] in request order; ``unclean`` names the topics whose cancel may
    elect uncleanly (``unclean.leader.election.enable``)."""
    records: list[PartitionChangeRecord] = []
    results: list[tuple[str, tuple[PartitionResult, ...]]] = []
    current = image
    live = {b.broker_id for b in image.unfenced_brokers()}
    for name, partitions in requests:
        answers: list[PartitionResult] = []
        for index, target in partitions:
            code, message, record = _one(current, name, index, target, live,
                                         allow_replication_factor_change, name in unclean)
            if record is not None:
                records.append(record)
                current = apply(current, record)
            answers.append(PartitionResult(index, code, message))
        results.append((name, tuple(answers)))
    return ReassignmentDecision(tuple(records), tuple(results))


def _one(image: MetadataImage, name: str, index: int, target: Target, live: Set[int],
         allow_rf_change: bool, unclean: bool
         ) -> tuple[int, str | None, PartitionChangeRecord | None]:
    topic = image.topic(name)
    part = topic.partitions.get(index) if topic is not None else None
    if topic is None or part is None:
        return UNKNOWN_TOPIC_OR_PARTITION, f"Unable to find partition {name}-{index}.", None
    if target is None:
        if not part.reassigning:
            return (NO_REASSIGNMENT_IN_PROGRESS,
                    f"No ongoing reassignment for partition {name}-{index}.", None)
        record = cancel(topic.topic_id, index, part, live, unclean=unclean)
        if record is None:
            return (INVALID_REPLICA_ASSIGNMENT,
                    f"Unable to revert partition assignment for {name}:{index} because it "
                    "would require an unclean leader election.", None)
        return NONE, None, record
    problem = _invalid_target(image, target)
    if problem is not None:
        return INVALID_REPLICA_ASSIGNMENT, problem, None
    factor = len(part.replicas) - len(part.adding_replicas)
    if not allow_rf_change and len(target) != factor:
        return (INVALID_REPLICATION_FACTOR,
                f"The replication factor is changed from {factor} to {len(target)}", None)
    return NONE, None, start(topic.topic_id, index, part, tuple(target), live)


# ---- ListPartitionReassignments -----------------------------------------------------
def ongoing(image: MetadataImage, named: Sequence[tuple[str, Sequence[int]]] | None
            ) -> list[tuple[str, list[tuple[int, PartitionRegistration]]]]:
    """[(topic, [(partition, registration)])] of the reassignments in progress: all of
    them by topic name and partition (``named`` None), or those among ``named`` in its
    order; topics without one are left out."""
    if named is None:
        named = [(t.name, sorted(t.partitions))
                 for t in sorted(image.topics.values(), key=lambda t: t.name)]
    out: list[tuple[str, list[tuple[int, PartitionRegistration]]]] = []
    for name, indexes in named:
        topic = image.topic(name)
        if topic is None:
            continue
        found = [(i, p) for i in indexes
                 if (p := topic.partitions.get(i)) is not None and p.reassigning]
        if found:
            out.append((name, found))
    return out
