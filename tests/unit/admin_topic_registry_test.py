"""TopicRegistry: admission rules, persistence across reopen, and driving the LogManager."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from admin_support import RecordingLogs
from kio.schema.errors import ErrorCode

from broker.topics import BrokerDefaults, TopicError, TopicRegistry
from broker.topics.store import TOPICS_FILE, TopicStore
from common.topics.model import TopicFileError, decode_topics, encode_topics, new_topic
from storage.log_config import LogConfig


def _registry(tmp_path: Path, logs: RecordingLogs | None = None, **props: str) -> TopicRegistry:
    broker = BrokerDefaults.from_properties({k.replace("_", "."): v for k, v in props.items()})
    registry = TopicRegistry(tmp_path, broker, log_manager=logs, node_id=1)
    registry.open(now_ms=1)
    return registry


def _code(exc: pytest.ExceptionInfo[TopicError]) -> ErrorCode:
    return exc.value.error_code


def test_create_get_list_and_logs(tmp_path: Path) -> None:
    logs = RecordingLogs()
    reg = _registry(tmp_path, logs)
    info = reg.create_topic("orders", 3, 1, {"retention.ms": "60000"})
    assert (info.partitions, info.replication_factor) == (3, 1)
    assert isinstance(info.topic_id, uuid.UUID)
    assert reg.get("orders") == info and reg.get_by_id(info.topic_id) == info
    assert [t.name for t in reg.list()] == ["orders"]
    assert sorted(logs.logs) == [("orders", 0), ("orders", 1), ("orders", 2)]
    assert logs.logs[("orders", 0)].retention_ms == 60000  # type: ignore[union-attr]


def test_defaults_from_broker(tmp_path: Path) -> None:
    reg = _registry(tmp_path, RecordingLogs(), num_partitions="4")
    info = reg.create_topic("auto")
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
    logs = RecordingLogs()
    reg = _registry(tmp_path, logs)
    with pytest.raises(TopicError) as exc:
        reg.create_topic(**kwargs)
    assert _code(exc) == code and exc.value.message
    assert reg.list() == [] and logs.logs == {}


def test_manual_assignment_on_this_node(tmp_path: Path) -> None:
    reg = _registry(tmp_path, RecordingLogs())
    info = reg.create_topic("m", assignments=[(1, [1]), (0, [1])])
    assert info.partitions == 2


def test_existing_and_colliding_names(tmp_path: Path) -> None:
    reg = _registry(tmp_path, RecordingLogs())
    reg.create_topic("a.b", 1)
    with pytest.raises(TopicError) as exc:
        reg.create_topic("a.b", 1)
    assert _code(exc) == ErrorCode.topic_already_exists
    with pytest.raises(TopicError) as exc:
        reg.create_topic("a_b", 1)
    assert _code(exc) == ErrorCode.invalid_topic_exception
    assert "collides" in exc.value.message


def test_validate_only_changes_nothing(tmp_path: Path) -> None:
    logs = RecordingLogs()
    reg = _registry(tmp_path, logs)
    info = reg.create_topic("v", 2, validate_only=True)
    assert info.partitions == 2
    assert reg.get("v") is None and logs.logs == {}
    reg.create_topic("w", 1)
    reg.alter_configs("w", {"retention.ms": "5"}, validate_only=True)
    reg.create_partitions("w", 3, validate_only=True)
    assert reg.get("w").configs == {} and reg.get("w").partitions == 1  # type: ignore[union-attr]


def test_delete_by_name_and_id(tmp_path: Path) -> None:
    logs = RecordingLogs()
    reg = _registry(tmp_path, logs)
    a = reg.create_topic("a", 2)
    b = reg.create_topic("b", 1)
    reg.delete_topic("a")
    assert reg.get("a") is None and ("a", 0) not in logs.logs
    reg.delete_topic_by_id(b.topic_id)
    assert reg.list() == [] and logs.logs == {}
    with pytest.raises(TopicError) as exc:
        reg.delete_topic("a")
    assert _code(exc) == ErrorCode.unknown_topic_or_partition
    with pytest.raises(TopicError) as exc:
        reg.delete_topic_by_id(a.topic_id)
    assert _code(exc) == ErrorCode.unknown_topic_id


def test_create_partitions(tmp_path: Path) -> None:
    logs = RecordingLogs()
    reg = _registry(tmp_path, logs)
    reg.create_topic("p", 2)
    assert reg.create_partitions("p", 5).partitions == 5
    assert sorted(p for t, p in logs.logs if t == "p") == [0, 1, 2, 3, 4]
    for count in (5, 3):
        with pytest.raises(TopicError) as exc:
            reg.create_partitions("p", count)
        assert _code(exc) == ErrorCode.invalid_partitions
    with pytest.raises(TopicError) as exc:
        reg.create_partitions("p", 7, [[1]])
    assert _code(exc) == ErrorCode.invalid_replica_assignment
    assert reg.create_partitions("p", 6, [[1]]).partitions == 6
    with pytest.raises(TopicError) as exc:
        reg.create_partitions("missing", 2)
    assert _code(exc) == ErrorCode.unknown_topic_or_partition


def test_alter_configs_apply_to_live_logs(tmp_path: Path) -> None:
    logs = RecordingLogs()
    reg = _registry(tmp_path, logs)
    reg.create_topic("c", 1, configs={"retention.ms": "1000", "segment.bytes": "2048"})
    reg.alter_configs("c", {"cleanup.policy": "compact"})
    assert dict(reg.get("c").configs) == {"cleanup.policy": "compact"}  # type: ignore[union-attr]
    assert logs.topic_configs["c"].cleanup_policy == frozenset({"compact"})
    assert logs.topic_configs["c"].retention_ms == LogConfig().retention_ms  # override removed
    reg.incremental_alter_configs("c", [("cleanup.policy", 2, "delete"), ("retention.ms", 0, "9")])
    assert logs.topic_configs["c"].cleanup_policy == frozenset({"compact", "delete"})
    assert logs.topic_configs["c"].retention_ms == 9
    with pytest.raises(TopicError) as exc:
        reg.incremental_alter_configs("c", [("retention.ms", 0, "-7")])
    assert _code(exc) == ErrorCode.invalid_config
    assert logs.topic_configs["c"].retention_ms == 9


def test_everything_survives_reopen(tmp_path: Path) -> None:
    logs = RecordingLogs()
    reg = _registry(tmp_path, logs)
    t = reg.create_topic("keep", 2, configs={"max.message.bytes": "5000"})
    reg.create_topic("gone", 1)
    reg.delete_topic("gone")
    again = _registry(tmp_path, logs)
    assert again.list() == [t]
    assert again.log_config("keep").max_message_bytes == 5000
    assert logs.topic_configs["keep"].max_message_bytes == 5000
    assert not (tmp_path / (TOPICS_FILE + ".tmp")).exists()


def test_open_repairs_interrupted_create_and_delete(tmp_path: Path) -> None:
    TopicStore(tmp_path).save({"t": new_topic("t", uuid.uuid4(), 3, 1, {}, 0)})
    # partition 1 and 2 of t were never created; "old" was deleted from the table only
    logs = RecordingLogs([("t", 0), ("old", 0), ("t", 7)])
    reg = TopicRegistry(tmp_path, BrokerDefaults(), log_manager=logs)
    notes = reg.open()
    assert sorted(logs.logs) == [("t", 0), ("t", 1), ("t", 2)]
    assert any("orphan" in n for n in notes) and any("missing" in n for n in notes)


def test_first_start_adopts_logs_on_disk(tmp_path: Path) -> None:
    logs = RecordingLogs([("x", 0), ("x", 2), ("y-z", 0)])
    reg = TopicRegistry(tmp_path, BrokerDefaults(), log_manager=logs)
    reg.open()
    assert {t.name: t.partitions for t in reg.list()} == {"x": 3, "y-z": 1}
    assert (tmp_path / TOPICS_FILE).exists()
    assert ("x", 1) in logs.logs


def test_topic_file_format_round_trip_and_damage(tmp_path: Path) -> None:
    topics = {"a": new_topic("a", uuid.uuid4(), 2, 1, {"retention.ms": "5"}, 123)}
    assert decode_topics(encode_topics(topics)) == topics
    for bad in (b"{", b"[]", b'{"format": 2}', b'{"format": 1, "topics": {"a": {}}}',
                b'{"format":1,"topics":{"a":{"topic_id":"x","partitions":1,'
                b'"replication_factor":1,"configs":{}}}}'):
        with pytest.raises(TopicFileError):
            decode_topics(bad)


def test_failed_save_leaves_state_unchanged(tmp_path: Path) -> None:
    logs = RecordingLogs()
    reg = _registry(tmp_path, logs)
    reg.create_topic("a", 1)
    # the table's path is taken by a directory: the atomic rename fails with an OSError
    (tmp_path / TOPICS_FILE).unlink()
    (tmp_path / TOPICS_FILE).mkdir()
    with pytest.raises(TopicError) as exc:
        reg.create_topic("b", 1)
    assert _code(exc) == ErrorCode.kafka_storage_error
    assert reg.get("b") is None and ("b", 0) not in logs.logs


def test_effective_configs_follow_every_change(tmp_path: Path) -> None:
    reg = _registry(tmp_path, RecordingLogs())
    reg.create_topic("e", 1)
    assert reg.effective_configs("e")["min.insync.replicas"] == 1
    reg.alter_configs("e", {"min.insync.replicas": "2"})
    assert reg.effective_configs("e")["min.insync.replicas"] == 2
    reg.alter_configs("e", {})
    reg.alter_broker_configs("", {"min.insync.replicas": "3"})
    assert reg.effective_configs("e")["min.insync.replicas"] == 3
    with pytest.raises(TopicError) as exc:
        reg.alter_broker_configs("", {"log.dirs": "/elsewhere"})
    assert _code(exc) == ErrorCode.invalid_request
    with pytest.raises(TopicError) as exc:
        reg.alter_broker_configs("", {"compression.type": "gzip"})
    assert _code(exc) == ErrorCode.invalid_config
    assert reg.effective_configs("e")["min.insync.replicas"] == 3


def test_damaged_table_names_the_file(tmp_path: Path) -> None:
    (tmp_path / TOPICS_FILE).write_bytes(b'{"format": 1, "topics": {"a": {"partitions": 1}}}')
    with pytest.raises(TopicFileError, match=TOPICS_FILE):
        TopicRegistry(tmp_path, BrokerDefaults()).open()


def test_create_topics_saves_the_table_once(tmp_path: Path) -> None:
    from broker.topics import NewTopicRequest

    logs = RecordingLogs()
    reg = _registry(tmp_path, logs)
    saves: list[int] = []
    real_save = reg.store.save

    def counting_save(topics: dict, broker_configs: dict | None = None) -> None:
        saves.append(len(topics))
        real_save(topics, broker_configs)

    reg.store.save = counting_save  # type: ignore[method-assign]
    requests = [NewTopicRequest(f"t{i}", 1) for i in range(200)]
    requests.insert(5, NewTopicRequest("bad name", 1))
    requests.append(NewTopicRequest("t7", 1))  # checked against the earlier ones: exists
    results = reg.create_topics(requests)
    assert saves == [200]
    errors = [r for r in results if isinstance(r, TopicError)]
    assert [e.error_code for e in errors] == [
        ErrorCode.invalid_topic_exception, ErrorCode.topic_already_exists
    ]
    assert len(reg.list()) == 200 and len(logs.logs) == 200
    # a failed save: every topic of the call fails, nothing is left behind
    (tmp_path / TOPICS_FILE).unlink()
    (tmp_path / TOPICS_FILE).mkdir()
    results = reg.create_topics([NewTopicRequest("x1", 1), NewTopicRequest("x2", 1)])
    assert all(isinstance(r, TopicError) and r.error_code == ErrorCode.kafka_storage_error
               for r in results)
    assert reg.get("x1") is None and ("x2", 0) not in logs.logs


def test_documentation_says_which_keys_are_not_applied(tmp_path: Path) -> None:
    reg = _registry(tmp_path, RecordingLogs())
    reg.create_topic("d", 1)
    docs = {d.name: d.documentation or "" for d in reg.describe_configs("d")}
    for key in reg.unapplied_keys():
        assert "does not apply it yet" in docs[key]
    assert "does not apply" not in docs["retention.ms"]  # a LogConfig field
    assert "does not apply" not in docs["min.insync.replicas"]  # the replica manager's


def test_partitions_per_node_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from common.topics import rules

    monkeypatch.setattr(rules, "MAX_PARTITIONS_PER_NODE", 5)
    reg = _registry(tmp_path, RecordingLogs())
    reg.create_topic("a", 3)
    with pytest.raises(TopicError) as exc:
        reg.create_topic("b", 3)
    assert _code(exc) == ErrorCode.invalid_partitions and "limit of 5" in exc.value.message
    with pytest.raises(TopicError) as exc:
        reg.create_partitions("a", 6)
    assert _code(exc) == ErrorCode.invalid_partitions
    assert reg.create_partitions("a", 5).partitions == 5
