"""A broker whose disk was wiped is not elected with an empty log (KIP-858 directory ids),
in a real 3-node combined-mode cluster:

- ``solo`` (RF 1, on broker 2) and ``shared`` (RF 3, led by broker 2) hold acknowledged
  records; broker 2 is killed (kill -9), its whole data directory deleted, and started
  again: it registers with a new ``directory.id``;
- once it is back and unfenced, ``solo`` has no leader and an empty ISR
  (LEADER_NOT_AVAILABLE: the records are gone with the disk, nothing pretends otherwise)
  instead of being led by broker 2 with an empty log, and ``shared`` is led by a broker
  that kept its log, with every record still readable.
"""

from __future__ import annotations

import shutil
import time
from typing import Any

import pytest

from tests.e2e.test_cluster import Cluster, wait_until

pytestmark = pytest.mark.timeout(150)


def create_assigned(bootstrap: str, name: str, replicas: list[int]) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=20_000)
    try:
        admin.create_topics([NewTopic(name, -1, replica_assignments={0: replicas})])
    finally:
        admin.close()


def produce(bootstrap: str, topic: str, n: int) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                         "message.timeout.ms": 30_000})
    errors: list[Any] = []
    for i in range(n):
        producer.produce(topic, value=f"{topic}-{i}".encode(), partition=0,
                         on_delivery=lambda err, msg: err and errors.append(err))
    assert producer.flush(40) == 0
    assert not errors, errors


def partition(cluster: Cluster, node: int, topic: str) -> Any:
    [t] = cluster.metadata(node, [topic]).topics
    [p] = t.partitions
    return p


def consume(bootstrap: str, topic: str, expected: int) -> list[bytes]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{topic}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    got: list[bytes] = []
    deadline = time.monotonic() + 40
    try:
        while len(got) < expected and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got.append(msg.value())
    finally:
        consumer.close()
    return got


def test_broker_back_with_a_wiped_disk_is_not_elected(cluster: Cluster) -> None:
    create_assigned(cluster.bootstrap(1), "solo", [2])
    create_assigned(cluster.bootstrap(1), "shared", [2, 1, 3])
    wait_until(lambda: partition(cluster, 1, "solo").leader_id == 2 and
               partition(cluster, 1, "shared").leader_id == 2, 20, "broker 2 leading both")
    produce(cluster.bootstrap(1), "solo", 10)
    produce(cluster.bootstrap(1), "shared", 10)
    wait_until(lambda: sorted(partition(cluster, 1, "shared").isr_nodes) == [1, 2, 3], 30,
               "the followers of 'shared' in sync")

    node = cluster.nodes[2]
    node.kill()
    shutil.rmtree(node.data_dir)
    node.start()
    # the old incarnation leaves (fenced after its session, or replaced by the new one),
    # then the new one registers and is unfenced
    wait_until(lambda: partition(cluster, 1, "solo").leader_id != 2, 30,
               "broker 2's old incarnation to lose its leadership")
    wait_until(lambda: cluster.brokers(1) == {1, 2, 3}, 40,
               "broker 2 registered again and unfenced")

    solo = partition(cluster, 1, "solo")
    assert (solo.leader_id, list(solo.isr_nodes)) == (-1, []), solo
    assert solo.error_code.name == "leader_not_available"
    shared = wait_until(lambda: (p := partition(cluster, 1, "shared")).leader_id in (1, 3)
                        and p, 20, "a leader for 'shared' that kept its log")
    assert int(shared.error_code) == 0
    got = consume(cluster.bootstrap(1), "shared", 10)
    assert sorted(got) == sorted(f"shared-{i}".encode() for i in range(10))
