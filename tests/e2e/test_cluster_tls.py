"""A 3-node cluster whose inter-broker and controller listeners are SSL with mutual TLS
(``inter.broker.listener.name=INTERNAL``, ``controller.listener.names=CONTROLLER``, both
mapped to SSL, ``ssl.client.auth=required``): the quorum forms over TLS, followers
replicate over TLS (a topic with ``min.insync.replicas=3`` takes acks=all records only
when both followers fetched them), and the brokers' own connections are authenticated by
their certificates (``tls_connected`` with the broker principal on INTERNAL and
CONTROLLER). Clients use the PLAINTEXT listener."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.e2e.internal_listener import (
    internal_listener_cluster,
    poll_into,
    replicate_with_every_follower,
)
from tests.e2e.test_cluster import wait_until
from tests.support.tls_ca import TestCA

pytestmark = pytest.mark.timeout(150)


def test_replication_and_quorum_over_mutual_tls(tmp_path: Path) -> None:
    ca = TestCA(tmp_path / "ca")
    node_cert = ca.issue("broker", "/O=Strom/CN=broker", server=True)
    cluster = internal_listener_cluster(tmp_path / "nodes", {
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,INTERNAL:SSL,CONTROLLER:SSL",
        "ssl.keystore.type": "PEM", "ssl.keystore.location": str(node_cert.bundle),
        "ssl.truststore.type": "PEM", "ssl.truststore.location": str(ca.pem),
        "ssl.client.auth": "required",
        # a TLS handshake costs a few ms of Python per connection: on a loaded machine the
        # FAST quorum timeouts would have voters time out while connecting
        "controller.quorum.election.timeout.ms": "1500",
        "controller.quorum.fetch.timeout.ms": "3000",
        "controller.quorum.request.timeout.ms": "3000",
    })
    try:
        cluster.start()
        topic = replicate_with_every_follower(cluster, "tls-rep")
        consumer = Consumer({"bootstrap.servers": cluster.bootstrap(2), "group.id": "g-tls",
                             "enable.auto.commit": False})
        consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
        got: set[bytes] = set()
        wait_until(lambda: poll_into(consumer, got) >= 60, 30, "60 records")
        consumer.close()
        for node in cluster.nodes.values():
            log = node.log_path.read_text(errors="replace")
            assert '"listener": "INTERNAL"' in log and '"listener": "CONTROLLER"' in log
            assert '"principal": "User:CN=broker,O=Strom"' in log
            assert "tls_handshake_failed" not in log
    finally:
        cluster.close()

