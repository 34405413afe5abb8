"""Partition reassignment (KIP-455) on a real 4-node cluster (RF 3, min.insync.replicas
2), driven by kafka-python's ``KafkaAdminClient.alter_partition_reassignments`` /
``list_partition_reassignments`` through a broker (which forwards to the active
controller); confluent-kafka 2.16 has no reassignment API.

A topic on brokers {1,2,3} with acknowledged (acks=all) records is moved to [4,2,3]:
- while broker 4 is frozen (SIGSTOP) the reassignment stays in progress: listed with
  replicas [4,2,3,1], adding [4], removing [1]; Metadata shows the four replicas and the
  ISR {1,2,3}; acks=all keeps working; a cancel reverts it ([2,3,1], nothing listed);
- bad requests get INVALID_REPLICA_ASSIGNMENT (unknown broker) and
  NO_REASSIGNMENT_IN_PROGRESS (cancel with none);
- reissued and broker 4 resumed, it catches up and the reassignment completes: replicas
  [4,2,3], ISR {2,3,4}, broker 1 deletes its copy of the partition;
- broker 1 is killed (nothing depends on it any more), broker 4 is elected preferred
  leader (ElectLeaders PREFERRED; already leading is fine) and a consumer through broker
  4 reads every acknowledged record, none twice, in order.

And under an idempotent acks=all producer's continuous load, moving the leader's own
replica away hands leadership to the new replica without losing, duplicating or
reordering an acknowledged record.

Every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_cluster import Cluster, wait_until
from tests.e2e.test_replication import REPLICATED, check_log, consume_all

pytestmark = pytest.mark.timeout(240)

TOPIC = "moving"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path, nodes=4, overrides=REPLICATED)
    try:
        yield c.start()
    finally:
        c.close()


def partition(c: Cluster, via: int) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
    """(leader, replicas, sorted ISR) of partition 0 as node ``via`` reports them."""
    [t] = c.metadata(via, [TOPIC]).topics
    assert int(t.error_code) == 0, t
    [p] = t.partitions
    return p.leader_id, tuple(p.replica_nodes), tuple(sorted(p.isr_nodes))


def produce(bootstrap: str, first: int, count: int) -> list[bytes]:
    """``count`` acks=all records to partition 0; the acknowledged values, in order."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                         "enable.idempotence": True, "linger.ms": 5,
                         "message.timeout.ms": 60_000})
    acked: list[bytes] = []
    failed: list[str] = []

    def done(err: Any, msg: Any) -> None:
        if err is None:
            acked.append(msg.value())
        else:
            failed.append(str(err))

    for i in range(first, first + count):
        while True:
            try:
                producer.produce(TOPIC, value=f"r-{i}".encode(), partition=0,
                                 on_delivery=done)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(90) == 0, "records still undelivered"
    assert not failed, failed[:3]
    return acked


def admin(c: Cluster, via: int) -> Any:
    from kafka.admin import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=c.bootstrap(via), request_timeout_ms=30_000)


def test_reassignment_moves_a_partition_to_a_new_broker(cluster: Cluster) -> None:
    from confluent_kafka import ElectionType, KafkaError, KafkaException
    from confluent_kafka import TopicPartition as CTopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
    from kafka import TopicPartition
    from kafka.errors import InvalidReplicationAssignmentError, NoReassignmentInProgressError

    c = cluster
    started = time.monotonic()
    confluent = AdminClient({"bootstrap.servers": c.bootstrap(2)})
    for fut in confluent.create_topics([NewTopic(TOPIC, 1, replica_assignment=[[1, 2, 3]])]
                                       ).values():
        fut.result(20)
    wait_until(lambda: partition(c, 2) == (1, (1, 2, 3), (1, 2, 3)), 30,
               "the topic on brokers 1, 2, 3, all in sync, 1 leading")
    acked = produce(c.bootstrap(1), 0, 3000)

    tp = TopicPartition(TOPIC, 0)
    # broker 4 frozen (and fenced, so clients stop trying it): the reassignment cannot
    # complete
    os.kill(c.nodes[4].pid or 0, signal.SIGSTOP)
    client = None
    try:
        c.wait_brokers({1, 2, 3}, via=2)
        client = admin(c, 2)
        try:
            assert client.alter_partition_reassignments({tp: [4, 2, 3]}) == {tp: None}
            ongoing = {tp: {"replicas": [4, 2, 3, 1], "adding_replicas": [4],
                            "removing_replicas": [1]}}
            assert client.list_partition_reassignments() == ongoing
            assert client.list_partition_reassignments([tp]) == ongoing
            assert client.list_partition_reassignments({TOPIC: [0]}) == ongoing
            leader, replicas, isr = partition(c, 2)
            assert (leader, replicas, isr) == (1, (4, 2, 3, 1), (1, 2, 3))
            acked += produce(c.bootstrap(1), 3000, 500)  # acks=all meanwhile
            bad = client.alter_partition_reassignments({tp: [4, 9, 3]})
            assert bad == {tp: InvalidReplicationAssignmentError}
            # cancel: back to the replicas not being added
            assert client.alter_partition_reassignments({tp: None}) == {tp: None}
            assert client.list_partition_reassignments() == {}
            assert partition(c, 2) == (1, (2, 3, 1), (1, 2, 3))
            assert client.alter_partition_reassignments({tp: None}) == \
                {tp: NoReassignmentInProgressError}
            # again, for good
            assert client.alter_partition_reassignments({tp: [4, 2, 3]}) == {tp: None}
            assert client.list_partition_reassignments([tp]) == ongoing
        finally:
            os.kill(c.nodes[4].pid or 0, signal.SIGCONT)
        wait_until(lambda: partition(c, 2)[1:] == ((4, 2, 3), (2, 3, 4)), 60,
                   "replicas [4, 2, 3] with ISR {2, 3, 4} after broker 4 caught up")
        assert client.list_partition_reassignments() == {}
    finally:
        os.kill(c.nodes[4].pid or 0, signal.SIGCONT)
        if client is not None:
            client.close()
    # every broker agrees; broker 1 no longer keeps a copy
    for node in (1, 2, 3, 4):
        wait_until(lambda node=node: partition(c, node)[1:] == ((4, 2, 3), (2, 3, 4)), 20,
                   f"node {node} showing the completed reassignment")
    wait_until(lambda: not (c.nodes[1].data_dir / f"{TOPIC}-0").exists(), 20,
               "broker 1 deleting its log of the partition it no longer hosts")
    assert (c.nodes[4].data_dir / f"{TOPIC}-0").is_dir()

    c.nodes[1].kill()
    c.wait_brokers({2, 3, 4}, via=2)
    confluent = AdminClient({"bootstrap.servers": c.bootstrap(2)})

    def elected() -> bool:
        future = confluent.elect_leaders(ElectionType.PREFERRED, [CTopicPartition(TOPIC, 0)])
        try:
            result = future.result(20)
        except KafkaException:
            return False
        err = result.get(CTopicPartition(TOPIC, 0))
        return err is None or err.code() == KafkaError.ELECTION_NOT_NEEDED

    wait_until(elected, 40, "broker 4 elected preferred leader")
    wait_until(lambda: partition(c, 4)[0] == 4, 20, "broker 4 leading in its Metadata")

    got = consume_all(c, TOPIC, 1, len(acked), via=4)
    check_log({0: acked}, got)
    assert len(got[0]) == len(acked)
    assert time.monotonic() - started < 200


def test_reassignment_under_acks_all_load_loses_nothing(cluster: Cluster) -> None:
    """The leader's own replica is moved away while an idempotent acks=all producer
    keeps writing: the completing ISR change hands leadership to the new replica, the
    producer follows it, and every acknowledged record is read once, in order."""
    from confluent_kafka.admin import AdminClient, NewTopic
    from kafka import TopicPartition

    from tests.e2e.test_replication import Load

    c = cluster
    confluent = AdminClient({"bootstrap.servers": c.bootstrap(2)})
    for fut in confluent.create_topics([NewTopic(TOPIC, 1, replica_assignment=[[1, 2, 3]])]
                                       ).values():
        fut.result(20)
    wait_until(lambda: partition(c, 2) == (1, (1, 2, 3), (1, 2, 3)), 30,
               "the topic on brokers 1, 2, 3, all in sync, 1 leading")
    tp = TopicPartition(TOPIC, 0)
    with Load(c.bootstrap(2), TOPIC, 1) as load:
        wait_until(lambda: load.count() >= 2000, 30, "2000 records acknowledged")
        client = admin(c, 3)
        try:
            assert client.alter_partition_reassignments({tp: [4, 2, 3]}) == {tp: None}
            wait_until(lambda: partition(c, 2) == (4, (4, 2, 3), (2, 3, 4)), 60,
                       "broker 4 leading replicas [4, 2, 3] with ISR {2, 3, 4}")
            assert client.list_partition_reassignments() == {}
        finally:
            client.close()
        moved_at = load.count()
        wait_until(lambda: load.count() >= moved_at + 2000, 60,
                   "2000 more records acknowledged by the new leader")
    assert not load.failed, load.failed[:3]
    wait_until(lambda: not (c.nodes[1].data_dir / f"{TOPIC}-0").exists(), 20,
               "broker 1 deleting its log of the partition it no longer hosts")
    got = consume_all(c, TOPIC, 1, load.count(), via=4)
    check_log(load.acked, got)
