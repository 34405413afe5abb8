"""Long-lived clients across a broker restart (SIGTERM and kill -9, same port).

Producers and ``assign()``-consumers created before the restart keep working after it:
they reconnect on their own, producers (idempotent where the client defaults to it)
continue their sequences against the recovered producer state, and consumers continue
from their position with no gap and no duplicate.  kafka-python (idempotent by default)
and librdkafka consumers in one test, aiokafka in another.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka import TopicPartition as AioTopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError
from confluent_kafka import TopicPartition as CflTopicPartition
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KpTopicPartition

from tests.support.broker import BrokerProcess
from tests.support.fixtures import BROKER_DEFAULT_OVERRIDES, unique_topic
from tests.support.raw_producer import RawProducer, idempotent_batch

TIMEOUT_S = 30.0


@pytest.fixture
def node(tmp_path: Path) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(tmp_path / "broker", BROKER_DEFAULT_OVERRIDES)
    proc.start()
    try:
        yield proc
    finally:
        proc.close()


def restart(node: BrokerProcess, how: str) -> None:
    node.restart(clean=how == "clean")


def kp_read(c: KafkaConsumer, n: int) -> list[tuple[int, bytes]]:
    got: list[tuple[int, bytes]] = []
    deadline = time.monotonic() + TIMEOUT_S
    while len(got) < n:
        assert time.monotonic() < deadline, f"kafka-python consumer got {len(got)} of {n}"
        for records in c.poll(timeout_ms=500, max_records=n - len(got)).values():
            got.extend((r.offset, r.value) for r in records)
    return got


def cfl_read(c: Consumer, n: int) -> list[tuple[int, bytes]]:
    got: list[tuple[int, bytes]] = []
    deadline = time.monotonic() + TIMEOUT_S
    while len(got) < n:
        assert time.monotonic() < deadline, f"librdkafka consumer got {len(got)} of {n}"
        for m in c.consume(num_messages=n - len(got), timeout=0.5):
            if m.error() is None:
                got.append((m.offset(), m.value()))
            else:  # transport errors while the broker is down are informational
                assert m.error().code() in (
                    KafkaError._PARTITION_EOF,
                    KafkaError._TRANSPORT,
                    KafkaError._ALL_BROKERS_DOWN,
                ), m.error()
    return got


@pytest.mark.parametrize("how", ["clean", "kill"])
def test_sync_clients_continue_across_restart(node: BrokerProcess, how: str) -> None:
    topic = unique_topic(f"rc-{how}")
    bs = node.bootstrap
    producer = KafkaProducer(
        bootstrap_servers=bs, acks="all", linger_ms=5, reconnect_backoff_ms=50,
        reconnect_backoff_max_ms=500, request_timeout_ms=10000,
    )  # fmt: skip
    kp = KafkaConsumer(
        bootstrap_servers=bs, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=100,
        reconnect_backoff_ms=50, reconnect_backoff_max_ms=500,
    )  # fmt: skip
    cfl = Consumer(
        {
            "bootstrap.servers": bs,
            "group.id": f"assign-only-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 100,
            "check.crcs": True,  # verify every batch CRC the broker serves
            "reconnect.backoff.max.ms": 500,
        }
    )
    try:
        first = [producer.send(topic, b"a%d" % i, partition=0) for i in range(100)]
        producer.flush(timeout=TIMEOUT_S)
        assert [f.get(timeout=TIMEOUT_S).offset for f in first] == list(range(100))
        tp = KpTopicPartition(topic, 0)
        kp.assign([tp])
        kp.seek_to_beginning(tp)
        cfl.assign([CflTopicPartition(topic, 0, OFFSET_BEGINNING)])
        expected_a = [(i, b"a%d" % i) for i in range(100)]
        assert kp_read(kp, 100) == expected_a
        assert cfl_read(cfl, 100) == expected_a

        restart(node, how)

        second = [producer.send(topic, b"b%d" % i, partition=0) for i in range(100)]
        producer.flush(timeout=TIMEOUT_S)
        assert [f.get(timeout=TIMEOUT_S).offset for f in second] == list(range(100, 200))
        expected_b = [(100 + i, b"b%d" % i) for i in range(100)]
        assert kp_read(kp, 100) == expected_b
        assert cfl_read(cfl, 100) == expected_b
        assert kp.end_offsets([tp], timeout_ms=10000) == {tp: 200}
    finally:
        producer.close(timeout=5)
        kp.close()
        cfl.close()


@pytest.mark.parametrize("how", ["clean", "kill"])
async def test_aiokafka_clients_continue_across_restart(node: BrokerProcess, how: str) -> None:
    topic = unique_topic(f"rca-{how}")
    bs = node.bootstrap
    producer = AIOKafkaProducer(
        bootstrap_servers=bs, acks="all", enable_idempotence=True, linger_ms=5,
        retry_backoff_ms=100, request_timeout_ms=10000,
    )  # fmt: skip
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bs, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=100,
        retry_backoff_ms=100,
    )  # fmt: skip
    await asyncio.wait_for(producer.start(), TIMEOUT_S)
    await asyncio.wait_for(consumer.start(), TIMEOUT_S)

    async def produce(prefix: bytes) -> list[int]:
        futures = [await producer.send(topic, prefix + b"%d" % i, partition=0) for i in range(100)]
        metas = await asyncio.wait_for(asyncio.gather(*futures), TIMEOUT_S)
        return [m.offset for m in metas]

    async def read(n: int) -> list[tuple[int, bytes]]:
        got: list[tuple[int, bytes]] = []
        deadline = time.monotonic() + TIMEOUT_S
        while len(got) < n:
            assert time.monotonic() < deadline, f"aiokafka consumer got {len(got)} of {n}"
            batches = await asyncio.wait_for(consumer.getmany(timeout_ms=500), TIMEOUT_S)
            for records in batches.values():
                got.extend((r.offset, r.value) for r in records)
        return got

    try:
        assert await produce(b"a") == list(range(100))
        tp = AioTopicPartition(topic, 0)
        consumer.assign([tp])
        await asyncio.wait_for(consumer.seek_to_beginning(tp), TIMEOUT_S)
        assert await read(100) == [(i, b"a%d" % i) for i in range(100)]

        await asyncio.to_thread(restart, node, how)

        assert await produce(b"b") == list(range(100, 200))
        assert await read(100) == [(100 + i, b"b%d" % i) for i in range(100)]
    finally:
        await asyncio.wait_for(producer.stop(), 10)
        await asyncio.wait_for(consumer.stop(), 10)


@pytest.mark.parametrize("how", ["clean", "kill"])
async def test_duplicate_detection_survives_restart(node: BrokerProcess, how: str) -> None:
    """Producer state is rebuilt after a restart (snapshot + log tail): a batch retried
    after the restart gets its original offset, the next sequence continues, a gap is
    still OUT_OF_ORDER_SEQUENCE_NUMBER."""
    topic = unique_topic(f"rc-dup-{how}")
    bs = node.bootstrap
    admin = AIOKafkaAdminClient(bootstrap_servers=bs, request_timeout_ms=15000)
    await asyncio.wait_for(admin.start(), TIMEOUT_S)
    try:
        await asyncio.wait_for(admin.create_topics([NewTopic(topic, 1, 1)]), TIMEOUT_S)
    finally:
        await asyncio.wait_for(admin.close(), TIMEOUT_S)
    async with RawProducer(bs, topic) as raw:
        pid, epoch = await raw.init_producer_id()
        batches = [idempotent_batch(pid, epoch, 3 * i, [b"%d-%d" % (i, j) for j in range(3)])
                   for i in range(7)]  # fmt: skip
        for i in range(7):
            assert await raw.produce_batch(batches[i]) == (0, 3 * i)

    await asyncio.to_thread(restart, node, how)

    async with RawProducer(bs, topic) as raw:
        assert await raw.produce_batch(batches[6]) == (0, 18), "last batch retried"
        assert await raw.produce_batch(batches[3]) == (0, 9), "older batch retried"
        error, _ = await raw.produce(pid, epoch, 30, [b"gap"])
        assert error == 45  # OUT_OF_ORDER_SEQUENCE_NUMBER
        assert await raw.produce(pid, epoch, 21, [b"next"]) == (0, 21)

    consumer = AIOKafkaConsumer(bootstrap_servers=bs, group_id=None, enable_auto_commit=False)
    await asyncio.wait_for(consumer.start(), TIMEOUT_S)
    try:
        tp = AioTopicPartition(topic, 0)
        consumer.assign([tp])
        await asyncio.wait_for(consumer.seek_to_beginning(tp), TIMEOUT_S)
        got: list[bytes] = []
        deadline = time.monotonic() + TIMEOUT_S
        while len(got) < 22:
            assert time.monotonic() < deadline, f"read {len(got)} of 22"
            batches_read = await asyncio.wait_for(consumer.getmany(timeout_ms=500), TIMEOUT_S)
            for records in batches_read.values():
                got.extend(r.value for r in records)
        assert await asyncio.wait_for(consumer.end_offsets([tp]), TIMEOUT_S) == {tp: 22}
    finally:
        await asyncio.wait_for(consumer.stop(), 10)
    assert got == [b"%d-%d" % (i, j) for i in range(7) for j in range(3)] + [b"next"]
