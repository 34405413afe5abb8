"""kafka-python 3.x against a real Strom broker on 127.0.0.1.

kafka-python probes the broker with ApiVersions and infers a "broker version" from the
advertised maxima; it turns idempotence on by default (so every producer here does
InitProducerId unless told otherwise).  Consumers have ``group_id=None`` and use
``assign()`` — consumer groups are a separate issue.

Covers: admin create/list/describe/delete topics and topic configs, produce+consume
with acks 0/1/all, keys/headers/timestamps, ordering, every codec kafka-python can
encode here (snappy needs the python-snappy module), 10,000 small and several 1 MiB
messages, seek to beginning/end, beginning/end offsets, offsets for times, and an
idempotent producer whose Produce response is lost (forced retry) without a duplicate.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

import kafka.codec
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import (
    MessageSizeTooLargeError,
    NotEnoughReplicasError,
    TopicAlreadyExistsError,
)

from tests.support.broker import BrokerProcess
from tests.support.fixtures import unique_topic
from tests.support.kafka_proxy import PRODUCE, KafkaProxy

MIB = 1024 * 1024
BROKER_OVERRIDES = {"message.max.bytes": str(2 * MIB)}

TIMEOUT_S = 30.0
BASE_TS = (int(time.time()) - 3600) * 1000


# ----------------------------------------------------------------------------- helpers
def admin_client(bootstrap: str) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)


def create_topic(bootstrap: str, name: str, partitions: int = 1, **configs: str) -> None:
    admin = admin_client(bootstrap)
    try:
        admin.create_topics(
            {name: {"num_partitions": partitions, "replication_factor": 1, "configs": configs}},
            timeout_ms=10000,
        )
    finally:
        admin.close()


def producer(bootstrap: str, **conf: Any) -> KafkaProducer:
    conf.setdefault("linger_ms", 5)
    conf.setdefault("request_timeout_ms", 15000)
    return KafkaProducer(bootstrap_servers=bootstrap, **conf)


def consumer(bootstrap: str, **conf: Any) -> KafkaConsumer:
    settings: dict[str, Any] = {
        "group_id": None,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "fetch_max_wait_ms": 100,
        "request_timeout_ms": 15000,
        **conf,
    }
    return KafkaConsumer(bootstrap_servers=bootstrap, **settings)


def produce_all(p: KafkaProducer, topic: str, items: Iterable[dict[str, Any]]) -> list[Any]:
    """Send every item (kwargs for ``send``), flush, and return the RecordMetadata list."""
    futures = [p.send(topic, **item) for item in items]
    p.flush(timeout=TIMEOUT_S)
    return [f.get(timeout=TIMEOUT_S) for f in futures]


def consume_n(c: KafkaConsumer, n: int, timeout: float = TIMEOUT_S) -> list[ConsumerRecord]:
    got: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        left = deadline - time.monotonic()
        assert left > 0, f"consumed {len(got)} of {n} messages within {timeout} s"
        batches = c.poll(timeout_ms=int(min(left, 1.0) * 1000), max_records=n - len(got))
        for records in batches.values():
            got.extend(records)
    return got


def read_partition(bootstrap: str, topic: str, partition: int, n: int) -> list[ConsumerRecord]:
    c = consumer(bootstrap)
    try:
        tp = TopicPartition(topic, partition)
        c.assign([tp])
        c.seek_to_beginning(tp)
        records = consume_n(c, n)
        # exactly n records: dense offsets from 0 and the end offset right after them
        assert [r.offset for r in records] == list(range(n))
        assert c.end_offsets([tp], timeout_ms=10000) == {tp: n}
        return records
    finally:
        c.close()


@pytest.fixture
def kp_producer(bootstrap: str) -> Iterator[Any]:
    """Factory for producers closed at test end."""
    made: list[KafkaProducer] = []

    def make(**conf: Any) -> KafkaProducer:
        made.append(producer(bootstrap, **conf))
        return made[-1]

    yield make
    for p in made:
        p.close(timeout=5)


# ----------------------------------------------------------------------------- admin
def test_admin_create_list_delete_topics(bootstrap: str) -> None:
    name = unique_topic("kp-admin")
    admin = admin_client(bootstrap)
    try:
        admin.create_topics(
            {name: {"num_partitions": 2, "replication_factor": 1}}, timeout_ms=10000
        )
        assert name in admin.list_topics()
        (described,) = admin.describe_topics([name])
        assert described["error_code"] == 0
        assert sorted(p["partition_index"] for p in described["partitions"]) == [0, 1]

        with pytest.raises(TopicAlreadyExistsError):
            admin.create_topics({name: {"num_partitions": 1, "replication_factor": 1}})

        admin.delete_topics([name], timeout_ms=10000)
        deadline = time.monotonic() + 10
        while name in admin.list_topics():
            assert time.monotonic() < deadline, "deleted topic still listed after 10 s"
            time.sleep(0.1)
    finally:
        admin.close()


def test_admin_describe_and_alter_topic_config(bootstrap: str) -> None:
    name = unique_topic("kp-config")
    create_topic(bootstrap, name, 1, **{"cleanup.policy": "delete", "retention.ms": "3600000"})
    admin = admin_client(bootstrap)
    try:
        resource = ConfigResource(ConfigResourceType.TOPIC, name)
        configs = admin.describe_configs([resource], config_filter="all")["topic"][name]
        assert configs["retention.ms"]["value"] == "3600000"
        assert configs["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"
        assert configs["segment.bytes"]["config_source"] in {
            "DEFAULT_CONFIG",
            "STATIC_BROKER_CONFIG",
        }

        admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name, {"retention.ms": "7200000"})]
        )
        configs = admin.describe_configs([resource], config_filter="all")["topic"][name]
        assert configs["retention.ms"]["value"] == "7200000"
    finally:
        admin.close()


# ----------------------------------------------------------------------------- produce/consume
@pytest.mark.parametrize("acks", [0, 1, "all"])
def test_produce_consume_acks_keys_headers_timestamps(
    bootstrap: str, kp_producer: Any, acks: int | str
) -> None:
    topic = unique_topic(f"kp-acks-{acks}")
    create_topic(bootstrap, topic)
    # idempotence requires acks=all; kafka-python enables it by default otherwise
    p = kp_producer(acks=acks, enable_idempotence=acks == "all")
    items = [
        {
            "partition": 0,
            "key": f"key-{i}".encode(),
            "value": f"value-{i}".encode(),
            "timestamp_ms": BASE_TS + i,
            "headers": [("h1", f"v{i}".encode()), ("h2", b""), ("h1", b"dup")],
        }
        for i in range(50)
    ]
    metas = produce_all(p, topic, items)
    if acks != 0:
        assert [m.offset for m in metas] == list(range(50))

    records = read_partition(bootstrap, topic, 0, 50)
    for i, r in enumerate(records):
        assert r.offset == i
        assert r.key == f"key-{i}".encode()
        assert r.value == f"value-{i}".encode()
        assert r.timestamp == BASE_TS + i
        assert r.timestamp_type == 0  # CreateTime
        assert list(r.headers) == [("h1", f"v{i}".encode()), ("h2", b""), ("h1", b"dup")]


def test_ordering_within_partitions_by_key(bootstrap: str, kp_producer: Any) -> None:
    topic = unique_topic("kp-order")
    create_topic(bootstrap, topic, partitions=3)
    keys = [f"k{j}".encode() for j in range(6)]
    metas = produce_all(
        kp_producer(acks="all"),
        topic,
        ({"key": keys[i % 6], "value": str(i).encode()} for i in range(600)),
    )
    counts: dict[int, int] = {}
    for m in metas:
        counts[m.partition] = counts.get(m.partition, 0) + 1
    for partition, count in counts.items():
        records = read_partition(bootstrap, topic, partition, count)
        assert [r.offset for r in records] == list(range(count))
        by_key: dict[bytes, list[int]] = {}
        for r in records:
            by_key.setdefault(r.key, []).append(int(r.value))
        for key, values in by_key.items():
            assert values == [i for i in range(600) if keys[i % 6] == key]


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compression_codecs(bootstrap: str, kp_producer: Any, codec: str) -> None:
    if codec == "snappy":
        assert kafka.codec.has_snappy(), "kafka-python needs the python-snappy module for snappy"
    topic = unique_topic(f"kp-{codec}")
    create_topic(bootstrap, topic)
    values = [(f"{codec}-{i}-" * 20).encode() for i in range(500)]
    p = kp_producer(compression_type=codec, linger_ms=50, acks="all")
    produce_all(p, topic, ({"partition": 0, "value": v} for v in values))
    records = read_partition(bootstrap, topic, 0, len(values))
    assert [r.value for r in records] == values


def test_ten_thousand_small_messages(bootstrap: str, kp_producer: Any) -> None:
    topic = unique_topic("kp-10k")
    create_topic(bootstrap, topic)
    n = 10_000
    metas = produce_all(
        kp_producer(acks="all", linger_ms=20),
        topic,
        ({"partition": 0, "value": i.to_bytes(4, "big")} for i in range(n)),
    )
    assert [m.offset for m in metas] == list(range(n))
    records = read_partition(bootstrap, topic, 0, n)
    assert [int.from_bytes(r.value, "big") for r in records] == list(range(n))


def test_one_mib_messages(bootstrap: str, kp_producer: Any) -> None:
    topic = unique_topic("kp-1mib")
    create_topic(bootstrap, topic)
    values = [bytes([65 + i]) * MIB for i in range(4)]
    p = kp_producer(acks="all", max_request_size=3 * MIB)
    produce_all(p, topic, ({"partition": 0, "value": v} for v in values))
    records = read_partition(bootstrap, topic, 0, len(values))
    assert [r.value for r in records] == values


def test_log_append_time_topic(bootstrap: str, kp_producer: Any) -> None:
    topic = unique_topic("kp-lat")
    create_topic(bootstrap, topic, 1, **{"message.timestamp.type": "LogAppendTime"})
    before = int(time.time() * 1000)
    metas = produce_all(
        kp_producer(acks="all"),
        topic,
        ({"partition": 0, "value": b"x%d" % i, "timestamp_ms": BASE_TS} for i in range(5)),
    )
    after = int(time.time() * 1000)
    for m in metas:  # the produce response carries the broker's log append time
        assert before - 1000 <= m.timestamp <= after + 1000, m
    for r in read_partition(bootstrap, topic, 0, 5):
        assert r.timestamp_type == 1  # LogAppendTime
        assert before - 1000 <= r.timestamp <= after + 1000, r


def test_message_too_large_is_rejected_and_partition_stays_usable(
    bootstrap: str, kp_producer: Any
) -> None:
    topic = unique_topic("kp-too-large")
    create_topic(bootstrap, topic, 1, **{"max.message.bytes": "2000"})
    p = kp_producer(acks="all")
    with pytest.raises(MessageSizeTooLargeError):
        p.send(topic, value=b"z" * 10_000, partition=0).get(timeout=TIMEOUT_S)
    # kafka-python 3 puts an idempotent producer into a fatal state after any
    # non-retriable batch error (client behaviour), so the partition is checked with a
    # fresh producer
    (ok,) = produce_all(kp_producer(acks="all"), topic, [{"partition": 0, "value": b"small"}])
    assert ok.offset == 0
    assert [r.value for r in read_partition(bootstrap, topic, 0, 1)] == [b"small"]


@pytest.mark.parametrize(("reset", "first_offset"), [("earliest", 0), ("latest", 5)])
def test_out_of_range_offset_is_reset(
    bootstrap: str, kp_producer: Any, reset: str, first_offset: int
) -> None:
    topic = unique_topic(f"kp-oor-{reset}")
    create_topic(bootstrap, topic)
    p = kp_producer(acks="all")
    produce_all(p, topic, ({"partition": 0, "value": b"v%d" % i} for i in range(5)))
    c = consumer(bootstrap, auto_offset_reset=reset)
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        c.seek(tp, 1000)
        if reset == "latest":
            deadline = time.monotonic() + 10
            while c.position(tp, timeout_ms=5000) != 5:
                assert time.monotonic() < deadline, "no reset to the end within 10 s"
                assert not c.poll(timeout_ms=200), "records before the append"
            produce_all(p, topic, [{"partition": 0, "value": b"v5"}])
        (first,) = consume_n(c, 1)
        assert first.offset == first_offset
    finally:
        c.close()


def test_acks_all_needs_min_insync_replicas(bootstrap: str, kp_producer: Any) -> None:
    """min.insync.replicas=2 on one node: acks=all gets NOT_ENOUGH_REPLICAS, acks=1 works."""
    topic = unique_topic("kp-min-isr")
    create_topic(bootstrap, topic, 1, **{"min.insync.replicas": "2"})
    strict = kp_producer(acks="all", enable_idempotence=False, retries=0)
    with pytest.raises(NotEnoughReplicasError):
        strict.send(topic, value=b"lost", partition=0).get(timeout=TIMEOUT_S)
    (ok,) = produce_all(kp_producer(acks=1, enable_idempotence=False), topic, [{"value": b"ok"}])
    assert ok.offset == 0
    assert [r.value for r in read_partition(bootstrap, topic, 0, 1)] == [b"ok"]


def test_many_partitions_one_consumer_with_small_fetch_limits(
    bootstrap: str, kp_producer: Any
) -> None:
    """12 partitions read by one consumer whose fetch limits hold only a few batches per
    request: every partition still makes progress (no starvation), order kept in each."""
    topic = unique_topic("kp-many")
    create_topic(bootstrap, topic, 12)
    value_size = 20_000
    p = kp_producer(acks="all", linger_ms=0, batch_size=value_size + 200)
    produce_all(
        p,
        topic,
        (
            {"partition": part, "value": b"%02d:%03d:" % (part, i) + b"x" * value_size}
            for i in range(20)
            for part in range(12)
        ),
    )
    c = consumer(bootstrap, fetch_max_bytes=100_000, max_partition_fetch_bytes=30_000)
    try:
        c.assign([TopicPartition(topic, part) for part in range(12)])
        records = consume_n(c, 12 * 20)
    finally:
        c.close()
    seen: dict[int, list[int]] = {}
    for r in records:
        part, i = int(r.value[:2]), int(r.value[3:6])
        assert part == r.partition and r.offset == i
        seen.setdefault(part, []).append(i)
    assert seen == {part: list(range(20)) for part in range(12)}


def test_acks_zero_mixed_sizes_keep_order(bootstrap: str, kp_producer: Any) -> None:
    """acks=0 (no responses at all) with alternating ~600 KB and tiny batches: the log
    still holds every record in send order."""
    topic = unique_topic("kp-acks0-mixed")
    create_topic(bootstrap, topic)
    values = [(b"%03d" % i) + (b"L" * 600_000 if i % 2 == 0 else b"s") for i in range(30)]
    p = kp_producer(
        acks=0, enable_idempotence=False, linger_ms=0, max_request_size=3 * MIB,
        batch_size=16_384,
    )  # fmt: skip
    produce_all(p, topic, ({"partition": 0, "value": v} for v in values))
    records = read_partition(bootstrap, topic, 0, len(values))
    assert [r.value for r in records] == values


# ----------------------------------------------------------------------------- offsets
def test_seek_beginning_end_and_offsets(bootstrap: str, kp_producer: Any) -> None:
    topic = unique_topic("kp-seek")
    create_topic(bootstrap, topic)
    p = kp_producer(acks="all")
    produce_all(p, topic, ({"partition": 0, "value": b"old%d" % i} for i in range(10)))

    c = consumer(bootstrap)
    try:
        tp = TopicPartition(topic, 0)
        assert c.beginning_offsets([tp], timeout_ms=10000) == {tp: 0}
        assert c.end_offsets([tp], timeout_ms=10000) == {tp: 10}
        c.assign([tp])
        c.seek_to_end(tp)
        assert c.position(tp, timeout_ms=10000) == 10
        produce_all(p, topic, ({"partition": 0, "value": b"new%d" % i} for i in range(3)))
        assert [r.value for r in consume_n(c, 3)] == [b"new0", b"new1", b"new2"]

        c.seek_to_beginning(tp)
        records = consume_n(c, 13)
        assert [r.offset for r in records] == list(range(13))
        c.seek(tp, 11)
        assert [r.value for r in consume_n(c, 2)] == [b"new1", b"new2"]
        assert c.end_offsets([tp], timeout_ms=10000) == {tp: 13}
    finally:
        c.close()


def test_offsets_for_times(bootstrap: str, kp_producer: Any) -> None:
    topic = unique_topic("kp-times")
    create_topic(bootstrap, topic)
    p = kp_producer(acks="all", linger_ms=0)
    for i in range(20):  # one batch per record: exact answers at record granularity
        p.send(topic, partition=0, value=b"%d" % i, timestamp_ms=BASE_TS + 1000 * i).get(
            timeout=TIMEOUT_S
        )
    c = consumer(bootstrap)
    try:
        tp = TopicPartition(topic, 0)
        expectations = {BASE_TS - 5000: 0, BASE_TS + 7000: 7, BASE_TS + 7500: 8}
        for ts, offset in expectations.items():
            found = c.offsets_for_times({tp: ts}, timeout_ms=10000)[tp]
            assert found is not None and found.offset == offset, (ts, found)
        exact = c.offsets_for_times({tp: BASE_TS + 7000}, timeout_ms=10000)[tp]
        assert exact.timestamp == BASE_TS + 7000
        assert c.offsets_for_times({tp: BASE_TS + 999_000}, timeout_ms=10000)[tp] is None
    finally:
        c.close()


# ----------------------------------------------------------------------------- idempotence
def test_idempotent_producer_forced_retry_no_duplicate(broker_factory: Any) -> None:
    """Lose one Produce response: the producer retries the same sequence; one copy kept."""
    with KafkaProxy() as proxy:
        broker: BrokerProcess = broker_factory(
            {"advertised.listeners": f"PLAINTEXT://{proxy.address}"}
        )
        proxy.set_upstream(broker.host, broker.port)
        topic = unique_topic("kp-idem")
        create_topic(proxy.address, topic)
        p = producer(
            proxy.address,
            acks="all",
            enable_idempotence=True,
            linger_ms=0,
            retry_backoff_ms=50,
            request_timeout_ms=10000,
        )
        try:
            produce_all(p, topic, [{"partition": 0, "value": b"warm-up"}])
            proxy.drop_responses(PRODUCE, 1)
            metas = produce_all(
                p, topic, ({"partition": 0, "value": b"payload-%d" % i} for i in range(5))
            )
            assert proxy.dropped[PRODUCE] == 1, "the fault was never injected"
            assert [m.offset for m in metas] == [1, 2, 3, 4, 5]
            (after,) = produce_all(p, topic, [{"partition": 0, "value": b"after"}])
            assert after.offset == 6
        finally:
            p.close(timeout=5)

        records = read_partition(proxy.address, topic, 0, 7)
        assert [r.value for r in records] == [
            b"warm-up",
            *(b"payload-%d" % i for i in range(5)),
            b"after",
        ]
