"""Topic administration with aiokafka 0.14's AIOKafkaAdminClient (non-flexible versions)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic, RecordsToDelete
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import InvalidPartitionsError

from tests.support.fixtures import unique_topic

pytestmark = pytest.mark.timeout(60)

TIMEOUT_MS = 20_000
TOPIC_CONFIG = 1  # ConfigSource
DEFAULT_CONFIG = 5


@pytest.fixture
async def admin(bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=TIMEOUT_MS)
    await asyncio.wait_for(client.start(), 20)
    try:
        yield client
    finally:
        await client.close()


def _errors(response: object) -> dict[str, int]:
    return {t[0]: t[1] for t in response.topic_errors}  # type: ignore[attr-defined]


async def _configs(admin: AIOKafkaAdminClient, name: str) -> dict[str, tuple]:
    """name → (value, read_only, config_source) of every config of topic ``name``."""
    [response] = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name)]
    )
    [resource] = response.resources
    error_code, _message, _type, resource_name, entries = resource
    assert (error_code, resource_name) == (0, name)
    return {e[0]: (e[1], e[2], e[3]) for e in entries}


async def test_create_list_delete(admin: AIOKafkaAdminClient) -> None:
    name = unique_topic("aio-cld")
    response = await admin.create_topics(
        [NewTopic(name, num_partitions=2, replication_factor=1,
                  topic_configs={"retention.bytes": "1048576"})]
    )
    assert _errors(response) == {name: 0}
    assert name in await admin.list_topics()
    [topic] = await admin.describe_topics([name])
    assert len(topic["partitions"]) == 2
    configs = await _configs(admin, name)
    assert configs["retention.bytes"] == ("1048576", False, TOPIC_CONFIG)
    assert configs["retention.ms"][2] == DEFAULT_CONFIG
    response = await admin.delete_topics([name])
    assert [tuple(r)[:2] for r in response.topic_error_codes] == [(name, 0)]
    assert name not in await admin.list_topics()


async def test_create_errors_and_validate_only(admin: AIOKafkaAdminClient) -> None:
    good = unique_topic("aio-ok")
    existing = unique_topic("aio-exists")
    await admin.create_topics([NewTopic(existing, 1, 1)])
    response = await admin.create_topics([
        NewTopic(existing, 1, 1),
        NewTopic(unique_topic("aio-rf"), 1, 4),
        NewTopic("..", 1, 1),
        NewTopic(good, 1, 1, topic_configs={"cleanup.policy": "compact"}),
    ], validate_only=True)
    codes = list(_errors(response).values())
    assert codes == [36, 38, 17, 0]  # TOPIC_ALREADY_EXISTS, INVALID_REPLICATION_FACTOR, ...
    assert good not in await admin.list_topics()


async def test_create_partitions(admin: AIOKafkaAdminClient) -> None:
    name = unique_topic("aio-cp")
    await admin.create_topics([NewTopic(name, 1, 1)])
    await admin.create_partitions({name: NewPartitions(2)})
    [topic] = await admin.describe_topics([name])
    assert len(topic["partitions"]) == 2
    with pytest.raises(InvalidPartitionsError):
        await admin.create_partitions({name: NewPartitions(1)})


async def test_alter_configs(admin: AIOKafkaAdminClient) -> None:
    name = unique_topic("aio-alter")
    await admin.create_topics([NewTopic(name, 1, 1, topic_configs={"retention.ms": "1000"})])
    [response] = await admin.alter_configs([ConfigResource(
        ConfigResourceType.TOPIC, name,
        configs={"message.timestamp.type": "LogAppendTime", "max.message.bytes": "500000"},
    )])
    assert [tuple(r)[:2] for r in response.resources] == [(0, None)]
    configs = await _configs(admin, name)
    assert configs["message.timestamp.type"][::2] == ("LogAppendTime", TOPIC_CONFIG)
    assert configs["max.message.bytes"][0] == "500000"
    assert configs["retention.ms"][2] == DEFAULT_CONFIG  # legacy Alter replaces the set
    [response] = await admin.alter_configs([ConfigResource(
        ConfigResourceType.TOPIC, name, configs={"retention.ms": "-5"})])
    error_code, message = tuple(response.resources[0])[:2]
    assert error_code == 40 and "retention.ms" in message  # INVALID_CONFIG


async def test_log_append_time_applies_to_live_log(
    admin: AIOKafkaAdminClient, bootstrap: str
) -> None:
    name = unique_topic("aio-lat")
    await admin.create_topics([NewTopic(name, 1, 1)])
    await admin.alter_configs([ConfigResource(
        ConfigResourceType.TOPIC, name, configs={"message.timestamp.type": "LogAppendTime"})])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        metadata = await producer.send_and_wait(name, b"v", timestamp_ms=1_000, partition=0)
    finally:
        await producer.stop()
    assert metadata.timestamp > 1_000_000  # the broker's clock, not the producer's 1000 ms


async def test_delete_records(admin: AIOKafkaAdminClient, bootstrap: str) -> None:
    name = unique_topic("aio-dr")
    await admin.create_topics([NewTopic(name, 1, 1)])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for i in range(5):
            await producer.send_and_wait(name, f"v{i}".encode(), partition=0)
    finally:
        await producer.stop()
    tp = TopicPartition(name, 0)
    result = await admin.delete_records({tp: RecordsToDelete(before_offset=3)})
    assert result == {tp: 3}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        assert (await consumer.beginning_offsets([tp]))[tp] == 3
    finally:
        await consumer.stop()


async def test_describe_with_synonyms_and_broker(admin: AIOKafkaAdminClient) -> None:
    name = unique_topic("aio-syn")
    await admin.create_topics([NewTopic(name, 1, 1, topic_configs={"segment.ms": "600000"})])
    [response] = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name, {"segment.ms": None})],
        include_synonyms=True,
    )
    [(error_code, _, _, _, entries)] = [tuple(r) for r in response.resources]
    assert error_code == 0
    [entry] = entries
    name_, value, _read_only, source, _sensitive, synonyms = entry
    assert (name_, value, source) == ("segment.ms", "600000", TOPIC_CONFIG)
    assert [(s[0], s[2]) for s in synonyms] == [
        ("segment.ms", TOPIC_CONFIG), ("log.roll.ms", DEFAULT_CONFIG)
    ]
    [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, "1")])
    [(error_code, _, _, resource_name, entries)] = [tuple(r) for r in response.resources]
    assert (error_code, resource_name) == (0, "1")
    assert {e[0]: e[1] for e in entries}["num.partitions"] == "1"
