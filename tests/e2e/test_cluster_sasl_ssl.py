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

from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from tests.e2e.internal_listener import (
    internal_listener_cluster,
    poll_into,
    replicate_with_every_follower,
)
from tests.e2e.test_cluster import wait_until
from tests.support.tls_ca import TestCA

pytestmark = pytest.mark.timeout(150)
JAAS = ('org.apache.kafka.common.security.scram.ScramLoginModule required '
        'username="admin" password="admin-secret";')


def test_replication_over_sasl_ssl_scram(tmp_path: Path) -> None:
    ca = TestCA(tmp_path / "ca")
    node_cert = ca.issue("broker", "/CN=localhost", server=True)
    cluster = internal_listener_cluster(tmp_path / "nodes", {
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,INTERNAL:SASL_SSL,"
                                          "CONTROLLER:PLAINTEXT",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
        "listener.name.internal.scram-sha-512.sasl.jaas.config": JAAS,
        "strom.add.scram": "SCRAM-SHA-512=[name=admin,password=admin-secret]",
        "ssl.keystore.type": "PEM", "ssl.keystore.location": str(node_cert.bundle),
        "ssl.truststore.type": "PEM", "ssl.truststore.location": str(ca.pem),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:admin;User:ANONYMOUS",
    })
    try:
        cluster.start()
        topic = replicate_with_every_follower(cluster, "sasl-rep")
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
        wait_until(lambda: poll_into(consumer, got) >= 63, 30, "63 records")
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

