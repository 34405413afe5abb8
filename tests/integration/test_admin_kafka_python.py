"""Topic administration with kafka-python 3.x's KafkaAdminClient against a real broker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import kafka.errors as Errors
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    AlterConfigOp,
    ConfigResource,
    ConfigResourceType,
    KafkaAdminClient,
    NewTopic,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
)

from tests.support.fixtures import unique_topic

TIMEOUT_MS = 20_000


@pytest.fixture
def admin(bootstrap: str) -> Iterator[KafkaAdminClient]:
    client = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=TIMEOUT_MS,
                              client_id="strom-admin-test")
    try:
        yield client
    finally:
        client.close()


def _topic_configs(admin: KafkaAdminClient, name: str, config_filter: str = "all") -> dict:
    described = admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name)], config_filter=config_filter
    )
    return described["topic"][name]


def _codes(result: dict) -> dict[str, int]:
    return {t["name"]: t["error_code"] for t in result["topics"]}


def test_create_list_delete(admin: KafkaAdminClient) -> None:
    name = unique_topic("kp-cld")
    result = admin.create_topics(
        {name: {"num_partitions": 2, "replication_factor": 1,
                "configs": {"retention.ms": "86400000"}}}
    )
    assert _codes(result) == {name: 0}
    topic = result["topics"][0]
    assert (topic["num_partitions"], topic["replication_factor"]) == (2, 1)
    assert topic["configs"]["retention.ms"]["value"] == "86400000"
    assert name in admin.list_topics()
    described = {t["name"]: t for t in admin.describe_topics([name])}
    assert len(described[name]["partitions"]) == 2
    deleted = admin.delete_topics([name])
    assert [(r["name"], r["error_code"]) for r in deleted["topics"]] == [(name, 0)]
    assert name not in admin.list_topics()


def test_create_errors(admin: KafkaAdminClient) -> None:
    existing = unique_topic("kp-exists")
    admin.create_topics({existing: {"num_partitions": 1}})
    with pytest.raises(Errors.TopicAlreadyExistsError):
        admin.create_topics({existing: {"num_partitions": 1}})
    rf = unique_topic("kp-rf")
    cfg = unique_topic("kp-cfg")
    result = admin.create_topics(
        {
            rf: {"num_partitions": 1, "replication_factor": 2},
            cfg: {"num_partitions": 1, "configs": {"segment.bytes": "tiny"}},
            "illegal/name": {"num_partitions": 1},
        },
        raise_errors=False,
    )
    assert _codes(result) == {
        rf: Errors.InvalidReplicationFactorError.errno,
        cfg: Errors.InvalidConfigurationError.errno,
        "illegal/name": Errors.InvalidTopicError.errno,
    }
    assert not {rf, cfg} & set(admin.list_topics())


def test_validate_only(admin: KafkaAdminClient) -> None:
    name = unique_topic("kp-vo")
    result = admin.create_topics({name: {"num_partitions": 3}}, validate_only=True)
    assert _codes(result) == {name: 0}
    assert name not in admin.list_topics()


def test_create_partitions(admin: KafkaAdminClient) -> None:
    name = unique_topic("kp-cp")
    admin.create_topics({name: {"num_partitions": 1}})
    admin.create_partitions({name: 3})
    described = {t["name"]: t for t in admin.describe_topics([name])}
    assert len(described[name]["partitions"]) == 3
    with pytest.raises(Errors.InvalidPartitionsError):
        admin.create_partitions({name: 3})


def test_delete_records(admin: KafkaAdminClient, bootstrap: str) -> None:
    name = unique_topic("kp-dr")
    admin.create_topics({name: {"num_partitions": 1}})
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        for i in range(6):
            producer.send(name, f"v{i}".encode(), partition=0).get(timeout=20)
    finally:
        producer.close(timeout=10)
    tp = TopicPartition(name, 0)
    result = admin.delete_records({tp: 2})
    assert result[tp]["low_watermark"] == 2
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        assert consumer.beginning_offsets([tp], timeout_ms=TIMEOUT_MS)[tp] == 2
    finally:
        consumer.close()


def test_configs_incremental_and_legacy(admin: KafkaAdminClient) -> None:
    name = unique_topic("kp-cfgs")
    admin.create_topics({name: {"num_partitions": 1, "configs": {"retention.ms": "5000"}}})
    # kafka-python picks IncrementalAlterConfigs when the broker advertises it
    result = admin.alter_configs([ConfigResource(
        ConfigResourceType.TOPIC, name,
        configs={"cleanup.policy": (AlterConfigOp.APPEND, "compact"),
                 "segment.ms": "3600000"},
    )])
    assert result == {"topic": {name: "OK"}}
    configs = _topic_configs(admin, name)
    assert configs["cleanup.policy"]["value"] == "delete,compact"
    assert configs["segment.ms"]["value"] == "3600000"
    assert configs["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"
    assert configs["segment.bytes"]["config_source"] == "DEFAULT_CONFIG"
    modified = _topic_configs(admin, name, config_filter="modified")
    assert set(modified) == {"cleanup.policy", "segment.ms", "retention.ms"}
    # legacy AlterConfigs (the client re-sends the other modified keys, as with old brokers)
    result = admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name, configs={"segment.ms": "7200000"})],
        incremental=False,
    )
    assert result == {"topic": {name: "OK"}}
    configs = _topic_configs(admin, name, config_filter="modified")
    assert configs["segment.ms"]["value"] == "7200000"
    assert configs["retention.ms"]["value"] == "5000"
    admin.reset_configs([ConfigResource(ConfigResourceType.TOPIC, name,
                                        configs=["retention.ms"])])
    assert "retention.ms" not in _topic_configs(admin, name, config_filter="modified")


def test_config_errors_and_validate_only(admin: KafkaAdminClient) -> None:
    name = unique_topic("kp-cfgerr")
    admin.create_topics({name: {"num_partitions": 1}})
    result = admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name,
                        configs={"message.timestamp.type": "Sometime"})]
    )
    assert "InvalidConfigurationError" in result["topic"][name]
    assert "message.timestamp.type" in result["topic"][name]
    result = admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name, configs={"retention.ms": "1"})],
        validate_only=True,
    )
    assert result == {"topic": {name: "OK"}}
    assert "retention.ms" not in _topic_configs(admin, name, config_filter="modified")


def test_describe_broker_configs(admin: KafkaAdminClient) -> None:
    described = admin.describe_configs(
        [ConfigResource(ConfigResourceType.BROKER, "1")], config_filter="all"
    )["broker"]["1"]
    assert described["num.partitions"]["value"] == "1"
    assert described["num.partitions"]["config_source"] == "STATIC_BROKER_CONFIG"
    assert described["log.segment.bytes"]["config_source"] == "DEFAULT_CONFIG"


def test_alter_broker_topic_default(admin: KafkaAdminClient) -> None:
    name = unique_topic("kp-brk")
    admin.create_topics({name: {"num_partitions": 1}})
    broker = ConfigResource(ConfigResourceType.BROKER, "1",
                            configs={"log.retention.ms": "7200000"})
    assert admin.alter_configs([broker]) == {"broker": {"1": "OK"}}
    try:
        configs = _topic_configs(admin, name)
        assert configs["retention.ms"]["value"] == "7200000"
        assert configs["retention.ms"]["config_source"] == "DYNAMIC_BROKER_CONFIG"
        fixed = ConfigResource(ConfigResourceType.BROKER, "1",
                               configs={"log.dirs": "/tmp/elsewhere"})
        with pytest.raises(ValueError, match="log.dirs"):  # not dynamic: client refuses
            admin.alter_configs([fixed])
        result = admin.alter_configs([fixed], raise_on_unknown=False)
        assert "InvalidRequestError" in result["broker"]["1"]
    finally:
        admin.reset_configs([ConfigResource(ConfigResourceType.BROKER, "1",
                                            configs=["log.retention.ms"])])
    assert _topic_configs(admin, name)["retention.ms"]["config_source"] == "DEFAULT_CONFIG"


def test_delete_topic_by_id(admin: KafkaAdminClient) -> None:
    name = unique_topic("kp-byid")
    result = admin.create_topics({name: {"num_partitions": 1}})
    topic_id = uuid.UUID(str(result["topics"][0]["topic_id"]))
    described = {t["name"]: t for t in admin.describe_topics([name])}
    assert uuid.UUID(str(described[name]["topic_id"])) == topic_id  # Metadata agrees
    assert topic_id.int != 0
    deleted = admin.delete_topics([topic_id])
    assert [(r["name"], r["error_code"]) for r in deleted["topics"]] == [(name, 0)]
    assert name not in admin.list_topics()
    missing = admin.delete_topics([uuid.uuid4()], raise_errors=False)
    assert [r["error_code"] for r in missing["topics"]] == [Errors.UnknownTopicIdError.errno]


def test_manual_replica_assignment(admin: KafkaAdminClient) -> None:
    name = unique_topic("kp-assign")
    result = admin.create_topics({name: {"assignments": {0: [1], 1: [1]}}})
    assert _codes(result) == {name: 0}
    described = {t["name"]: t for t in admin.describe_topics([name])}
    assert len(described[name]["partitions"]) == 2
    other = unique_topic("kp-assign-bad")
    result = admin.create_topics({other: {"assignments": {0: [2]}}}, raise_errors=False)
    assert _codes(result) == {other: Errors.InvalidReplicationAssignmentError.errno}
    admin.create_partitions({name: {"count": 3, "assignments": [[1]]}})
    described = {t["name"]: t for t in admin.describe_topics([name])}
    assert len(described[name]["partitions"]) == 3


def test_describe_log_dirs_reports_what_the_broker_stores(
        admin: KafkaAdminClient, bootstrap: str) -> None:
    topic = unique_topic("logdirs")
    admin.create_topics([NewTopic(topic, 2, 1)])
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for _ in range(5):
        producer.send(topic, b"v" * 1000, partition=1)
    producer.flush(TIMEOUT_MS / 1000)
    producer.close()

    [everything] = admin.describe_log_dirs()
    assert everything["broker"] == 1
    [log_dir] = everything["log_dirs"]
    assert log_dir["error_code"] == 0 and log_dir["log_dir"].startswith("/")
    assert 0 < log_dir["usable_bytes"] <= log_dir["total_bytes"]
    sizes = {(t["name"], p["partition_index"]): p for t in log_dir["topics"]
             for p in t["partitions"]}
    assert sizes[(topic, 0)]["partition_size"] == 0
    assert sizes[(topic, 1)]["partition_size"] > 5000  # five records of 1000 bytes
    assert all(p["offset_lag"] == 0 and not p["is_future_key"] for p in sizes.values())

    [only] = admin.describe_log_dirs({topic: [1], "no-such-topic": [0]})
    assert [(t["name"], [p["partition_index"] for p in t["partitions"]])
            for t in only["log_dirs"][0]["topics"]] == [(topic, [1])]


def test_acl_apis_answer_security_disabled_as_kafka_without_an_authorizer(
        admin: KafkaAdminClient) -> None:
    any_topic = ACLFilter(
        principal=None, host="*", operation=ACLOperation.ANY,
        permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(ResourceType.TOPIC, None,
                                               ACLResourcePatternType.ANY))
    with pytest.raises(Errors.SecurityDisabledError, match="No Authorizer is configured"):
        admin.describe_acls(any_topic)
    created = admin.create_acls([ACL("User:alice", "*", ACLOperation.READ,
                                     ACLPermissionType.ALLOW,
                                     ResourcePattern(ResourceType.TOPIC, "orders"))])
    assert created["succeeded"] == [] and created["failed"] == [Errors.SecurityDisabledError]
    [(_, matching, error)] = admin.delete_acls([any_topic])
    assert matching == [] and error is Errors.SecurityDisabledError
