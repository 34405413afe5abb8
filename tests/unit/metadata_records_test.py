"""Metadata records: encoding round trips, decoder robustness, image application and
snapshots."""

from __future__ import annotations

import contextlib
import struct
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.metadata import (
    NO_LEADER,
    RESOURCE_TOPIC,
    ConfigRecord,
    Endpoint,
    FenceBrokerRecord,
    MetadataDecodeError,
    MetadataError,
    MetadataImage,
    PartitionChangeRecord,
    PartitionRecord,
    ProducerIdsRecord,
    RegisterBrokerRecord,
    RemoveTopicRecord,
    TopicRecord,
    UnfenceBrokerRecord,
    UnregisterBrokerRecord,
    apply,
    apply_all,
    decode_batch,
    decode_image,
    decode_record,
    encode_batch,
    encode_image,
    encode_record,
)

T1 = uuid.UUID(int=1)
T2 = uuid.UUID(int=2)
EP = (Endpoint("PLAINTEXT", "127.0.0.1", 9092), Endpoint("CONTROLLER", "127.0.0.1", 9093))

i32 = st.integers(-(2**31), 2**31 - 1)
i64 = st.integers(-(2**63), 2**63 - 1)
ids = st.builds(uuid.UUID, int=st.integers(0, 2**128 - 1))
text = st.text(max_size=40)
replicas = st.lists(st.integers(0, 2**31 - 1), max_size=6).map(tuple)
endpoint = st.builds(Endpoint, text, text, st.integers(0, 65535), st.integers(0, 3))
records = st.one_of(
    st.builds(RegisterBrokerRecord, i32, ids, i64, st.lists(endpoint, max_size=3).map(tuple),
              st.none() | text, st.booleans(), st.lists(ids, max_size=3).map(tuple)),
    st.builds(UnregisterBrokerRecord, i32, i64),
    st.builds(TopicRecord, text, ids),
    st.builds(PartitionRecord, i32, ids, replicas, replicas, i32, i32, i32, replicas,
              replicas),
    st.builds(ConfigRecord, st.integers(-128, 127), text, text, st.none() | text),
    st.builds(PartitionChangeRecord, i32, ids, st.none() | replicas, i32,
              st.none() | replicas, st.none() | replicas, st.none() | replicas),
    st.builds(FenceBrokerRecord, i32, i64),
    st.builds(UnfenceBrokerRecord, i32, i64),
    st.builds(RemoveTopicRecord, ids),
    st.builds(ProducerIdsRecord, i32, i64, i64),
)


@settings(max_examples=300, deadline=None)
@given(records)
def test_every_record_round_trips(record: object) -> None:
    assert decode_record(encode_record(record)) == record


@settings(max_examples=100, deadline=None)
@given(st.lists(records, max_size=8))
def test_batches_round_trip(batch: list) -> None:
    assert decode_batch(encode_batch(batch)) == batch


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash_the_decoder(data: bytes) -> None:
    for decode in (decode_record, decode_batch, decode_image):
        with contextlib.suppress(MetadataDecodeError):
            decode(data)


def test_topic_record_layout_is_documented_bytes() -> None:
    raw = encode_record(TopicRecord("t", T1))
    assert raw == struct.pack(">HHH", 2, 0, 1) + b"t" + T1.bytes


@pytest.mark.parametrize(("data", "problem"), [
    (struct.pack(">HH", 99, 0), "unknown metadata record type 99"),
    (struct.pack(">HH", 2, 7), "unsupported version 7 of TopicRecord"),
    (encode_record(TopicRecord("t", T1))[:-3], "truncated"),
    (encode_record(TopicRecord("t", T1)) + b"x", "1 trailing bytes"),
    (struct.pack(">HHH", 2, 0, 2) + b"\xff\xfe" + T1.bytes, "invalid UTF-8"),
])
def test_decode_errors_name_the_problem(data: bytes, problem: str) -> None:
    with pytest.raises(MetadataDecodeError, match=problem):
        decode_record(data)


def cluster() -> MetadataImage:
    return apply_all(MetadataImage(), [
        RegisterBrokerRecord(1, uuid.UUID(int=11), 10, EP, "r1", fenced=False),
        RegisterBrokerRecord(2, uuid.UUID(int=12), 11, EP, "r2", fenced=False),
        TopicRecord("orders", T1),
        PartitionRecord(0, T1, (1, 2), (1, 2), 1),
        PartitionRecord(1, T1, (2, 1), (2, 1), 2),
        ConfigRecord(RESOURCE_TOPIC, "orders", "retention.ms", "1000"),
    ], offset=5)


def test_apply_builds_the_image() -> None:
    image = cluster()
    assert image.offset == 5
    assert image.topic("orders").topic_id == T1
    assert image.partition("orders", 1).leader == 2
    assert [b.broker_id for b in image.unfenced_brokers()] == [1, 2]
    assert image.topic_config("orders") == {"retention.ms": "1000"}
    assert image.partitions_led_by(1) == [("orders", 0)]
    assert image.brokers[1].endpoint("PLAINTEXT") == EP[0]


def test_apply_never_mutates_the_old_image() -> None:
    before = cluster()
    snapshot = encode_image(before)
    after = apply(before, PartitionChangeRecord(0, T1, isr=(2,), leader=2))
    assert before.partition("orders", 0).leader == 1
    assert encode_image(before) == snapshot
    p = after.partition("orders", 0)
    assert (p.leader, p.isr, p.leader_epoch, p.partition_epoch) == (2, (2,), 1, 1)
    with pytest.raises(TypeError):
        after.topics[T2] = None  # type: ignore[index]


def test_isr_only_change_keeps_the_leader_epoch() -> None:
    image = apply(cluster(), PartitionChangeRecord(0, T1, isr=(1,)))
    p = image.partition("orders", 0)
    assert (p.leader, p.leader_epoch, p.partition_epoch) == (1, 0, 1)


def test_fencing_and_reregistration() -> None:
    image = apply(cluster(), FenceBrokerRecord(2, 11))
    assert [b.broker_id for b in image.unfenced_brokers()] == [1]
    image = apply(image, RegisterBrokerRecord(2, uuid.UUID(int=99), 12, EP, "r2"))
    assert image.brokers[2].fenced and image.brokers[2].broker_epoch == 12
    image = apply(image, UnfenceBrokerRecord(2, 12))
    assert not image.brokers[2].fenced
    with pytest.raises(MetadataError, match="epoch 11"):
        apply(image, FenceBrokerRecord(2, 11))  # a stale epoch
    image = apply(image, UnregisterBrokerRecord(2, 12))
    assert 2 not in image.brokers


def test_remove_topic_drops_partitions_and_configs() -> None:
    image = apply(cluster(), RemoveTopicRecord(T1))
    assert image.topic("orders") is None and not image.topics
    assert image.topic_config("orders") == {}
    image = apply(image, TopicRecord("orders", T2))  # the name can be reused
    assert image.topic("orders").topic_id == T2


def test_config_delete() -> None:
    image = apply(cluster(), ConfigRecord(RESOURCE_TOPIC, "orders", "retention.ms", None))
    assert image.topic_config("orders") == {} and not image.configs


@pytest.mark.parametrize(("record", "problem"), [
    (TopicRecord("orders", T2), "already exists"),
    (PartitionRecord(0, T1, (1,), (1,), 1), "already exists"),
    (PartitionRecord(5, T2, (1,), (1,), 1), "unknown topic"),
    (PartitionRecord(5, T1, (1, 1), (1,), 1), "distinct"),
    (PartitionRecord(5, T1, (1,), (3,), 1), "not within replicas"),
    (PartitionChangeRecord(9, T1, leader=1), "unknown partition"),
    (RegisterBrokerRecord(1, T1, 10, EP), "broker epoch not above"),
    (RemoveTopicRecord(T2), "unknown topic"),
])
def test_contradicting_records_are_refused(record: object, problem: str) -> None:
    with pytest.raises(MetadataError, match=problem):
        apply(cluster(), record)


def test_snapshot_round_trip() -> None:
    image = apply(cluster(), PartitionChangeRecord(1, T1, isr=(2,), leader=NO_LEADER))
    image = apply(image, FenceBrokerRecord(1, 10), offset=9)
    restored = decode_image(encode_image(image))
    assert restored == image
    assert restored.partition("orders", 1).leader_epoch == 1


def test_register_broker_record_without_directory_ids_keeps_version_0() -> None:
    """Records from before directory ids (v0) decode with log_dirs unknown (empty); a
    record without them is still written as v0, one with them as v1."""
    old = RegisterBrokerRecord(1, T1, 10, EP[:1], "r1", fenced=False)
    raw = encode_record(old)
    assert raw[:4] == struct.pack(">HH", 0, 0)
    assert raw == struct.pack(">HHi", 0, 0, 1) + T1.bytes + struct.pack(">qi", 10, 1) \
        + struct.pack(">H", 9) + b"PLAINTEXT" + struct.pack(">H", 9) + b"127.0.0.1" \
        + struct.pack(">Hh", 9092, 0) + struct.pack(">H", 2) + b"r1" + b"\x00"
    assert decode_record(raw).log_dirs == ()
    new = RegisterBrokerRecord(1, T1, 10, EP[:1], "r1", fenced=False, log_dirs=(T2,))
    raw = encode_record(new)
    assert raw[:4] == struct.pack(">HH", 0, 1)
    assert raw.endswith(struct.pack(">i", 1) + T2.bytes)
    assert decode_record(raw) == new
    with pytest.raises(MetadataDecodeError, match="unsupported version 2 of RegisterBroker"):
        decode_record(struct.pack(">HH", 0, 2) + raw[4:])


def test_snapshot_keeps_directory_ids() -> None:
    image = apply(cluster(), RegisterBrokerRecord(3, T2, 12, EP, None, log_dirs=(T1, T2)))
    restored = decode_image(encode_image(image))
    assert restored == image and restored.brokers[3].log_dirs == (T1, T2)
    assert restored.brokers[1].log_dirs == ()


def test_producer_ids_record_layout_and_apply() -> None:
    raw = encode_record(ProducerIdsRecord(1, 10, 2000))
    assert raw == struct.pack(">HHiqq", 15, 0, 1, 10, 2000)
    image = apply(cluster(), ProducerIdsRecord(1, 10, 1000))
    assert (cluster().next_producer_id, image.next_producer_id) == (0, 1000)
    image = apply(image, ProducerIdsRecord(2, 11, 2000))
    assert image.next_producer_id == 2000
    for stale in (1000, 2000):  # never moves back, nor stays (a block is never reissued)
        with pytest.raises(MetadataError, match="not above the current 2000"):
            apply(image, ProducerIdsRecord(1, 10, stale))


def test_snapshot_restores_the_next_producer_id() -> None:
    image = apply(cluster(), ProducerIdsRecord(1, 10, 3000), offset=7)
    restored = decode_image(encode_image(image))
    assert restored == image and restored.next_producer_id == 3000
    assert decode_image(encode_image(cluster())).next_producer_id == 0


def test_snapshot_with_wrong_magic_is_refused() -> None:
    with pytest.raises(MetadataDecodeError, match="not a metadata snapshot"):
        decode_image(b"XXXX" + encode_image(cluster())[4:])
