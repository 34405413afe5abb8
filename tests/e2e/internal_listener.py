"""Shared by the secured 3-node e2e tests (TLS, SASL_SSL between brokers): a cluster whose
brokers talk over a listener INTERNAL of their own while clients use PLAINTEXT, and the
replication check both run on it."""

from __future__ import annotations

import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer
from kafka.admin import KafkaAdminClient, NewTopic

from tests.e2e.test_cluster import Cluster, free_ports, wait_until


def internal_listener_cluster(workdir: Path, overrides: dict[str, str]) -> Cluster:
    """A 3-node cluster (not started) with listeners PLAINTEXT (clients), INTERNAL (a free
    port per node) and CONTROLLER; ``overrides`` map them to protocols. Startup may take
    60 s: TLS handshakes cost Python time on a loaded machine."""
    cluster = Cluster(workdir, overrides={"inter.broker.listener.name": "INTERNAL",
                                          **overrides})
    internal = dict(zip(cluster.nodes, free_ports(len(cluster.nodes)), strict=True))
    for i, node in cluster.nodes.items():
        node.startup_timeout = 60
        node.overrides["listeners"] = (
            f"PLAINTEXT://127.0.0.1:{cluster.client_ports[i]},"
            f"INTERNAL://127.0.0.1:{internal[i]},CONTROLLER://127.0.0.1:"
            f"{cluster.controller_ports[i]}")
    return cluster


def replicate_with_every_follower(cluster: Cluster, prefix: str) -> str:
    """Create a 3-partition RF 3 topic with ``min.insync.replicas=3`` and produce 20 acks=all
    records to each partition through node 1: each is acknowledged only once both
    followers fetched it over INTERNAL. Returns the topic; its records are ``b"<p>-<i>"``."""
    topic = f"{prefix}-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap(1), request_timeout_ms=20_000)
    try:
        admin.create_topics([NewTopic(topic, 3, 3, topic_configs={"min.insync.replicas": "3"})])
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
    return topic


def poll_into(consumer: Consumer, got: set[bytes]) -> int:
    """One poll: add a record's value to ``got``; how many distinct values it holds."""
    msg = consumer.poll(0.5)
    if msg is not None and msg.error() is None:
        got.add(msg.value())
    return len(got)
