"""confluent-kafka (librdkafka) against a real Strom broker on 127.0.0.1.

Covers issue 3's client list for librdkafka: admin (create/list/delete topics, describe
and alter topic configs), produce+consume with acks 0/1/all, keys/headers/timestamps,
ordering within a partition, gzip/snappy/lz4/zstd, 10,000 small and several 1 MiB
messages, seek to beginning/end, watermarks, offsets for times, and an idempotent
producer whose Produce response is lost (forced retry) without a duplicate in the log.

Consumers use ``assign()`` only.  librdkafka insists on a ``group.id`` even then; with
auto-commit off and explicit start offsets it never needs the group coordinator for
fetching.  Every wait is bounded.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_LOG_APPEND_TIME,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    OffsetSpec,
)

from tests.support.broker import BrokerProcess
from tests.support.fixtures import unique_topic
from tests.support.kafka_proxy import PRODUCE, KafkaProxy

MIB = 1024 * 1024
# Large enough for a batch holding one 1 MiB value (Kafka's default 1048588 is not).
BROKER_OVERRIDES = {"message.max.bytes": str(2 * MIB)}

TIMEOUT_S = 30.0
BASE_TS = (int(time.time()) - 3600) * 1000  # an hour ago, whole seconds


# ----------------------------------------------------------------------------- helpers
def admin_client(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000})


def create_topic(bootstrap: str, name: str, partitions: int = 1, **config: str) -> None:
    admin = admin_client(bootstrap)  # must outlive the futures (else _DESTROY)
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config)],
        operation_timeout=10,
        request_timeout=15,
    )
    futures[name].result(timeout=TIMEOUT_S)


def producer(bootstrap: str, **conf: Any) -> Producer:
    return Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, **conf})


def consumer(bootstrap: str, **conf: Any) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"assign-only-{uuid.uuid4().hex[:8]}",  # required by librdkafka
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": False,
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 100,
            "check.crcs": True,  # verify every batch CRC the broker serves
            **conf,
        }
    )


def produce_all(p: Producer, topic: str, items: Iterable[dict[str, Any]]) -> list[Message]:
    """Produce every item (kwargs for ``Producer.produce``), flush, return delivery reports."""
    reports: list[Message] = []
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            errors.append(err)
        reports.append(msg)

    count = 0
    for item in items:
        while True:
            try:
                p.produce(topic, on_delivery=on_delivery, **item)
                break
            except BufferError:  # local queue full: serve delivery reports, then retry
                p.poll(0.1)
        count += 1
    remaining = p.flush(TIMEOUT_S)
    assert remaining == 0, f"{remaining} messages not delivered within {TIMEOUT_S} s"
    assert not errors, f"delivery errors: {errors[:5]}"
    assert len(reports) == count
    return reports


def consume_n(c: Consumer, n: int, timeout: float = TIMEOUT_S) -> list[Message]:
    """Exactly ``n`` messages (fails on timeout or on a consumer error)."""
    got: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        left = deadline - time.monotonic()
        assert left > 0, f"consumed {len(got)} of {n} messages within {timeout} s"
        for msg in c.consume(num_messages=min(n - len(got), 10000), timeout=min(left, 1.0)):
            err = msg.error()
            if err is not None:
                assert err.code() == KafkaError._PARTITION_EOF, f"consumer error: {err}"
                continue
            got.append(msg)
    return got


def read_partition(bootstrap: str, topic: str, partition: int, n: int) -> list[Message]:
    c = consumer(bootstrap)
    try:
        c.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
        msgs = consume_n(c, n)
        # exactly n records: dense offsets from 0 and the high watermark right after them
        assert [m.offset() for m in msgs] == list(range(n))
        tp = TopicPartition(topic, partition)
        assert c.get_watermark_offsets(tp, timeout=10, cached=False) == (0, n)
        return msgs
    finally:
        c.close()


# ----------------------------------------------------------------------------- admin
def test_admin_create_list_delete_topics(bootstrap: str) -> None:
    admin = admin_client(bootstrap)
    name = unique_topic("cfl-admin")
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=3, replication_factor=1)], request_timeout=15
    )
    futures[name].result(timeout=TIMEOUT_S)

    md = admin.list_topics(timeout=10)
    assert name in md.topics
    assert sorted(md.topics[name].partitions) == [0, 1, 2]
    assert md.topics[name].error is None
    broker_ids = set(md.brokers)
    for part in md.topics[name].partitions.values():
        assert part.leader in broker_ids
        assert part.replicas == [part.leader]

    # Creating it again is TOPIC_ALREADY_EXISTS.
    again = admin.create_topics([NewTopic(name, 1, 1)], request_timeout=15)
    with pytest.raises(Exception) as excinfo:
        again[name].result(timeout=TIMEOUT_S)
    assert excinfo.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS

    admin.delete_topics([name], request_timeout=15)[name].result(timeout=TIMEOUT_S)
    deadline = time.monotonic() + 10
    while name in admin.list_topics(timeout=10).topics:
        assert time.monotonic() < deadline, "deleted topic still listed after 10 s"
        time.sleep(0.1)


def test_admin_describe_and_alter_topic_config(bootstrap: str) -> None:
    admin = admin_client(bootstrap)
    name = unique_topic("cfl-config")
    create_topic(bootstrap, name, 1, **{"retention.ms": "3600000"})
    resource = ConfigResource(ConfigResource.Type.TOPIC, name)

    described = admin.describe_configs([resource], request_timeout=15)[resource].result(
        timeout=TIMEOUT_S
    )
    assert described["retention.ms"].value == "3600000"
    assert not described["retention.ms"].is_default
    assert described["cleanup.policy"].value == "delete"

    entry = ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET)
    change = ConfigResource(ConfigResource.Type.TOPIC, name, incremental_configs=[entry])
    admin.incremental_alter_configs([change], request_timeout=15)[change].result(timeout=TIMEOUT_S)
    described = admin.describe_configs([resource], request_timeout=15)[resource].result(
        timeout=TIMEOUT_S
    )
    assert described["retention.ms"].value == "7200000"


def test_delete_and_recreate_topic_starts_empty(bootstrap: str) -> None:
    """A topic deleted and created again under the same name is a new, empty log; a
    producer that wrote to the old one writes to the new one from offset 0."""
    admin = admin_client(bootstrap)
    name = unique_topic("cfl-recreate")
    create_topic(bootstrap, name, 1)
    p = producer(bootstrap, acks="all")
    produce_all(p, name, [{"partition": 0, "value": b"old-%d" % i} for i in range(10)])

    admin.delete_topics([name], request_timeout=15)[name].result(timeout=TIMEOUT_S)
    deadline = time.monotonic() + 10
    while True:  # deletion may complete asynchronously, as in Kafka
        assert time.monotonic() < deadline, "could not re-create the topic within 10 s"
        try:
            create_topic(bootstrap, name, 1)
            break
        except Exception as e:  # noqa: BLE001 - only TOPIC_ALREADY_EXISTS is retried
            assert e.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS, e
            time.sleep(0.2)

    reports = produce_all(p, name, [{"partition": 0, "value": b"new-%d" % i} for i in range(3)])
    assert [r.offset() for r in reports] == [0, 1, 2]
    assert [m.value() for m in read_partition(bootstrap, name, 0, 3)] == [
        b"new-0",
        b"new-1",
        b"new-2",
    ]


def test_metadata_auto_creation_only_when_the_client_allows_it(bootstrap: str) -> None:
    """Metadata v4+ carries allow_auto_topic_creation: librdkafka's consumer says false
    (its default), its producer true — only the producer's request creates the topic."""
    admin = admin_client(bootstrap)
    name = unique_topic("cfl-autocreate")
    c = consumer(bootstrap)  # allow.auto.create.topics=false (librdkafka default)
    try:
        c.assign([TopicPartition(name, 0, OFFSET_BEGINNING)])
        errors = [m.error() for m in c.consume(num_messages=10, timeout=2.0) if m.error()]
        assert c.list_topics(name, timeout=10).topics[name].error is not None
    finally:
        c.close()
    assert name not in admin.list_topics(timeout=10).topics, f"consumer created it: {errors}"

    (report,) = produce_all(producer(bootstrap), name, [{"value": b"first"}])
    assert report.offset() == 0
    md = admin.list_topics(timeout=10)
    assert name in md.topics and len(md.topics[name].partitions) == 1  # num.partitions


# ----------------------------------------------------------------------------- produce/consume
@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_produce_consume_acks_keys_headers_timestamps(bootstrap: str, acks: str) -> None:
    topic = unique_topic(f"cfl-acks-{acks}")
    create_topic(bootstrap, topic)
    items = [
        {
            "partition": 0,
            "key": f"key-{i}".encode(),
            "value": f"value-{i}".encode(),
            "timestamp": BASE_TS + i,
            "headers": [("h1", f"v{i}".encode()), ("h2", b""), ("h1", b"dup")],
        }
        for i in range(50)
    ]
    p = producer(bootstrap, acks=acks)
    reports = produce_all(p, topic, items)
    if acks != "0":  # acks=0 has no offsets to report
        assert [r.offset() for r in reports] == list(range(50))

    msgs = read_partition(bootstrap, topic, 0, 50)
    for i, msg in enumerate(msgs):
        assert msg.offset() == i
        assert msg.key() == f"key-{i}".encode()
        assert msg.value() == f"value-{i}".encode()
        assert msg.timestamp() == (TIMESTAMP_CREATE_TIME, BASE_TS + i)
        assert msg.headers() == [("h1", f"v{i}".encode()), ("h2", b""), ("h1", b"dup")]


def test_null_versus_empty_keys_values_and_headers(bootstrap: str) -> None:
    """null and empty are different things, and both survive; so do UTF-8 header keys."""
    topic = unique_topic("cfl-null")
    create_topic(bootstrap, topic)
    items = [
        {"partition": 0, "value": None, "key": None},
        {"partition": 0, "value": b"", "key": b""},
        {"partition": 0, "value": b"v", "headers": [("null-value", None), ("ключ", b"\x00\xff")]},
    ]
    produce_all(producer(bootstrap), topic, items)
    first, second, third = read_partition(bootstrap, topic, 0, 3)
    assert first.key() is None and first.value() is None and not first.headers()
    assert second.key() == b"" and second.value() == b""
    assert third.headers() == [("null-value", None), ("ключ", b"\x00\xff")]


def test_concurrent_producers_one_partition(bootstrap: str) -> None:
    """Four producers at once into one partition: unique dense offsets, each one's order kept."""
    topic = unique_topic("cfl-concurrent")
    create_topic(bootstrap, topic)
    per_producer = 2500
    results: dict[int, list[Message]] = {}

    def run(pid: int) -> None:
        items = [{"partition": 0, "value": b"%d:%d" % (pid, i)} for i in range(per_producer)]
        results[pid] = produce_all(producer(bootstrap, acks="all"), topic, items)

    threads = [threading.Thread(target=run, args=(pid,)) for pid in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == [0, 1, 2, 3], "a producer thread failed"
    offsets = sorted(r.offset() for rs in results.values() for r in rs)
    assert offsets == list(range(4 * per_producer))

    msgs = read_partition(bootstrap, topic, 0, 4 * per_producer)
    by_producer: dict[int, list[int]] = {}
    for m in msgs:
        pid, i = map(int, m.value().split(b":"))
        by_producer.setdefault(pid, []).append(i)
    assert by_producer == {pid: list(range(per_producer)) for pid in range(4)}


def test_long_poll_is_woken_by_an_append(bootstrap: str) -> None:
    """A consumer parked in a 10 s fetch wait gets a new record long before the wait ends."""
    topic = unique_topic("cfl-longpoll")
    create_topic(bootstrap, topic)
    produce_all(producer(bootstrap), topic, [{"partition": 0, "value": b"first"}])
    c = consumer(bootstrap, **{"fetch.wait.max.ms": 10000, "fetch.min.bytes": 1})
    p = producer(bootstrap, **{"linger.ms": 0})
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        assert [m.value() for m in consume_n(c, 1)] == [b"first"]
        # The consumer is now parked in a fetch at offset 1 (max wait 10 s).
        c.consume(num_messages=1, timeout=0.5)
        produce_all(p, topic, [{"partition": 0, "value": b"second"}])
        started = time.monotonic()
        (msg,) = consume_n(c, 1, timeout=20)
        waited = time.monotonic() - started
        assert msg.value() == b"second"
        assert waited < 5, f"append did not wake the parked fetch (got it after {waited:.1f} s)"
    finally:
        c.close()


def test_ordering_within_partitions_by_key(bootstrap: str) -> None:
    topic = unique_topic("cfl-order")
    create_topic(bootstrap, topic, partitions=3)
    keys = [f"k{j}".encode() for j in range(6)]
    items = [{"key": keys[i % 6], "value": str(i).encode()} for i in range(600)]
    reports = produce_all(producer(bootstrap, acks="all"), topic, items)
    per_partition: dict[int, int] = {}
    key_partition: dict[bytes, int] = {}
    for r in reports:
        per_partition[r.partition()] = per_partition.get(r.partition(), 0) + 1
        assert key_partition.setdefault(r.key(), r.partition()) == r.partition()

    for partition, count in per_partition.items():
        msgs = read_partition(bootstrap, topic, partition, count)
        assert [m.offset() for m in msgs] == list(range(count))
        by_key: dict[bytes, list[int]] = {}
        for m in msgs:
            by_key.setdefault(m.key(), []).append(int(m.value()))
        for key, values in by_key.items():
            assert values == sorted(values), f"key {key!r} out of order in p{partition}"
            assert values == [i for i in range(600) if keys[i % 6] == key]


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compression_codecs(bootstrap: str, codec: str) -> None:
    topic = unique_topic(f"cfl-{codec}")
    create_topic(bootstrap, topic)
    values = [(f"{codec}-{i}-" * 20).encode() for i in range(500)]
    items = [{"partition": 0, "key": str(i).encode(), "value": v} for i, v in enumerate(values)]
    produce_all(producer(bootstrap, **{"compression.type": codec, "linger.ms": 50}), topic, items)
    msgs = read_partition(bootstrap, topic, 0, len(values))
    assert [m.value() for m in msgs] == values
    assert [m.key() for m in msgs] == [str(i).encode() for i in range(500)]


def test_ten_thousand_small_messages(bootstrap: str) -> None:
    topic = unique_topic("cfl-10k")
    create_topic(bootstrap, topic)
    n = 10_000
    items = ({"partition": 0, "value": i.to_bytes(4, "big")} for i in range(n))
    reports = produce_all(producer(bootstrap, acks="all"), topic, items)
    assert sorted(r.offset() for r in reports) == list(range(n))
    msgs = read_partition(bootstrap, topic, 0, n)
    assert [int.from_bytes(m.value(), "big") for m in msgs] == list(range(n))


def test_one_mib_messages(bootstrap: str) -> None:
    topic = unique_topic("cfl-1mib")
    create_topic(bootstrap, topic)
    values = [bytes([i]) * MIB for i in range(4)]
    p = producer(bootstrap, acks="all", **{"message.max.bytes": 3 * MIB})
    produce_all(p, topic, [{"partition": 0, "value": v} for v in values])
    msgs = read_partition(bootstrap, topic, 0, len(values))
    assert [m.value() for m in msgs] == values


def test_log_append_time_topic(bootstrap: str) -> None:
    """message.timestamp.type=LogAppendTime: the broker's clock replaces the producer's."""
    topic = unique_topic("cfl-lat")
    create_topic(bootstrap, topic, 1, **{"message.timestamp.type": "LogAppendTime"})
    before = int(time.time() * 1000)
    items = [{"partition": 0, "value": b"x%d" % i, "timestamp": BASE_TS} for i in range(5)]
    reports = produce_all(producer(bootstrap, acks="all"), topic, items)
    after = int(time.time() * 1000)
    for r in reports:
        ts_type, ts = r.timestamp()
        assert ts_type == TIMESTAMP_LOG_APPEND_TIME
        assert before - 1000 <= ts <= after + 1000
    msgs = read_partition(bootstrap, topic, 0, 5)
    for m in msgs:
        ts_type, ts = m.timestamp()
        assert ts_type == TIMESTAMP_LOG_APPEND_TIME
        assert before - 1000 <= ts <= after + 1000, ts


def test_message_too_large_is_rejected_and_partition_stays_usable(bootstrap: str) -> None:
    topic = unique_topic("cfl-too-large")
    create_topic(bootstrap, topic, 1, **{"max.message.bytes": "2000"})
    p = producer(bootstrap, acks="all", **{"compression.type": "none", "retries": 0})
    results: list[KafkaError | None] = []
    p.produce(topic, value=b"z" * 10_000, partition=0, on_delivery=lambda e, m: results.append(e))
    assert p.flush(TIMEOUT_S) == 0
    (err,) = results
    assert err is not None and err.code() == KafkaError.MSG_SIZE_TOO_LARGE, err
    (ok,) = produce_all(p, topic, [{"partition": 0, "value": b"small"}])
    assert ok.offset() == 0
    assert [m.value() for m in read_partition(bootstrap, topic, 0, 1)] == [b"small"]


def test_compacted_topic_rejects_keyless_records(bootstrap: str) -> None:
    """cleanup.policy=compact: a record without a key is INVALID_RECORD; keyed ones land."""
    topic = unique_topic("cfl-compact")
    create_topic(bootstrap, topic, 1, **{"cleanup.policy": "compact"})
    p = producer(bootstrap, acks="all", retries=0)
    results: list[KafkaError | None] = []
    p.produce(topic, value=b"no key", partition=0, on_delivery=lambda e, m: results.append(e))
    assert p.flush(TIMEOUT_S) == 0
    (err,) = results
    assert err is not None and err.code() == KafkaError.INVALID_RECORD, err
    ok = produce_all(
        producer(bootstrap, acks="all"),
        topic,
        [
            {"partition": 0, "key": b"k", "value": b"v1"},
            {"partition": 0, "key": b"k", "value": None},
        ],
    )
    assert [r.offset() for r in ok] == [0, 1]
    msgs = read_partition(bootstrap, topic, 0, 2)
    assert [(m.key(), m.value()) for m in msgs] == [(b"k", b"v1"), (b"k", None)]


def test_large_fetch_responses(bootstrap: str) -> None:
    """12 MiB in one partition fetched with 16 MiB partition / 32 MiB response limits:
    multi-megabyte responses are written whole and in order."""
    topic = unique_topic("cfl-bigfetch")
    create_topic(bootstrap, topic)
    values = [bytes([i]) * MIB for i in range(12)]
    p = producer(bootstrap, acks="all", **{"message.max.bytes": 3 * MIB, "linger.ms": 0})
    produce_all(p, topic, [{"partition": 0, "value": v} for v in values])
    c = consumer(
        bootstrap,
        **{
            "max.partition.fetch.bytes": 16 * MIB,
            "fetch.max.bytes": 32 * MIB,
            "receive.message.max.bytes": 40 * MIB,
        },
    )
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        msgs = consume_n(c, 12)
    finally:
        c.close()
    assert [m.offset() for m in msgs] == list(range(12))
    assert [m.value() for m in msgs] == values


@pytest.mark.parametrize("idempotent", [False, True])
def test_pipelined_large_and_small_batches_keep_order(bootstrap: str, idempotent: bool) -> None:
    """One producer pipelines (up to 5 in flight) alternating ~600 KB and tiny batches to
    three partitions, several partitions per Produce request: each partition keeps exactly
    the send order, whatever path each batch takes inside the broker, and every delivery
    report names the right partition and offset."""
    topic = unique_topic(f"cfl-pipeline-{idempotent}")
    create_topic(bootstrap, topic, partitions=3)
    values = [(b"%03d" % i) + (b"L" * 600_000 if i % 2 == 0 else b"s") for i in range(60)]
    p = producer(
        bootstrap,
        acks="all",
        **{
            "enable.idempotence": idempotent,
            "max.in.flight.requests.per.connection": 5,
            "linger.ms": 5,
            "batch.num.messages": 1,
            "message.max.bytes": 3 * MIB,
        },
    )
    items = [{"partition": i % 3, "value": v} for i, v in enumerate(values)]
    reports = produce_all(p, topic, items)
    for partition in range(3):
        sent = [v for i, v in enumerate(values) if i % 3 == partition]
        mine = sorted((r for r in reports if r.partition() == partition), key=Message.offset)
        assert [r.offset() for r in mine] == list(range(len(sent)))
        assert [r.value() for r in mine] == sent
        msgs = read_partition(bootstrap, topic, partition, len(sent))
        assert [m.value() for m in msgs] == sent


# ----------------------------------------------------------------------------- offsets
def test_seek_beginning_end_and_watermarks(bootstrap: str) -> None:
    topic = unique_topic("cfl-seek")
    create_topic(bootstrap, topic)
    produce_all(
        producer(bootstrap), topic, [{"partition": 0, "value": b"old%d" % i} for i in range(10)]
    )

    c = consumer(bootstrap, **{"enable.partition.eof": True})
    try:
        tp = TopicPartition(topic, 0)
        assert c.get_watermark_offsets(tp, timeout=10) == (0, 10)
        c.assign([TopicPartition(topic, 0, OFFSET_END)])
        # Wait for the end-of-partition event: OFFSET_END is resolved and fetched; none
        # of the 10 old records may be delivered.
        deadline = time.monotonic() + 10
        reached_end = False
        while not reached_end:
            assert time.monotonic() < deadline, "no end-of-partition event within 10 s"
            for m in c.consume(num_messages=10, timeout=0.5):
                assert m.error() is not None, f"old record delivered at {m.offset()}"
                assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
                assert m.offset() == 10
                reached_end = True
        produce_all(
            producer(bootstrap), topic, [{"partition": 0, "value": b"new%d" % i} for i in range(3)]
        )
        assert [m.value() for m in consume_n(c, 3)] == [b"new0", b"new1", b"new2"]

        c.seek(TopicPartition(topic, 0, OFFSET_BEGINNING))
        msgs = consume_n(c, 13)
        assert [m.offset() for m in msgs] == list(range(13))
        assert msgs[0].value() == b"old0"

        c.seek(TopicPartition(topic, 0, 11))
        assert [m.value() for m in consume_n(c, 2)] == [b"new1", b"new2"]
        assert c.get_watermark_offsets(tp, timeout=10) == (0, 13)
    finally:
        c.close()


def test_offsets_for_times(bootstrap: str) -> None:
    topic = unique_topic("cfl-times")
    create_topic(bootstrap, topic)
    items = [
        {"partition": 0, "value": b"%d" % i, "timestamp": BASE_TS + 1000 * i} for i in range(20)
    ]
    # one message per batch so the answer is exact at message granularity
    produce_all(producer(bootstrap, **{"linger.ms": 0, "batch.num.messages": 1}), topic, items)

    c = consumer(bootstrap)
    try:
        query = [
            TopicPartition(topic, 0, BASE_TS - 5000),  # before everything -> 0
            TopicPartition(topic, 0, BASE_TS + 7000),  # exact -> 7
            TopicPartition(topic, 0, BASE_TS + 7500),  # between -> 8
            TopicPartition(topic, 0, BASE_TS + 999_000),  # after everything -> -1
        ]
        answers = [c.offsets_for_times([q], timeout=10)[0] for q in query]
        assert [a.offset for a in answers] == [0, 7, 8, -1]
        assert all(a.error is None for a in answers)

        c.assign([TopicPartition(topic, 0, answers[1].offset)])
        first = consume_n(c, 1)[0]
        assert first.offset() == 7
        assert first.timestamp() == (TIMESTAMP_CREATE_TIME, BASE_TS + 7000)
    finally:
        c.close()


@pytest.mark.parametrize(("reset", "first_offset"), [("earliest", 0), ("latest", 5)])
def test_out_of_range_offset_is_reset(bootstrap: str, reset: str, first_offset: int) -> None:
    """Fetching past the end gets OFFSET_OUT_OF_RANGE; the client resets per policy."""
    topic = unique_topic(f"cfl-oor-{reset}")
    create_topic(bootstrap, topic)
    p = producer(bootstrap)
    produce_all(p, topic, [{"partition": 0, "value": b"v%d" % i} for i in range(5)])
    c = consumer(bootstrap, **{"auto.offset.reset": reset, "enable.partition.eof": True})
    try:
        c.assign([TopicPartition(topic, 0, 1000)])
        if reset == "latest":
            # the reset to the end shows as an end-of-partition event at 5; then append
            deadline = time.monotonic() + 10
            at_end = False
            while not at_end:
                assert time.monotonic() < deadline, "no reset to the end within 10 s"
                for m in c.consume(num_messages=10, timeout=0.3):
                    assert m.error() is not None, f"record at {m.offset()} before the append"
                    assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
                    assert m.offset() == 5
                    at_end = True
            produce_all(p, topic, [{"partition": 0, "value": b"v5"}])
        (first,) = consume_n(c, 1)
        assert first.offset() == first_offset
    finally:
        c.close()


def test_admin_list_offsets_earliest_latest_max_timestamp(bootstrap: str) -> None:
    """ListOffsets through the admin API, including MAX_TIMESTAMP (-3, ListOffsets v7+)."""
    topic = unique_topic("cfl-listoffsets")
    create_topic(bootstrap, topic)
    stamps = [BASE_TS + 1000, BASE_TS + 5000, BASE_TS + 3000, BASE_TS + 2000]
    produce_all(
        producer(bootstrap, **{"linger.ms": 0, "batch.num.messages": 1}),
        topic,
        [{"partition": 0, "value": b"%d" % i, "timestamp": ts} for i, ts in enumerate(stamps)],
    )
    admin = admin_client(bootstrap)
    tp = TopicPartition(topic, 0)

    def list_offset(spec: OffsetSpec) -> Any:
        futures = admin.list_offsets({tp: spec}, request_timeout=15)
        return futures[tp].result(timeout=TIMEOUT_S)

    assert list_offset(OffsetSpec.earliest()).offset == 0
    assert list_offset(OffsetSpec.latest()).offset == 4
    newest = list_offset(OffsetSpec.max_timestamp())
    assert (newest.offset, newest.timestamp) == (1, BASE_TS + 5000)
    assert list_offset(OffsetSpec.for_timestamp(BASE_TS + 2500)).offset == 1


# ----------------------------------------------------------------------------- idempotence
def test_idempotent_producer_forced_retry_no_duplicate(
    broker_factory: Any,
) -> None:
    """Lose the first Produce response: librdkafka retries the same sequence; one copy kept."""
    with KafkaProxy() as proxy:
        broker: BrokerProcess = broker_factory(
            {"advertised.listeners": f"PLAINTEXT://{proxy.address}"}
        )
        proxy.set_upstream(broker.host, broker.port)
        topic = unique_topic("cfl-idem")
        create_topic(proxy.address, topic)

        p = producer(
            proxy.address,
            **{
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 0,
                "retry.backoff.ms": 50,
                "message.timeout.ms": 30000,
            },
        )
        produce_all(p, topic, [{"partition": 0, "value": b"warm-up"}])  # PID assigned
        proxy.drop_responses(PRODUCE, 1)
        reports = produce_all(
            p, topic, [{"partition": 0, "value": b"payload-%d" % i} for i in range(5)]
        )
        assert proxy.dropped[PRODUCE] == 1, "the fault was never injected"
        assert [r.offset() for r in reports] == [1, 2, 3, 4, 5]
        # more after the retry continue the sequence normally
        after = produce_all(p, topic, [{"partition": 0, "value": b"after"}])
        assert after[0].offset() == 6

        msgs = read_partition(broker.bootstrap, topic, 0, 7)
        assert [m.value() for m in msgs] == [
            b"warm-up",
            *(b"payload-%d" % i for i in range(5)),
            b"after",
        ]
