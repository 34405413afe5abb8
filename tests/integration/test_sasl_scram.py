"""SASL/SCRAM-SHA-256 and -512 on a SASL_PLAINTEXT listener, credentials in the metadata
log: bootstrap users (``strom.add.scram``) log in with confluent-kafka, kafka-python,
aiokafka and kcat (produce, consume, a consumer group); a wrong password or an unknown
user is refused (that connection alone closes, with a log line); users created at run
time with AlterUserScramCredentials (confluent-kafka and kafka-python admin clients) log
in at once, are described without secrets, and are refused once deleted. PLAIN keeps
working beside SCRAM on the same listener."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import scramp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError as KpError
from kio.schema.errors import ErrorCode

from net.wire import WireClient
from protocol.build import build
from protocol.codec import request_type
from tests.support.broker import BrokerProcess

pytestmark = pytest.mark.timeout(120)
TIMEOUT = 20.0
JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'username="admin" password="admin-secret" user_carol="carol-secret";')
MECHS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
USERS = {"SCRAM-SHA-256": ("alice", "alice-secret"), "SCRAM-SHA-512": ("bob", "bob-secret")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BrokerProcess, str]]:
    """(the broker, whose bootstrap is its SASL listener; its PLAINTEXT bootstrap)."""
    plain_port = free_port()
    proc = BrokerProcess(tmp_path_factory.mktemp("scram"), {
        "listeners": f"SASL_PLAINTEXT://127.0.0.1:0,PLAINTEXT://127.0.0.1:{plain_port}",
        "sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
        "strom.add.scram": "SCRAM-SHA-256=[name=alice,password=alice-secret];"
                           "SCRAM-SHA-512=[name=bob,password=bob-secret,iterations=8192]",
        "num.partitions": "1",
        "group.initial.rebalance.delay.ms": "0",
        "offsets.topic.num.partitions": "2",
    })
    proc.start()
    try:
        wait_login(proc.bootstrap, "SCRAM-SHA-256", "alice", "alice-secret")
        yield proc, f"127.0.0.1:{plain_port}"
    finally:
        proc.close()


def cfl(bootstrap: str, mech: str, user: str, password: str) -> dict[str, Any]:
    return {"bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": mech, "sasl.username": user, "sasl.password": password}


def kp(mech: str, user: str, password: str) -> dict[str, Any]:
    return {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": mech,
            "sasl_plain_username": user, "sasl_plain_password": password}


def req(api_key: int, version: int, **values: Any) -> Any:
    return build(request_type(api_key, version), values)


def login(bootstrap: str, mech: str, user: str, password: str) -> bool:
    """One SCRAM exchange on the wire (scramp's client); True when it succeeded."""
    host, _, port = bootstrap.rpartition(":")
    with WireClient(host, int(port), timeout=TIMEOUT) as c:
        assert c.request(req(17, 1, mechanism=mech)).error_code == ErrorCode.none
        client = scramp.ScramClient([mech], user, password)
        r = c.request(req(36, 2, auth_bytes=client.get_client_first().encode()))
        if r.error_code != ErrorCode.none:
            return False
        client.set_server_first(r.auth_bytes.decode())
        r = c.request(req(36, 2, auth_bytes=client.get_client_final().encode()))
        if r.error_code != ErrorCode.none:
            assert c.is_closed_by_peer()
            return False
        client.set_server_final(r.auth_bytes.decode())  # the server proved it knows us
        meta = c.request(req(3, 12, topics=None, allow_auto_topic_creation=False,
                             include_topic_authorized_operations=False))
        return len(meta.brokers) == 1


def wait_login(bootstrap: str, mech: str, user: str, password: str,
               expect: bool = True) -> None:
    end = time.monotonic() + TIMEOUT
    while time.monotonic() < end:
        if login(bootstrap, mech, user, password) == expect:
            return
        time.sleep(0.1)
    raise AssertionError(f"{user} ({mech}) login never became {expect}")


@pytest.mark.parametrize("mech", MECHS)
def test_confluent_and_kcat_produce_consume_and_group(node: tuple[BrokerProcess, str],
                                                      mech: str) -> None:
    proc, _ = node
    user, password = USERS[mech]
    topic = f"scram-{uuid.uuid4().hex[:8]}"
    producer = Producer(cfl(proc.bootstrap, mech, user, password))
    for i in range(3):
        producer.produce(topic, f"m{i}".encode())
    assert producer.flush(TIMEOUT) == 0
    consumer = Consumer({**cfl(proc.bootstrap, mech, user, password),
                         "group.id": f"g-{topic}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got: list[bytes] = []
    end = time.monotonic() + TIMEOUT
    while len(got) < 3 and time.monotonic() < end:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            got.append(msg.value())
    consumer.commit(asynchronous=False)
    consumer.close()
    assert got == [b"m0", b"m1", b"m2"]
    kcat = ["kcat", "-b", proc.bootstrap, "-X", "security.protocol=SASL_PLAINTEXT",
            "-X", f"sasl.mechanisms={mech}", "-X", f"sasl.username={user}"]
    out = subprocess.run([*kcat, "-X", f"sasl.password={password}", "-t", topic, "-C",
                          "-e", "-q"], capture_output=True, text=True, timeout=TIMEOUT)
    assert out.stdout.split() == ["m0", "m1", "m2"], out.stderr
    bad = subprocess.run([*kcat, "-X", "sasl.password=wrong", "-L", "-m", "5"],
                         capture_output=True, text=True, timeout=TIMEOUT)
    assert bad.returncode != 0 and "Authentication failed" in bad.stderr, bad.stderr


@pytest.mark.parametrize("mech", MECHS)
def test_kafka_python_produce_consume_and_group(node: tuple[BrokerProcess, str],
                                                mech: str) -> None:
    proc, _ = node
    user, password = USERS[mech]
    topic = f"scram-kp-{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(bootstrap_servers=proc.bootstrap, **kp(mech, user, password))
    assert producer.send(topic, b"kp").get(TIMEOUT).offset == 0
    producer.close()
    consumer = KafkaConsumer(topic, bootstrap_servers=proc.bootstrap, group_id=f"g-{topic}",
                             auto_offset_reset="earliest", consumer_timeout_ms=15000,
                             **kp(mech, user, password))
    got = []
    for record in consumer:
        got.append(record.value)
        break
    consumer.commit()
    consumer.close()
    assert got == [b"kp"]


@pytest.mark.parametrize("mech", MECHS)
async def test_aiokafka_produce_consume_and_group(node: tuple[BrokerProcess, str],
                                                  mech: str) -> None:
    proc, _ = node
    user, password = USERS[mech]
    topic = f"scram-aio-{uuid.uuid4().hex[:8]}"
    options = kp(mech, user, password)
    producer = AIOKafkaProducer(bootstrap_servers=proc.bootstrap, **options)
    await asyncio.wait_for(producer.start(), TIMEOUT)
    try:
        assert (await asyncio.wait_for(producer.send_and_wait(topic, b"aio"), TIMEOUT)
                ).offset == 0
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=proc.bootstrap,
                                group_id=f"g-{topic}", auto_offset_reset="earliest",
                                **options)
    await asyncio.wait_for(consumer.start(), TIMEOUT)
    try:
        record = await asyncio.wait_for(consumer.getone(), TIMEOUT)
        assert record.value == b"aio"
        await asyncio.wait_for(consumer.commit(), TIMEOUT)
    finally:
        await consumer.stop()


def test_refusals_close_only_that_connection(node: tuple[BrokerProcess, str]) -> None:
    proc, _ = node
    host, _, port = proc.bootstrap.rpartition(":")
    with WireClient(host, int(port), timeout=TIMEOUT) as healthy:
        client = scramp.ScramClient(["SCRAM-SHA-256"], "alice", "alice-secret")
        healthy.request(req(17, 1, mechanism="SCRAM-SHA-256"))
        r = healthy.request(req(36, 2, auth_bytes=client.get_client_first().encode()))
        client.set_server_first(r.auth_bytes.decode())
        r = healthy.request(req(36, 2, auth_bytes=client.get_client_final().encode()))
        assert r.error_code == ErrorCode.none
        assert not login(proc.bootstrap, "SCRAM-SHA-256", "alice", "wrong")
        assert not login(proc.bootstrap, "SCRAM-SHA-512", "alice", "alice-secret")
        with WireClient(host, int(port), timeout=TIMEOUT) as c:  # unknown user
            c.request(req(17, 1, mechanism="SCRAM-SHA-256"))
            r = c.request(req(36, 2, auth_bytes=b"n,,n=nobody,r=abcdefgh"))
            assert r.error_code == ErrorCode.sasl_authentication_failed
            assert "invalid credentials with SASL mechanism SCRAM-SHA-256" in r.error_message
            assert c.is_closed_by_peer()
        with pytest.raises(KpError):
            KafkaProducer(bootstrap_servers=proc.bootstrap, bootstrap_timeout_ms=3000,
                          **kp("SCRAM-SHA-512", "bob", "wrong"))
        meta = healthy.request(req(3, 12, topics=None, allow_auto_topic_creation=False,
                                   include_topic_authorized_operations=False))
        assert len(meta.brokers) == 1  # the authenticated connection keeps working
        r = healthy.request(req(17, 1, mechanism="SCRAM-SHA-256"))
        assert r.error_code == ErrorCode.illegal_sasl_state  # no re-auth configured
    log = "\n".join(line for line in proc.log_path.read_text().splitlines()
                    if line.startswith("{"))  # the broker's own lines (not the command)
    assert "sasl_authentication_failed" in log and "connection_closed" in log
    assert "alice-secret" not in log and "bob-secret" not in log


def test_plain_still_works_beside_scram(node: tuple[BrokerProcess, str]) -> None:
    proc, _ = node
    producer = Producer(cfl(proc.bootstrap, "PLAIN", "carol", "carol-secret"))
    producer.produce(f"plain-{uuid.uuid4().hex[:8]}", b"x")
    assert producer.flush(TIMEOUT) == 0
    host, _, port = proc.bootstrap.rpartition(":")
    with WireClient(host, int(port), timeout=TIMEOUT) as c:
        r = c.request(req(17, 1, mechanism="GSSAPI"))
        assert r.error_code == ErrorCode.unsupported_sasl_mechanism
        assert list(r.mechanisms) == ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"]


def test_users_created_at_run_time_with_confluent_admin(node: tuple[BrokerProcess, str]
                                                        ) -> None:
    proc, plain = node
    admin = AdminClient({"bootstrap.servers": plain})
    futures = admin.alter_user_scram_credentials([
        UserScramCredentialUpsertion("dave", ScramCredentialInfo(
            ScramMechanism.SCRAM_SHA_256, 4096), b"dave-secret"),
        UserScramCredentialUpsertion("dave", ScramCredentialInfo(
            ScramMechanism.SCRAM_SHA_512, 8192), b"dave-secret-512"),
    ])
    for f in futures.values():
        f.result(TIMEOUT)
    assert login(proc.bootstrap, "SCRAM-SHA-256", "dave", "dave-secret")  # at once
    assert login(proc.bootstrap, "SCRAM-SHA-512", "dave", "dave-secret-512")
    described = admin.describe_user_scram_credentials(["dave"])["dave"].result(TIMEOUT)
    infos = sorted((i.mechanism, i.iterations) for i in described.scram_credential_infos)
    assert infos == [(ScramMechanism.SCRAM_SHA_256, 4096), (ScramMechanism.SCRAM_SHA_512,
                                                            8192)]
    every = admin.describe_user_scram_credentials().result(TIMEOUT)
    assert {"alice", "bob", "dave"} <= set(every)
    with pytest.raises(KafkaException) as info:
        admin.describe_user_scram_credentials(["nobody"])["nobody"].result(TIMEOUT)
    assert info.value.args[0].code() == ErrorCode.resource_not_found
    bad = admin.alter_user_scram_credentials([UserScramCredentialUpsertion(
        "erin", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 100), b"x")])
    with pytest.raises(KafkaException) as info:
        bad["erin"].result(TIMEOUT)
    assert info.value.args[0].code() == ErrorCode.unacceptable_credential
    gone = admin.alter_user_scram_credentials([
        UserScramCredentialDeletion("dave", ScramMechanism.SCRAM_SHA_256)])
    gone["dave"].result(TIMEOUT)
    assert not login(proc.bootstrap, "SCRAM-SHA-256", "dave", "dave-secret")
    assert login(proc.bootstrap, "SCRAM-SHA-512", "dave", "dave-secret-512")
    with pytest.raises(KafkaException) as info:
        admin.alter_user_scram_credentials([UserScramCredentialDeletion(
            "dave", ScramMechanism.SCRAM_SHA_256)])["dave"].result(TIMEOUT)
    assert info.value.args[0].code() == ErrorCode.resource_not_found


def test_users_created_at_run_time_with_kafka_python_admin(
        node: tuple[BrokerProcess, str]) -> None:
    from kafka.admin import UserScramCredentialUpsertion as KpUpsertion

    proc, plain = node
    admin = KafkaAdminClient(bootstrap_servers=plain)
    try:
        result = admin.alter_user_scram_credentials(
            [KpUpsertion("frank", "SCRAM-SHA-512", "frank-secret", iterations=4096)])
        assert result == {"frank": None}, result
        assert login(proc.bootstrap, "SCRAM-SHA-512", "frank", "frank-secret")
        described = admin.describe_user_scram_credentials(["frank"])
        assert "frank" in str(described)
    finally:
        admin.close()
