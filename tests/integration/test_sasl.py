"""SASL/PLAIN on a SASL_PLAINTEXT listener, users from Kafka's JAAS property: kafka-python,
librdkafka (confluent-kafka and kcat) and aiokafka produce and consume with the right
password and are refused with a wrong one; on the wire, nothing but ApiVersions and the
SASL exchange is served before authentication, both handshake versions work, and a
PLAINTEXT listener answers the SASL APIs ILLEGAL_SASL_STATE."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka import Producer
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError as KpError
from kio.schema.errors import ErrorCode

from net.wire import WireClient
from protocol.build import build
from protocol.codec import request_type
from tests.support.broker import BrokerProcess

TIMEOUT = 20.0
JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'username="admin" password="admin-secret" user_alice="alice-secret";')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(SASL bootstrap, PLAINTEXT bootstrap) of one broker with both listeners."""
    plain_port = free_port()
    proc = BrokerProcess(tmp_path_factory.mktemp("sasl"), {
        "listeners": f"SASL_PLAINTEXT://127.0.0.1:0,PLAINTEXT://127.0.0.1:{plain_port}",
        "sasl.enabled.mechanisms": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
        "num.partitions": "1",
    })
    proc.start()
    try:
        yield proc.bootstrap, f"127.0.0.1:{plain_port}"
    finally:
        proc.close()


def kp_config(password: str) -> dict[str, Any]:
    return {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
            "sasl_plain_username": "alice", "sasl_plain_password": password}


def cfl_config(bootstrap: str, password: str) -> dict[str, Any]:
    return {"bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "PLAIN", "sasl.username": "alice", "sasl.password": password}


def req(api_key: int, version: int, **values: Any) -> Any:
    return build(request_type(api_key, version), values)


def client(bootstrap: str) -> WireClient:
    host, _, port = bootstrap.rpartition(":")
    return WireClient(host, int(port), timeout=TIMEOUT)


def test_kafka_python_and_librdkafka_authenticate(node: tuple[str, str]) -> None:
    sasl, _ = node
    topic = f"sasl-{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(bootstrap_servers=sasl, acks="all", **kp_config("alice-secret"))
    assert producer.send(topic, b"from-kafka-python").get(TIMEOUT).offset == 0
    producer.close()
    cfl = Producer(cfl_config(sasl, "alice-secret"))
    cfl.produce(topic, b"from-librdkafka")
    assert cfl.flush(TIMEOUT) == 0
    consumer = KafkaConsumer(bootstrap_servers=sasl, group_id=None, **kp_config("alice-secret"))
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    got: list[bytes] = []
    for _ in range(40):
        for records in consumer.poll(timeout_ms=500).values():
            got += [r.value for r in records]
        if len(got) >= 2:
            break
    consumer.close()
    assert got == [b"from-kafka-python", b"from-librdkafka"]
    kcat = ["kcat", "-b", sasl, "-X", "security.protocol=SASL_PLAINTEXT",
            "-X", "sasl.mechanisms=PLAIN", "-X", "sasl.username=alice"]
    out = subprocess.run([*kcat, "-X", "sasl.password=alice-secret", "-t", topic, "-C", "-e",
                          "-q"], capture_output=True, text=True, timeout=TIMEOUT)
    assert out.stdout.split() == ["from-kafka-python", "from-librdkafka"], out.stderr
    bad = subprocess.run([*kcat, "-X", "sasl.password=wrong", "-L", "-m", "5"],
                         capture_output=True, text=True, timeout=TIMEOUT)
    assert bad.returncode != 0 and "Authentication" in bad.stderr, bad.stderr


def test_a_wrong_password_is_refused(node: tuple[str, str]) -> None:
    sasl, _ = node
    with pytest.raises(KpError):
        KafkaProducer(bootstrap_servers=sasl, bootstrap_timeout_ms=3000, **kp_config("wrong"))
    errors: list[Any] = []
    cfl = Producer({**cfl_config(sasl, "wrong"), "error_cb": errors.append,
                    "message.timeout.ms": 2000})
    cfl.produce("anything", b"x")
    cfl.flush(3)
    assert any("Authentication failed" in e.str() for e in errors), errors


async def test_aiokafka_authenticates(node: tuple[str, str]) -> None:
    sasl, _ = node
    topic = f"sasl-aio-{uuid.uuid4().hex[:8]}"
    options = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
               "sasl_plain_username": "alice", "sasl_plain_password": "alice-secret"}
    producer = AIOKafkaProducer(bootstrap_servers=sasl, **options)
    await asyncio.wait_for(producer.start(), TIMEOUT)
    try:
        meta = await asyncio.wait_for(producer.send_and_wait(topic, b"aio"), TIMEOUT)
        assert meta.offset == 0
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=sasl, auto_offset_reset="earliest",
                                **options)
    await asyncio.wait_for(consumer.start(), TIMEOUT)
    try:
        record = await asyncio.wait_for(consumer.getone(), TIMEOUT)
        assert record.value == b"aio"
    finally:
        await consumer.stop()


def test_wire_rules_before_and_after_authentication(node: tuple[str, str]) -> None:
    sasl, plain = node
    metadata = req(3, 12, topics=None, allow_auto_topic_creation=False,
                   include_topic_authorized_operations=False)
    with client(sasl) as c:  # ApiVersions is allowed; anything else closes the connection
        assert c.request(req(18, 3, client_software_name="t", client_software_version="1")
                         ).error_code == ErrorCode.none
        c.send(metadata)
        assert c.is_closed_by_peer()
    with client(sasl) as c:
        r = c.request(req(17, 1, mechanism="SCRAM-SHA-256"))
        assert r.error_code == ErrorCode.unsupported_sasl_mechanism and r.mechanisms == ("PLAIN",)
        assert c.request(req(17, 1, mechanism="PLAIN")).error_code == ErrorCode.none
        r = c.request(req(36, 2, auth_bytes=b"\0alice\0nope"))
        assert r.error_code == ErrorCode.sasl_authentication_failed
        assert c.is_closed_by_peer()
    with client(sasl) as c:  # handshake v0: the token follows as a bare frame
        assert c.request(req(17, 0, mechanism="PLAIN")).error_code == ErrorCode.none
        token = b"alice\0alice\0alice-secret"  # an authorization id equal to the user
        c.send_raw(len(token).to_bytes(4, "big") + token)
        assert c.recv_frame() == b""
        assert [b.node_id for b in c.request(metadata).brokers] == [1]
        assert c.request(req(17, 1, mechanism="PLAIN")).error_code == \
            ErrorCode.illegal_sasl_state  # already authenticated
    with client(sasl) as c:  # an unauthenticated client may not send big frames
        c.send_raw((600 * 1024).to_bytes(4, "big") + b"\0" * 1024)
        assert c.is_closed_by_peer()
    with client(sasl) as c:  # an authorization id naming someone else
        c.request(req(17, 1, mechanism="PLAIN"))
        r = c.request(req(36, 2, auth_bytes=b"admin\0alice\0alice-secret"))
        assert r.error_code == ErrorCode.sasl_authentication_failed
    with client(plain) as c:  # no SASL on a PLAINTEXT listener
        assert c.request(req(17, 1, mechanism="PLAIN")).error_code == \
            ErrorCode.illegal_sasl_state
        assert [b.port for b in c.request(metadata).brokers] == [int(plain.split(":")[1])]


def test_a_sasl_listener_without_users_is_refused(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "broker", "serve", "--override", f"log.dirs={tmp_path}",
         "--override", "listeners=SASL_PLAINTEXT://127.0.0.1:0",
         "--override", "sasl.enabled.mechanisms=PLAIN"],
        capture_output=True, text=True, timeout=TIMEOUT,
        cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 2, proc.stderr
    assert "listener.name.sasl_plaintext.plain.sasl.jaas.config is required" in proc.stderr
