"""TopicRegistry driving storage's real LogManager: directories, live configs, restarts."""

from __future__ import annotations

from pathlib import Path

from broker.topics import BrokerDefaults, TopicRegistry
from protocol.records import Record, build_batch
from storage.log_config import LogConfig
from storage.log_manager import LogManager

NOW = 1_700_000_000_000


def _open(data: Path, **props: str) -> tuple[LogManager, TopicRegistry]:
    broker = BrokerDefaults.from_properties(props)
    logs = LogManager(data, LogConfig())
    logs.startup(NOW)
    registry = TopicRegistry(data, broker, log_manager=logs, node_id=1)
    registry.open(NOW)
    return logs, registry


def _append(logs: LogManager, topic: str, partition: int, count: int) -> None:
    log = logs.get(topic, partition)
    assert log is not None
    batch = build_batch([Record(i, NOW, None, b"v", []) for i in range(count)])
    log.append_as_leader(batch, leader_epoch=0, now_ms=NOW)


def test_create_alter_grow_delete_on_disk(tmp_path: Path) -> None:
    logs, reg = _open(tmp_path, **{"log.segment.bytes": "1048576"})
    reg.create_topic("orders", 2, configs={"retention.ms": "60000"})
    assert (tmp_path / "orders-0").is_dir() and (tmp_path / "orders-1").is_dir()
    log = logs.get("orders", 0)
    assert log is not None
    assert (log.config.retention_ms, log.config.segment_bytes) == (60000, 1048576)
    reg.incremental_alter_configs("orders", [("cleanup.policy", 0, "compact"),
                                             ("max.message.bytes", 0, "4096")])
    assert log.config.cleanup_policy == frozenset({"compact"})
    assert log.config.max_message_bytes == 4096
    reg.create_partitions("orders", 3)
    new = logs.get("orders", 2)
    assert new is not None and new.config.max_message_bytes == 4096
    reg.delete_topic("orders")
    assert not any(p.name.startswith("orders-") for p in tmp_path.iterdir())
    assert list(logs.partitions()) == []
    logs.shutdown()


def test_restart_applies_overrides_and_keeps_data(tmp_path: Path) -> None:
    logs, reg = _open(tmp_path)
    reg.create_topic("keep", 1, configs={"retention.bytes": "123456",
                                         "message.timestamp.type": "LogAppendTime"})
    _append(logs, "keep", 0, 3)
    topic_id = reg.get("keep").topic_id  # type: ignore[union-attr]
    logs.shutdown()

    logs, reg = _open(tmp_path)
    info = reg.get("keep")
    assert info is not None and info.topic_id == topic_id
    log = logs.get("keep", 0)
    assert log is not None and log.log_end_offset == 3
    assert log.config.retention_bytes == 123456
    assert log.config.message_timestamp_type == "LogAppendTime"
    logs.shutdown()


def test_restart_removes_logs_of_a_delete_cut_short(tmp_path: Path) -> None:
    logs, reg = _open(tmp_path)
    reg.create_topic("gone", 2)
    _append(logs, "gone", 1, 2)
    # the table forgets the topic, then the process dies before the logs are deleted
    reg.store.save({})
    logs.shutdown()
    logs, reg = _open(tmp_path)
    assert reg.get("gone") is None
    assert list(logs.partitions()) == []
    assert not (tmp_path / "gone-1").exists()
    logs.shutdown()
