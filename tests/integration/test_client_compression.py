"""Topic compression.type (KIP-390) with real clients: the broker stores the topic's codec.

A topic is created through the client's AdminClient with ``compression.type`` set, a
producer sends gzip batches, consumers read every value back, and the segment file on
disk shows the codec the broker stored (the attributes' bits 0-2 of every batch). The
broker-wide default (compression.type changed at runtime on the broker) applies to every
topic without an override, on a broker of its own.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewTopic,
)
from kafka import KafkaConsumer, KafkaProducer

from protocol import compression
from protocol.records import decode_batch_records, iter_batches
from tests.support.broker import BrokerProcess
from tests.support.fixtures import unique_topic

TIMEOUT_S = 30.0
CODEC_IDS = {"uncompressed": compression.NONE, "gzip": compression.GZIP,
             "snappy": compression.SNAPPY, "lz4": compression.LZ4, "zstd": compression.ZSTD}


def create_topic(bootstrap: str, name: str, **config: str) -> AdminClient:
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000})
    futures = admin.create_topics([NewTopic(name, 1, 1, config=config)], operation_timeout=10,
                                  request_timeout=15)
    futures[name].result(timeout=TIMEOUT_S)
    return admin


def stored_batches(broker: BrokerProcess, topic: str) -> list[tuple[int, bytes]]:
    """(codec, batch bytes) of every batch in the partition's segment files."""
    directory = Path(broker.data_dir) / f"{topic}-0"
    out: list[tuple[int, bytes]] = []
    for path in sorted(directory.glob("*.log")):
        data = path.read_bytes()
        out += [(h.compression, data[p : p + h.size_in_bytes]) for p, h in iter_batches(data)]
    return out


def wait_for_records(broker: BrokerProcess, topic: str, n: int) -> list[tuple[int, bytes]]:
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        batches = stored_batches(broker, topic)
        if sum(len(decode_batch_records(b)) for _, b in batches) >= n:
            return batches
        assert time.monotonic() < deadline, f"{n} records not on disk within {TIMEOUT_S} s"
        time.sleep(0.05)


def confluent_read(bootstrap: str, topic: str, n: int) -> list[tuple[bytes, bytes, list]]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4().hex[:8]}",
                  "enable.auto.commit": False, "enable.partition.eof": False,
                  "fetch.wait.max.ms": 100, "check.crcs": True})
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        got: list[tuple[bytes, bytes, list]] = []
        deadline = time.monotonic() + TIMEOUT_S
        while len(got) < n:
            assert time.monotonic() < deadline, f"consumed {len(got)} of {n}"
            for msg in c.consume(num_messages=n - len(got), timeout=1.0):
                assert msg.error() is None or msg.error().code() == KafkaError._PARTITION_EOF
                if msg.error() is None:
                    got.append((msg.key(), msg.value(), msg.headers() or []))
        return got
    finally:
        c.close()


@pytest.mark.parametrize("topic_codec", ["lz4", "zstd", "uncompressed"])
def test_confluent_gzip_producer_on_a_recompressing_topic(
    broker: BrokerProcess, topic_codec: str
) -> None:
    bootstrap = broker.bootstrap
    topic = unique_topic(f"recompress-{topic_codec}")
    admin = create_topic(bootstrap, topic, **{"compression.type": topic_codec})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    described = admin.describe_configs([resource], request_timeout=15)[resource].result(
        timeout=TIMEOUT_S)
    assert described["compression.type"].value == topic_codec
    assert not described["compression.type"].is_default

    n = 500
    p = Producer({"bootstrap.servers": bootstrap, "compression.type": "gzip", "linger.ms": 20,
                  "enable.idempotence": True, "acks": "all"})
    errors: list[KafkaError] = []
    for i in range(n):
        p.produce(topic, key=b"k%d" % i, value=b"value-%05d-" % i + b"x" * 100,
                  headers=[("i", b"%d" % i)],
                  on_delivery=lambda err, _m: errors.append(err) if err else None)
    assert p.flush(TIMEOUT_S) == 0 and not errors

    got = confluent_read(bootstrap, topic, n)
    assert [(k, v) for k, v, _ in got] == [
        (b"k%d" % i, b"value-%05d-" % i + b"x" * 100) for i in range(n)
    ]
    assert got[7][2] == [("i", b"7")]
    batches = wait_for_records(broker, topic, n)
    assert {codec for codec, _ in batches} == {CODEC_IDS[topic_codec]}


def test_kafka_python_producer_codec_kept_or_replaced(broker: BrokerProcess) -> None:
    bootstrap = broker.bootstrap
    kept, replaced = unique_topic("codec-kept"), unique_topic("codec-replaced")
    create_topic(bootstrap, kept)  # compression.type=producer (default)
    create_topic(bootstrap, replaced, **{"compression.type": "snappy"})
    p = KafkaProducer(bootstrap_servers=bootstrap, compression_type="gzip", linger_ms=20,
                      acks="all")
    for topic in (kept, replaced):
        for i in range(100):
            p.send(topic, key=b"%d" % i, value=b"v" * 50 + b"%d" % i)
    p.flush(TIMEOUT_S)
    p.close()
    for topic, codec in ((kept, compression.GZIP), (replaced, compression.SNAPPY)):
        c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                          auto_offset_reset="earliest", consumer_timeout_ms=10_000,
                          enable_auto_commit=False)
        values = []
        for msg in c:
            values.append(msg.value)
            if len(values) == 100:
                break
        c.close()
        assert values == [b"v" * 50 + b"%d" % i for i in range(100)]
        assert {c for c, _ in wait_for_records(broker, topic, 100)} == {codec}


def test_broker_default_compression_type_applies_to_topics_without_an_override(
    fresh_broker: BrokerProcess,
) -> None:
    """compression.type set at runtime on the broker (IncrementalAlterConfigs) is the
    default of every topic that does not override it, existing ones included."""
    bootstrap = fresh_broker.bootstrap
    before = unique_topic("default-before")
    admin = create_topic(bootstrap, before)
    change = ConfigResource(ConfigResource.Type.BROKER, "1", incremental_configs=[
        ConfigEntry("compression.type", "zstd", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("compression.zstd.level", "10",
                    incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([change], request_timeout=15)[change].result(TIMEOUT_S)
    after = unique_topic("default-after")
    create_topic(bootstrap, after)
    resource = ConfigResource(ConfigResource.Type.TOPIC, after)
    described = admin.describe_configs([resource], request_timeout=15)[resource].result(
        timeout=TIMEOUT_S)
    assert described["compression.type"].value == "zstd"
    assert described["compression.type"].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    assert described["compression.zstd.level"].value == "10"

    p = Producer({"bootstrap.servers": bootstrap, "compression.type": "gzip", "linger.ms": 5})
    for topic in (before, after):
        for i in range(50):
            p.produce(topic, value=b"%d" % i * 40)
    assert p.flush(TIMEOUT_S) == 0
    for topic in (before, after):
        assert [v for _, v, _ in confluent_read(bootstrap, topic, 50)] == [
            b"%d" % i * 40 for i in range(50)]
        assert {c for c, _ in wait_for_records(fresh_broker, topic, 50)} == {compression.ZSTD}
