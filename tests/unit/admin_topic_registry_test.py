"""Topic admission, changes and the broker's topic registry on the live path of a lone node:
the controller's StagingRegistry decides, the committed image reaches ClusterTopicRegistry,
which keeps the logs in step (``admin_support.OneNodeCluster``); dynamic broker configs
and the ``__strom_topics.json`` file they live in."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from admin_support import OneNodeCluster, RecordingLogs
from kio.schema.errors import ErrorCode

from broker.cluster.registry import ClusterTopicRegistry
from broker.topics import BrokerDefaults, NewTopicRequest, TopicError
from broker.topics.store import TOPICS_FILE
from common.topics.model import TopicFileError, decode_topics, encode_topics, new_topic
from storage.log_config import LogConfig


def _code(exc: pytest.ExceptionInfo[TopicError]) -> ErrorCode:
    return exc.value.error_code


def test_create_get_list_and_logs(tmp_path: Path) -> None:
    cluster = OneNodeCluster(tmp_path)
    reg, logs = cluster.broker, cluster.logs
    info = cluster.create_topic("orders", 3, 1, {"retention.ms": "60000"})
    assert (info.partitions, info.replication_factor) == (3, 1)
    assert isinstance(info.topic_id, uuid.UUID)
    assert reg.get("orders") == info and reg.get_by_id(info.topic_id) == info
    assert [t.name for t in reg.list()] == ["orders"]
    assert sorted(logs.logs) == [("orders", 0), ("orders", 1), ("orders", 2)]
    assert logs.logs[("orders", 0)].retention_ms == 60000  # type: ignore[union-attr]


def test_defaults_from_broker(tmp_path: Path) -> None:
    cluster = OneNodeCluster(tmp_path, num_partitions="4")
    info = cluster.create_topic("auto")
    assert (info.partitions, info.replication_factor, dict(info.configs)) == (4, 1, {})


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"name": "bad name"}, ErrorCode.invalid_topic_exception),
        ({"name": ".hidden"}, ErrorCode.invalid_topic_exception),
        ({"name": "__strom_topics"}, ErrorCode.invalid_topic_exception),
        ({"name": "t", "replication_factor": 3}, ErrorCode.invalid_replication_factor),
        ({"name": "t", "replication_factor": 0}, ErrorCode.invalid_replication_factor),
        ({"name": "t", "partitions": 0}, ErrorCode.invalid_partitions),
        ({"name": "t", "partitions": 100_001}, ErrorCode.invalid_partitions),
        ({"name": "t", "configs": {"retention.ms": "x"}}, ErrorCode.invalid_config),
        ({"name": "t", "configs": {"nope": "1"}}, ErrorCode.invalid_config),
        ({"name": "t", "assignments": [(0, [2])]}, ErrorCode.invalid_replica_assignment),
        ({"name": "t", "assignments": [(1, [1])]}, ErrorCode.invalid_replica_assignment),
        ({"name": "t", "partitions": 2, "assignments": [(0, [1])]}, ErrorCode.invalid_request),
    ],
)
def test_create_refusals(tmp_path: Path, kwargs: dict, code: ErrorCode) -> None:
    cluster = OneNodeCluster(tmp_path)
    with pytest.raises(TopicError) as exc:
        cluster.create_topic(**kwargs)
    assert _code(exc) == code and exc.value.message
    assert cluster.broker.list() == [] and cluster.logs.logs == {}


def test_manual_assignment_on_this_node(tmp_path: Path) -> None:
    cluster = OneNodeCluster(tmp_path)
    info = cluster.create_topic("m", assignments=[(1, [1]), (0, [1])])
    assert info.partitions == 2
    assert sorted(cluster.logs.logs) == [("m", 0), ("m", 1)]


def test_existing_and_colliding_names(tmp_path: Path) -> None:
    cluster = OneNodeCluster(tmp_path)
    cluster.create_topic("a.b", 1)
    with pytest.raises(TopicError) as exc:
        cluster.create_topic("a.b", 1)
    assert _code(exc) == ErrorCode.topic_already_exists
    with pytest.raises(TopicError) as exc:
        cluster.create_topic("a_b", 1)
    assert _code(exc) == ErrorCode.invalid_topic_exception
    assert "collides" in exc.value.message


def test_validate_only_changes_nothing(tmp_path: Path) -> None:
    cluster = OneNodeCluster(tmp_path)
    reg, logs = cluster.broker, cluster.logs
    info = cluster.create_topic("v", 2, validate_only=True)
    assert info.partitions == 2
    assert reg.get("v") is None and logs.logs == {}
    cluster.create_topic("w", 1)
    cluster.decide(lambda s: s.alter_configs("w", {"retention.ms": "5"}, validate_only=True))
    cluster.decide(lambda s: s.create_partitions("w", 3, validate_only=True))
    assert reg.get("w").configs == {} and reg.get("w").partitions == 1  # type: ignore[union-attr]
    assert sorted(logs.logs) == [("w", 0)]


def test_delete_removes_topic_and_logs(tmp_path: Path) -> None:
    cluster = OneNodeCluster(tmp_path)
    reg, logs = cluster.broker, cluster.logs
    cluster.create_topic("a", 2)
    cluster.create_topic("b", 1)
    [gone] = cluster.decide(lambda s: s.delete_topics(["a"]))
    assert not isinstance(gone, TopicError) and gone.name == "a"
    assert reg.get("a") is None and ("a", 0) not in logs.logs and ("b", 0) in logs.logs
    [again] = cluster.decide(lambda s: s.delete_topics(["a"]))
    assert isinstance(again, TopicError)
    assert again.error_code == ErrorCode.unknown_topic_or_partition


def test_create_partitions(tmp_path: Path) -> None:
    cluster = OneNodeCluster(tmp_path)
    logs = cluster.logs
    cluster.create_topic("p", 2)
    assert cluster.decide(lambda s: s.create_partitions("p", 5)).partitions == 5
    assert sorted(p for t, p in logs.logs if t == "p") == [0, 1, 2, 3, 4]
    assert cluster.broker.get("p").partitions == 5  # type: ignore[union-attr]
    for count in (5, 3):
        with pytest.raises(TopicError) as exc:
            cluster.decide(lambda s, c=count: s.create_partitions("p", c))
        assert _code(exc) == ErrorCode.invalid_partitions
    with pytest.raises(TopicError) as exc:
        cluster.decide(lambda s: s.create_partitions("p", 7, [[1]]))
    assert _code(exc) == ErrorCode.invalid_replica_assignment
    assert cluster.decide(lambda s: s.create_partitions("p", 6, [[1]])).partitions == 6
    with pytest.raises(TopicError) as exc:
        cluster.decide(lambda s: s.create_partitions("missing", 2))
    assert _code(exc) == ErrorCode.unknown_topic_or_partition


def test_alter_configs_apply_to_live_logs(tmp_path: Path) -> None:
    cluster = OneNodeCluster(tmp_path)
    reg, logs = cluster.broker, cluster.logs
    cluster.create_topic("c", 1, configs={"retention.ms": "1000", "segment.bytes": "2048"})
    cluster.decide(lambda s: s.alter_configs("c", {"cleanup.policy": "compact"}))
    assert dict(reg.get("c").configs) == {"cleanup.policy": "compact"}  # type: ignore[union-attr]
    assert logs.topic_configs["c"].cleanup_policy == frozenset({"compact"})
    assert logs.topic_configs["c"].retention_ms == LogConfig().retention_ms  # override removed
    cluster.decide(lambda s: s.incremental_alter_configs(
        "c", [("cleanup.policy", 2, "delete"), ("retention.ms", 0, "9")]))
    assert logs.topic_configs["c"].cleanup_policy == frozenset({"compact", "delete"})
    assert logs.topic_configs["c"].retention_ms == 9
    with pytest.raises(TopicError) as exc:
        cluster.decide(lambda s: s.incremental_alter_configs("c", [("retention.ms", 0, "-7")]))
    assert _code(exc) == ErrorCode.invalid_config
    assert logs.topic_configs["c"].retention_ms == 9


def test_everything_survives_reopen(tmp_path: Path) -> None:
    cluster = OneNodeCluster(tmp_path)
    t = cluster.create_topic("keep", 2, configs={"max.message.bytes": "5000"})
    cluster.create_topic("gone", 1)
    cluster.decide(lambda s: s.delete_topics(["gone"]))
    cluster.broker.alter_broker_configs("", {"log.retention.ms": "7000"})
    # a restart: a new registry over the same directory, fed the (persisted) image
    logs = RecordingLogs()
    again = ClusterTopicRegistry(tmp_path, BrokerDefaults(), log_manager=logs, node_id=1)
    assert again.open() == []
    again.apply_image(cluster.image)
    assert again.list() == [t]
    assert again.log_config("keep").max_message_bytes == 5000
    assert logs.topic_configs["keep"].max_message_bytes == 5000
    assert logs.topic_configs["keep"].retention_ms == 7000  # the dynamic default, reloaded
    assert not (tmp_path / (TOPICS_FILE + ".tmp")).exists()


def test_topic_file_format_round_trip_and_damage(tmp_path: Path) -> None:
    topics = {"a": new_topic("a", uuid.uuid4(), 2, 1, {"retention.ms": "5"}, 123)}
    assert decode_topics(encode_topics(topics)) == topics
    for bad in (b"{", b"[]", b'{"format": 2}', b'{"format": 1, "topics": {"a": {}}}',
                b'{"format":1,"topics":{"a":{"topic_id":"x","partitions":1,'
                b'"replication_factor":1,"configs":{}}}}'):
        with pytest.raises(TopicFileError):
            decode_topics(bad)


def test_failed_save_leaves_state_unchanged(tmp_path: Path) -> None:
    cluster = OneNodeCluster(tmp_path)
    reg = cluster.broker
    cluster.create_topic("a", 1)
    reg.alter_broker_configs("", {"log.retention.ms": "7000"})
    # the file's path is taken by a directory: the atomic rename fails with an OSError
    (tmp_path / TOPICS_FILE).unlink()
    (tmp_path / TOPICS_FILE).mkdir()
    with pytest.raises(TopicError) as exc:
        reg.alter_broker_configs("", {"log.retention.ms": "9000"})
    assert _code(exc) == ErrorCode.kafka_storage_error
    assert reg.dynamic_broker_configs("") == {"log.retention.ms": "7000"}
    assert reg.log_config("a").retention_ms == 7000
    assert cluster.logs.topic_configs["a"].retention_ms == 7000


def test_effective_configs_follow_every_change(tmp_path: Path) -> None:
    cluster = OneNodeCluster(tmp_path)
    reg = cluster.broker
    cluster.create_topic("e", 1)
    assert reg.effective_configs("e")["min.insync.replicas"] == 1
    cluster.decide(lambda s: s.alter_configs("e", {"min.insync.replicas": "2"}))
    assert reg.effective_configs("e")["min.insync.replicas"] == 2
    cluster.decide(lambda s: s.alter_configs("e", {}))
    reg.alter_broker_configs("", {"min.insync.replicas": "3"})
    assert reg.effective_configs("e")["min.insync.replicas"] == 3
    with pytest.raises(TopicError) as exc:
        reg.alter_broker_configs("", {"log.dirs": "/elsewhere"})
    assert _code(exc) == ErrorCode.invalid_request
    with pytest.raises(TopicError) as exc:
        reg.alter_broker_configs("", {"compression.type": "brotli"})
    assert _code(exc) == ErrorCode.invalid_config
    assert reg.effective_configs("e")["min.insync.replicas"] == 3


def test_damaged_file_is_ignored_with_a_note_naming_it(tmp_path: Path) -> None:
    (tmp_path / TOPICS_FILE).write_bytes(b'{"format": 1, "topics": {"a": {"partitions": 1}}}')
    notes = OneNodeCluster(tmp_path).notes
    assert len(notes) == 1 and TOPICS_FILE in notes[0] and "ignored" in notes[0]


def test_create_topics_checks_each_request_against_the_earlier_ones(tmp_path: Path) -> None:
    cluster = OneNodeCluster(tmp_path)
    requests = [NewTopicRequest(f"t{i}", 1) for i in range(200)]
    requests.insert(5, NewTopicRequest("bad name", 1))
    requests.append(NewTopicRequest("t7", 1))  # checked against the earlier ones: exists
    results = cluster.decide(lambda s: s.create_topics(requests))
    errors = [r for r in results if isinstance(r, TopicError)]
    assert [e.error_code for e in errors] == [
        ErrorCode.invalid_topic_exception, ErrorCode.topic_already_exists
    ]
    assert len(cluster.broker.list()) == 200 and len(cluster.logs.logs) == 200


def test_documentation_says_which_keys_are_not_applied(tmp_path: Path) -> None:
    cluster = OneNodeCluster(tmp_path)
    reg = cluster.broker
    cluster.create_topic("d", 1)
    docs = {d.name: d.documentation or "" for d in reg.describe_configs("d")}
    for key in reg.unapplied_keys():
        assert "does not apply it yet" in docs[key]
    assert "does not apply" not in docs["retention.ms"]  # a LogConfig field
    assert "does not apply" not in docs["min.insync.replicas"]  # the replica manager's


def test_partitions_per_node_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from common.topics import rules

    monkeypatch.setattr(rules, "MAX_PARTITIONS_PER_NODE", 5)
    cluster = OneNodeCluster(tmp_path)
    cluster.create_topic("a", 3)
    with pytest.raises(TopicError) as exc:
        cluster.create_topic("b", 3)
    assert _code(exc) == ErrorCode.invalid_partitions and "limit of 5" in exc.value.message
    with pytest.raises(TopicError) as exc:
        cluster.decide(lambda s: s.create_partitions("a", 6))
    assert _code(exc) == ErrorCode.invalid_partitions
    assert cluster.decide(lambda s: s.create_partitions("a", 5)).partitions == 5
