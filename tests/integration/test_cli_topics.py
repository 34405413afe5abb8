"""``strom topic`` / ``cluster`` / ``config`` against a live broker, checked through
confluent-kafka's admin client as well as the tool's own output; bad input gives one line
on stderr and exit code 1 or 2, never a traceback."""

from __future__ import annotations

import json

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from tests.support.strom_cli import one_line_error, strom

pytestmark = pytest.mark.timeout(120)


def _json(proc) -> object:  # type: ignore[no-untyped-def]
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads(proc.stdout)


def test_create_describe_alter_grow_delete(bootstrap: str, topic_name: str) -> None:
    b = ["-b", bootstrap]
    made = strom("topic", "create", topic_name, "-p", "2", "-c", "retention.ms=123456",
                 "-c", "cleanup.policy=compact", *b)
    assert made.returncode == 0, made.stderr.decode()
    assert made.stdout.decode().strip() == f"topic {topic_name} created"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    assert len(admin.list_topics(topic_name, timeout=10).topics[topic_name].partitions) == 2

    listed = _json(strom("topic", "list", "--format", "json", *b))
    assert {"name": topic_name, "partitions": 2, "replication_factor": 1,
            "internal": False} in listed

    desc = _json(strom("topic", "describe", topic_name, "--format", "json", *b))
    assert [(p["partition"], p["leader"], p["replicas"], p["isr"], p["earliest_offset"],
             p["latest_offset"]) for p in desc["partitions"]] == [
        (0, 1, [1], [1], 0, 0), (1, 1, [1], [1], 0, 0)]
    assert all(isinstance(p["size_bytes"], int) for p in desc["partitions"])
    configs = {c["name"]: (c["value"], c["source"]) for c in desc["configs"]}
    assert configs == {"retention.ms": ("123456", "DYNAMIC_TOPIC_CONFIG"),
                       "cleanup.policy": ("compact", "DYNAMIC_TOPIC_CONFIG")}
    human = strom("topic", "describe", topic_name, *b).stdout.decode().splitlines()
    assert human[0] == f"Topic:              {topic_name}"
    assert "PARTITION  LEADER  EPOCH  REPLICAS  ISR  EARLIEST  LATEST  SIZE" in human
    assert "retention.ms    123456   DYNAMIC_TOPIC_CONFIG" in human

    altered = strom("topic", "alter-config", topic_name, "--set", "retention.ms=999",
                    "--delete", "cleanup.policy", *b)
    assert altered.returncode == 0, altered.stderr.decode()
    resource = ConfigResource("topic", topic_name)
    seen = admin.describe_configs([resource])[resource].result(timeout=10)
    assert seen["retention.ms"].value == "999"
    assert seen["cleanup.policy"].value == "delete"  # back to the default

    grown = strom("topic", "add-partitions", topic_name, "--add", "2", *b)
    assert grown.returncode == 0, grown.stderr.decode()
    assert "2 -> 4 partitions" in grown.stdout.decode()
    assert len(admin.list_topics(topic_name, timeout=10).topics[topic_name].partitions) == 4

    gone = strom("topic", "delete", topic_name, *b)
    assert gone.returncode == 0, gone.stderr.decode()
    error = one_line_error(strom("topic", "describe", topic_name, *b))
    assert error == f"strom: topic '{topic_name}' does not exist"


def test_describe_shows_offsets_after_produce(bootstrap: str, topic_name: str) -> None:
    from confluent_kafka import Producer

    assert strom("topic", "create", topic_name, "-p", "1", "-b", bootstrap).returncode == 0
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(5):
        producer.produce(topic_name, value=b"x" * 100 + bytes([i]))
    assert producer.flush(20) == 0
    desc = _json(strom("topic", "describe", topic_name, "--format", "json", "-b", bootstrap))
    [p] = desc["partitions"]
    assert (p["earliest_offset"], p["latest_offset"]) == (0, 5)
    assert p["size_bytes"] > 500


def test_cluster_info_health_and_broker_config(bootstrap: str) -> None:
    info = _json(strom("cluster", "info", "--format", "json", "-b", bootstrap))
    assert [b["node_id"] for b in info["brokers"]] == [1]
    assert info["controller_id"] == 1 and info["quorum"]["leader_id"] == 1
    assert info["under_replicated"] == [] and info["offline"] == []
    health = strom("cluster", "health", "-b", bootstrap)
    assert health.returncode == 0, health.stdout.decode() + health.stderr.decode()
    assert health.stdout.decode().startswith("healthy")

    changed = strom("config", "set", "log.retention.ms=7200000", "-b", bootstrap)
    assert changed.returncode == 0, changed.stderr.decode()
    got = _json(strom("config", "get", "log.retention.ms", "--format", "json", "-b", bootstrap))
    assert got["configs"] == [{"name": "log.retention.ms", "value": "7200000",
                               "source": "DYNAMIC_BROKER_CONFIG", "read_only": False,
                               "sensitive": False}]
    bad = strom("config", "set", "log.retention.ms=soon", "-b", bootstrap)
    assert bad.returncode == 1
    assert "log.retention.ms" in one_line_error(bad)


def test_bad_input_is_one_line_with_exit_code(bootstrap: str, topic_name: str) -> None:
    b = ["-b", bootstrap]
    cases = [
        (strom("consume", "no-such-topic-x", "-e", *b), 1, "does not exist"),
        (strom("topic", "create", topic_name, "-c", "retention.ms=tomorrow", *b), 1,
         "INVALID_CONFIG"),
        (strom("topic", "list", "-b", "127.0.0.1:1"), 1, "no broker at 127.0.0.1:1"),
        (strom("consume", topic_name, "--offset", "yesterday", *b), 2, "bad position"),
    ]
    for proc, code, text in cases:
        line = one_line_error(proc)
        assert proc.returncode == code, (proc.args, line)
        assert text in line, (proc.args, line)


def test_profile_chosen_by_environment(bootstrap: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    profile = tmp_path / "profile.toml"
    profile.write_text(f'[default]\nbrokers = "127.0.0.1:1"\n\n[here]\nbrokers = "{bootstrap}"\n')
    listed = strom("cluster", "info", "--format", "json",
                   env={"STROM_PROFILE_FILE": str(profile), "STROM_PROFILE": "here"})
    assert _json(listed)["brokers"][0]["port"] == int(bootstrap.rsplit(":", 1)[1])
