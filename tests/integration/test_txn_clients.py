"""Transactions with real clients (issue 10): confluent-kafka, kafka-python and aiokafka
transactional producers against one broker.

Each client: commit and abort, read_committed consumers see committed records only and
read_uncommitted see both; ``send_offsets_to_transaction`` in a consume-transform-produce
loop (output exactly the input, the group's offset committed with the transaction); a
second producer with the same transactional.id fences the first (the zombie's commit
fails)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from tests.support.fixtures import unique_topic

pytestmark = pytest.mark.timeout(120)

DEADLINE_S = 30.0


def read_all(bootstrap: str, topic: str, isolation: str, expect: int,
             partitions: int = 1) -> list[bytes]:
    """Every record of ``topic`` under ``isolation``: polls until ``expect`` records came
    and nothing more arrives for a second (bounded by DEADLINE_S)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex}",
                  "isolation.level": isolation, "enable.auto.commit": False,
                  "fetch.wait.max.ms": 50})
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        got: list[bytes] = []
        deadline = time.monotonic() + DEADLINE_S
        quiet_until = None
        while time.monotonic() < deadline:
            msg = c.poll(0.2)
            if msg is None or msg.error() is not None:
                if len(got) >= expect:
                    quiet_until = quiet_until or time.monotonic() + 1.0
                    if time.monotonic() > quiet_until:
                        break
                continue
            got.append(msg.value())
        return got
    finally:
        c.close()


def produce_plain(bootstrap: str, topic: str, values: list[bytes]) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for v in values:
        p.produce(topic, v)
    assert p.flush(DEADLINE_S) == 0


def committed_offset(bootstrap: str, group: str, topic: str) -> int:
    """The group's committed offset (librdkafka asks with require_stable under
    read_committed, so a pending transactional offset makes it retry)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "isolation.level": "read_committed"})
    try:
        [tp] = c.committed([TopicPartition(topic, 0)], timeout=DEADLINE_S)
        return tp.offset
    finally:
        c.close()


COMMITTED = [b"c0", b"c1", b"c2", b"c-last"]
EVERYTHING = [b"c0", b"c1", b"c2", b"a0", b"a1", b"c-last"]


def assert_isolation(bootstrap: str, topic: str) -> None:
    assert read_all(bootstrap, topic, "read_committed", len(COMMITTED)) == COMMITTED
    assert read_all(bootstrap, topic, "read_uncommitted", len(EVERYTHING)) == EVERYTHING


# ---- confluent-kafka --------------------------------------------------------------------------
def confluent_producer(bootstrap: str, tid: str) -> Producer:
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid, "linger.ms": 5})
    p.init_transactions(DEADLINE_S)
    return p


def test_confluent_commit_and_abort(bootstrap: str, topic_name: str) -> None:
    p = confluent_producer(bootstrap, f"tx-{topic_name}")
    p.begin_transaction()
    for v in COMMITTED[:3]:
        p.produce(topic_name, v)
    p.commit_transaction(DEADLINE_S)
    p.begin_transaction()
    for v in (b"a0", b"a1"):
        p.produce(topic_name, v)
    assert p.flush(DEADLINE_S) == 0  # on the log before the abort
    p.abort_transaction(DEADLINE_S)
    p.begin_transaction()
    p.produce(topic_name, b"c-last")
    p.commit_transaction(DEADLINE_S)
    assert_isolation(bootstrap, topic_name)


def test_confluent_consume_transform_produce(bootstrap: str, topic_name: str) -> None:
    source, sink, group = topic_name, unique_topic("sink"), f"ctp-{topic_name}"
    values = [b"v%d" % i for i in range(20)]
    produce_plain(bootstrap, source, values)
    p = confluent_producer(bootstrap, f"ctp-{topic_name}")
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "isolation.level": "read_committed", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    c.subscribe([source])
    copied = 0
    deadline = time.monotonic() + DEADLINE_S
    try:
        while copied < len(values) and time.monotonic() < deadline:
            msgs = [m for m in c.consume(5, 1.0) if m.error() is None]
            if not msgs:
                continue
            p.begin_transaction()
            for m in msgs:
                p.produce(sink, m.value().upper())
            p.send_offsets_to_transaction(c.position(c.assignment()),
                                          c.consumer_group_metadata(), DEADLINE_S)
            p.commit_transaction(DEADLINE_S)
            copied += len(msgs)
    finally:
        c.close()
    assert copied == len(values)
    assert read_all(bootstrap, sink, "read_committed", len(values)) == \
        [v.upper() for v in values]
    assert committed_offset(bootstrap, group, source) == len(values)


def test_confluent_second_producer_fences_the_first(bootstrap: str, topic_name: str) -> None:
    tid = f"fence-{topic_name}"
    zombie = confluent_producer(bootstrap, tid)
    zombie.begin_transaction()
    zombie.produce(topic_name, b"zombie")
    assert zombie.flush(DEADLINE_S) == 0
    fresh = confluent_producer(bootstrap, tid)  # aborts the zombie's open transaction
    fresh.begin_transaction()
    fresh.produce(topic_name, b"fresh")
    fresh.commit_transaction(DEADLINE_S)
    with pytest.raises(KafkaException) as info:
        zombie.commit_transaction(DEADLINE_S)
    error = info.value.args[0]
    assert error.fatal() or "fenc" in error.str().lower(), error
    assert read_all(bootstrap, topic_name, "read_committed", 1) == [b"fresh"]
    assert read_all(bootstrap, topic_name, "read_uncommitted", 2) == [b"zombie", b"fresh"]


# ---- kafka-python -----------------------------------------------------------------------------
def test_kafka_python_commit_abort_offsets_and_fencing(bootstrap: str, topic_name: str) -> None:
    from kafka import KafkaConsumer, KafkaProducer
    from kafka import TopicPartition as KTopicPartition
    from kafka.errors import KafkaError

    tid = f"kp-{topic_name}"
    p = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=tid)
    try:
        p.init_transactions()
        p.begin_transaction()
        for v in COMMITTED[:3]:
            p.send(topic_name, v)
        p.commit_transaction()
        p.begin_transaction()
        for v in (b"a0", b"a1"):
            p.send(topic_name, v)
        p.flush()
        p.abort_transaction()
        p.begin_transaction()
        p.send(topic_name, b"c-last")
        p.commit_transaction()
        assert_isolation(bootstrap, topic_name)

        # consume-transform-produce: the group's offset rides on the transaction
        sink, group = unique_topic("kp-sink"), f"kp-g-{topic_name}"
        c = KafkaConsumer(topic_name, bootstrap_servers=bootstrap, group_id=group,
                          isolation_level="read_committed", enable_auto_commit=False,
                          auto_offset_reset="earliest", consumer_timeout_ms=10_000)
        got = []
        for m in c:
            got.append(m)
            if len(got) == len(COMMITTED):
                break
        p.begin_transaction()
        for m in got:
            p.send(sink, m.value.upper())
        p.send_offsets_to_transaction({KTopicPartition(topic_name, 0): _kp_offset(got)}, group)
        p.commit_transaction()
        c.close()
        assert read_all(bootstrap, sink, "read_committed", 4) == [v.upper() for v in COMMITTED]
        # the last committed record sits at offset 7 (after 3 data + marker + 2 + marker)
        assert committed_offset(bootstrap, group, topic_name) == got[-1].offset + 1

        # a second producer with the same id fences this one
        p.begin_transaction()
        p.send(topic_name, b"zombie")
        p.flush()
        fresh = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=tid)
        fresh.init_transactions()
        fresh.close()
        with pytest.raises(KafkaError):
            p.commit_transaction()
    finally:
        p.close(timeout=5)
    assert read_all(bootstrap, topic_name, "read_committed", 4) == COMMITTED


def _kp_offset(records: list) -> object:
    from kafka.structs import OffsetAndMetadata

    last = records[-1].offset + 1
    try:
        return OffsetAndMetadata(last, "", -1)
    except TypeError:  # older signature without leader epoch
        return OffsetAndMetadata(last, "")


# ---- aiokafka ---------------------------------------------------------------------------------
async def test_aiokafka_commit_abort_offsets_and_fencing(bootstrap: str, topic_name: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka import TopicPartition as ATopicPartition
    from aiokafka.errors import KafkaError

    tid = f"aio-{topic_name}"
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=tid)
    await asyncio.wait_for(p.start(), DEADLINE_S)
    try:
        async with p.transaction():
            for v in COMMITTED[:3]:
                await p.send(topic_name, v)
        await p.begin_transaction()
        for v in (b"a0", b"a1"):
            await p.send_and_wait(topic_name, v)
        await p.abort_transaction()
        async with p.transaction():
            await p.send(topic_name, b"c-last")
        await asyncio.to_thread(assert_isolation, bootstrap, topic_name)

        sink, group = unique_topic("aio-sink"), f"aio-g-{topic_name}"
        c = AIOKafkaConsumer(topic_name, bootstrap_servers=bootstrap, group_id=group,
                             isolation_level="read_committed", enable_auto_commit=False,
                             auto_offset_reset="earliest")
        await asyncio.wait_for(c.start(), DEADLINE_S)
        try:
            got = []
            deadline = time.monotonic() + DEADLINE_S
            while len(got) < len(COMMITTED) and time.monotonic() < deadline:
                batch = await c.getmany(timeout_ms=1000)
                got += [m for ms in batch.values() for m in ms]
            async with p.transaction():
                for m in got:
                    await p.send(sink, m.value.upper())
                await p.send_offsets_to_transaction(
                    {ATopicPartition(topic_name, 0): got[-1].offset + 1}, group)
            # the markers follow the EndTxn answer (as in Kafka): poll, bounded
            deadline = time.monotonic() + DEADLINE_S
            while await c.committed(ATopicPartition(topic_name, 0)) != got[-1].offset + 1:
                assert time.monotonic() < deadline, "offset not committed with the txn"
                await asyncio.sleep(0.1)
        finally:
            await c.stop()
        assert await asyncio.to_thread(read_all, bootstrap, sink, "read_committed", 4) == \
            [v.upper() for v in COMMITTED]

        await p.begin_transaction()
        await p.send_and_wait(topic_name, b"zombie")
        fresh = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=tid)
        await asyncio.wait_for(fresh.start(), DEADLINE_S)  # fences and aborts
        await fresh.stop()
        with pytest.raises(KafkaError):
            await asyncio.wait_for(p.commit_transaction(), DEADLINE_S)
    finally:
        await asyncio.wait_for(p.stop(), DEADLINE_S)
    assert await asyncio.to_thread(read_all, bootstrap, topic_name, "read_committed", 4) == \
        COMMITTED
