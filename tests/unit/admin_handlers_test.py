"""Admin handlers' answers, for every version they advertise, encoded and decoded with kio,
wired as on a lone node: topic changes are answered by the controller (its
StagingRegistry, committed to the image), reads, DeleteRecords and BROKER resources by the
broker's own ClusterTopicRegistry."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from admin_support import MemoryPartition, OneNodeCluster, RecordingLogs
from kio.schema.errors import ErrorCode

from broker.admin.handlers_configs import (
    answer_alter_configs,
    answer_describe_configs,
    answer_incremental_alter_configs,
)
from broker.admin.handlers_records import answer_delete_records
from broker.admin.handlers_topics import (
    answer_create_partitions,
    answer_create_topics,
    answer_delete_topics,
)
from broker.cluster.registry import ClusterTopicRegistry
from broker.config import load_config
from broker.topics import ConfigSource
from protocol.build import build
from protocol.codec import (
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    request_type,
    response_type,
)
from protocol.headers import parse_request_header

NODE = 1


def _wire_request(api_key: int, version: int, body: dict[str, Any]) -> Any:
    """Build the request of that version, put it on the wire and read it back."""
    body_entity = build(request_type(api_key, version), body)
    frame = encode_request(api_key, version, 7, "admin-test", body_entity)
    header = parse_request_header(frame[4:])
    return decode_request(api_key, version, frame[4:], header.body_offset)


def _wire_response(api_key: int, version: int, answer: dict[str, Any]) -> Any:
    frame = encode_response(api_key, version, 7, build(response_type(api_key, version), answer))
    correlation_id, body = decode_response(api_key, version, frame[4:])
    assert correlation_id == 7
    return body


@pytest.fixture
def cluster(tmp_path: Path) -> OneNodeCluster:
    return OneNodeCluster(tmp_path, num_partitions="2")


def _create(version: int, topics: list[dict[str, Any]], validate_only: bool = False) -> dict:
    base = {"num_partitions": -1, "replication_factor": -1, "assignments": [], "configs": []}
    return {"topics": [{**base, **t} for t in topics], "timeout": 1000,
            "validate_only": validate_only}


@pytest.mark.parametrize("version", range(2, 8))
def test_create_topics_every_version(cluster: OneNodeCluster, version: int) -> None:
    request = _wire_request(19, version, _create(version, [
        {"name": "ok", "configs": [{"name": "retention.ms", "value": "1000"}]},
        {"name": "bad name"},
        {"name": "rf", "replication_factor": 3},
        {"name": "cfg", "configs": [{"name": "retention.ms", "value": "soon"}]},
        {"name": "dup"}, {"name": "dup"},
    ]))
    response = _wire_response(19, version, cluster.decide(
        lambda r: answer_create_topics(r, request, version)))
    codes = [t.error_code for t in response.topics]
    assert codes == [
        ErrorCode.none, ErrorCode.invalid_topic_exception, ErrorCode.invalid_replication_factor,
        ErrorCode.invalid_config, ErrorCode.invalid_request, ErrorCode.invalid_request,
    ]
    assert "soon" in response.topics[3].error_message
    assert cluster.broker.names() == ["ok"]
    ok = response.topics[0]
    if version >= 5:
        assert (ok.num_partitions, ok.replication_factor) == (2, 1)
        configs = {c.name: c for c in ok.configs}
        assert configs["retention.ms"].value == "1000"
        assert configs["retention.ms"].config_source == ConfigSource.TOPIC_CONFIG
        assert configs["segment.bytes"].config_source == ConfigSource.DEFAULT_CONFIG
    if version >= 7:
        assert ok.topic_id == cluster.broker.get("ok").topic_id  # type: ignore[union-attr]
    again = _wire_request(19, version, _create(version, [{"name": "ok"}]))
    response = _wire_response(19, version, cluster.decide(
        lambda r: answer_create_topics(r, again, version)))
    assert response.topics[0].error_code == ErrorCode.topic_already_exists


def test_create_topics_validate_only(cluster: OneNodeCluster) -> None:
    request = _wire_request(19, 7, _create(7, [{"name": "v", "num_partitions": 4}], True))
    response = _wire_response(19, 7, cluster.decide(
        lambda r: answer_create_topics(r, request, 7)))
    assert response.topics[0].error_code == ErrorCode.none
    assert response.topics[0].num_partitions == 4
    assert cluster.broker.get("v") is None


@pytest.mark.parametrize("version", range(1, 7))
def test_delete_topics_every_version(cluster: OneNodeCluster, version: int) -> None:
    cluster.create_topic("a", 1)
    cluster.create_topic("b", 1)
    if version >= 6:
        body = {"topics": [{"name": "a", "topic_id": uuid.UUID(int=0)},
                           {"name": None, "topic_id": cluster.broker.get("b").topic_id},  # type: ignore[union-attr]
                           {"name": "missing", "topic_id": uuid.UUID(int=0)},
                           {"name": None, "topic_id": uuid.uuid4()}]}
    else:
        body = {"topic_names": ["a", "b", "missing"]}
    request = _wire_request(20, version, {**body, "timeout": 1000})
    response = _wire_response(20, version, cluster.decide(
        lambda r: answer_delete_topics(r, request, version)))
    codes = [r.error_code for r in response.responses]
    expected = [ErrorCode.none, ErrorCode.none, ErrorCode.unknown_topic_or_partition]
    if version >= 6:
        expected.append(ErrorCode.unknown_topic_id)
        assert response.responses[1].name == "b"
    assert codes == expected
    assert cluster.broker.names() == []


@pytest.mark.parametrize("version", range(0, 4))
def test_create_partitions_every_version(cluster: OneNodeCluster, version: int) -> None:
    cluster.create_topic("p", 1)
    request = _wire_request(37, version, {
        "topics": [{"name": "p", "count": 3, "assignments": None},
                   {"name": "missing", "count": 3}],
        "timeout": 1000, "validate_only": False,
    })
    response = _wire_response(37, version, cluster.decide(
        lambda r: answer_create_partitions(r, request, version)))
    assert [r.error_code for r in response.results] == [
        ErrorCode.none, ErrorCode.unknown_topic_or_partition
    ]
    assert cluster.broker.get("p").partitions == 3  # type: ignore[union-attr]
    shrink = _wire_request(37, version, {
        "topics": [{"name": "p", "count": 2}], "timeout": 1000,
        "validate_only": False,
    })
    response = _wire_response(37, version, cluster.decide(
        lambda r: answer_create_partitions(r, shrink, version)))
    assert response.results[0].error_code == ErrorCode.invalid_partitions
    assert "higher than the requested 2" in response.results[0].error_message


class _Logs(RecordingLogs):
    def __init__(self) -> None:
        super().__init__()
        self.parts = {("r", 0): MemoryPartition(0, 100), ("r", 1): MemoryPartition(10, 10)}

    def get(self, topic: str, partition: int) -> Any:
        return self.parts.get((topic, partition))


@pytest.mark.parametrize("version", range(0, 3))
def test_delete_records_every_version(cluster: OneNodeCluster, version: int) -> None:
    cluster.create_topic("r", 2)
    logs = _Logs()
    parts = [(0, 50), (0, 20), (0, 101), (1, -1), (2, 5)]
    request = _wire_request(21, version, {
        "topics": [{"name": "r", "partitions": [
            {"partition_index": p, "offset": o} for p, o in parts]},
            {"name": "nope", "partitions": [{"partition_index": 0, "offset": 1}]}],
        "timeout": 1000,
    })
    response = _wire_response(21, version,
                              answer_delete_records(cluster.broker, logs, request, version))
    got = [(p.error_code, p.low_watermark) for p in response.topics[0].partitions]
    assert got == [
        (ErrorCode.none, 50), (ErrorCode.none, 50), (ErrorCode.offset_out_of_range, -1),
        (ErrorCode.none, 10), (ErrorCode.unknown_topic_or_partition, -1),
    ]
    assert response.topics[1].partitions[0].error_code == ErrorCode.unknown_topic_or_partition


@pytest.mark.parametrize("version", range(1, 5))
def test_describe_configs_every_version(cluster: OneNodeCluster, version: int) -> None:
    cluster.create_topic("d", 1, configs={"retention.ms": "5000"})
    config, _ = load_config(overrides={"log.segment.bytes": "2097152", "node.id": str(NODE)},
                            environ={})
    body: dict[str, Any] = {
        "resources": [
            {"resource_type": 2, "resource_name": "d", "configuration_keys": None},
            {"resource_type": 2, "resource_name": "d",
             "configuration_keys": ["retention.ms", "cleanup.policy"]},
            {"resource_type": 2, "resource_name": "missing"},
            {"resource_type": 4, "resource_name": str(NODE)},
            {"resource_type": 4, "resource_name": "99"},
            {"resource_type": 8, "resource_name": str(NODE)},
        ],
        "include_synonyms": True, "include_documentation": True,
    }
    request = _wire_request(32, version, body)
    answer = answer_describe_configs(cluster.broker, config, NODE, request, version)
    response = _wire_response(32, version, answer)
    codes = [r.error_code for r in response.results]
    assert codes == [ErrorCode.none, ErrorCode.none, ErrorCode.unknown_topic_or_partition,
                     ErrorCode.none, ErrorCode.invalid_request, ErrorCode.invalid_request]
    every = {c.name: c for c in response.results[0].configs}
    assert every["retention.ms"].value == "5000"
    assert every["retention.ms"].config_source == ConfigSource.TOPIC_CONFIG
    assert every["retention.ms"].synonyms[0].name == "retention.ms"
    assert [c.name for c in response.results[1].configs] == ["retention.ms", "cleanup.policy"]
    broker = {c.name: c for c in response.results[3].configs}
    assert broker["log.segment.bytes"].value == "2097152"
    assert broker["log.segment.bytes"].config_source == ConfigSource.STATIC_BROKER_CONFIG
    assert broker["num.partitions"].config_source == ConfigSource.DEFAULT_CONFIG
    assert not broker["log.segment.bytes"].read_only  # a topic default: dynamic
    assert broker["listeners"].read_only
    if version >= 3:
        assert every["retention.ms"].config_type == 5  # LONG
        assert every["retention.ms"].documentation


@pytest.mark.parametrize("version", range(0, 3))
def test_alter_configs_every_version(cluster: OneNodeCluster, version: int) -> None:
    cluster.create_topic("t", 1, configs={"retention.ms": "5000"})
    request = _wire_request(33, version, {
        "resources": [
            {"resource_type": 2, "resource_name": "t",
             "configs": [{"name": "cleanup.policy", "value": "compact"}]},
            {"resource_type": 2, "resource_name": "missing", "configs": []},
            {"resource_type": 2, "resource_name": "bad/name", "configs": []},
        ],
        "validate_only": False,
    })
    response = _wire_response(33, version, cluster.decide(
        lambda r: answer_alter_configs(r, NODE, request, version)))
    assert [r.error_code for r in response.responses] == [
        ErrorCode.none, ErrorCode.unknown_topic_or_partition,
        ErrorCode.invalid_topic_exception,
    ]
    assert dict(cluster.broker.get("t").configs) == {"cleanup.policy": "compact"}  # type: ignore[union-attr]
    # BROKER resources are answered by the broker itself (its dynamic configs)
    fixed = _wire_request(33, version, {"resources": [
        {"resource_type": 4, "resource_name": str(NODE),
         "configs": [{"name": "listeners", "value": "PLAINTEXT://:1"}]}], "validate_only": False})
    response = _wire_response(33, version,
                              answer_alter_configs(cluster.broker, NODE, fixed, version))
    assert response.responses[0].error_code == ErrorCode.invalid_request
    bad = _wire_request(33, version, {"resources": [
        {"resource_type": 2, "resource_name": "t",
         "configs": [{"name": "max.message.bytes", "value": "-5"}]}], "validate_only": False})
    response = _wire_response(33, version, cluster.decide(
        lambda r: answer_alter_configs(r, NODE, bad, version)))
    assert response.responses[0].error_code == ErrorCode.invalid_config
    assert "max.message.bytes" in response.responses[0].error_message


@pytest.mark.parametrize("version", range(0, 2))
def test_incremental_alter_configs_every_version(cluster: OneNodeCluster, version: int) -> None:
    cluster.create_topic("t", 1, configs={"retention.ms": "5000"})

    def send(configs: list[dict[str, Any]], validate_only: bool = False) -> Any:
        request = _wire_request(44, version, {
            "resources": [{"resource_type": 2, "resource_name": "t", "configs": configs}],
            "validate_only": validate_only,
        })
        answer = cluster.decide(
            lambda r: answer_incremental_alter_configs(r, NODE, request, version))
        return _wire_response(44, version, answer).responses[0]

    assert send([{"name": "cleanup.policy", "config_operation": 2, "value": "compact"},
                 {"name": "retention.ms", "config_operation": 1, "value": None}]).error_code == 0
    assert dict(cluster.broker.get("t").configs) == {"cleanup.policy": "delete,compact"}  # type: ignore[union-attr]
    assert send([{"name": "cleanup.policy", "config_operation": 3, "value": "delete"}],
                validate_only=True).error_code == 0
    assert dict(cluster.broker.get("t").configs) == {"cleanup.policy": "delete,compact"}  # type: ignore[union-attr]
    assert send([{"name": "segment.ms", "config_operation": 0, "value": "0"}]).error_code == (
        ErrorCode.invalid_config
    )
    assert send([{"name": "segment.ms", "config_operation": 7, "value": "1"}]).error_code == (
        ErrorCode.invalid_request
    )


@pytest.mark.parametrize("version", range(0, 2))
def test_dynamic_broker_configs(cluster: OneNodeCluster, tmp_path: Path, version: int) -> None:
    cluster.create_topic("own", 1, configs={"retention.ms": "1000"})
    cluster.create_topic("plain", 1)
    config, _ = load_config(overrides={"node.id": str(NODE)}, environ={})

    def alter(entity: str, configs: list[dict[str, Any]], validate_only: bool = False) -> Any:
        request = _wire_request(44, version, {
            "resources": [{"resource_type": 4, "resource_name": entity, "configs": configs}],
            "validate_only": validate_only,
        })
        answer = answer_incremental_alter_configs(cluster.broker, NODE, request, version)
        return _wire_response(44, version, answer).responses[0]

    def topic(name: str) -> dict[str, Any]:
        return {d.name: d for d in cluster.broker.describe_configs(name)}

    # cluster-wide default, then this broker's own value on top
    assert alter("", [{"name": "log.retention.ms", "config_operation": 0,
                       "value": "7000"}]).error_code == 0
    assert topic("plain")["retention.ms"].value == "7000"
    assert topic("plain")["retention.ms"].source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG
    assert topic("own")["retention.ms"].value == "1000"  # the topic override still wins
    assert alter(str(NODE), [{"name": "log.retention.minutes", "config_operation": 0,
                              "value": "2"}]).error_code == 0
    assert topic("plain")["retention.ms"].value == "120000"
    assert topic("plain")["retention.ms"].source == ConfigSource.DYNAMIC_BROKER_CONFIG
    assert cluster.logs.topic_configs["plain"].retention_ms == 120000  # type: ignore[union-attr]
    assert alter(str(NODE), [{"name": "log.cleanup.policy", "config_operation": 2,
                              "value": "compact"}]).error_code == 0
    assert topic("plain")["cleanup.policy"].value == "delete,compact"
    # refusals: fixed keys, bad values, validate_only
    assert alter(str(NODE), [{"name": "listeners", "config_operation": 0,
                              "value": "x"}]).error_code == ErrorCode.invalid_request
    assert alter("", [{"name": "message.max.bytes", "config_operation": 0,
                       "value": "-3"}]).error_code == ErrorCode.invalid_config
    assert alter("7", [{"name": "message.max.bytes", "config_operation": 0,
                        "value": "3"}]).error_code == ErrorCode.invalid_request
    assert alter("", [{"name": "message.max.bytes", "config_operation": 0, "value": "3000"}],
                 validate_only=True).error_code == 0
    assert topic("plain")["max.message.bytes"].value == "1048588"
    # described on the broker resources, and kept across a reopen
    request = _wire_request(32, 4, {"resources": [
        {"resource_type": 4, "resource_name": str(NODE)},
        {"resource_type": 4, "resource_name": ""}], "include_synonyms": True})
    answer = answer_describe_configs(cluster.broker, config, NODE, request, 4)
    node, default = _wire_response(32, 4, answer).results
    node_configs = {c.name: c for c in node.configs}
    assert node_configs["log.retention.minutes"].value == "2"
    assert node_configs["log.retention.minutes"].config_source == 2
    assert node_configs["log.retention.ms"].config_source == 3
    assert {c.name: c.value for c in default.configs} == {"log.retention.ms": "7000"}
    again = ClusterTopicRegistry(tmp_path, cluster.defaults, log_manager=RecordingLogs(),
                                 node_id=NODE)
    assert again.open() == []
    again.apply_image(cluster.image)
    assert {d.name: d.value for d in again.describe_configs("plain")}["retention.ms"] == "120000"
    assert alter(str(NODE), [{"name": "log.retention.minutes", "config_operation": 1,
                              "value": None}]).error_code == 0
    assert topic("plain")["retention.ms"].value == "7000"


def test_delete_topics_same_topic_by_name_and_id(cluster: OneNodeCluster) -> None:
    info = cluster.create_topic("twice", 1)
    request = _wire_request(20, 6, {"topics": [
        {"name": "twice", "topic_id": uuid.UUID(int=0)},
        {"name": None, "topic_id": info.topic_id}], "timeout": 1000})
    response = _wire_response(20, 6, cluster.decide(
        lambda r: answer_delete_topics(r, request, 6)))
    assert [(r.name, r.error_code) for r in response.responses] == [
        ("twice", ErrorCode.none), ("twice", ErrorCode.invalid_request)
    ]
    assert cluster.broker.get("twice") is None


def test_broker_secrets_are_never_described() -> None:
    from broker.admin.broker_configs import describe_broker

    described = {d.name: d for d in describe_broker(
        {"ssl.keystore.password": "hunter2", "listeners": "PLAINTEXT://:1"},
        ["ssl.keystore.password", "listeners"],
    )}
    secret = described["ssl.keystore.password"]
    assert (secret.value, secret.is_sensitive) == (None, True)
    assert all(s.value is None for s in secret.synonyms)
    assert described["listeners"].value == "PLAINTEXT://:1"


def test_delete_records_storage_failures_map_to_kafka_errors() -> None:
    from broker.admin.handlers_records import delete_records_from
    from storage.errors import OffsetOutOfRangeError

    class Refusing(MemoryPartition):
        def __init__(self, exc: Exception) -> None:
            super().__init__(0, 10)
            self.exc = exc

        def delete_records_before(self, offset: int) -> int:
            raise self.exc

    assert delete_records_from(Refusing(OffsetOutOfRangeError("gone")), 5) == (
        ErrorCode.offset_out_of_range, -1
    )
    assert delete_records_from(Refusing(OSError("disk")), 5) == (
        ErrorCode.kafka_storage_error, -1
    )
    assert delete_records_from(MemoryPartition(3, 10), -2) == (ErrorCode.offset_out_of_range, -1)
