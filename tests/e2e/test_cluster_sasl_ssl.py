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
from confluent_kafka import Producer

from tests.e2e.internal_listener import (
    ADMIN_AUTHORIZER,
    SECURED_QUORUM_TIMEOUTS,
    assert_quorum_cli,
    assert_sasl_logins_logged,
    controller_failover,
    internal_listener_cluster,
    pem_stores,
    read_back,
    refused_controller_login,
    replicate_with_every_follower,
)
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
        **pem_stores(node_cert.bundle, ca.pem),
        **ADMIN_AUTHORIZER,
        **SECURED_QUORUM_TIMEOUTS,
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
        got = read_back(cluster, topic, 2, 63, **{"isolation.level": "read_committed"})
        assert {f"txn-{p}".encode() for p in range(3)} <= got
        assert_sasl_logins_logged(cluster, "SCRAM-SHA-512", ("INTERNAL", "CONTROLLER"),
                                  "admin-secret")
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

