"""SCRAM-SHA-256 and -512 on a SASL_SSL listener (TLS from ``broker.tls``, SASL from
``broker.security.authenticator``): confluent-kafka, kafka-python, aiokafka and kcat
produce, consume and use a consumer group through TLS with SCRAM users from the metadata
log; a wrong password is refused."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.helpers import create_ssl_context
from confluent_kafka import Consumer, Producer
from kafka import KafkaConsumer, KafkaProducer

from tests.support.broker import BrokerProcess
from tests.support.tls_ca import TestCA

pytestmark = pytest.mark.timeout(120)
TIMEOUT = 20.0
USERS = {"SCRAM-SHA-256": ("alice", "alice-secret"), "SCRAM-SHA-512": ("bob", "bob-secret")}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BrokerProcess, Path]]:
    """(the broker, whose bootstrap is its SASL_SSL listener; the CA certificate)."""
    base = tmp_path_factory.mktemp("sasl-ssl")
    ca = TestCA(base / "ca")
    server = ca.issue("server", "/CN=localhost", server=True)
    proc = BrokerProcess(base / "broker", {
        "listeners": "SASL_SSL://127.0.0.1:0",
        "sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512",
        "strom.add.scram": "SCRAM-SHA-256=[name=alice,password=alice-secret];"
                           "SCRAM-SHA-512=[name=bob,password=bob-secret]",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(server.bundle),
        "num.partitions": "1",
        "group.initial.rebalance.delay.ms": "0",
        "offsets.topic.num.partitions": "1",
    })
    proc.start()
    try:
        yield proc, ca.pem
    finally:
        proc.close()


def cfl(node: tuple[BrokerProcess, Path], mech: str, password: str | None = None
        ) -> dict[str, Any]:
    proc, ca = node
    user, secret = USERS[mech]
    return {"bootstrap.servers": proc.bootstrap, "security.protocol": "SASL_SSL",
            "ssl.ca.location": str(ca), "sasl.mechanisms": mech, "sasl.username": user,
            "sasl.password": password or secret}


def produce_confluent(conf: dict[str, Any], topic: str, values: list[bytes]) -> None:
    end = time.monotonic() + TIMEOUT
    while True:  # the bootstrap users are written just after the controller starts
        producer = Producer({**conf, "message.timeout.ms": 5000})
        for v in values:
            producer.produce(topic, v)
        if producer.flush(TIMEOUT) == 0 or time.monotonic() > end:
            break
    assert producer.flush(TIMEOUT) == 0


@pytest.mark.parametrize("mech", sorted(USERS))
def test_confluent_kcat_and_kafka_python(node: tuple[BrokerProcess, Path], mech: str
                                         ) -> None:
    proc, ca = node
    user, password = USERS[mech]
    topic = f"sasl-ssl-{uuid.uuid4().hex[:8]}"
    produce_confluent(cfl(node, mech), topic, [b"a", b"b"])
    consumer = Consumer({**cfl(node, mech), "group.id": f"g-{topic}",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got: list[bytes] = []
    end = time.monotonic() + TIMEOUT
    while len(got) < 2 and time.monotonic() < end:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            got.append(msg.value())
    consumer.commit(asynchronous=False)
    consumer.close()
    assert got == [b"a", b"b"]
    out = subprocess.run(["kcat", "-b", proc.bootstrap, "-X", "security.protocol=SASL_SSL",
                          "-X", f"ssl.ca.location={ca}", "-X", f"sasl.mechanisms={mech}",
                          "-X", f"sasl.username={user}", "-X", f"sasl.password={password}",
                          "-C", "-t", topic, "-e", "-q"],
                         capture_output=True, text=True, timeout=TIMEOUT + 10)
    assert out.stdout.split() == ["a", "b"], out.stderr
    kp = {"security_protocol": "SASL_SSL", "ssl_cafile": str(ca), "sasl_mechanism": mech,
          "sasl_plain_username": user, "sasl_plain_password": password}
    producer = KafkaProducer(bootstrap_servers=proc.bootstrap, **kp)
    assert producer.send(topic, b"c").get(TIMEOUT).offset == 2
    producer.close()
    reader = KafkaConsumer(topic, bootstrap_servers=proc.bootstrap, group_id=f"kp-{topic}",
                           auto_offset_reset="earliest", consumer_timeout_ms=10000, **kp)
    values = [r.value for _, r in zip(range(3), reader, strict=False)]
    reader.commit()
    reader.close()
    assert values == [b"a", b"b", b"c"]


async def test_aiokafka(node: tuple[BrokerProcess, Path]) -> None:
    _, ca = node
    proc, _ = node
    user, password = USERS["SCRAM-SHA-512"]
    topic = f"sasl-ssl-aio-{uuid.uuid4().hex[:8]}"
    produce_confluent(cfl(node, "SCRAM-SHA-512"), topic, [])  # users are there
    options = {"security_protocol": "SASL_SSL", "ssl_context": create_ssl_context(
        cafile=str(ca)), "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": user,
        "sasl_plain_password": password}
    producer = AIOKafkaProducer(bootstrap_servers=proc.bootstrap, **options)
    await asyncio.wait_for(producer.start(), TIMEOUT)
    try:
        await asyncio.wait_for(producer.send_and_wait(topic, b"aio"), TIMEOUT)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=proc.bootstrap,
                                group_id=f"g-{topic}", auto_offset_reset="earliest",
                                **options)
    await asyncio.wait_for(consumer.start(), TIMEOUT)
    try:
        assert (await asyncio.wait_for(consumer.getone(), TIMEOUT)).value == b"aio"
        await asyncio.wait_for(consumer.commit(), TIMEOUT)
    finally:
        await consumer.stop()


def test_a_wrong_password_is_refused_inside_tls(node: tuple[BrokerProcess, Path]) -> None:
    errors: list[Any] = []
    producer = Producer({**cfl(node, "SCRAM-SHA-256", "wrong"), "error_cb": errors.append,
                         "message.timeout.ms": 1500})
    producer.produce("never", b"x")
    producer.flush(5)
    assert any("Authentication failed" in e.str() for e in errors), errors
    assert "sasl_authentication_failed" in node[0].log_path.read_text()
