"""Topic administration with confluent-kafka's AdminClient (librdkafka) and kcat -L.

Against a real broker subprocess: create/list/delete topics, create partitions, delete
records, topic configs altered (AlterConfigs and IncrementalAlterConfigs) and described
(values and sources), validate_only, error cases, and topics with their configs surviving
a clean restart and a kill -9.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from tests.support.broker import BrokerProcess
from tests.support.fixtures import unique_topic

TIMEOUT = 20  # seconds for any single admin future

# AlterConfigs (non-incremental) is deprecated in the client but still an API we serve.
pytestmark = pytest.mark.filterwarnings("ignore:alter_configs has been deprecated")

BROKER_OVERRIDES = {"log.retention.ms": "3600000"}  # a STATIC_BROKER_CONFIG to describe


@pytest.fixture
def admin(bootstrap: str) -> Iterator[AdminClient]:
    yield AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 10_000})


def _create(admin: AdminClient, *topics: NewTopic, validate_only: bool = False) -> dict:
    futures = admin.create_topics(list(topics), validate_only=validate_only,
                                  request_timeout=TIMEOUT)
    out = {}
    for name, future in futures.items():
        try:
            out[name] = future.result(TIMEOUT)
        except KafkaException as exc:
            out[name] = exc.args[0]
    return out


def _topics(admin: AdminClient) -> dict:
    return admin.list_topics(timeout=TIMEOUT).topics


def _describe(admin: AdminClient, topic: str) -> dict:
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return admin.describe_configs([resource], request_timeout=TIMEOUT)[resource].result(TIMEOUT)


def _produce(bootstrap: str, topic: str, count: int, partition: int = 0) -> None:
    """Produce keyed records (compacted topics refuse keyless ones) and check every ack."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1})
    errors: list[KafkaError] = []

    def delivered(err: KafkaError | None, msg: object) -> None:
        if err is not None:
            errors.append(err)

    for i in range(count):
        producer.produce(topic, f"value-{i}".encode(), key=f"key-{i}".encode(),
                         partition=partition, on_delivery=delivered)
    assert producer.flush(TIMEOUT) == 0
    assert errors == []


def test_create_list_delete(admin: AdminClient, bootstrap: str) -> None:
    name = unique_topic("admin-cl")
    assert _create(admin, NewTopic(name, num_partitions=3, replication_factor=1)) == {name: None}
    listed = _topics(admin)
    assert name in listed and len(listed[name].partitions) == 3
    assert all(p.leader == 1 and p.replicas == [1] for p in listed[name].partitions.values())
    kcat = subprocess.run(["kcat", "-L", "-b", bootstrap, "-t", name], capture_output=True,
                          text=True, timeout=TIMEOUT, check=True)
    assert f'topic "{name}" with 3 partitions' in kcat.stdout
    futures = admin.delete_topics([name], request_timeout=TIMEOUT)
    assert futures[name].result(TIMEOUT) is None
    assert name not in _topics(admin)
    with pytest.raises(KafkaException) as exc:
        admin.delete_topics([name], request_timeout=TIMEOUT)[name].result(TIMEOUT)
    assert exc.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_defaults_when_partitions_and_replication_not_given(admin: AdminClient) -> None:
    name = unique_topic("admin-def")
    assert _create(admin, NewTopic(name)) == {name: None}  # -1 / -1 → broker defaults
    assert len(_topics(admin)[name].partitions) == 1


def test_create_errors(admin: AdminClient) -> None:
    existing = unique_topic("admin-exists")
    _create(admin, NewTopic(existing, 1, 1))
    results = _create(
        admin,
        NewTopic(existing, 1, 1),
        NewTopic("bad name!", 1, 1),
        NewTopic(unique_topic("admin-rf"), 1, 3),
        NewTopic(unique_topic("admin-cfg"), 1, 1, config={"retention.ms": "forever"}),
        NewTopic(unique_topic("admin-key"), 1, 1, config={"no.such.key": "1"}),
        NewTopic(unique_topic("admin-parts"), 0, 1),
    )
    codes = {name: err.code() for name, err in results.items()}
    assert codes[existing] == KafkaError.TOPIC_ALREADY_EXISTS
    assert codes["bad name!"] == KafkaError.TOPIC_EXCEPTION
    by_prefix = {name.rsplit("-", 1)[0]: code for name, code in codes.items()}
    assert by_prefix["admin-rf"] == KafkaError.INVALID_REPLICATION_FACTOR
    assert by_prefix["admin-cfg"] == KafkaError.INVALID_CONFIG
    assert by_prefix["admin-key"] == KafkaError.INVALID_CONFIG
    assert by_prefix["admin-parts"] == KafkaError.INVALID_PARTITIONS
    message = next(e for n, e in results.items() if n.startswith("admin-cfg")).str()
    assert "retention.ms" in message
    # nothing half-created
    assert not [t for t in _topics(admin) if t.startswith(("admin-rf", "admin-cfg", "bad"))]


def test_validate_only_creates_nothing(admin: AdminClient) -> None:
    name = unique_topic("admin-vo")
    assert _create(admin, NewTopic(name, 2, 1), validate_only=True) == {name: None}
    assert name not in _topics(admin)
    bad = _create(admin, NewTopic(name, 2, 5), validate_only=True)
    assert bad[name].code() == KafkaError.INVALID_REPLICATION_FACTOR


def test_create_partitions(admin: AdminClient, bootstrap: str) -> None:
    name = unique_topic("admin-cp")
    _create(admin, NewTopic(name, 1, 1))
    futures = admin.create_partitions([NewPartitions(name, 4)], request_timeout=TIMEOUT)
    assert futures[name].result(TIMEOUT) is None
    assert len(_topics(admin)[name].partitions) == 4
    _produce(bootstrap, name, 3, partition=3)  # the new partition takes writes
    futures = admin.create_partitions([NewPartitions(name, 2)], request_timeout=TIMEOUT)
    with pytest.raises(KafkaException) as exc:
        futures[name].result(TIMEOUT)
    assert exc.value.args[0].code() == KafkaError.INVALID_PARTITIONS
    futures = admin.create_partitions([NewPartitions(name, 9)], validate_only=True,
                                      request_timeout=TIMEOUT)
    futures[name].result(TIMEOUT)
    assert len(_topics(admin)[name].partitions) == 4


def test_delete_records(admin: AdminClient, bootstrap: str) -> None:
    name = unique_topic("admin-dr")
    _create(admin, NewTopic(name, 1, 1))
    _produce(bootstrap, name, 10)
    tp = TopicPartition(name, 0, 4)
    result = admin.delete_records([tp], request_timeout=TIMEOUT)[tp].result(TIMEOUT)
    assert result.low_watermark == 4
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic("g"),
                         "enable.auto.commit": False})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(name, 0), timeout=TIMEOUT)
        assert (low, high) == (4, 10)
        consumer.assign([TopicPartition(name, 0, OFFSET_BEGINNING)])
        first = None
        deadline = time.monotonic() + TIMEOUT
        while first is None and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                first = msg
        assert first is not None and first.offset() == 4 and first.value() == b"value-4"
    finally:
        consumer.close()
    past = TopicPartition(name, 0, 11)  # beyond the high watermark
    with pytest.raises(KafkaException) as exc:
        admin.delete_records([past], request_timeout=TIMEOUT)[past].result(TIMEOUT)
    assert exc.value.args[0].code() == KafkaError.OFFSET_OUT_OF_RANGE
    everything = TopicPartition(name, 0, -1)  # -1: up to the high watermark
    result = admin.delete_records([everything], request_timeout=TIMEOUT)[everything]
    assert result.result(TIMEOUT).low_watermark == 10


def test_describe_values_and_sources(admin: AdminClient) -> None:
    name = unique_topic("admin-desc")
    _create(admin, NewTopic(name, 1, 1, config={"segment.bytes": "1048576"}))
    configs = _describe(admin, name)
    assert configs["segment.bytes"].value == "1048576"
    assert configs["segment.bytes"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert configs["retention.ms"].value == "3600000"  # log.retention.ms of this broker
    assert configs["retention.ms"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert configs["cleanup.policy"].value == "delete"
    assert configs["cleanup.policy"].source == ConfigSource.DEFAULT_CONFIG.value
    assert configs["max.message.bytes"].value == "1048588"


def test_describe_broker(admin: AdminClient) -> None:
    resource = ConfigResource(ConfigResource.Type.BROKER, "1")
    configs = admin.describe_configs([resource], request_timeout=TIMEOUT)[resource].result(
        TIMEOUT
    )
    assert configs["log.retention.ms"].value == "3600000"
    assert configs["log.retention.ms"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert configs["num.partitions"].value == "1"


def test_incremental_alter(admin: AdminClient, bootstrap: str) -> None:
    name = unique_topic("admin-inc")
    _create(admin, NewTopic(name, 1, 1, config={"retention.ms": "100000"}))
    resource = ConfigResource(
        ConfigResource.Type.TOPIC, name,
        incremental_configs=[
            ConfigEntry("cleanup.policy", "compact",
                        incremental_operation=AlterConfigOpType.APPEND),
            ConfigEntry("max.message.bytes", "2000", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
        ],
    )
    admin.incremental_alter_configs([resource], request_timeout=TIMEOUT)[resource].result(TIMEOUT)
    configs = _describe(admin, name)
    assert configs["cleanup.policy"].value == "delete,compact"
    assert configs["max.message.bytes"].value == "2000"
    assert configs["retention.ms"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    # the new max.message.bytes applies to the live log at once
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0,
                         "message.timeout.ms": 10_000})
    outcome: list[KafkaError | None] = []
    producer.produce(name, b"k" * 100, key=b"k", on_delivery=lambda e, m: outcome.append(e))
    producer.flush(TIMEOUT)  # separate batches: the limit is per batch
    producer.produce(name, b"x" * 5000, key=b"x", on_delivery=lambda e, m: outcome.append(e))
    producer.flush(TIMEOUT)
    assert outcome[0] is None
    assert outcome[1] is not None and outcome[1].code() == KafkaError.MSG_SIZE_TOO_LARGE
    subtract = ConfigResource(
        ConfigResource.Type.TOPIC, name,
        incremental_configs=[ConfigEntry("cleanup.policy", "delete",
                                         incremental_operation=AlterConfigOpType.SUBTRACT)],
    )
    admin.incremental_alter_configs([subtract], request_timeout=TIMEOUT)[subtract].result(TIMEOUT)
    assert _describe(admin, name)["cleanup.policy"].value == "compact"


def test_alter_replaces_overrides_and_validate_only(admin: AdminClient) -> None:
    name = unique_topic("admin-alter")
    _create(admin, NewTopic(name, 1, 1, config={"retention.ms": "100000"}))
    resource = ConfigResource(ConfigResource.Type.TOPIC, name,
                              set_config={"segment.ms": "600000"})
    admin.alter_configs([resource], request_timeout=TIMEOUT)[resource].result(TIMEOUT)
    configs = _describe(admin, name)
    assert configs["segment.ms"].value == "600000"
    assert configs["retention.ms"].source != ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    dry = ConfigResource(ConfigResource.Type.TOPIC, name, set_config={"segment.ms": "1000"})
    admin.alter_configs([dry], validate_only=True, request_timeout=TIMEOUT)[dry].result(TIMEOUT)
    assert _describe(admin, name)["segment.ms"].value == "600000"


def test_alter_errors(admin: AdminClient) -> None:
    name = unique_topic("admin-alterr")
    _create(admin, NewTopic(name, 1, 1))
    cases = [
        (ConfigResource(ConfigResource.Type.TOPIC, name,
                        set_config={"cleanup.policy": "sometimes"}), KafkaError.INVALID_CONFIG),
        (ConfigResource(ConfigResource.Type.TOPIC, unique_topic("missing"),
                        set_config={"retention.ms": "1"}), KafkaError.UNKNOWN_TOPIC_OR_PART),
        (ConfigResource(ConfigResource.Type.BROKER, "1",
                        set_config={"listeners": "PLAINTEXT://127.0.0.1:1"}),
         KafkaError.INVALID_REQUEST),
        (ConfigResource(ConfigResource.Type.BROKER, "1",
                        set_config={"message.max.bytes": "-1"}), KafkaError.INVALID_CONFIG),
    ]
    for resource, code in cases:
        with pytest.raises(KafkaException) as exc:
            admin.alter_configs([resource], request_timeout=TIMEOUT)[resource].result(TIMEOUT)
        assert exc.value.args[0].code() == code, resource
    bad = ConfigResource(
        ConfigResource.Type.TOPIC, name,
        incremental_configs=[ConfigEntry("retention.ms", "1",
                                         incremental_operation=AlterConfigOpType.APPEND)],
    )
    with pytest.raises(KafkaException) as exc:
        admin.incremental_alter_configs([bad], request_timeout=TIMEOUT)[bad].result(TIMEOUT)
    assert exc.value.args[0].code() == KafkaError.INVALID_CONFIG
    assert "retention.ms" in exc.value.args[0].str()


def test_topics_and_configs_survive_clean_restart_and_kill_9(
    fresh_broker: BrokerProcess,
) -> None:
    admin = AdminClient({"bootstrap.servers": fresh_broker.bootstrap})
    keep = unique_topic("admin-keep")
    gone = unique_topic("admin-gone")
    _create(admin, NewTopic(keep, 2, 1, config={"retention.ms": "123456"}),
            NewTopic(gone, 1, 1))
    _incremental(admin, ConfigResource.Type.TOPIC, keep,
                 ("cleanup.policy", "compact", AlterConfigOpType.SET))
    admin.create_partitions([NewPartitions(keep, 3)], request_timeout=TIMEOUT)[keep].result(
        TIMEOUT
    )
    admin.delete_topics([gone], request_timeout=TIMEOUT)[gone].result(TIMEOUT)
    _incremental(admin, ConfigResource.Type.BROKER, "1",
                 ("log.segment.bytes", "2097152", AlterConfigOpType.SET))
    _produce(fresh_broker.bootstrap, keep, 5, partition=2)
    topic_id_before = _topic_id(admin, keep)

    fresh_broker.restart(clean=True)

    admin = AdminClient({"bootstrap.servers": fresh_broker.bootstrap})
    topics = _topics(admin)
    assert keep in topics and gone not in topics
    assert len(topics[keep].partitions) == 3
    configs = _describe(admin, keep)
    assert configs["retention.ms"].value == "123456"
    assert configs["cleanup.policy"].value == "compact"
    assert configs["cleanup.policy"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert configs["segment.bytes"].value == "2097152"
    assert configs["segment.bytes"].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    assert _topic_id(admin, keep) == topic_id_before
    assert _watermarks(fresh_broker.bootstrap, keep, 2) == (0, 5)

    # more changes, then kill -9: every acknowledged admin change is on disk
    _incremental(admin, ConfigResource.Type.TOPIC, keep,
                 ("retention.ms", None, AlterConfigOpType.DELETE),
                 ("max.message.bytes", "500000", AlterConfigOpType.SET))
    _incremental(admin, ConfigResource.Type.BROKER, "1",
                 ("log.retention.ms", "654321", AlterConfigOpType.SET))
    other = unique_topic("admin-other")
    _create(admin, NewTopic(other, 4, 1))

    fresh_broker.restart(clean=False)

    admin = AdminClient({"bootstrap.servers": fresh_broker.bootstrap})
    topics = _topics(admin)
    assert len(topics[other].partitions) == 4 and len(topics[keep].partitions) == 3
    configs = _describe(admin, keep)
    assert configs["max.message.bytes"].value == "500000"
    assert configs["retention.ms"].value == "654321"
    assert configs["retention.ms"].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    assert configs["cleanup.policy"].value == "compact"
    assert _watermarks(fresh_broker.bootstrap, keep, 2) == (0, 5)


def _incremental(admin: AdminClient, kind: ConfigResource.Type, name: str,
                 *changes: tuple[str, str | None, AlterConfigOpType]) -> None:
    resource = ConfigResource(kind, name, incremental_configs=[
        ConfigEntry(key, value, incremental_operation=op) for key, value, op in changes])
    admin.incremental_alter_configs([resource], request_timeout=TIMEOUT)[resource].result(
        TIMEOUT
    )


def _watermarks(bootstrap: str, topic: str, partition: int) -> tuple[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic("wm")})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=TIMEOUT)
    finally:
        consumer.close()


def _topic_id(admin: AdminClient, name: str) -> str:
    from confluent_kafka import TopicCollection

    futures = admin.describe_topics(TopicCollection([name]), request_timeout=TIMEOUT)
    return str(futures[name].result(TIMEOUT).topic_id)


def test_dynamic_broker_defaults(admin: AdminClient, bootstrap: str) -> None:
    """A topic default changed at runtime on the broker reaches existing topics at once."""
    name = unique_topic("admin-dyn")
    _create(admin, NewTopic(name, 1, 1))
    _incremental(admin, ConfigResource.Type.BROKER, "1",
                 ("message.max.bytes", "3000", AlterConfigOpType.SET))
    try:
        configs = _describe(admin, name)
        assert configs["max.message.bytes"].value == "3000"
        assert configs["max.message.bytes"].source == (
            ConfigSource.DYNAMIC_BROKER_CONFIG.value
        )
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0,
                             "message.timeout.ms": 10_000})
        outcome: list[KafkaError | None] = []
        producer.produce(name, b"x" * 5000, on_delivery=lambda e, m: outcome.append(e))
        producer.flush(TIMEOUT)
        assert outcome[0] is not None and outcome[0].code() == KafkaError.MSG_SIZE_TOO_LARGE
        node = ConfigResource(ConfigResource.Type.BROKER, "1")
        described = admin.describe_configs([node], request_timeout=TIMEOUT)[node].result(
            TIMEOUT
        )
        assert described["message.max.bytes"].value == "3000"
        assert described["message.max.bytes"].source == (
            ConfigSource.DYNAMIC_BROKER_CONFIG.value
        )
        assert not described["message.max.bytes"].is_read_only
        assert described["listeners"].is_read_only
    finally:  # the module's broker is shared: put the default back
        _incremental(admin, ConfigResource.Type.BROKER, "1",
                     ("message.max.bytes", None, AlterConfigOpType.DELETE))
    assert _describe(admin, name)["max.message.bytes"].value == "1048588"


def test_create_acls_is_refused_security_disabled(admin: AdminClient) -> None:
    """No authorizer, as Kafka without authorizer.class.name (librdkafka)."""
    binding = AclBinding(ResourceType.TOPIC, "orders", ResourcePatternType.LITERAL,
                         "User:alice", "*", AclOperation.READ, AclPermissionType.ALLOW)
    [future] = admin.create_acls([binding]).values()
    with pytest.raises(KafkaException) as err:
        future.result(TIMEOUT)
    assert err.value.args[0].code() == KafkaError.SECURITY_DISABLED
    assert "No Authorizer is configured" in err.value.args[0].str()
