"""Follower fetching (KIP-392) on a real 3-node cluster, brokers in racks a, b and c, RF 3,
``replica.selector.class`` set to Kafka's RackAwareReplicaSelector:

- a confluent-kafka consumer with ``client.rack`` set to a follower's rack is pointed at
  that follower by the leader (``preferred_read_replica``) and reads every record from
  it, including records produced while it consumes (the follower serves up to the high
  watermark the leader sent it). Which broker served is read from each broker's
  ``strom_bytes_out_total{topic}`` (consumer fetches only): all of it on the follower,
  none on the leader or the third broker; librdkafka's own debug log shows the move;
- the same for a kafkajs group consumer (Fetch v11, ``rackId``; skipped without node)
  and for kafka-python (Fetch v12, incremental fetch sessions, ``client_rack``);
- on the wire: the leader answers Fetch v12 with ``rack_id`` of the follower's rack with
  that replica and no records, Fetch v10 (no client metadata) with records; the
  follower serves Fetch v12 but refuses Fetch v10 and ListOffsets
  (NOT_LEADER_OR_FOLLOWER), as Kafka.

Every wait is bounded; nothing sleeps as an assertion.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from net.wire import WireClient
from protocol.build import build
from protocol.codec import request_type
from tests.e2e.test_cluster import Cluster, free_ports, wait_until
from tests.e2e.test_metrics import scrape

pytestmark = pytest.mark.timeout(180)

RACK_AWARE = "org.apache.kafka.common.replica.RackAwareReplicaSelector"
RACKS = {1: "a", 2: "b", 3: "c"}
SETTINGS = {
    "default.replication.factor": "3",
    "min.insync.replicas": "2",
    "offsets.topic.replication.factor": "3",
    "replica.selector.class": RACK_AWARE,
    "replica.fetch.wait.max.ms": "100",
}
TOPIC = "near"


class FollowerCluster(Cluster):
    """``Cluster`` with a rack and a metrics endpoint per node."""

    def __init__(self, workdir: Path, **settings: str) -> None:
        super().__init__(workdir, overrides={**SETTINGS, **settings})
        self.metrics_ports = dict(zip(self.nodes, free_ports(len(self.nodes)), strict=True))
        for i, node in self.nodes.items():
            node.overrides["broker.rack"] = RACKS[i]
            node.overrides["strom.metrics.address"] = f"127.0.0.1:{self.metrics_ports[i]}"

    def bytes_out(self, node_id: int, topic: str) -> float:
        samples = scrape(self.metrics_ports[node_id])
        return samples.get(("strom_bytes_out_total", frozenset({("topic", topic)})), 0.0)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[FollowerCluster]:
    c = FollowerCluster(tmp_path)
    try:
        yield c.start()
    finally:
        c.close()


def partition_state(c: Cluster, topic: str) -> tuple[int, int, tuple[int, ...]]:
    """(leader, leader epoch, ISR) of partition 0 as node 1 reports them."""
    [t] = c.metadata(1, [topic]).topics
    assert int(t.error_code) == 0, t
    [p] = t.partitions
    return p.leader_id, p.leader_epoch, tuple(sorted(p.isr_nodes))


def create_topic(c: Cluster, topic: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": c.bootstrap(1)})
    for fut in admin.create_topics([NewTopic(topic, 1, 3)]).values():
        fut.result(20)
    wait_until(lambda: partition_state(c, topic)[2] == (1, 2, 3), 30,
               f"{topic} with 3 in-sync replicas")


def produce(c: Cluster, topic: str, values: list[bytes]) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": c.bootstrap(1), "acks": "all",
                         "linger.ms": 5})
    failed: list[str] = []
    for v in values:
        producer.produce(topic, value=v, partition=0,
                         on_delivery=lambda err, _msg: failed.append(str(err)) if err else None)
    assert producer.flush(30) == 0
    assert not failed, failed


class LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock:
            self.lines.append(record.getMessage())

    def text(self) -> str:
        with self._lock:
            return "\n".join(self.lines)


def fetch_request(version: int, epoch: int, rack: str = "", session_id: int = 0,
                  session_epoch: int = -1, partitions: bool = True) -> Any:
    topics = [{"topic": TOPIC, "partitions": [{
        "partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20,
        "current_leader_epoch": epoch, "last_fetched_epoch": -1,
        "log_start_offset": -1}]}] if partitions else []
    return build(request_type(1, version), dict(
        replica_id=-1, max_wait=0, min_bytes=0, max_bytes=1 << 20, isolation_level=0,
        session_id=session_id, session_epoch=session_epoch, forgotten_topics_data=[],
        topics=topics, rack_id=rack))


def fetch(c: Cluster, node: int, version: int, epoch: int, rack: str = "") -> Any:
    with WireClient("127.0.0.1", c.client_ports[node], timeout=10) as client:
        resp = client.request(fetch_request(version, epoch, rack))
    return resp.responses[0].partitions[0]


def list_offsets(c: Cluster, node: int) -> Any:
    from kio.schema.list_offsets.v7.request import (
        ListOffsetsPartition,
        ListOffsetsRequest,
        ListOffsetsTopic,
    )

    with WireClient("127.0.0.1", c.client_ports[node], timeout=10) as client:
        resp = client.request(ListOffsetsRequest(
            replica_id=-1, isolation_level=0, topics=(ListOffsetsTopic(
                name=TOPIC, partitions=(ListOffsetsPartition(
                    partition_index=0, current_leader_epoch=-1, timestamp=-1),)),)))
    return resp.topics[0].partitions[0]


def test_a_consumer_reads_from_the_follower_in_its_rack(cluster: FollowerCluster) -> None:
    from confluent_kafka import Consumer, TopicPartition

    create_topic(cluster, TOPIC)
    leader, epoch, _ = partition_state(cluster, TOPIC)
    near = next(n for n in sorted(cluster.nodes) if n != leader)
    third = next(n for n in sorted(cluster.nodes) if n not in (leader, near))
    first = [f"first-{i}".encode() for i in range(300)]
    produce(cluster, TOPIC, first)

    capture = LogCapture()
    logger = logging.getLogger(f"rdkafka.follower-fetch.{time.monotonic_ns()}")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(capture)
    logger.propagate = False
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap(leader),
                         "group.id": f"near-{time.monotonic_ns()}",
                         "client.rack": RACKS[near], "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "fetch.wait.max.ms": 100,
                         "debug": "fetch,topic"}, logger=logger)
    got: list[bytes] = []
    try:
        consumer.assign([TopicPartition(TOPIC, 0, 0)])

        def read(expected: int, timeout: float) -> None:
            deadline = time.monotonic() + timeout
            while len(got) < expected and time.monotonic() < deadline:
                msg = consumer.poll(0.2)
                if msg is not None and msg.error() is None:
                    got.append(msg.value())

        read(len(first), 40)
        assert got == first, f"{len(got)} of {len(first)} records read"
        # records produced while it consumes reach it through the follower's high
        # watermark
        second = [f"second-{i}".encode() for i in range(200)]
        producer = threading.Thread(target=produce, args=(cluster, TOPIC, second))
        producer.start()
        read(len(first) + len(second), 40)
        producer.join(40)
        assert got == first + second, f"{len(got)} of {len(first) + len(second)} records"
    finally:
        consumer.close()

    # the follower served every byte; the leader only pointed the consumer there
    served = wait_until(lambda: cluster.bytes_out(near, TOPIC) > 0 and
                        cluster.bytes_out(near, TOPIC), 10, "the follower's bytes out")
    assert served > sum(map(len, first + second))
    assert cluster.bytes_out(leader, TOPIC) == 0
    assert cluster.bytes_out(third, TOPIC) == 0
    log = capture.text()
    moved = (f"Topic {TOPIC} [0]: migrating from broker {leader} to {near} "
             f"(leader is {leader}): preferred replica updated")
    assert moved in log, log[-3000:]
    assert f"/{near}: Fetch topic {TOPIC} [0] at offset {len(first)}" in log, log[-3000:]

    # the same on the wire
    pointed = fetch(cluster, leader, 12, epoch, rack=RACKS[near])
    assert int(pointed.error_code) == 0 and pointed.preferred_read_replica == near, pointed
    assert not pointed.records
    total = len(first) + len(second)
    assert pointed.high_watermark == total
    assert fetch(cluster, leader, 12, epoch, rack=RACKS[leader]).records  # its own rack
    # in a fetch session (KIP-227) the pointer is news in every incremental answer
    with WireClient("127.0.0.1", cluster.client_ports[leader], timeout=10) as client:
        full = client.request(fetch_request(12, epoch, RACKS[near], session_epoch=0))
        assert full.session_id and \
            full.responses[0].partitions[0].preferred_read_replica == near, full
        incremental = client.request(fetch_request(12, epoch, RACKS[near], full.session_id,
                                                   1, partitions=False))
        assert int(incremental.error_code) == 0, incremental
        [again] = incremental.responses[0].partitions
        assert again.preferred_read_replica == near and not again.records, again
    old = fetch(cluster, leader, 10, epoch, rack=RACKS[near])  # v10: no client metadata
    assert int(old.error_code) == 0 and old.records
    served_here = fetch(cluster, near, 12, epoch)
    assert int(served_here.error_code) == 0 and served_here.records
    assert served_here.high_watermark == total
    assert served_here.preferred_read_replica == -1
    refused = fetch(cluster, near, 10, epoch)
    assert refused.error_code.name == "not_leader_or_follower", refused
    assert fetch(cluster, near, 12, epoch + 1).error_code.name == "unknown_leader_epoch"
    assert list_offsets(cluster, near).error_code.name == "not_leader_or_follower"
    assert int(list_offsets(cluster, leader).error_code) == 0


#: a kafkajs consumer (Fetch v11, ``rackId``) reading ``count`` records from the start
KAFKAJS_CONSUMER = r"""
const { Kafka, logLevel } = require('kafkajs')
let input = ''
process.stdin.on('data', d => { input += d })
process.stdin.on('end', async () => {
  const spec = JSON.parse(input)
  const logs = []
  const kafka = new Kafka({
    clientId: 'near-js', brokers: spec.brokers, logLevel: logLevel.INFO,
    logCreator: () => ({ log }) => { logs.push(log.message) },
  })
  const consumer = kafka.consumer({ groupId: spec.group, rackId: spec.rack,
                                    maxWaitTimeInMs: 100 })
  const values = []
  await consumer.connect()
  await consumer.subscribe({ topic: spec.topic, fromBeginning: true })
  const done = new Promise(resolve => {
    consumer.run({ eachMessage: async ({ message }) => {
      values.push(message.value.toString())
      if (values.length >= spec.count) resolve()
    } })
  })
  let timer
  await Promise.race([done, new Promise(r => { timer = setTimeout(r, spec.timeoutMs) })])
  clearTimeout(timer)
  await consumer.disconnect()
  const out = JSON.stringify({
    values, preferred: logs.filter(m => m.startsWith('Preferred read replica')) })
  process.stdout.write(out + '\n', () => process.exit(0))
})
"""


def test_kafkajs_reads_from_the_follower_in_its_rack(cluster: FollowerCluster) -> None:
    from tests.support.kafkajs import KafkajsUnavailable, kafkajs_env, run_node

    try:
        env = kafkajs_env()
    except KafkajsUnavailable as exc:
        pytest.skip(str(exc))
    create_topic(cluster, TOPIC)
    leader, _, _ = partition_state(cluster, TOPIC)
    near = next(n for n in sorted(cluster.nodes) if n != leader)
    records = [f"js-{i}".encode() for i in range(200)]
    produce(cluster, TOPIC, records)
    out = run_node(KAFKAJS_CONSUMER, {
        "brokers": [cluster.bootstrap(leader)], "group": f"js-{time.monotonic_ns()}",
        "rack": RACKS[near], "topic": TOPIC, "count": len(records), "timeoutMs": 40_000,
    }, env, timeout=90)
    assert [v.encode() for v in out["values"]] == records, len(out["values"])
    assert out["preferred"] == [f"Preferred read replica is now {near}"], out["preferred"]
    served = wait_until(lambda: cluster.bytes_out(near, TOPIC), 10, "the follower's bytes out")
    assert served >= sum(map(len, records))
    assert cluster.bytes_out(leader, TOPIC) == 0


def test_kafka_python_reads_from_the_follower_in_its_rack(cluster: FollowerCluster) -> None:
    """kafka-python (Fetch v12 with incremental fetch sessions, ``client_rack``)."""
    from kafka import KafkaConsumer, TopicPartition

    create_topic(cluster, TOPIC)
    leader, _, _ = partition_state(cluster, TOPIC)
    near = next(n for n in sorted(cluster.nodes) if n != leader)
    records = [f"kp-{i}".encode() for i in range(200)]
    produce(cluster, TOPIC, records)
    consumer = KafkaConsumer(bootstrap_servers=cluster.bootstrap(leader),
                             client_rack=RACKS[near], enable_auto_commit=False,
                             auto_offset_reset="earliest", fetch_max_wait_ms=100)
    got: list[bytes] = []
    try:
        consumer.assign([TopicPartition(TOPIC, 0)])
        deadline = time.monotonic() + 40
        while len(got) < len(records) and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                got.extend(r.value for r in batch)
    finally:
        consumer.close()
    assert got == records, f"{len(got)} of {len(records)} records"
    served = wait_until(lambda: cluster.bytes_out(near, TOPIC), 10, "the follower's bytes out")
    assert served >= sum(map(len, records))
    assert cluster.bytes_out(leader, TOPIC) == 0


def test_followers_learn_the_high_watermark_without_waiting(tmp_path: Path) -> None:
    """A leader answers a follower's long poll as soon as the high watermark moves past
    what it last sent that follower, so a consumer reading a follower sees a record
    about as soon as the producer's acks=all answer, not ``replica.fetch.wait.max.ms``
    (here 5 s) later."""
    c = FollowerCluster(tmp_path, **{"replica.fetch.wait.max.ms": "5000"})
    try:
        c.start()
        create_topic(c, TOPIC)
        leader, epoch, _ = partition_state(c, TOPIC)
        followers = [n for n in sorted(c.nodes) if n != leader]
        for i in range(1, 4):
            produce(c, TOPIC, [f"one-{i}".encode()])
            acked = time.monotonic()
            for f in followers:
                wait_until(lambda f=f, i=i: fetch(c, f, 12, epoch).high_watermark == i, 10,
                           f"follower {f} serving offset {i - 1}")
            elapsed = time.monotonic() - acked
            assert elapsed < 2.0, f"followers took {elapsed:.2f}s to learn offset {i}"
    finally:
        c.close()
