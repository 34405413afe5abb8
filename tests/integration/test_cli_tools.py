"""The ``strom`` tools against a live broker, run as the real command.

Topics: create, describe (offsets, sizes, non-default configs with their source), alter,
grow and delete, checked through confluent-kafka's admin client too; cluster info/health
and broker configs; bad input is one line on stderr with exit code 1 or 2, never a
traceback. Data: a file produced and consumed back byte for byte (keys, headers,
compression) and read by confluent-kafka; keys placed as librdkafka places them; Ctrl-C
stops a following consumer cleanly; group describe shows the lag a confluent-kafka
consumer's commits leave; seek to a timestamp moves the committed offsets to the first
record at or after it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource

from tests.support.broker import REPO_ROOT
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


def _ok(proc: subprocess.CompletedProcess[bytes]) -> bytes:
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def _lines(n: int) -> bytes:
    out = []
    for i in range(n):
        headers = f"h1=a{i},trace=" + ("" if i % 3 else "t") + (",flag" if i % 5 == 0 else "")
        out.append(f"{headers}|key-{i % 7}\tvalue {i} ünïcode \\ % tab\tinside".encode())
    return b"\n".join(out) + b"\n"


def test_produce_a_file_and_consume_it_back_byte_for_byte(bootstrap: str, topic_name: str,
                                                         tmp_path: Path) -> None:
    b = ["-b", bootstrap]
    _ok(strom("topic", "create", topic_name, "-p", "1", *b))
    data = _lines(300)
    source = tmp_path / "in.txt"
    source.write_bytes(data)
    produced = json.loads(_ok(strom("produce", topic_name, "--file", str(source), "-K", "\\t",
                                    "--header-separator", "|", "-z", "zstd", "--format",
                                    "json", *b)))
    assert produced["records"] == 300
    desc = _json(strom("topic", "describe", topic_name, "--format", "json", *b))
    [p] = desc["partitions"]
    assert (p["earliest_offset"], p["latest_offset"]) == (0, 300)
    assert 1000 < p["size_bytes"] < len(data)  # zstd batches: smaller than the file
    back = strom("consume", topic_name, "-o", "earliest", "-e", "-f", "%h|%k\\t%v\\n", *b)
    assert _ok(back) == data
    assert back.stderr.decode().strip() == f"strom: 300 record(s) read from {topic_name}"

    # a real client sees the same keys, values and headers
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic_name}-check",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic_name, 0, 0)])
    seen = []
    deadline = time.monotonic() + 30
    while len(seen) < 300 and time.monotonic() < deadline:
        msg = consumer.poll(1)
        if msg is not None and not msg.error():
            seen.append(msg)
    consumer.close()
    assert len(seen) == 300
    assert seen[5].key() == b"key-5"
    assert seen[5].value() == "value 5 ünïcode \\ % tab\tinside".encode()
    assert seen[5].headers() == [("h1", b"a5"), ("trace", b""), ("flag", None)]

    # JSON lines and --count from an offset
    rows = [json.loads(line) for line in _ok(strom(
        "consume", topic_name, "-o", "10", "-n", "2", "--format", "json", *b)).splitlines()]
    assert [(r["offset"], r["key"], r["headers"][0]) for r in rows] == [
        (10, "key-3", {"key": "h1", "value": "a10"}), (11, "key-4", {"key": "h1", "value": "a11"})]

    # with a group: start at its committed offset, commit exactly past what was printed
    group = f"{topic_name}-cli"
    first = _ok(strom("consume", topic_name, "-g", group, "-n", "7", "-f", "%o\n", *b))
    assert first.split() == [b"%d" % i for i in range(7)]
    second = _ok(strom("consume", topic_name, "-g", group, "-n", "3", "-f", "%o\n", *b))
    assert second.split() == [b"7", b"8", b"9"]
    lag = json.loads(_ok(strom("group", "describe", group, "--format", "json", *b)))
    assert [(o["committed"], o["lag"]) for o in lag["offsets"]] == [(10, 290)]


def test_keyed_records_land_where_kafka_clients_put_them(bootstrap: str, topic_name: str
                                                         ) -> None:
    b = ["-b", bootstrap]
    _ok(strom("topic", "create", topic_name, "-p", "4", *b))
    keys = [f"user-{i}".encode() for i in range(20)]
    _ok(strom("produce", topic_name, "-K", ":", "--acks", "1", *b,
              input=b"".join(k + b":x\n" for k in keys)))
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
    placed: dict[bytes, int] = {}
    for k in keys:
        producer.produce(topic_name, key=k, value=b"y",
                         on_delivery=lambda err, msg: placed.__setitem__(msg.key(),
                                                                         msg.partition()))
    assert producer.flush(20) == 0
    ours = [line.split(b" ") for line in _ok(strom(
        "consume", topic_name, "-o", "earliest", "-e", "-f", "%k %p\\n", *b)).splitlines()]
    assert len(ours) == 40
    assert {k: int(p) for k, p in ours} == placed


def test_ctrl_c_stops_a_following_consumer_cleanly(bootstrap: str, topic_name: str) -> None:
    _ok(strom("topic", "create", topic_name, "-p", "2", "-b", bootstrap))
    _ok(strom("produce", topic_name, "-b", bootstrap, input=b"one\ntwo\nthree\n"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("STROM_")}
    proc = subprocess.Popen([sys.executable, "-m", "broker.cli", "consume", topic_name,
                             "-o", "earliest", "-b", bootstrap], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        got = b""
        deadline = time.monotonic() + 30
        while got.count(b"\n") < 3 and time.monotonic() < deadline:
            got += os.read(proc.stdout.fileno(), 4096)  # type: ignore[union-attr]
        assert sorted(got.splitlines()) == [b"one", b"three", b"two"]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err.decode()
    assert out == b""
    assert err.decode().strip() == f"strom: 3 record(s) read from {topic_name}"


def _produce_at(bootstrap: str, topic: str, stamps: list[int], partition: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for i, ts in enumerate(stamps):
        producer.produce(topic, value=f"r{i}".encode(), partition=partition, timestamp=ts)
    assert producer.flush(20) == 0


def test_group_lag_and_seek_to_a_timestamp(bootstrap: str, topic_name: str) -> None:
    b = ["-b", bootstrap]
    group = f"{topic_name}-g"
    _ok(strom("topic", "create", topic_name, "-p", "2", *b))
    t0 = int(time.time() * 1000) - 60_000
    _produce_at(bootstrap, topic_name, [t0 + 1000 * i for i in range(10)], 0)
    _produce_at(bootstrap, topic_name, [t0 + 1000 * i for i in range(6)], 1)

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "client.id": "lag-checker"})
    try:
        consumer.subscribe([topic_name])
        deadline = time.monotonic() + 30
        while len(consumer.assignment()) < 2 and time.monotonic() < deadline:
            consumer.poll(0.5)
        assert len(consumer.assignment()) == 2
        consumer.commit(offsets=[TopicPartition(topic_name, 0, 4),
                                 TopicPartition(topic_name, 1, 6)], asynchronous=False)
        desc = json.loads(_ok(strom("group", "describe", group, "--format", "json", *b)))
        assert desc["state"] == "Stable"
        [member] = desc["members"]
        assert member["client_id"] == "lag-checker"
        assert member["assignment"] == [[topic_name, 0], [topic_name, 1]]
        assert [(o["partition"], o["committed"], o["log_end"], o["lag"], o["member"])
                for o in desc["offsets"]] == [(0, 4, 10, 6, member["member_id"]),
                                              (1, 6, 6, 0, member["member_id"])]
        assert desc["total_lag"] == 6
        busy = strom("group", "seek", group, "--topic", topic_name, "--to-earliest", *b)
        assert busy.returncode == 1 and "active member" in one_line_error(busy)
    finally:
        consumer.close()

    listed = json.loads(_ok(strom("group", "list", "--format", "json", *b)))
    assert any(g["group_id"] == group for g in listed)
    at = t0 + 4500  # first record at or after: offset 5 in partition 0, 5 in partition 1
    dry = json.loads(_ok(strom("group", "seek", group, "--topic", topic_name,
                               "--to-datetime", str(at), "--dry-run", "--format", "json", *b)))
    assert [(r["partition"], r["current"], r["new"]) for r in dry["offsets"]] == [
        (0, 4, 5), (1, 6, 5)]
    _ok(strom("group", "seek", group, "--topic", f"{topic_name}:0,1", f"--to=@{at}", *b))
    checker = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        committed = checker.committed([TopicPartition(topic_name, 0),
                                       TopicPartition(topic_name, 1)], timeout=20)
    finally:
        checker.close()
    assert [tp.offset for tp in committed] == [5, 5]

    # past the last record: the log end, as kafka-consumer-groups.sh does
    future = json.loads(_ok(strom("group", "seek", group, "--all-topics", "--to-datetime",
                                  str(t0 + 3_600_000), "--format", "json", *b)))
    assert [r["new"] for r in future["offsets"]] == [10, 6]
    _ok(strom("group", "delete", group, *b))
    gone = strom("group", "describe", group, *b)
    assert gone.returncode == 1 and "does not exist" in one_line_error(gone)
