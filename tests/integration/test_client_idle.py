"""Clients survive the broker closing their idle connections (``connections.max.idle.ms``).

The broker here closes connections idle for 1.5 s (long enough that a
client's reconnect handshake on a loaded machine is not itself cut off); clients reach it through
:class:`KafkaProxy`, which counts the links the broker closed, so each test also proves
that an idle close really happened.  A producer (and a consumer) that sat
idle for longer must transparently reconnect and carry on: nothing fails, nothing is
duplicated.  The sleeps below only create idleness; every assertion is on data.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaProducer
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from kafka import KafkaProducer

from tests.support.broker import BrokerProcess
from tests.support.fixtures import BROKER_DEFAULT_OVERRIDES, unique_topic
from tests.support.kafka_proxy import KafkaProxy

IDLE_MS = 1500
IDLE_S = 3.5
TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaProxy]:
    """A broker closing idle connections after IDLE_MS, reached through a counting proxy."""
    with KafkaProxy() as proxy:
        overrides = {
            **BROKER_DEFAULT_OVERRIDES,
            "connections.max.idle.ms": str(IDLE_MS),
            "advertised.listeners": f"PLAINTEXT://{proxy.address}",
        }
        broker = BrokerProcess(tmp_path_factory.mktemp("idle-broker"), overrides)
        broker.start()
        try:
            proxy.set_upstream(broker.host, broker.port)
            yield proxy
            broker.stop()
        finally:
            broker.close()


@pytest.fixture
def bootstrap(proxy: KafkaProxy) -> Iterator[str]:
    """The proxy's address; asserts the broker really closed idle links during the test."""
    closes_before = proxy.upstream_closes
    yield proxy.address
    assert proxy.upstream_closes > closes_before, "the broker closed no idle connection"


def read_values(bootstrap: str, topic: str, n: int) -> list[bytes]:
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"assign-only-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 100,
        }
    )
    got: list[bytes] = []
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        deadline = time.monotonic() + TIMEOUT_S
        while len(got) < n:
            assert time.monotonic() < deadline, f"read {len(got)} of {n}"
            for m in c.consume(num_messages=n, timeout=0.5):
                if m.error() is None:
                    got.append(m.value())
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, n)
    finally:
        c.close()
    return got


def test_confluent_producer_after_idle_close(bootstrap: str) -> None:
    topic = unique_topic("idle-cfl")
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    errors: list[KafkaError] = []

    def send(value: bytes) -> None:
        p.produce(topic, value=value, partition=0, on_delivery=lambda e, m: errors.append(e))
        assert p.flush(TIMEOUT_S) == 0

    send(b"before")
    time.sleep(IDLE_S)  # idle: the broker closes the connection
    send(b"after")
    assert errors == [None, None]
    assert read_values(bootstrap, topic, 2) == [b"before", b"after"]


def test_kafka_python_producer_after_idle_close(bootstrap: str) -> None:
    topic = unique_topic("idle-kp")
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=10000)
    try:
        assert p.send(topic, b"before", partition=0).get(timeout=TIMEOUT_S).offset == 0
        time.sleep(IDLE_S)
        assert p.send(topic, b"after", partition=0).get(timeout=TIMEOUT_S).offset == 1
    finally:
        p.close(timeout=5)
    assert read_values(bootstrap, topic, 2) == [b"before", b"after"]


async def test_aiokafka_producer_after_idle_close(bootstrap: str) -> None:
    topic = unique_topic("idle-aio")
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await asyncio.wait_for(p.start(), TIMEOUT_S)
    try:
        first = await asyncio.wait_for(p.send_and_wait(topic, b"before", partition=0), TIMEOUT_S)
        await asyncio.sleep(IDLE_S)
        second = await asyncio.wait_for(p.send_and_wait(topic, b"after", partition=0), TIMEOUT_S)
        assert (first.offset, second.offset) == (0, 1)
    finally:
        await asyncio.wait_for(p.stop(), 10)
    assert await asyncio.to_thread(read_values, bootstrap, topic, 2) == [b"before", b"after"]
