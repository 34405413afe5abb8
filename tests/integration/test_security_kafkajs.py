"""kafkajs 2.2.4 (Node.js) over TLS, mTLS and SASL/SCRAM, with the StandardAuthorizer on.

One broker for the module, five listeners:

- ``SSL`` (bootstrap): a PEM keystore, no client certificate: ``User:ANONYMOUS``, a super
  user (it also sets up the ACLs, with confluent-kafka's AdminClient);
- ``MTLS`` (mapped to SSL): ``ssl.client.auth=required`` and a mapping rule that turns
  ``CN=Alice,OU=eng,...`` into ``alice``; bob's certificate keeps its DN;
- ``SASL_SSL`` and ``SASL_PLAINTEXT``: SCRAM-SHA-256 and -512, user alice in both
  mechanisms (bootstrap credentials from ``strom.add.scram``);
- ``CONTROLLER`` (PLAINTEXT).

``User:alice`` may do anything on topics and groups prefixed ``js-``; nobody else has an
ACL. So a kafkajs client that produces, consumes in a group and commits through the mTLS
listener proves the principal came from its certificate, and bob's certificate (a
principal without ACLs) is refused with TOPIC_AUTHORIZATION_FAILED and appends nothing.
Refusals: a wrong SCRAM password, an unknown SCRAM user, an untrusted client certificate.

Each case is one small node program (stdin: a JSON spec, stdout: a JSON result), bounded
by a subprocess timeout. Skipped, with the reason, only when node/npm are missing.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from tests.support.broker import BrokerProcess
from tests.support.kafkajs import KafkajsUnavailable, kafkajs_env, run_node
from tests.support.tls_ca import Issued, TestCA

pytestmark = pytest.mark.timeout(150)
TIMEOUT = 20.0
PASSWORD = "alice-secret"

PROGRAM = r"""
const fs = require('fs')
const { Kafka, logLevel } = require('kafkajs')
const spec = JSON.parse(fs.readFileSync(0, 'utf8'))
const ssl = spec.ssl && Object.assign({ ca: [fs.readFileSync(spec.ssl.ca)] },
  spec.ssl.cert ? { cert: fs.readFileSync(spec.ssl.cert), key: fs.readFileSync(spec.ssl.key) }
    : {})
const kafka = new Kafka({ clientId: 'strom-kafkajs-sec', brokers: [spec.broker],
  logLevel: logLevel.NOTHING, ssl: ssl || false, sasl: spec.sasl || undefined,
  connectionTimeout: 5000, retry: { retries: spec.retries } })
const main = async () => {
  let out
  if (spec.op === 'roundtrip') {
    const admin = kafka.admin()
    await admin.connect()
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic: spec.topic }] })
    const producer = kafka.producer()
    await producer.connect()
    const sent = await producer.send({ topic: spec.topic, acks: -1,
      messages: spec.values.map(v => ({ value: v })) })
    await producer.disconnect()
    const consumer = kafka.consumer({ groupId: spec.group, maxWaitTimeInMs: 100 })
    await consumer.connect()
    await consumer.subscribe({ topic: spec.topic, fromBeginning: true })
    const seen = []
    await new Promise((resolve) => {
      consumer.run({ autoCommit: false, eachMessage: async ({ topic, partition, message }) => {
        seen.push(message.value.toString())
        if (seen.length >= spec.values.length) {
          await consumer.commitOffsets([{ topic, partition,
            offset: (Number(message.offset) + 1).toString() }])
          resolve()
        }
      } })
    })
    await consumer.disconnect()
    const committed = await admin.fetchOffsets({ groupId: spec.group, topics: [spec.topic] })
    await admin.disconnect()
    out = { baseOffset: Number(sent[0].baseOffset), seen,
      committed: committed[0].partitions.map(p => Number(p.offset)) }
  } else if (spec.op === 'refused') {
    const producer = kafka.producer({ allowAutoTopicCreation: false })
    try {
      await producer.connect()
      await producer.send({ topic: spec.topic, acks: -1, messages: [{ value: 'never' }] })
      out = { refused: false }
    } catch (e) {
      out = { refused: true, name: e.name, type: e.type || null,
        message: String(e.message) }
    }
    await producer.disconnect().catch(() => {})
  }
  console.log(JSON.stringify(out))
}
main().catch(e => { console.error(e); process.exit(1) })
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Node:
    proc: BrokerProcess
    ca: Path
    alice: Issued
    bob: Issued
    stranger: Issued
    addr: dict[str, str]

    def log(self) -> str:
        return self.proc.log_path.read_text(errors="replace")

    def wait_log(self, *needles: str, after: int = 0) -> str:
        """The first log line past character ``after`` holding every needle (bounded)."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            for line in self.log()[after:].splitlines():
                if all(n in line for n in needles):
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(f"no log line with {needles}\n{self.proc.log_tail()}")
            time.sleep(0.1)


@pytest.fixture(scope="module")
def node_env() -> dict[str, str]:
    try:
        return kafkajs_env()
    except KafkajsUnavailable as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    base = tmp_path_factory.mktemp("js-sec")
    ca = TestCA(base / "ca")
    other = TestCA(base / "other", "Unknown CA")
    server = ca.issue("server", "/CN=localhost", server=True)
    alice = ca.issue("alice", "/O=Strom Test/OU=eng/CN=Alice")
    bob = ca.issue("bob", "/O=Other/CN=bob")
    stranger = other.issue("stranger", "/O=Strom Test/OU=eng/CN=mallory")
    ports = {name: free_port() for name in ("MTLS", "SASL_SSL", "SASL_PLAINTEXT")}
    proc = BrokerProcess(base / "broker", {
        "listeners": "SSL://127.0.0.1:0," + ",".join(
            f"{name}://127.0.0.1:{port}" for name, port in ports.items()),
        "listener.security.protocol.map": "SSL:SSL,MTLS:SSL,SASL_SSL:SASL_SSL,"
                                          "SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(server.bundle),
        "listener.name.mtls.ssl.truststore.type": "PEM",
        "listener.name.mtls.ssl.truststore.location": str(ca.pem),
        "listener.name.mtls.ssl.client.auth": "required",
        "listener.name.mtls.ssl.principal.mapping.rules": "RULE:^CN=([^,]+),OU=eng,.*$/$1/L,"
                                                          "DEFAULT",
        "sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512",
        "strom.add.scram": f"SCRAM-SHA-256=[name=alice,password={PASSWORD}];"
                           f"SCRAM-SHA-512=[name=alice,password={PASSWORD}]",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:ANONYMOUS",
        "num.partitions": "1",
        "group.initial.rebalance.delay.ms": "0",
        "offsets.topic.num.partitions": "1",
    })
    proc.start()
    try:
        ssl_conf = {"bootstrap.servers": proc.bootstrap, "security.protocol": "SSL",
                    "ssl.ca.location": str(ca.pem)}
        admin = AdminClient(ssl_conf)
        acls = [AclBinding(kind, "js-", ResourcePatternType.PREFIXED, "User:alice", "*",
                           AclOperation.ALL, AclPermissionType.ALLOW)
                for kind in (ResourceType.TOPIC, ResourceType.GROUP)]
        for f in admin.create_acls(acls).values():
            f.result(TIMEOUT)
        # the bootstrap SCRAM users are written just after the controller starts
        sasl_conf = {"bootstrap.servers": f"127.0.0.1:{ports['SASL_PLAINTEXT']}",
                     "security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "SCRAM-SHA-512",
                     "sasl.username": "alice", "sasl.password": PASSWORD}
        end = time.monotonic() + TIMEOUT
        while True:
            producer = Producer({**sasl_conf, "message.timeout.ms": 3000})
            producer.produce("js-warmup", b"w")
            if producer.flush(TIMEOUT) == 0:
                break
            assert time.monotonic() < end, proc.log_tail()
        yield Node(proc, ca.pem, alice, bob, stranger,
                   {"SSL": proc.bootstrap,
                    **{name: f"127.0.0.1:{port}" for name, port in ports.items()}})
    finally:
        proc.close()


def js(env: dict[str, str], node: Node, listener: str, op: str, *, cert: Issued | None = None,
       sasl: dict[str, str] | None = None, retries: int = 5, **spec: Any) -> Any:
    ssl = None
    if listener in ("SSL", "MTLS", "SASL_SSL"):
        ssl = {"ca": str(node.ca)}
        if cert is not None:
            ssl.update(cert=str(cert.cert), key=str(cert.key))
    return run_node(PROGRAM, {"broker": node.addr[listener], "op": op, "ssl": ssl,
                              "sasl": sasl, "retries": retries, **spec}, env, timeout=90)


def roundtrip(env: dict[str, str], node: Node, listener: str, **kw: Any) -> None:
    """Create a topic, produce 3 values (acks=all), consume them in a group, commit."""
    name = f"js-{listener.lower()}-{uuid.uuid4().hex[:8]}"
    values = [f"{listener}-{i}" for i in range(3)]
    out = js(env, node, listener, "roundtrip", topic=name, group=f"js-g-{name}",
             values=values, **kw)
    assert out == {"baseOffset": 0, "seen": values, "committed": [3]}


def test_produce_consume_and_group_over_ssl(node: Node, node_env: dict[str, str]) -> None:
    mark = len(node.log())
    roundtrip(node_env, node, "SSL")
    node.wait_log("tls_connected", '"listener": "SSL"', "User:ANONYMOUS", after=mark)


def test_mtls_principal_comes_from_the_certificate(node: Node, node_env: dict[str, str]
                                                   ) -> None:
    """alice's certificate maps to User:alice, whose ACLs are the only ones: the whole
    round trip (create topic, produce, join, commit, fetch offsets) is authorized as her.
    bob's certificate (User:CN=bob,O=Other, no ACL) is refused and appends nothing."""
    mark = len(node.log())
    roundtrip(node_env, node, "MTLS", cert=node.alice)
    node.wait_log("tls_connected", '"listener": "MTLS"', '"principal": "User:alice"',
                  after=mark)
    name = f"js-bob-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": node.addr["SSL"], "security.protocol": "SSL",
                         "ssl.ca.location": str(node.ca)})
    for f in admin.create_topics([NewTopic(name, 1, 1)]).values():
        f.result(TIMEOUT)
    out = js(node_env, node, "MTLS", "refused", cert=node.bob, topic=name, retries=0)
    # kafkajs wraps the protocol error; the text is its TOPIC_AUTHORIZATION_FAILED (29)
    assert out["refused"] is True, out
    assert out["type"] == "TOPIC_AUTHORIZATION_FAILED" or \
        out["message"] == "Not authorized to access topics: [Topic authorization failed]", out
    node.wait_log("authorization_denied", "User:CN=bob,O=Other", after=mark)
    low, high = _watermarks(node, name)
    assert (low, high) == (0, 0)


def _watermarks(node: Node, name: str) -> tuple[int, int]:
    c = Consumer({"bootstrap.servers": node.addr["SSL"], "security.protocol": "SSL",
                  "ssl.ca.location": str(node.ca), "group.id": "js-watermarks"})
    try:
        return c.get_watermark_offsets(TopicPartition(name, 0), timeout=TIMEOUT)
    finally:
        c.close()


@pytest.mark.parametrize("listener", ["SASL_SSL", "SASL_PLAINTEXT"])
@pytest.mark.parametrize("mechanism", ["scram-sha-256", "scram-sha-512"])
def test_produce_consume_and_group_over_scram(node: Node, node_env: dict[str, str],
                                              listener: str, mechanism: str) -> None:
    mark = len(node.log())
    roundtrip(node_env, node, listener,
              sasl={"mechanism": mechanism, "username": "alice", "password": PASSWORD})
    node.wait_log("sasl_authenticated", "User:alice", mechanism.upper(), after=mark)


@pytest.mark.parametrize("who", ["wrong-password", "unknown-user"])
def test_scram_refusals(node: Node, node_env: dict[str, str], who: str) -> None:
    mark = len(node.log())
    user, password = ("alice", "wrong") if who == "wrong-password" else ("nobody", PASSWORD)
    out = js(node_env, node, "SASL_SSL", "refused", retries=0, topic="js-never",
             sasl={"mechanism": "scram-sha-256", "username": user, "password": password})
    assert out["refused"] is True, out
    assert out["name"] == "KafkaJSSASLAuthenticationError", out
    node.wait_log("sasl_authentication_failed", after=mark)
    roundtrip(node_env, node, "SASL_SSL",  # that connection alone was refused
              sasl={"mechanism": "scram-sha-256", "username": "alice", "password": PASSWORD})


def test_untrusted_client_certificate_is_refused(node: Node, node_env: dict[str, str]
                                                 ) -> None:
    mark = len(node.log())
    out = js(node_env, node, "MTLS", "refused", cert=node.stranger, topic="js-never",
             retries=0)
    assert out["refused"] is True, out
    node.wait_log("tls_handshake_failed", '"listener": "MTLS"',
                  "unable to get local issuer certificate", after=mark)
