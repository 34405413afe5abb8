"""Altered topic configs take effect on the live logs: retention deletes old segments."""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)

from tests.support.broker import BrokerProcess
from tests.support.fixtures import unique_topic

TIMEOUT = 20


def test_lowering_retention_deletes_old_segments(
    broker_factory: Callable[..., BrokerProcess],
) -> None:
    broker = broker_factory({"log.retention.check.interval.ms": "200"})
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    name = unique_topic("live-retention")
    admin.create_topics([NewTopic(name, 1, 1, config={"segment.bytes": "2048"})],
                        request_timeout=TIMEOUT)[name].result(TIMEOUT)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
    for i in range(60):
        producer.produce(name, b"x" * 200, key=str(i).encode())
        producer.flush(TIMEOUT)  # one batch per record: many small segments
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique_topic("g")})
    try:
        tp = TopicPartition(name, 0)
        assert consumer.get_watermark_offsets(tp, timeout=TIMEOUT) == (0, 60)
        resource = ConfigResource(ConfigResource.Type.TOPIC, name, incremental_configs=[
            ConfigEntry("retention.ms", "1", incremental_operation=AlterConfigOpType.SET)])
        admin.incremental_alter_configs([resource], request_timeout=TIMEOUT)[resource].result(
            TIMEOUT
        )
        deadline = time.monotonic() + TIMEOUT
        low, high = 0, 60
        while low == 0:
            assert time.monotonic() < deadline, "retention never deleted a segment"
            time.sleep(0.1)
            low, high = consumer.get_watermark_offsets(tp, timeout=TIMEOUT, cached=False)
        assert high == 60 and 0 < low <= 60  # the active segment may stay
    finally:
        consumer.close()
