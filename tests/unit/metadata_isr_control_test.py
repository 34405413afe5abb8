"""AlterPartition decisions of the active controller (controller/metadata/isr_control.py):
each refusal rule, and the change record of an accepted ISR."""

from __future__ import annotations

import uuid

from controller.metadata.image import MetadataImage, apply_all
from controller.metadata.isr_control import IsrRequest, alter_partition
from controller.metadata.records import (
    Endpoint,
    FenceBrokerRecord,
    PartitionChangeRecord,
    PartitionRecord,
    RegisterBrokerRecord,
    TopicRecord,
)
from protocol.errors import ErrorCode

TID = uuid.uuid4()


def image() -> MetadataImage:
    records = [RegisterBrokerRecord(b, uuid.uuid4(), 100 + b, (Endpoint("P", "h", b),),
                                    fenced=False) for b in (1, 2, 3)]
    records += [TopicRecord("t", TID), PartitionRecord(0, TID, (1, 2, 3), (1, 2, 3), 1, 4, 6)]
    return apply_all(MetadataImage(), records)


def ask(img: MetadataImage, isr: tuple[int, ...], *, broker: int = 1, broker_epoch: int = 101,
        leader_epoch: int = 4, partition_epoch: int = 6, epochs: dict[int, int] | None = None,
        topic: uuid.UUID = TID, index: int = 0) -> tuple[int, int, tuple[object, ...]]:
    epochs = epochs or {}
    d = alter_partition(img, broker, broker_epoch, [IsrRequest(
        topic, index, leader_epoch, partition_epoch,
        tuple((b, epochs.get(b, -1)) for b in isr))])
    code = d.results[0].error_code if d.results else d.error_code
    return d.error_code, code, d.records


def test_shrink_is_accepted_with_a_change_record() -> None:
    top, code, records = ask(image(), (1, 2))
    assert (top, code) == (0, 0)
    assert records == (PartitionChangeRecord(0, TID, isr=(1, 2)),)
    d = alter_partition(image(), 1, 101, [IsrRequest(TID, 0, 4, 6, ((1, -1), (2, -1)))])
    state = d.results[0].state
    assert state is not None and state.isr == (1, 2) and state.partition_epoch == 7
    assert apply_all(image(), list(d.records)).partition("t", 0).isr == (1, 2)  # type: ignore[union-attr]


def test_the_same_isr_writes_nothing() -> None:
    assert ask(image(), (1, 2, 3)) == (0, 0, ())


def test_refusals() -> None:
    img = image()
    assert ask(img, (1, 2), broker_epoch=99)[0] == ErrorCode.stale_broker_epoch
    assert ask(img, (1, 2), broker=7)[0] == ErrorCode.stale_broker_epoch
    assert ask(img, (1, 2), topic=uuid.uuid4())[1] == ErrorCode.unknown_topic_id
    assert ask(img, (1, 2), index=5)[1] == ErrorCode.unknown_topic_or_partition
    assert ask(img, (1, 2), leader_epoch=3)[1] == ErrorCode.fenced_leader_epoch
    assert ask(img, (2, 3), broker=2, broker_epoch=102)[1] == ErrorCode.fenced_leader_epoch
    assert ask(img, (1, 2), partition_epoch=5)[1:] == (ErrorCode.invalid_update_version, ())
    assert ask(img, (2, 3))[1] == ErrorCode.invalid_request  # the leader left out
    assert ask(img, (1, 1))[1] == ErrorCode.invalid_request
    assert ask(img, (1, 4))[1] == ErrorCode.invalid_request  # not a replica


def test_added_replicas_must_be_unfenced_with_their_registered_epoch() -> None:
    img = apply_all(image(), [PartitionChangeRecord(0, TID, isr=(1,))])  # epoch 7
    assert ask(img, (1, 2), partition_epoch=7, epochs={2: 102})[1] == 0
    assert ask(img, (1, 2), partition_epoch=7, epochs={2: 55})[1] == ErrorCode.ineligible_replica
    fenced = apply_all(img, [FenceBrokerRecord(3, 103)])
    assert ask(fenced, (1, 3), partition_epoch=7)[1] == ErrorCode.ineligible_replica
