"""TLS listeners with real clients: SSL and mTLS (``ssl.client.auth=required``), key
material as Kafka users have it, refusals, and startup failures on bad key material.

One broker for the module, three listeners:

- ``SSL`` (bootstrap): a PKCS12 keystore (``ssl.keystore.type=PKCS12`` + password);
- ``MTLS`` (mapped to SSL): the listener's own inline PEM key (encrypted, KIP-651
  ``listener.name.mtls.ssl.keystore.key`` / ``.certificate.chain`` + ``ssl.key.password``),
  a PEM truststore, ``ssl.client.auth=required`` and ``ssl.principal.mapping.rules`` that
  turn ``CN=Alice,OU=eng,...`` into ``alice`` (others keep their DN);
- ``SASL_SSL``: SASL/PLAIN inside TLS (the broker's PKCS12 keystore);
- ``PLAINTEXT``: for TLS sent to a plaintext port.

The test CA (``tests.support.tls_ca``, the openssl command) issues the server's and the
clients' certificates, an expired one and one from an unknown CA. The principal of a
TLS client shows in the broker's ``tls_connected`` line. Subjects are written most
general first (``/O=.../OU=.../CN=...``, the order keytool and most CAs use), so the DN
reads ``CN=...,OU=...,O=...`` as Java's ``X500Principal.getName()`` prints it.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.helpers import create_ssl_context
from confluent_kafka import Consumer, KafkaError, Producer
from kafka import KafkaConsumer, KafkaProducer

from tests.support.broker import REPO_ROOT, BrokerProcess
from tests.support.strom_cli import one_line_error, strom
from tests.support.tls_ca import Issued, TestCA

TIMEOUT = 20.0
KS_PASSWORD = "ks-secret-4711"
KEY_PASSWORD = "key-secret-0815"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Pki:
    ca: TestCA
    server: Issued
    alice: Issued
    bob: Issued
    expired: Issued
    stranger: Issued  # issued by another CA


@dataclass
class Node:
    proc: BrokerProcess
    ssl: str
    mtls: str
    plain: str
    pki: Pki
    sasl_ssl: str

    def log(self) -> str:
        return self.proc.log_path.read_text(errors="replace")

    def wait_log(self, *needles: str, timeout: float = TIMEOUT) -> str:
        """The first log line holding every needle (bounded wait)."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log().splitlines():
                if all(n in line for n in needles):
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(f"no log line with {needles}\n{self.proc.log_tail()}")
            time.sleep(0.1)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    base = tmp_path_factory.mktemp("pki")
    ca = TestCA(base / "ca")
    other = TestCA(base / "other", "Unknown CA")
    return Pki(ca, ca.issue("server", "/CN=localhost", server=True),
               ca.issue("alice", "/O=Strom Test/OU=eng/CN=Alice"),
               ca.issue("bob", "/O=Other/CN=bob"),
               ca.issue("expired", "/O=Strom Test/OU=eng/CN=old", expired=True),
               other.issue("stranger", "/O=Strom Test/OU=eng/CN=mallory"))


@pytest.fixture(scope="module")
def node(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    mtls_port, plain_port, sasl_port = free_port(), free_port(), free_port()
    chain = pki.server.cert.read_text() + pki.ca.pem.read_text()
    proc = BrokerProcess(tmp_path_factory.mktemp("tls"), {
        "listeners": f"SSL://127.0.0.1:0,MTLS://127.0.0.1:{mtls_port},"
                     f"PLAINTEXT://127.0.0.1:{plain_port},SASL_SSL://127.0.0.1:{sasl_port}",
        "listener.security.protocol.map": "SSL:SSL,MTLS:SSL,PLAINTEXT:PLAINTEXT,"
                                          "CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL",
        "sasl.enabled.mechanisms": "PLAIN",
        "listener.name.sasl_ssl.plain.sasl.jaas.config":
            'org.apache.kafka.common.security.plain.PlainLoginModule required '
            'user_alice="alice-secret";',
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.location": str(pki.server.pkcs12(KS_PASSWORD)),
        "ssl.keystore.password": KS_PASSWORD,
        "listener.name.mtls.ssl.keystore.type": "PEM",
        "listener.name.mtls.ssl.keystore.key":
            pki.server.encrypted_key(KEY_PASSWORD).read_text(),
        "listener.name.mtls.ssl.keystore.certificate.chain": chain,
        "listener.name.mtls.ssl.key.password": KEY_PASSWORD,
        "listener.name.mtls.ssl.truststore.type": "PEM",
        "listener.name.mtls.ssl.truststore.location": str(pki.ca.pem),
        "listener.name.mtls.ssl.client.auth": "required",
        "listener.name.mtls.ssl.principal.mapping.rules": "RULE:^CN=([^,]+),OU=eng,.*$/$1/L,"
                                                          "DEFAULT",
        "num.partitions": "1",
        "group.initial.rebalance.delay.ms": "0",
        "offsets.topic.num.partitions": "1",
    })
    proc.start()
    try:
        yield Node(proc, proc.bootstrap, f"127.0.0.1:{mtls_port}", f"127.0.0.1:{plain_port}",
                   pki, f"127.0.0.1:{sasl_port}")
        if proc.running:
            proc.stop()
    finally:
        proc.close()


def topic() -> str:
    return f"tls-{uuid.uuid4().hex[:10]}"


def cfl(node: Node, bootstrap: str, cert: Issued | None = None, **extra: Any) -> dict[str, Any]:
    conf: dict[str, Any] = {"bootstrap.servers": bootstrap, "security.protocol": "SSL",
                            "ssl.ca.location": str(node.pki.ca.pem), **extra}
    if cert is not None:
        conf.update({"ssl.certificate.location": str(cert.cert),
                     "ssl.key.location": str(cert.key)})
    return conf


def kp(node: Node, cert: Issued | None = None) -> dict[str, Any]:
    conf: dict[str, Any] = {"security_protocol": "SSL", "ssl_cafile": str(node.pki.ca.pem)}
    if cert is not None:
        conf.update(ssl_certfile=str(cert.cert), ssl_keyfile=str(cert.key))
    return conf


def cfl_consume(conf: dict[str, Any], name: str, count: int) -> list[bytes]:
    consumer = Consumer({**conf, "group.id": f"g-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([name])
    got: list[bytes] = []
    deadline = time.monotonic() + TIMEOUT
    try:
        while len(got) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None or msg.error().code() == KafkaError._PARTITION_EOF, \
                msg.error()
            if msg.error() is None:
                got.append(msg.value())
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return got


def test_librdkafka_produce_consume_and_group_over_ssl(node: Node) -> None:
    name = topic()
    producer = Producer(cfl(node, node.ssl))
    for i in range(5):
        producer.produce(name, f"m{i}".encode())
    assert producer.flush(TIMEOUT) == 0
    assert cfl_consume(cfl(node, node.ssl), name, 5) == [f"m{i}".encode() for i in range(5)]
    node.wait_log("tls_connected", '"listener": "SSL"', "User:ANONYMOUS")


def test_kafka_python_produce_consume_and_group_over_ssl(node: Node) -> None:
    name = topic()
    producer = KafkaProducer(bootstrap_servers=node.ssl, acks="all", **kp(node))
    for i in range(3):
        producer.send(name, f"k{i}".encode()).get(TIMEOUT)
    producer.close()
    consumer = KafkaConsumer(name, bootstrap_servers=node.ssl, group_id=f"g-{name}",
                             auto_offset_reset="earliest", consumer_timeout_ms=15000,
                             **kp(node))
    got = []
    for record in consumer:
        got.append(record.value)
        if len(got) == 3:
            break
    consumer.commit()
    consumer.close()
    assert got == [b"k0", b"k1", b"k2"]


async def test_aiokafka_produce_consume_and_group_over_ssl(node: Node) -> None:
    name = topic()
    context = create_ssl_context(cafile=str(node.pki.ca.pem))
    producer = AIOKafkaProducer(bootstrap_servers=node.ssl, security_protocol="SSL",
                                ssl_context=context)
    await producer.start()
    try:
        for i in range(3):
            await producer.send_and_wait(name, f"a{i}".encode())
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(name, bootstrap_servers=node.ssl, security_protocol="SSL",
                                ssl_context=context, group_id=f"g-{name}",
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        got: list[bytes] = []
        deadline = time.monotonic() + TIMEOUT
        while len(got) < 3 and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                got += [r.value for r in records]
        await consumer.commit()
    finally:
        await consumer.stop()
    assert got == [b"a0", b"a1", b"a2"]


def kcat(node: Node, bootstrap: str, *args: str, cert: Issued | None = None,
         stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    conf = ["-X", "security.protocol=SSL", "-X", f"ssl.ca.location={node.pki.ca.pem}"]
    if cert is not None:
        conf += ["-X", f"ssl.certificate.location={cert.cert}",
                 "-X", f"ssl.key.location={cert.key}"]
    return subprocess.run(["kcat", "-b", bootstrap, *conf, *args], input=stdin,
                          capture_output=True, text=True, timeout=TIMEOUT + 10)


def test_kcat_produce_consume_and_group_over_ssl(node: Node) -> None:
    name = topic()
    out = kcat(node, node.ssl, "-P", "-t", name, stdin="one\ntwo\n")
    assert out.returncode == 0, out.stderr
    out = kcat(node, node.ssl, "-C", "-t", name, "-e", "-q")
    assert out.stdout.split() == ["one", "two"], out.stderr
    out = kcat(node, node.ssl, "-G", f"g-{name}", name, "-c", "2", "-q",
               "-X", "auto.offset.reset=earliest")
    assert out.stdout.split() == ["one", "two"], out.stderr


def test_mtls_principal_comes_from_the_certificate(node: Node) -> None:
    """Every client presenting alice's certificate is User:alice (mapping rule); bob's
    subject matches no RULE and keeps its DN (DEFAULT)."""
    name = topic()
    producer = Producer(cfl(node, node.mtls, node.pki.alice, **{"client.id": "cfl-alice"}))
    producer.produce(name, b"from-alice")
    assert producer.flush(TIMEOUT) == 0
    node.wait_log("tls_connected", '"listener": "MTLS"', '"principal": "User:alice"')
    kproducer = KafkaProducer(bootstrap_servers=node.mtls, **kp(node, node.pki.bob))
    kproducer.send(name, b"from-bob").get(TIMEOUT)
    kproducer.close()
    node.wait_log("tls_connected", '"listener": "MTLS"', '"principal": "User:CN=bob,O=Other"')
    out = kcat(node, node.mtls, "-C", "-t", name, "-e", "-q", cert=node.pki.alice)
    assert out.stdout.split() == ["from-alice", "from-bob"], out.stderr


async def test_aiokafka_over_mtls(node: Node) -> None:
    name = topic()
    context = create_ssl_context(cafile=str(node.pki.ca.pem),
                                 certfile=str(node.pki.alice.cert),
                                 keyfile=str(node.pki.alice.key))
    producer = AIOKafkaProducer(bootstrap_servers=node.mtls, security_protocol="SSL",
                                ssl_context=context)
    await producer.start()
    try:
        meta = await producer.send_and_wait(name, b"ai")
    finally:
        await producer.stop()
    assert meta.offset == 0


@pytest.mark.parametrize("who", ["none", "expired", "stranger"])
def test_mtls_refuses_missing_expired_and_untrusted_certificates(node: Node, who: str
                                                                 ) -> None:
    cert = {"none": None, "expired": node.pki.expired, "stranger": node.pki.stranger}[who]
    before = node.log().count("tls_handshake_failed")
    errors: list[Any] = []
    producer = Producer(cfl(node, node.mtls, cert, error_cb=errors.append,
                            **{"message.timeout.ms": 1500}))
    reports: list[Any] = []
    producer.produce(topic(), b"never", on_delivery=lambda err, _msg: reports.append(err))
    producer.flush(8)
    assert reports and reports[0] is not None, reports  # not delivered
    assert errors, "librdkafka saw no error"
    reason = {"none": "PEER_DID_NOT_RETURN_A_CERTIFICATE", "expired": "certificate has expired",
              "stranger": "unable to get local issuer certificate"}[who]
    line = node.wait_log("tls_handshake_failed", '"listener": "MTLS"', reason)
    assert node.log().count("tls_handshake_failed") > before, line
    # only those connections were refused: a good client goes on
    out = kcat(node, node.mtls, "-L", cert=node.pki.alice)
    assert out.returncode == 0, out.stderr


def _api_versions_bytes() -> bytes:
    body = (18).to_bytes(2, "big") + (0).to_bytes(2, "big") + (7).to_bytes(4, "big") \
        + (4).to_bytes(2, "big") + b"test"
    return len(body).to_bytes(4, "big") + body


def _closed_by_peer(sock: socket.socket) -> bool:
    sock.settimeout(TIMEOUT)
    try:
        while sock.recv(65536):
            pass
    except (ConnectionResetError, ssl.SSLError):
        return True
    return True


def test_plaintext_to_tls_port_and_tls_to_plaintext_port_close_only_that_connection(
        node: Node) -> None:
    host, port = node.ssl.split(":")
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as raw:
        raw.sendall(_api_versions_bytes())
        assert _closed_by_peer(raw)
    node.wait_log("tls_handshake_failed", '"listener": "SSL"', "WRONG_VERSION_NUMBER")
    host, port = node.plain.split(":")
    context = ssl.create_default_context(cafile=str(node.pki.ca.pem))
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as raw, \
            pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        context.wrap_socket(raw, server_hostname="localhost")
    node.wait_log("connection_closed", "TLS handshake on a plaintext listener")
    # the listeners keep serving
    assert kcat(node, node.ssl, "-L").returncode == 0
    out = subprocess.run(["kcat", "-b", node.plain, "-L"], capture_output=True, text=True,
                         timeout=TIMEOUT)
    assert out.returncode == 0, out.stderr


# ---------------------------------------------------------------------------- startup
def _serve(tmp_path: Path, **overrides: str) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "broker", "serve", "--override", f"log.dirs={tmp_path}/d",
            "--override", "listeners=SSL://127.0.0.1:0"]
    for key, value in overrides.items():
        args += ["--override", f"{key.replace('_', '.')}={value}"]
    return subprocess.run(args, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)


def test_a_bad_keystore_stops_startup_naming_the_property(pki: Pki, tmp_path: Path) -> None:
    """The process exits 2 with the property in its message and no secret in its output
    (the other bad-key-material cases: tests/unit/broker/test_tls_config.py)."""
    out = _serve(tmp_path, ssl_keystore_type="PKCS12",
                 ssl_keystore_location=str(pki.server.pkcs12(KS_PASSWORD)),
                 ssl_keystore_password="wrong-password-123")
    assert out.returncode == 2, out.stderr[-2000:]
    assert "ssl.keystore.password does not open ssl.keystore.location" in out.stderr, \
        out.stderr[-2000:]
    assert "wrong-password-123" not in out.stderr + out.stdout


def test_sasl_plain_inside_tls(node: Node) -> None:
    name = topic()
    conf = cfl(node, node.sasl_ssl, **{"security.protocol": "SASL_SSL",
                                       "sasl.mechanisms": "PLAIN", "sasl.username": "alice"})
    producer = Producer({**conf, "sasl.password": "alice-secret"})
    producer.produce(name, b"sealed")
    assert producer.flush(TIMEOUT) == 0
    node.wait_log("tls_connected", '"listener": "SASL_SSL"')
    node.wait_log("sasl_authenticated", "User:alice")
    errors: list[Any] = []
    bad = Producer({**conf, "sasl.password": "wrong", "error_cb": errors.append,
                    "message.timeout.ms": 1500})
    bad.produce(name, b"never")
    bad.flush(5)
    assert any("Authentication failed" in e.str() for e in errors), errors
    kp_conf = {**kp(node), "security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN",
               "sasl_plain_username": "alice", "sasl_plain_password": "alice-secret"}
    consumer = KafkaConsumer(name, bootstrap_servers=node.sasl_ssl, group_id=None,
                             auto_offset_reset="earliest", consumer_timeout_ms=10000,
                             **kp_conf)
    first = next(iter(consumer), None)
    consumer.close()
    assert first is not None and first.value == b"sealed"


def test_strom_tools_take_a_kafka_command_config(node: Node, tmp_path: Path) -> None:
    """``strom ... --command-config FILE`` (Kafka client properties): SASL_SSL with a PEM
    truststore and a PLAIN JAAS login creates and lists a topic; SSL with a PEM keystore
    answers mutual TLS (librdkafka's ssl.ca.location for the CA); the SSL listener without
    the file, or with a CA that did not sign the server, is a one-line failure (exit 1)."""
    name = topic()
    sasl = tmp_path / "sasl.properties"
    sasl.write_text(
        "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\n"
        "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required "
        'username="alice" password="alice-secret";\n'
        f"ssl.truststore.type=PEM\nssl.truststore.location={node.pki.ca.pem}\n")
    made = strom("topic", "create", name, "-p", "2", "-b", node.sasl_ssl,
                 "--command-config", str(sasl))
    assert made.returncode == 0, made.stderr.decode()
    listed = strom("topic", "list", "-b", node.sasl_ssl, "--command-config", str(sasl))
    assert listed.returncode == 0 and name in listed.stdout.decode(), listed
    mtls = tmp_path / "mtls.properties"
    mtls.write_text(f"security.protocol=SSL\nssl.ca.location={node.pki.ca.pem}\n"
                    f"ssl.keystore.type=PEM\nssl.keystore.location={node.pki.alice.bundle}\n")
    desc = strom("topic", "describe", name, "-b", node.mtls, "--command-config", str(mtls))
    assert desc.returncode == 0 and name in desc.stdout.decode(), desc.stderr.decode()
    bare = strom("topic", "list", "-b", node.ssl, "--timeout", "3")
    assert bare.returncode == 1, bare
    one_line_error(bare)
    stranger = tmp_path / "stranger.properties"
    stranger.write_text(f"security.protocol=SSL\nssl.ca.location={node.pki.stranger.cert}\n")
    wrong = strom("topic", "list", "-b", node.ssl, "--command-config", str(stranger))
    assert wrong.returncode == 1, wrong
    assert "TLS handshake with" in one_line_error(wrong) and "CERTIFICATE_VERIFY_FAILED" \
        in one_line_error(wrong)
