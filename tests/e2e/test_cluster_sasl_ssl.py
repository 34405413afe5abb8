"""A 3-node cluster that runs encrypted and authenticated between nodes: the inter-broker
listener INTERNAL and the controller listener CONTROLLER are both SASL_SSL with
SCRAM-SHA-512 (``sasl.mechanism.inter.broker.protocol``,
``sasl.mechanism.controller.protocol``, the node's login in
``listener.name.<l>.scram-sha-512.sasl.jaas.config``, the credential bootstrapped with
``strom.add.scram``: the controllers accept it before the metadata log holds it, so the
first election authenticates), the StandardAuthorizer on and the node principal
``User:admin`` a super user, so follower fetches and controller RPCs pass the
CLUSTER_ACTION check as that principal.

- a topic with ``min.insync.replicas=3`` takes acks=all records only when both followers
  fetched them through INTERNAL; a transaction over partitions led by different nodes
  commits (verification and markers between brokers on that listener); every node logs
  the SASL logins of its peers as User:admin on both listeners, never the password;
- a client with a wrong password on the controller listener is refused with a log line
  and the quorum stays in step;
- kill -9 of the quorum leader: a new one is elected over SASL_SSL, acks=all produce and
  consume work through the survivors, the killed node rejoins and catches up.
Clients use the PLAINTEXT listener (User:ANONYMOUS, also a super user)."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from tests.e2e.internal_listener import (
    assert_quorum_cli,
    controller_failover,
    internal_listener_cluster,
    poll_into,
    refused_controller_login,
    replicate_with_every_follower,
)
from tests.e2e.test_cluster import wait_until
from tests.support.tls_ca import TestCA

pytestmark = pytest.mark.timeout(300)
JAAS = ('org.apache.kafka.common.security.scram.ScramLoginModule required '
        'username="admin" password="admin-secret";')


def test_cluster_over_sasl_ssl_scram(tmp_path: Path) -> None:
    ca = TestCA(tmp_path / "ca")
    node_cert = ca.issue("broker", "/CN=localhost", server=True)
    cluster = internal_listener_cluster(tmp_path / "nodes", {
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,INTERNAL:SASL_SSL,"
                                          "CONTROLLER:SASL_SSL",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
        "sasl.mechanism.controller.protocol": "SCRAM-SHA-512",
        "listener.name.internal.scram-sha-512.sasl.jaas.config": JAAS,
        "listener.name.controller.scram-sha-512.sasl.jaas.config": JAAS,
        "strom.add.scram": "SCRAM-SHA-512=[name=admin,password=admin-secret]",
        "ssl.keystore.type": "PEM", "ssl.keystore.location": str(node_cert.bundle),
        "ssl.truststore.type": "PEM", "ssl.truststore.location": str(ca.pem),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:admin;User:ANONYMOUS",
        # TLS handshakes and SCRAM logins cost Python time per connection: on a loaded
        # machine the FAST quorum timeouts would have voters time out while connecting
        "controller.quorum.election.timeout.ms": "1500",
        "controller.quorum.fetch.timeout.ms": "3000",
        "controller.quorum.request.timeout.ms": "3000",
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
            lines = node.log_path.read_text(errors="replace").splitlines()
            for listener in ("INTERNAL", "CONTROLLER"):
                assert any('"sasl_authenticated"' in line and "User:admin" in line
                           and "SCRAM-SHA-512" in line and f'"listener": "{listener}"' in line
                           for line in lines), (node, listener)
            # the harness echoes its command line; the broker's own lines never the password
            assert not [ln for ln in lines if ln.startswith("{") and "admin-secret" in ln]
        refused_controller_login(cluster, 2, {
            "security.protocol": "SASL_SSL", "ssl.ca.location": str(ca.pem),
            "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "admin",
            "sasl.password": "wrong"})
        assert_quorum_cli(cluster, 3, tmp_path, {
            "security.protocol": "SASL_SSL", "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(ca.pem), "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.jaas.config": JAAS})
        controller_failover(cluster, "sasl-failover")
    finally:
        cluster.close()

