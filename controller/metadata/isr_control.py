"""AlterPartition (KIP-497) as a pure decision of the active controller: a partition
leader asks to change the ISR; the controller checks the request against its image and
returns the ``PartitionChangeRecord`` to write (Kafka's ReplicationControlManager rules).

Per request: an unknown broker or a broker epoch other than the registered one →
STALE_BROKER_EPOCH for the whole request (nothing written).

Per partition, in order:
- unknown topic id → UNKNOWN_TOPIC_ID; unknown partition → UNKNOWN_TOPIC_OR_PARTITION;
- the requester is not the partition's leader, or its leader epoch differs from the
  image's → FENCED_LEADER_EPOCH (a stale leader must not change the ISR);
- a partition epoch other than the image's → INVALID_UPDATE_VERSION (the leader acted on
  an older ISR; it retries after it sees the newer one);
- a proposed ISR that is empty, has duplicates, leaves out the leader or names a replica
  not assigned → INVALID_REQUEST;
- a replica that is added but is fenced, unregistered, or whose broker epoch given with
  the request (``new_isr_with_epochs``, -1 = unchecked) is not its registered one →
  INELIGIBLE_REPLICA (a broker that restarted since the leader saw it fetch must fetch
  again first);
- otherwise NONE, with a change record when the ISR differs (its partition epoch + 1).

The answer for each accepted partition is the state after the change (leader, leader
epoch, ISR, partition epoch).

Reassignment (``controller.metadata.reassignment``): an ISR change that brings the last
replica a reassignment is adding into the ISR also completes it, in the same record
(replicas = target, the removed replicas out of the ISR, a new leader when the requester
is being removed, the leader epoch bumped when replicas leave). The requester still gets
NONE with that state, not Kafka's NEW_LEADER_ELECTED: the leader's replica manager drops
a pending ISR proposal on any error (``Partition.alter_failed``), and a leader that
forgot the expansion could advance its high watermark without the replica the
controller just put in the ISR (and may have made leader). With NONE it keeps the
proposal pending until the image with the new partition epoch arrives.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from controller.metadata.image import MetadataImage, PartitionRegistration
from controller.metadata.reassignment import fold_completion, merged
from controller.metadata.records import PartitionChangeRecord
from protocol.errors import ErrorCode

NONE = 0


@dataclass(frozen=True, slots=True)
class IsrRequest:
    topic_id: uuid.UUID
    partition: int
    leader_epoch: int
    partition_epoch: int
    #: (broker id, broker epoch or -1)
    new_isr: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class IsrResult:
    topic_id: uuid.UUID
    partition: int
    error_code: int
    state: PartitionRegistration | None = None


@dataclass(frozen=True, slots=True)
class AlterPartitionDecision:
    error_code: int
    records: tuple[PartitionChangeRecord, ...]
    results: tuple[IsrResult, ...]


def alter_partition(image: MetadataImage, broker_id: int, broker_epoch: int,
                    requests: Sequence[IsrRequest]) -> AlterPartitionDecision:
    reg = image.brokers.get(broker_id)
    if reg is None or reg.broker_epoch != broker_epoch:
        return AlterPartitionDecision(int(ErrorCode.stale_broker_epoch), (), ())
    records: list[PartitionChangeRecord] = []
    results: list[IsrResult] = []
    live = {b.broker_id for b in image.unfenced_brokers()}
    for req in requests:
        code, part = _check(image, broker_id, req)
        if code != NONE or part is None:
            results.append(IsrResult(req.topic_id, req.partition, code))
            continue
        isr = tuple(b for b, _ in req.new_isr)
        if isr != part.isr:
            change = fold_completion(
                part, PartitionChangeRecord(req.partition, req.topic_id, isr=isr), live)
            records.append(change)
            part = merged(part, change)
        results.append(IsrResult(req.topic_id, req.partition, NONE, part))
    return AlterPartitionDecision(NONE, tuple(records), tuple(results))


def _check(image: MetadataImage, broker_id: int, req: IsrRequest
           ) -> tuple[int, PartitionRegistration | None]:
    topic = image.topics.get(req.topic_id)
    if topic is None:
        return int(ErrorCode.unknown_topic_id), None
    part = topic.partitions.get(req.partition)
    if part is None:
        return int(ErrorCode.unknown_topic_or_partition), None
    if part.leader != broker_id or part.leader_epoch != req.leader_epoch:
        return int(ErrorCode.fenced_leader_epoch), None
    if part.partition_epoch != req.partition_epoch:
        return int(ErrorCode.invalid_update_version), None
    isr = [b for b, _ in req.new_isr]
    if not isr or len(set(isr)) != len(isr) or broker_id not in isr \
            or not set(isr) <= set(part.replicas):
        return int(ErrorCode.invalid_request), None
    for b, epoch in req.new_isr:
        if b in part.isr or b == broker_id:
            continue
        member = image.brokers.get(b)
        if member is None or member.fenced or (epoch >= 0 and epoch != member.broker_epoch):
            return int(ErrorCode.ineligible_replica), None
    return NONE, part
