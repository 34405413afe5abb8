"""Partition reassignment (controller/metadata/reassignment.py): the records of a start,
its completion through AlterPartition and fencing, cancel, validation, the list, and the
records' encoding (v1 with a reassignment, v0 without, old v0 records decoding with none)."""

from __future__ import annotations

import struct
import uuid

import pytest

from controller.metadata import reassignment as ra
from controller.metadata.broker_control import fence_broker
from controller.metadata.codec import decode_record, encode_record
from controller.metadata.image import (
    MetadataError,
    MetadataImage,
    apply,
    apply_all,
    decode_image,
    encode_image,
)
from controller.metadata.isr_control import IsrRequest, alter_partition
from controller.metadata.records import (
    NO_LEADER,
    NO_LEADER_CHANGE,
    RESOURCE_TOPIC,
    ConfigRecord,
    Endpoint,
    PartitionChangeRecord,
    PartitionRecord,
    RegisterBrokerRecord,
    TopicRecord,
)
from protocol.errors import ErrorCode

TID = uuid.UUID(int=7)


def image(brokers: tuple[int, ...] = (1, 2, 3, 4, 5), fenced: tuple[int, ...] = ()
          ) -> MetadataImage:
    records: list = [RegisterBrokerRecord(b, uuid.UUID(int=b), 100 + b,
                                          (Endpoint("P", "h", b),), fenced=b in fenced)
                     for b in brokers]
    records += [TopicRecord("t", TID), PartitionRecord(0, TID, (1, 2, 3), (1, 2, 3), 1, 4, 6),
                PartitionRecord(1, TID, (2, 3, 1), (2, 3, 1), 2, 0, 0)]
    return apply_all(MetadataImage(), records)


def alter(img: MetadataImage, *parts: tuple[int, ra.Target], topic: str = "t",
          **kw: object) -> ra.ReassignmentDecision:
    return ra.alter_reassignments(img, [(topic, list(parts))], **kw)  # type: ignore[arg-type]


def codes(d: ra.ReassignmentDecision) -> list[int]:
    return [r.error_code for _, results in d.results for r in results]


def after(img: MetadataImage, d: ra.ReassignmentDecision) -> MetadataImage:
    return apply_all(img, list(d.records))


def expand(img: MetadataImage, isr: tuple[int, ...], index: int = 0
           ) -> tuple[MetadataImage, object]:
    part = img.partition("t", index)
    assert part is not None
    reg = img.brokers[part.leader]
    d = alter_partition(img, part.leader, reg.broker_epoch, [IsrRequest(
        TID, index, part.leader_epoch, part.partition_epoch, tuple((b, -1) for b in isr))])
    assert d.error_code == 0 and d.results[0].error_code == 0
    return apply_all(img, list(d.records)), d


# ---- start ------------------------------------------------------------------------
def test_start_puts_the_target_first_and_marks_adding_and_removing() -> None:
    img = image()
    d = alter(img, (0, [4, 2, 3]))
    assert codes(d) == [0]
    assert d.records == (PartitionChangeRecord(0, TID, replicas=(4, 2, 3, 1),
                                               removing_replicas=(1,), adding_replicas=(4,)),)
    p = after(img, d).partition("t", 0)
    assert p is not None
    assert (p.replicas, p.isr, p.leader, p.leader_epoch) == ((4, 2, 3, 1), (1, 2, 3), 1, 4)
    assert (p.adding_replicas, p.removing_replicas, p.reassigning) == ((4,), (1,), True)


def test_same_target_without_reassignment_writes_nothing() -> None:
    d = alter(image(), (0, [1, 2, 3]))
    assert codes(d) == [0] and d.records == ()


def test_reorder_only_changes_the_replicas_and_completes_at_once() -> None:
    img = image()
    d = alter(img, (0, [3, 2, 1]))
    p = after(img, d).partition("t", 0)
    assert p is not None and p.replicas == (3, 2, 1) and not p.reassigning
    assert p.leader == 1 and p.isr == (1, 2, 3)


def test_removal_only_completes_at_once_with_a_new_leader_and_epoch() -> None:
    img = image()
    d = alter(img, (0, [2, 3]))
    [rec] = d.records
    assert rec == PartitionChangeRecord(0, TID, isr=(2, 3), leader=2, replicas=(2, 3),
                                        removing_replicas=(), adding_replicas=())
    p = after(img, d).partition("t", 0)
    assert p is not None and (p.replicas, p.isr, p.leader, p.leader_epoch) == \
        ((2, 3), (2, 3), 2, 5)


def test_removing_a_follower_keeps_the_leader_but_bumps_its_epoch() -> None:
    img = image()
    p = after(img, alter(img, (0, [1, 2]))).partition("t", 0)
    assert p is not None and (p.replicas, p.isr, p.leader, p.leader_epoch) == \
        ((1, 2), (1, 2), 1, 5)


def test_removal_waits_while_no_isr_member_would_remain() -> None:
    img = apply(image(), PartitionChangeRecord(0, TID, isr=(1,)))
    p = after(img, alter(img, (0, [2, 3]))).partition("t", 0)
    assert p is not None and p.replicas == (2, 3, 1) and p.removing_replicas == (1,)
    assert p.adding_replicas == () and p.leader == 1
    # once 2 is back in the ISR the same change completes it: 2 leads
    img2, _ = expand(after(img, alter(img, (0, [2, 3]))), (1, 2))
    p = img2.partition("t", 0)
    assert p is not None and (p.replicas, p.isr, p.leader) == ((2, 3), (2,), 2)
    assert not p.reassigning


def test_validation() -> None:
    img = image()
    d = alter(img, (0, []), (0, [1, 1, 2]), (0, [1, 2, 9]), (7, [1, 2, 3]))
    assert codes(d) == [ErrorCode.invalid_replica_assignment] * 3 + \
        [ErrorCode.unknown_topic_or_partition]
    assert d.records == ()
    messages = [r.message for _, rs in d.results for r in rs]
    assert "empty" in messages[0] and "more than once" in messages[1] \
        and "broker 9" in messages[2]
    d = alter(img, (0, [4, 5]), topic="nope")
    assert codes(d) == [ErrorCode.unknown_topic_or_partition]


def test_replication_factor_change_refused_when_not_allowed() -> None:
    img = image()
    d = alter(img, (0, [1, 2]), allow_replication_factor_change=False)
    assert codes(d) == [ErrorCode.invalid_replication_factor] and d.records == ()
    d = alter(img, (0, [4, 5, 1]), allow_replication_factor_change=False)
    assert codes(d) == [0] and len(d.records) == 1
    # during a reassignment the factor is the replicas not being added (3, not 5)
    img = after(img, d)
    d = alter(img, (0, [4, 5, 2]), allow_replication_factor_change=False)
    assert codes(d) == [0]


def test_a_fenced_but_registered_target_broker_is_accepted() -> None:
    img = image(fenced=(4,))
    assert codes(alter(img, (0, [4, 2, 3]))) == [0]


def test_decisions_of_one_request_see_each_other() -> None:
    img = image()
    d = alter(img, (0, [4, 2, 3]), (0, None))
    assert codes(d) == [0, 0]
    p = after(img, d).partition("t", 0)
    assert p is not None and p.replicas == (2, 3, 1) and not p.reassigning


# ---- completion -------------------------------------------------------------------
def test_expansion_with_the_last_adding_replica_completes_the_reassignment() -> None:
    img = after(image(), alter(image(), (0, [4, 2, 3])))
    img, d = expand(img, (1, 2, 3, 4))
    [rec] = d.records  # type: ignore[attr-defined]
    assert rec == PartitionChangeRecord(0, TID, isr=(2, 3, 4), leader=4, replicas=(4, 2, 3),
                                        removing_replicas=(), adding_replicas=())
    p = img.partition("t", 0)
    assert p is not None
    assert (p.replicas, p.isr, p.leader, p.leader_epoch, p.reassigning) == \
        ((4, 2, 3), (2, 3, 4), 4, 5, False)
    state = d.results[0].state  # type: ignore[attr-defined]
    assert state.leader == 4 and state.leader_epoch == 5 and state.replicas == (4, 2, 3)


def test_completion_waits_for_every_adding_replica() -> None:
    img = after(image(), alter(image(), (0, [4, 5, 3])))
    img, d = expand(img, (1, 2, 3, 4))
    p = img.partition("t", 0)
    assert p is not None and p.reassigning and p.isr == (1, 2, 3, 4)
    assert p.adding_replicas == (4, 5)
    img, _ = expand(img, (1, 2, 3, 4, 5))
    p = img.partition("t", 0)
    assert p is not None and (p.replicas, p.isr, p.leader) == ((4, 5, 3), (3, 4, 5), 4)


def test_completion_keeps_a_leader_that_stays() -> None:
    img = after(image(), alter(image(), (0, [1, 4, 3])))
    img, _ = expand(img, (1, 2, 3, 4))
    p = img.partition("t", 0)
    assert p is not None and (p.replicas, p.isr, p.leader) == ((1, 4, 3), (1, 3, 4), 1)


def test_completion_skips_a_fenced_target_replica_for_leader() -> None:
    img = apply_all(image(fenced=(4,)), list(alter(image(fenced=(4,)), (0, [4, 5, 3])).records))
    p = img.partition("t", 0)
    assert p is not None
    done = ra.completion(ra.merged(p, PartitionChangeRecord(0, TID, isr=(1, 2, 3, 4, 5))),
                         live={1, 2, 3, 5})
    assert done == ((4, 5, 3), (3, 4, 5), 5)


def test_fencing_completes_a_reassignment_waiting_for_the_isr() -> None:
    """Removal-only reassignment stuck with ISR = removed replicas: an unclean election
    at fencing gives the ISR a target replica, and that change completes it."""
    img = apply(image(), PartitionChangeRecord(0, TID, isr=(1,)))
    img = apply(img, ConfigRecord(RESOURCE_TOPIC, "t", "unclean.leader.election.enable",
                                  "true"))
    img = after(img, alter(img, (0, [2, 3])))
    records = fence_broker(img, 1)
    img = apply_all(img, list(records))
    p = img.partition("t", 0)
    assert p is not None and (p.replicas, p.isr, p.leader) == ((2, 3), (2,), 2)
    assert not p.reassigning


def test_fold_completion_leaves_other_changes_alone() -> None:
    p = image().partition("t", 0)
    assert p is not None
    change = PartitionChangeRecord(0, TID, isr=(1, 2))
    assert ra.fold_completion(p, change, {1, 2, 3}) is change
    assert ra.complete_all(image(), [change]) == (change,)


# ---- cancel -----------------------------------------------------------------------
def test_cancel_reverts_to_the_replicas_not_being_added() -> None:
    img = after(image(), alter(image(), (0, [4, 5, 3])))
    img, _ = expand(img, (1, 2, 3, 4))  # 4 in sync, 5 not yet
    d = alter(img, (0, None))
    assert codes(d) == [0]
    [rec] = d.records
    assert rec.replicas == (3, 1, 2) and rec.isr == (1, 2, 3)
    assert rec.adding_replicas == () and rec.removing_replicas == ()
    p = after(img, d).partition("t", 0)
    assert p is not None and (p.replicas, p.isr, p.leader, p.reassigning) == \
        ((3, 1, 2), (1, 2, 3), 1, False)


def test_cancel_without_reassignment() -> None:
    d = alter(image(), (0, None))
    assert codes(d) == [ErrorCode.no_reassignment_in_progress] and d.records == ()


def test_cancel_that_needs_an_unclean_election() -> None:
    img = after(image(), alter(image(), (0, [4, 2, 3])))
    img, _ = expand(img, (1, 2, 3, 4))
    img = after(img, alter(img, (0, [4, 5])))  # 4 leads; adding 5, removing 2, 3
    img = apply(img, PartitionChangeRecord(0, TID, isr=(4,)))
    p = img.partition("t", 0)
    assert p is not None and p.adding_replicas == (5,) and p.isr == (4,)
    # 4 is not being added (it is a replica since the first move): the revert keeps it
    d = alter(img, (0, None))
    assert codes(d) == [0]
    # a replica being added that is the only ISR member
    img = after(image(), alter(image(), (0, [4, 2, 3])))
    img = apply(img, PartitionChangeRecord(0, TID, isr=(1, 4)))
    img = apply(img, PartitionChangeRecord(0, TID, isr=(4,), leader=4))
    d = alter(img, (0, None))
    assert codes(d) == [ErrorCode.invalid_replica_assignment] and d.records == ()
    assert "unclean" in (d.results[0][1][0].message or "")
    d = alter(img, (0, None), unclean=frozenset({"t"}))
    assert codes(d) == [0]
    p = after(img, d).partition("t", 0)
    assert p is not None and (p.replicas, p.isr, p.leader) == ((2, 3, 1), (2,), 2)


def test_new_target_during_a_reassignment() -> None:
    img = after(image(), alter(image(), (0, [4, 5, 3])))  # replicas 4 5 3 1 2
    d = alter(img, (0, [5, 2, 3]))
    [rec] = d.records
    # 5 was being added and still is; 4 (being added, unwanted now) and 1 leave
    assert rec == PartitionChangeRecord(0, TID, replicas=(5, 2, 3, 4, 1),
                                        removing_replicas=(4, 1), adding_replicas=(5,))


# ---- list -------------------------------------------------------------------------
def test_ongoing_lists_reassignments_in_progress() -> None:
    img = image()
    assert ra.ongoing(img, None) == []
    img = after(img, alter(img, (1, [4, 3, 1])))
    [(name, [(index, part)])] = ra.ongoing(img, None)
    assert (name, index, part.replicas, part.adding_replicas, part.removing_replicas) == \
        ("t", 1, (4, 3, 1, 2), (4,), (2,))
    assert ra.ongoing(img, [("t", [0]), ("nope", [0])]) == []
    assert [(n, [i for i, _ in ps]) for n, ps in ra.ongoing(img, [("t", [0, 1])])] == \
        [("t", [1])]


# ---- image and encoding -----------------------------------------------------------
def test_image_refuses_inconsistent_reassignments() -> None:
    img = image()
    for bad in (PartitionChangeRecord(0, TID, adding_replicas=(9,)),
                PartitionChangeRecord(0, TID, adding_replicas=(1,), removing_replicas=(1,)),
                PartitionChangeRecord(0, TID, removing_replicas=(2, 2))):
        with pytest.raises(MetadataError, match="adding"):
            apply(img, bad)


def test_snapshot_carries_the_reassignment() -> None:
    img = after(image(), alter(image(), (0, [4, 2, 3])))
    restored = decode_image(encode_image(img))
    assert restored == img
    p = restored.partition("t", 0)
    assert p is not None and p.adding_replicas == (4,) and p.removing_replicas == (1,)


def test_partition_records_keep_version_0_without_a_reassignment() -> None:
    plain = PartitionRecord(0, TID, (1, 2), (1, 2), 1, 3, 4)
    raw = encode_record(plain)
    assert raw[:4] == struct.pack(">HH", 3, 0)
    assert raw == struct.pack(">HHi", 3, 0, 0) + TID.bytes + struct.pack(
        ">i2ii2iiii", 2, 1, 2, 2, 1, 2, 1, 3, 4)
    assert decode_record(raw) == plain
    moving = PartitionRecord(0, TID, (1, 2, 3), (1, 2), 1, 3, 4, (3,), ())
    raw = encode_record(moving)
    assert raw[:4] == struct.pack(">HH", 3, 1)
    assert raw.endswith(struct.pack(">iii", 1, 3, 0))
    assert decode_record(raw) == moving


def test_partition_change_records_keep_version_0_without_a_reassignment() -> None:
    """A v0 change (written before reassignments existed) decodes with the reassignment
    unchanged (None), so it leaves an in-progress one alone."""
    isr_only = PartitionChangeRecord(0, TID, isr=(1, 2))
    raw = encode_record(isr_only)
    assert raw == struct.pack(">HHi", 5, 0, 0) + TID.bytes + struct.pack(
        ">i2iii", 2, 1, 2, NO_LEADER_CHANGE, -1)
    decoded = decode_record(raw)
    assert decoded == isr_only and decoded.adding_replicas is None  # type: ignore[union-attr]
    clear = PartitionChangeRecord(0, TID, leader=NO_LEADER, removing_replicas=(),
                                  adding_replicas=())
    raw = encode_record(clear)
    assert raw[:4] == struct.pack(">HH", 5, 1)
    assert raw.endswith(struct.pack(">ii", 0, 0))
    assert decode_record(raw) == clear
    img = after(image(), alter(image(), (0, [4, 2, 3])))
    p = apply(img, decode_record(encode_record(isr_only))).partition("t", 0)  # type: ignore[arg-type]
    assert p is not None and p.adding_replicas == (4,) and p.isr == (1, 2)


def test_complete_all_folds_any_change_of_a_batch_and_infers_live_brokers() -> None:
    """What the active controller runs on every batch it proposes: an unclean election
    that gives a stuck removal a target replica in the ISR completes it."""
    from controller.metadata.records import FenceBrokerRecord

    img = apply(image(), PartitionChangeRecord(0, TID, isr=(1,)))
    img = after(img, alter(img, (0, [2, 3])))
    batch = [FenceBrokerRecord(1, 101), PartitionChangeRecord(0, TID, isr=(2,), leader=2)]
    out = ra.complete_all(img, batch)
    assert out[0] == batch[0]
    assert out[1] == PartitionChangeRecord(0, TID, isr=(2,), leader=2, replicas=(2, 3),
                                           removing_replicas=(), adding_replicas=())
    # already complete (or nothing in progress): unchanged
    assert ra.complete_all(apply_all(img, list(out)), [batch[1]]) == (batch[1],)
