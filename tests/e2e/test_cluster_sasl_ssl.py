"""A 3-node cluster whose inter-broker listener is SASL_SSL with SCRAM-SHA-512
(``inter.broker.listener.name=INTERNAL``, ``sasl.mechanism.inter.broker.protocol``, the
broker's login in ``listener.name.internal.scram-sha-512.sasl.jaas.config``, the
credential bootstrapped into the metadata log with ``strom.add.scram``), the
StandardAuthorizer on and the broker principal ``User:admin`` a super user, so follower
fetches pass the CLUSTER_ACTION check as that principal. A topic with
``min.insync.replicas=3`` takes acks=all records only when both followers fetched them
through that listener; a transaction over partitions led by different nodes commits
(verification and markers between brokers on that listener); every node logs the SASL
logins of its peers as User:admin.
Clients use the PLAINTEXT listener (User:ANONYMOUS, also a super user)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from tests.e2e.test_cluster import Cluster, free_ports, wait_until
from tests.support.tls_ca import TestCA

pytestmark = pytest.mark.timeout(150)
JAAS = ('org.apache.kafka.common.security.scram.ScramLoginModule required '
        'username="admin" password="admin-secret";')


def test_replication_over_sasl_ssl_scram(tmp_path: Path) -> None:
    ca = TestCA(tmp_path / "ca")
    node_cert = ca.issue("broker", "/CN=localhost", server=True)
    cluster = Cluster(tmp_path / "nodes", overrides={
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,INTERNAL:SASL_SSL,"
                                          "CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "INTERNAL",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
        "listener.name.internal.scram-sha-512.sasl.jaas.config": JAAS,
        "strom.add.scram": "SCRAM-SHA-512=[name=admin,password=admin-secret]",
        "ssl.keystore.type": "PEM", "ssl.keystore.location": str(node_cert.bundle),
        "ssl.truststore.type": "PEM", "ssl.truststore.location": str(ca.pem),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:admin;User:ANONYMOUS",
    })
    internal = dict(zip(cluster.nodes, free_ports(len(cluster.nodes)), strict=True))
    for i, node in cluster.nodes.items():
        node.startup_timeout = 60
        node.overrides["listeners"] = (
            f"PLAINTEXT://127.0.0.1:{cluster.client_ports[i]},"
            f"INTERNAL://127.0.0.1:{internal[i]},CONTROLLER://127.0.0.1:"
            f"{cluster.controller_ports[i]}")
    try:
        cluster.start()
        topic = f"sasl-rep-{uuid.uuid4().hex[:8]}"
        admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap(1),
                                 request_timeout_ms=20_000)
        try:
            admin.create_topics([NewTopic(topic, 3, 3,
                                          topic_configs={"min.insync.replicas": "3"})])
        finally:
            admin.close()
        wait_until(lambda: all(code == 0 and leader >= 0 for leader, code
                               in cluster.leaders(1, topic).values()), 30, "leaders")
        producer = Producer({"bootstrap.servers": cluster.bootstrap(1), "acks": "all",
                             "message.timeout.ms": 30_000})
        errors: list[object] = []
        for p in range(3):
            for i in range(20):
                producer.produce(topic, f"{p}-{i}".encode(), partition=p,
                                 on_delivery=lambda err, _m: err and errors.append(err))
        assert producer.flush(40) == 0
        assert not errors, errors  # min.insync.replicas=3: every follower fetched them
        # a transaction over the three partitions (leaders on different nodes): the
        # coordinator's verification and markers go to the other leaders over INTERNAL too
        txn = Producer({"bootstrap.servers": cluster.bootstrap(3), "acks": "all",
                        "transactional.id": f"t-{topic}", "message.timeout.ms": 30_000})
        txn.init_transactions(30)
        txn.begin_transaction()
        for p in range(3):
            txn.produce(topic, f"txn-{p}".encode(), partition=p)
        txn.commit_transaction(30)
        consumer = Consumer({"bootstrap.servers": cluster.bootstrap(2), "group.id": "g-sasl",
                             "enable.auto.commit": False, "isolation.level": "read_committed"})
        consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
        got: set[bytes] = set()
        wait_until(lambda: _poll(consumer, got) >= 63, 30, "63 records")
        consumer.close()
        assert {f"txn-{p}".encode() for p in range(3)} <= got
        for node in cluster.nodes.values():
            log = node.log_path.read_text(errors="replace")
            assert '"listener": "INTERNAL"' in log  # TLS under the SASL exchange
            assert any('"sasl_authenticated"' in line and "User:admin" in line
                       and "SCRAM-SHA-512" in line for line in log.splitlines()), node
            # the harness echoes its command line; the broker's own lines never the password
            assert not [ln for ln in log.splitlines()
                        if ln.startswith("{") and "admin-secret" in ln]
    finally:
        cluster.close()


def _poll(consumer: Consumer, got: set[bytes]) -> int:
    msg = consumer.poll(0.5)
    if msg is not None and msg.error() is None:
        got.add(msg.value())
    return len(got)
