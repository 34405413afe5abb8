"""aiokafka 0.14 against a real Strom broker on 127.0.0.1.

aiokafka only speaks non-flexible versions (Produce ≤ 8, Fetch ≤ 11, Metadata ≤ 5,
ApiVersions ≤ 2, ...), so this suite is what keeps the old versions honest.  Consumers
have ``group_id=None`` and use ``assign()`` (consumer groups are a separate issue).

Covers: admin create/list/describe/delete topics and topic configs (AlterConfigs,
non-incremental), produce+consume with acks 0/1/all, keys/headers/timestamps,
ordering, gzip/snappy/lz4/zstd, 10,000 small and several 1 MiB messages, seek to
beginning/end, beginning/end offsets, offsets for times, an idempotent producer whose
Produce response is lost (forced retry) without a duplicate, and the same idempotent
batch sent twice at the protocol level (the broker answers with the original offset and
keeps one copy; a sequence gap is OUT_OF_ORDER_SEQUENCE_NUMBER).
Every await is bounded with ``asyncio.wait_for`` or a client timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.structs import ConsumerRecord, RecordMetadata

from tests.support.broker import BrokerProcess
from tests.support.fixtures import unique_topic
from tests.support.kafka_proxy import PRODUCE, KafkaProxy
from tests.support.raw_producer import RawProducer, idempotent_batch

MIB = 1024 * 1024
BROKER_OVERRIDES = {"message.max.bytes": str(2 * MIB)}

TIMEOUT_S = 30.0
BASE_TS = (int(time.time()) - 3600) * 1000

NONE = 0
TOPIC_ALREADY_EXISTS = 36
OUT_OF_ORDER_SEQUENCE_NUMBER = 45
INVALID_PRODUCER_EPOCH = 47


# ----------------------------------------------------------------------------- helpers
async def bounded(aw: Any, timeout: float = TIMEOUT_S) -> Any:
    return await asyncio.wait_for(aw, timeout)


async def admin_client(bootstrap: str) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await bounded(admin.start())
    return admin


def topic_errors(response: Any) -> dict[str, int]:
    """CreateTopics/DeleteTopics response -> {topic: error_code} (any version)."""
    obj = response.to_object()
    entries = obj.get("topic_errors") or obj.get("topic_error_codes") or obj.get("topics")
    return {e.get("topic") or e.get("name"): e["error_code"] for e in entries}


async def create_topic(bootstrap: str, name: str, partitions: int = 1, **configs: str) -> None:
    admin = await admin_client(bootstrap)
    try:
        response = await bounded(
            admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs)])
        )
        assert topic_errors(response) == {name: NONE}
    finally:
        await admin.close()


@pytest.fixture
async def clients(bootstrap: str) -> AsyncIterator[Any]:
    """Factory for started producers/consumers; all are stopped at test end."""
    started: list[Any] = []

    class Make:
        async def producer(self, addr: str | None = None, **conf: Any) -> AIOKafkaProducer:
            conf.setdefault("linger_ms", 5)
            p = AIOKafkaProducer(
                bootstrap_servers=addr or bootstrap, request_timeout_ms=15000, **conf
            )
            await bounded(p.start())
            started.append(p)
            return p

        async def consumer(self, addr: str | None = None, **conf: Any) -> AIOKafkaConsumer:
            settings: dict[str, Any] = {
                "group_id": None,
                "enable_auto_commit": False,
                "auto_offset_reset": "earliest",
                "fetch_max_wait_ms": 100,
                "request_timeout_ms": 15000,
                **conf,
            }
            c = AIOKafkaConsumer(bootstrap_servers=addr or bootstrap, **settings)
            await bounded(c.start())
            started.append(c)
            return c

    yield Make()
    for client in reversed(started):
        await asyncio.wait_for(client.stop(), 10)


async def produce_all(
    p: AIOKafkaProducer, topic: str, items: Iterable[dict[str, Any]]
) -> list[RecordMetadata]:
    futures = [await bounded(p.send(topic, **item)) for item in items]
    return list(await bounded(asyncio.gather(*futures)))


async def consume_n(
    c: AIOKafkaConsumer, n: int, timeout: float = TIMEOUT_S
) -> list[ConsumerRecord]:
    got: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        left = deadline - time.monotonic()
        assert left > 0, f"consumed {len(got)} of {n} messages within {timeout} s"
        batches = await bounded(
            c.getmany(timeout_ms=int(min(left, 1.0) * 1000), max_records=n - len(got))
        )
        for records in batches.values():
            got.extend(records)
    return got


async def read_partition(
    make: Any, topic: str, partition: int, n: int, addr: str | None = None
) -> list[ConsumerRecord]:
    c = await make.consumer(addr)
    tp = TopicPartition(topic, partition)
    c.assign([tp])
    await bounded(c.seek_to_beginning(tp))
    records = await consume_n(c, n)
    # exactly n records: dense offsets from 0 and the end offset right after them
    assert [r.offset for r in records] == list(range(n))
    assert await bounded(c.end_offsets([tp])) == {tp: n}
    return records


# ----------------------------------------------------------------------------- admin
async def test_admin_create_list_delete_topics(bootstrap: str) -> None:
    name = unique_topic("aio-admin")
    admin = await admin_client(bootstrap)
    try:
        response = await bounded(admin.create_topics([NewTopic(name, 2, 1)]))
        assert topic_errors(response) == {name: NONE}
        assert name in await bounded(admin.list_topics())
        (described,) = await bounded(admin.describe_topics([name]))
        assert described["error_code"] == NONE
        assert sorted(p["partition"] for p in described["partitions"]) == [0, 1]

        again = await bounded(admin.create_topics([NewTopic(name, 1, 1)]))
        assert topic_errors(again) == {name: TOPIC_ALREADY_EXISTS}

        deleted = await bounded(admin.delete_topics([name]))
        assert topic_errors(deleted) == {name: NONE}
        deadline = time.monotonic() + 10
        while name in await bounded(admin.list_topics()):
            assert time.monotonic() < deadline, "deleted topic still listed after 10 s"
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def test_admin_describe_and_alter_topic_config(bootstrap: str) -> None:
    name = unique_topic("aio-config")
    await create_topic(bootstrap, name, 1, **{"retention.ms": "3600000"})
    admin = await admin_client(bootstrap)

    async def describe() -> dict[str, str]:
        (response,) = await bounded(
            admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
        )
        (resource,) = response.to_object()["resources"]
        assert resource["error_code"] == NONE
        return {c["config_names"]: c["config_value"] for c in resource["config_entries"]}

    try:
        configs = await describe()
        assert configs["retention.ms"] == "3600000"
        assert configs["cleanup.policy"] == "delete"
        responses = await bounded(
            admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, name, {"retention.ms": "7200000"})]
            )
        )
        for r in responses:
            for res in r.to_object()["resources"]:
                assert res["error_code"] == NONE, res
        assert (await describe())["retention.ms"] == "7200000"
    finally:
        await admin.close()


# ----------------------------------------------------------------------------- produce/consume
@pytest.mark.parametrize("acks", [0, 1, "all"])
async def test_produce_consume_acks_keys_headers_timestamps(
    bootstrap: str, clients: Any, acks: int | str
) -> None:
    topic = unique_topic(f"aio-acks-{acks}")
    await create_topic(bootstrap, topic)
    p = await clients.producer(acks=acks)
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
    metas = await produce_all(p, topic, items)
    if acks != 0:
        assert [m.offset for m in metas] == list(range(50))

    records = await read_partition(clients, topic, 0, 50)
    for i, r in enumerate(records):
        assert r.offset == i
        assert r.key == f"key-{i}".encode()
        assert r.value == f"value-{i}".encode()
        assert r.timestamp == BASE_TS + i
        assert r.timestamp_type == 0
        assert list(r.headers) == [("h1", f"v{i}".encode()), ("h2", b""), ("h1", b"dup")]


async def test_ordering_within_partitions_by_key(bootstrap: str, clients: Any) -> None:
    topic = unique_topic("aio-order")
    await create_topic(bootstrap, topic, partitions=3)
    keys = [f"k{j}".encode() for j in range(6)]
    p = await clients.producer(acks="all")
    metas = await produce_all(
        p, topic, ({"key": keys[i % 6], "value": str(i).encode()} for i in range(600))
    )
    counts: dict[int, int] = {}
    for m in metas:
        counts[m.partition] = counts.get(m.partition, 0) + 1
    assert len(counts) > 1, "6 keys over 3 partitions should use more than one"
    for partition, count in counts.items():
        records = await read_partition(clients, topic, partition, count)
        assert [r.offset for r in records] == list(range(count))
        by_key: dict[bytes, list[int]] = {}
        for r in records:
            by_key.setdefault(r.key, []).append(int(r.value))
        for key, values in by_key.items():
            assert values == [i for i in range(600) if keys[i % 6] == key]


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
async def test_compression_codecs(bootstrap: str, clients: Any, codec: str) -> None:
    topic = unique_topic(f"aio-{codec}")
    await create_topic(bootstrap, topic)
    values = [(f"{codec}-{i}-" * 20).encode() for i in range(500)]
    p = await clients.producer(compression_type=codec, linger_ms=50, acks="all")
    await produce_all(p, topic, ({"partition": 0, "value": v} for v in values))
    records = await read_partition(clients, topic, 0, len(values))
    assert [r.value for r in records] == values


async def test_ten_thousand_small_messages(bootstrap: str, clients: Any) -> None:
    topic = unique_topic("aio-10k")
    await create_topic(bootstrap, topic)
    n = 10_000
    p = await clients.producer(acks="all", linger_ms=20)
    metas = await produce_all(
        p, topic, ({"partition": 0, "value": i.to_bytes(4, "big")} for i in range(n))
    )
    assert [m.offset for m in metas] == list(range(n))
    records = await read_partition(clients, topic, 0, n)
    assert [int.from_bytes(r.value, "big") for r in records] == list(range(n))


async def test_one_mib_messages(bootstrap: str, clients: Any) -> None:
    topic = unique_topic("aio-1mib")
    await create_topic(bootstrap, topic)
    values = [bytes([97 + i]) * MIB for i in range(4)]
    p = await clients.producer(acks="all", max_request_size=3 * MIB)
    await produce_all(p, topic, ({"partition": 0, "value": v} for v in values))
    records = await read_partition(clients, topic, 0, len(values))
    assert [r.value for r in records] == values


async def test_log_append_time_topic(bootstrap: str, clients: Any) -> None:
    topic = unique_topic("aio-lat")
    await create_topic(bootstrap, topic, 1, **{"message.timestamp.type": "LogAppendTime"})
    before = int(time.time() * 1000)
    p = await clients.producer(acks="all")
    metas = await produce_all(
        p, topic, ({"partition": 0, "value": b"x%d" % i, "timestamp_ms": BASE_TS} for i in range(5))
    )
    after = int(time.time() * 1000)
    for m in metas:
        assert m.timestamp_type == 1 and before - 1000 <= m.timestamp <= after + 1000, m
    for r in await read_partition(clients, topic, 0, 5):
        assert r.timestamp_type == 1
        assert before - 1000 <= r.timestamp <= after + 1000, r


async def test_message_too_large_is_rejected_and_partition_stays_usable(
    bootstrap: str, clients: Any
) -> None:
    topic = unique_topic("aio-too-large")
    await create_topic(bootstrap, topic, 1, **{"max.message.bytes": "2000"})
    p = await clients.producer(acks="all")
    with pytest.raises(MessageSizeTooLargeError):
        await bounded(p.send_and_wait(topic, b"z" * 10_000, partition=0))
    ok = await bounded(p.send_and_wait(topic, b"small", partition=0))
    assert ok.offset == 0
    assert [r.value for r in await read_partition(clients, topic, 0, 1)] == [b"small"]


@pytest.mark.parametrize(("reset", "first_offset"), [("earliest", 0), ("latest", 5)])
async def test_out_of_range_offset_is_reset(
    bootstrap: str, clients: Any, reset: str, first_offset: int
) -> None:
    topic = unique_topic(f"aio-oor-{reset}")
    await create_topic(bootstrap, topic)
    p = await clients.producer(acks="all")
    await produce_all(p, topic, ({"partition": 0, "value": b"v%d" % i} for i in range(5)))
    c = await clients.consumer(auto_offset_reset=reset)
    tp = TopicPartition(topic, 0)
    c.assign([tp])
    c.seek(tp, 1000)
    if reset == "latest":
        deadline = time.monotonic() + 10
        while await bounded(c.position(tp)) != 5:
            assert time.monotonic() < deadline, "no reset to the end within 10 s"
            batches = await bounded(c.getmany(timeout_ms=200))
            assert not any(batches.values()), "records before the append"
        await produce_all(p, topic, [{"partition": 0, "value": b"v5"}])
    (first,) = await consume_n(c, 1)
    assert first.offset == first_offset


# ----------------------------------------------------------------------------- offsets
async def test_seek_beginning_end_and_offsets(bootstrap: str, clients: Any) -> None:
    topic = unique_topic("aio-seek")
    await create_topic(bootstrap, topic)
    p = await clients.producer(acks="all")
    await produce_all(p, topic, ({"partition": 0, "value": b"old%d" % i} for i in range(10)))

    c = await clients.consumer()
    tp = TopicPartition(topic, 0)
    assert await bounded(c.beginning_offsets([tp])) == {tp: 0}
    assert await bounded(c.end_offsets([tp])) == {tp: 10}
    c.assign([tp])
    await bounded(c.seek_to_end(tp))
    assert await bounded(c.position(tp)) == 10
    await produce_all(p, topic, ({"partition": 0, "value": b"new%d" % i} for i in range(3)))
    assert [r.value for r in await consume_n(c, 3)] == [b"new0", b"new1", b"new2"]

    await bounded(c.seek_to_beginning(tp))
    records = await consume_n(c, 13)
    assert [r.offset for r in records] == list(range(13))
    c.seek(tp, 11)
    assert [r.value for r in await consume_n(c, 2)] == [b"new1", b"new2"]
    assert await bounded(c.end_offsets([tp])) == {tp: 13}


async def test_offsets_for_times(bootstrap: str, clients: Any) -> None:
    topic = unique_topic("aio-times")
    await create_topic(bootstrap, topic)
    p = await clients.producer(acks="all", linger_ms=0)
    for i in range(20):  # one batch per record: exact answers at record granularity
        await bounded(
            p.send_and_wait(topic, b"%d" % i, partition=0, timestamp_ms=BASE_TS + 1000 * i)
        )
    c = await clients.consumer()
    tp = TopicPartition(topic, 0)
    for ts, offset in {BASE_TS - 5000: 0, BASE_TS + 7000: 7, BASE_TS + 7500: 8}.items():
        found = (await bounded(c.offsets_for_times({tp: ts})))[tp]
        assert found is not None and found.offset == offset, (ts, found)
    exact = (await bounded(c.offsets_for_times({tp: BASE_TS + 7000})))[tp]
    assert exact.timestamp == BASE_TS + 7000
    assert (await bounded(c.offsets_for_times({tp: BASE_TS + 999_000})))[tp] is None


# ----------------------------------------------------------------------------- idempotence
async def test_idempotent_producer_forced_retry_no_duplicate(
    broker_factory: Any, clients: Any
) -> None:
    """Lose one Produce response: aiokafka retries the same sequence; one copy kept."""
    with KafkaProxy() as proxy:
        broker: BrokerProcess = broker_factory(
            {"advertised.listeners": f"PLAINTEXT://{proxy.address}"}
        )
        proxy.set_upstream(broker.host, broker.port)
        topic = unique_topic("aio-idem")
        await create_topic(proxy.address, topic)
        p = await clients.producer(
            proxy.address,
            acks="all",
            enable_idempotence=True,
            linger_ms=0,
            retry_backoff_ms=50,
        )
        await produce_all(p, topic, [{"partition": 0, "value": b"warm-up"}])
        proxy.drop_responses(PRODUCE, 1)
        metas = await produce_all(
            p, topic, ({"partition": 0, "value": b"payload-%d" % i} for i in range(5))
        )
        assert proxy.dropped[PRODUCE] == 1, "the fault was never injected"
        assert [m.offset for m in metas] == [1, 2, 3, 4, 5]
        (after,) = await produce_all(p, topic, [{"partition": 0, "value": b"after"}])
        assert after.offset == 6

        records = await read_partition(clients, topic, 0, 7, addr=proxy.address)
        assert [r.value for r in records] == [
            b"warm-up",
            *(b"payload-%d" % i for i in range(5)),
            b"after",
        ]


async def test_duplicate_idempotent_batch_gets_original_offset(
    bootstrap: str, clients: Any
) -> None:
    """Protocol level: the same (pid, epoch, sequence) batch twice is appended once."""
    topic = unique_topic("aio-dup")
    await create_topic(bootstrap, topic)
    async with RawProducer(bootstrap, topic) as raw:
        pid, epoch = await raw.init_producer_id()
        assert pid >= 0 and epoch >= 0
        a = idempotent_batch(pid, epoch, 0, [b"a0", b"a1", b"a2"])
        b = idempotent_batch(pid, epoch, 3, [b"b0", b"b1"])
        assert await raw.produce_batch(a) == (NONE, 0)
        assert await raw.produce_batch(b) == (NONE, 3)
        assert await raw.produce_batch(a) == (NONE, 0), "retry of an older batch: original offset"
        assert await raw.produce_batch(b) == (NONE, 3), "retry of the last batch: original offset"
        error, _ = await raw.produce(pid, epoch, 9, [b"gap"])
        assert error == OUT_OF_ORDER_SEQUENCE_NUMBER
        assert await raw.produce(pid, epoch, 5, [b"c0"]) == (NONE, 5)

    records = await read_partition(clients, topic, 0, 6)
    assert [r.value for r in records] == [b"a0", b"a1", b"a2", b"b0", b"b1", b"c0"]


async def test_idempotent_producer_epochs(bootstrap: str, clients: Any) -> None:
    """Kafka's epoch rules for an idempotent producer (ProducerAppendInfo): a higher epoch
    starts again at sequence 0 (the Java client bumps the epoch locally after a failed
    batch), an older epoch is INVALID_PRODUCER_EPOCH, and a higher epoch that does not
    start at 0 is OUT_OF_ORDER_SEQUENCE_NUMBER."""
    topic = unique_topic("aio-epochs")
    await create_topic(bootstrap, topic)
    async with RawProducer(bootstrap, topic) as raw:
        pid, epoch = await raw.init_producer_id()
        assert await raw.produce(pid, epoch, 0, [b"e0-0", b"e0-1"]) == (NONE, 0)
        assert await raw.produce(pid, epoch + 1, 0, [b"e1-0"]) == (NONE, 2)
        error, _ = await raw.produce(pid, epoch, 2, [b"stale"])
        assert error == INVALID_PRODUCER_EPOCH
        error, _ = await raw.produce(pid, epoch + 2, 5, [b"bad"])
        assert error == OUT_OF_ORDER_SEQUENCE_NUMBER
        assert await raw.produce(pid, epoch + 1, 1, [b"e1-1"]) == (NONE, 3)
        assert await raw.produce(pid, epoch + 1, 1, [b"e1-1"]) == (NONE, 3), "duplicate"
        # A producer id with no state here (e.g. expired by retention) is accepted at any
        # sequence, as Kafka does, and is then held to it.
        stranger = (1 << 40) + 12345
        assert await raw.produce(stranger, 0, 7, [b"s7"]) == (NONE, 4)
        error, _ = await raw.produce(stranger, 0, 9, [b"s9"])
        assert error == OUT_OF_ORDER_SEQUENCE_NUMBER

    records = await read_partition(clients, topic, 0, 5)
    assert [r.value for r in records] == [b"e0-0", b"e0-1", b"e1-0", b"e1-1", b"s7"]
