"""A 3-node cluster whose inter-broker and controller listeners are SSL with mutual TLS
(``inter.broker.listener.name=INTERNAL``, ``controller.listener.names=CONTROLLER``, both
mapped to SSL, ``ssl.client.auth=required``): the quorum forms over TLS, followers
replicate over TLS (a topic with ``min.insync.replicas=3`` takes acks=all records only
when both followers fetched them), and the brokers' own connections are authenticated by
their certificates (``tls_connected`` with the broker principal on INTERNAL and
CONTROLLER). Clients use the PLAINTEXT listener."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from tests.e2e.test_cluster import Cluster, free_ports, wait_until
from tests.support.tls_ca import TestCA

pytestmark = pytest.mark.timeout(150)


def test_replication_and_quorum_over_mutual_tls(tmp_path: Path) -> None:
    ca = TestCA(tmp_path / "ca")
    node_cert = ca.issue("broker", "/O=Strom/CN=broker", server=True)
    cluster = Cluster(tmp_path / "nodes", overrides={
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,INTERNAL:SSL,CONTROLLER:SSL",
        "inter.broker.listener.name": "INTERNAL",
        "ssl.keystore.type": "PEM", "ssl.keystore.location": str(node_cert.bundle),
        "ssl.truststore.type": "PEM", "ssl.truststore.location": str(ca.pem),
        "ssl.client.auth": "required",
        # a TLS handshake costs a few ms of Python per connection: on a loaded machine the
        # FAST quorum timeouts would have voters time out while connecting
        "controller.quorum.election.timeout.ms": "1500",
        "controller.quorum.fetch.timeout.ms": "3000",
        "controller.quorum.request.timeout.ms": "3000",
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
        topic = f"tls-rep-{uuid.uuid4().hex[:8]}"
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
        consumer = Consumer({"bootstrap.servers": cluster.bootstrap(2), "group.id": "g-tls",
                             "enable.auto.commit": False})
        consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
        got: set[bytes] = set()
        wait_until(lambda: _poll(consumer, got) >= 60, 30, "60 records")
        consumer.close()
        for node in cluster.nodes.values():
            log = node.log_path.read_text(errors="replace")
            assert '"listener": "INTERNAL"' in log and '"listener": "CONTROLLER"' in log
            assert '"principal": "User:CN=broker,O=Strom"' in log
            assert "tls_handshake_failed" not in log
    finally:
        cluster.close()


def _poll(consumer: Consumer, got: set[bytes]) -> int:
    msg = consumer.poll(0.5)
    if msg is not None and msg.error() is None:
        got.add(msg.value())
    return len(got)
