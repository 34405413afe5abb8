"""Admin changes while producers and consumers are busy on the same topics.

A producer keeps writing while the topic's configs change, partitions are added, records are
deleted and, finally, the topic is deleted. Every acknowledged record before the deletion is
readable, the broker stays up, and other topics are not disturbed.
"""

from __future__ import annotations

import threading
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
)

from tests.support.broker import BrokerProcess
from tests.support.fixtures import unique_topic

TIMEOUT = 20


class Writer(threading.Thread):
    """Produces small keyed records to ``topic`` until stopped; counts acks per partition."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.topic = topic
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 2,
                                  "message.timeout.ms": 15_000,
                                  "topic.metadata.refresh.interval.ms": 200})
        self.stop = threading.Event()
        self.acked: dict[int, int] = {}
        self.errors: list[KafkaError] = []

    def _delivered(self, err: KafkaError | None, msg: object) -> None:
        if err is not None:
            self.errors.append(err)
        else:
            partition = msg.partition()  # type: ignore[attr-defined]
            self.acked[partition] = self.acked.get(partition, 0) + 1

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            try:
                self.producer.produce(self.topic, b"v" * 100, key=str(i).encode(),
                                      on_delivery=self._delivered)
                i += 1
            except BufferError:
                pass
            self.producer.poll(0.001)
        self.producer.flush(TIMEOUT)


def _wait_for_acks(writer: Writer, at_least: int) -> None:
    deadline = time.monotonic() + TIMEOUT
    while sum(writer.acked.values()) < at_least:
        assert time.monotonic() < deadline, f"only {writer.acked} acked"
        time.sleep(0.05)


def _incremental(admin: AdminClient, topic: str, key: str, value: str | None,
                 op: AlterConfigOpType) -> None:
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry(key, value, incremental_operation=op)])
    admin.incremental_alter_configs([resource], request_timeout=TIMEOUT)[resource].result(
        TIMEOUT
    )


def test_admin_changes_while_producing(broker: BrokerProcess, bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    busy, calm = unique_topic("load-busy"), unique_topic("load-calm")
    futures = admin.create_topics([NewTopic(busy, 2, 1), NewTopic(calm, 1, 1)],
                                  request_timeout=TIMEOUT)
    for future in futures.values():
        future.result(TIMEOUT)
    writer = Writer(bootstrap, busy)
    writer.start()
    try:
        _wait_for_acks(writer, 500)
        _incremental(admin, busy, "segment.bytes", "65536", AlterConfigOpType.SET)
        _incremental(admin, busy, "retention.ms", "3600000", AlterConfigOpType.SET)
        _incremental(admin, busy, "max.message.bytes", "200000", AlterConfigOpType.SET)
        _wait_for_acks(writer, 2000)
        admin.create_partitions([NewPartitions(busy, 4)], request_timeout=TIMEOUT)[busy].result(
            TIMEOUT
        )
        tp = TopicPartition(busy, 0, 100)
        low = admin.delete_records([tp], request_timeout=TIMEOUT)[tp].result(TIMEOUT)
        assert low.low_watermark == 100
        deadline = time.monotonic() + TIMEOUT
        while len(writer.acked) < 3:  # the producer notices the new partitions
            assert time.monotonic() < deadline, f"acks per partition: {writer.acked}"
            time.sleep(0.05)
    finally:
        writer.stop.set()
        writer.join(TIMEOUT)
    assert writer.errors == []
    # the new segment.bytes applies to the live log: it rolled (1 GiB before), and the
    # segments rolled under the new value are at most 64 KiB
    segments = sorted((broker.data_dir / f"{busy}-1").glob("*.log"))
    assert len(segments) >= 2
    assert all(p.stat().st_size <= 65536 for p in segments[1:-1])
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic("load")})
    try:
        for partition, acked in writer.acked.items():
            low, high = consumer.get_watermark_offsets(TopicPartition(busy, partition),
                                                       timeout=TIMEOUT)
            assert high == acked, (partition, high, acked)
            assert low == (100 if partition == 0 else 0)
    finally:
        consumer.close()

    # delete the topic under a live producer: it gets errors, the broker carries on
    writer = Writer(bootstrap, busy)
    writer.start()
    try:
        _wait_for_acks(writer, 200)
        admin.delete_topics([busy], request_timeout=TIMEOUT)[busy].result(TIMEOUT)
    finally:
        writer.stop.set()
        writer.join(TIMEOUT)
    calm_producer = Producer({"bootstrap.servers": bootstrap})
    delivered: list[KafkaError | None] = []
    calm_producer.produce(calm, b"still here", on_delivery=lambda e, m: delivered.append(e))
    assert calm_producer.flush(TIMEOUT) == 0
    assert delivered == [None]
    topics = admin.list_topics(timeout=TIMEOUT).topics
    assert calm in topics
