"""Broker restarts (SIGTERM and kill -9) keep topics, topic configs and acknowledged data.

What Kafka promises, and what is checked here: a record whose produce was acknowledged
(acks=all; on one node that is the leader's append) survives a *process* crash, because
the append is in the OS page cache even without fsync (durability against power loss
comes from replication, not from this test).  After a crash the broker recovers the log
tail, so every acknowledged record is readable at the offset it was acknowledged with,
offsets stay dense and unique, and new appends continue after the recovered end.  The
idempotent producer's state survives too: a producer that keeps sending across a
restart ends up with every record exactly once.

Each test owns its broker (``node``) and restarts it on the same data dir and
port.  The client is confluent-kafka (librdkafka); every wait is bounded.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from tests.support.broker import BrokerProcess
from tests.support.fixtures import BROKER_DEFAULT_OVERRIDES, unique_topic

TIMEOUT_S = 30.0


# ----------------------------------------------------------------------------- helpers
@pytest.fixture
def node(tmp_path: Path) -> Iterator[BrokerProcess]:
    """A broker of this test's own, restarted freely; SIGKILLed at the end if still up."""
    proc = BrokerProcess(tmp_path / "broker", BROKER_DEFAULT_OVERRIDES)
    proc.start()
    try:
        yield proc
    finally:
        proc.close()


def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def create_topic(bootstrap: str, name: str, partitions: int, **config: str) -> None:
    client = admin(bootstrap)  # must outlive the futures (else _DESTROY)
    futures = client.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config)],
        request_timeout=15,
    )
    futures[name].result(timeout=TIMEOUT_S)


def producer(bootstrap: str, **conf: Any) -> Producer:
    return Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all", **conf})


def produce_acked(p: Producer, topic: str, partition: int, values: list[bytes]) -> list[int]:
    """Produce, flush, assert every message acknowledged; return the offsets."""
    offsets: list[int] = []
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            errors.append(err)
        else:
            offsets.append(msg.offset())

    for v in values:
        p.produce(topic, value=v, partition=partition, on_delivery=on_delivery)
    assert p.flush(TIMEOUT_S) == 0
    assert not errors, errors[:5]
    return offsets


def read_all(bootstrap: str, topic: str, partition: int) -> list[Message]:
    """Every record of the partition from its start to the high watermark."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"assign-only-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 100,
            "check.crcs": True,  # verify every batch CRC the broker serves
        }
    )
    try:
        low, high = c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        if high <= low:
            return []
        c.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
        got: list[Message] = []
        deadline = time.monotonic() + TIMEOUT_S
        while not got or got[-1].offset() < high - 1:
            assert time.monotonic() < deadline, f"read {len(got)} records up to {high}"
            for m in c.consume(num_messages=10000, timeout=0.5):
                if m.error() is None:
                    got.append(m)
                else:
                    assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
        return got
    finally:
        c.close()


def topic_partitions(bootstrap: str) -> dict[str, int]:
    md = admin(bootstrap).list_topics(timeout=10)
    return {name: len(t.partitions) for name, t in md.topics.items()}


def topic_config(bootstrap: str, topic: str) -> dict[str, str]:
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    client = admin(bootstrap)
    result = client.describe_configs([resource], request_timeout=15)[resource]
    return {k: v.value for k, v in result.result(timeout=TIMEOUT_S).items()}


def assert_dense(msgs: list[Message]) -> None:
    """Offsets are consecutive (no gap, no repeat) from the first record on."""
    offsets = [m.offset() for m in msgs]
    start = offsets[0] if offsets else 0
    assert offsets == list(range(start, start + len(offsets)))


# ----------------------------------------------------------------------------- tests
def test_clean_restart_keeps_topics_configs_and_data(node: BrokerProcess) -> None:
    bs = node.bootstrap
    multi, configured = unique_topic("rs-multi"), unique_topic("rs-conf")
    create_topic(bs, multi, 3)
    create_topic(bs, configured, 1, **{"retention.ms": "123456789", "cleanup.policy": "delete"})
    p = producer(bs)
    expected: dict[tuple[str, int], list[bytes]] = {}
    for partition in range(3):
        values = [b"m-%d-%d" % (partition, i) for i in range(200)]
        assert produce_acked(p, multi, partition, values) == list(range(200))
        expected[(multi, partition)] = values
    values = [b"c-%d" % i for i in range(50)]
    produce_acked(p, configured, 0, values)
    expected[(configured, 0)] = values

    node.restart(clean=True)  # asserts exit code 0

    parts = topic_partitions(bs)
    assert parts.get(multi) == 3 and parts.get(configured) == 1
    assert topic_config(bs, configured)["retention.ms"] == "123456789"
    for (topic, partition), values in expected.items():
        msgs = read_all(bs, topic, partition)
        assert [m.value() for m in msgs] == values
        assert_dense(msgs)

    # appends continue after the recovered end, on a fresh producer
    assert produce_acked(producer(bs), multi, 1, [b"after"]) == [200]
    assert read_all(bs, multi, 1)[-1].value() == b"after"


def test_kill9_restart_keeps_acknowledged_data(node: BrokerProcess) -> None:
    bs = node.bootstrap
    topic = unique_topic("rs-kill")
    create_topic(bs, topic, 2, **{"retention.ms": "987654321"})
    p = producer(bs, **{"compression.type": "lz4"})
    first = [b"first-%d" % i for i in range(3000)]
    assert produce_acked(p, topic, 0, first) == list(range(3000))
    assert produce_acked(p, topic, 1, [b"p1"]) == [0]

    node.kill()
    node.start()

    assert topic_partitions(bs).get(topic) == 2
    assert topic_config(bs, topic)["retention.ms"] == "987654321"
    assert [m.value() for m in read_all(bs, topic, 0)] == first
    assert [m.value() for m in read_all(bs, topic, 1)] == [b"p1"]

    # a second crash right after more appends; offsets continue, nothing is lost
    second = [b"second-%d" % i for i in range(500)]
    assert produce_acked(producer(bs), topic, 0, second) == list(range(3000, 3500))
    node.kill()
    node.start()
    msgs = read_all(bs, topic, 0)
    assert [m.value() for m in msgs] == first + second
    assert_dense(msgs)


@pytest.mark.parametrize("how", ["kill", "clean"])
def test_restart_under_load_keeps_every_acknowledged_record(node: BrokerProcess, how: str) -> None:
    """SIGKILL, or SIGTERM (which must still exit 0 with busy connections), while a
    producer streams: every acked record is found at its acked offset."""
    bs = node.bootstrap
    topic = unique_topic(f"rs-load-{how}")
    create_topic(bs, topic, 1)
    acked: dict[int, bytes] = {}
    failed = 0
    lock = threading.Lock()
    stop = threading.Event()
    # No idempotence here: a retry after the crash may legitimately duplicate an
    # unacknowledged record; what must hold is that acknowledged ones are all there.
    p = producer(bs, **{"linger.ms": 2, "message.timeout.ms": 20000, "enable.idempotence": False})

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        nonlocal failed
        with lock:
            if err is None:
                acked[msg.offset()] = msg.value()
            else:
                failed += 1

    def produce_loop() -> None:
        i = 0
        while not stop.is_set():
            try:
                p.produce(topic, value=b"load-%08d" % i, partition=0, on_delivery=on_delivery)
                i += 1
            except BufferError:
                pass
            p.poll(0.001 if i % 100 else 0.01)

    thread = threading.Thread(target=produce_loop, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while len(acked) < 5000:
            assert time.monotonic() < deadline, f"only {len(acked)} acks before the crash"
            time.sleep(0.01)
        if how == "kill":
            node.kill()
        else:
            node.stop()  # asserts exit code 0
        acked_at_kill = len(acked)
        time.sleep(0.5)  # the producer keeps trying against a dead broker
        node.start()
        deadline = time.monotonic() + TIMEOUT_S
        while len(acked) < acked_at_kill + 2000:
            assert time.monotonic() < deadline, "producer made no progress after restart"
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert p.flush(TIMEOUT_S) == 0

    msgs = read_all(bs, topic, 0)
    assert_dense(msgs)
    log = {m.offset(): m.value() for m in msgs}
    missing = [o for o, v in acked.items() if log.get(o) != v]
    assert not missing, f"{len(missing)} acknowledged records lost or moved, e.g. {missing[:5]}"


@pytest.mark.parametrize("how", ["clean", "kill"])
def test_idempotent_producer_across_restart_has_no_duplicates(
    node: BrokerProcess, how: str
) -> None:
    """An idempotent producer streaming through a restart (SIGTERM or SIGKILL): each
    record exactly once, in order — the broker's producer state survives the restart."""
    bs = node.bootstrap
    topic = unique_topic("rs-idem")
    create_topic(bs, topic, 1)
    errors: list[KafkaError] = []
    p = producer(bs, **{"enable.idempotence": True, "linger.ms": 2, "message.timeout.ms": 25000})

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            errors.append(err)

    total = 20_000
    killed = False
    for i in range(total):
        while True:
            try:
                p.produce(topic, value=b"idem-%08d" % i, partition=0, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.05)
        if i % 200 == 0:
            p.poll(0)
        if i == total // 2:
            node.restart(clean=how == "clean")
            killed = True
    assert killed
    assert p.flush(TIMEOUT_S) == 0
    assert not errors, f"delivery errors: {errors[:5]}"

    values = [m.value() for m in read_all(bs, topic, 0)]
    assert len(values) == len(set(values)), "duplicates in the log"
    assert values == [b"idem-%08d" % i for i in range(total)]


def test_kill9_restart_with_many_topics_and_partitions(node: BrokerProcess) -> None:
    """30 topics x 3 partitions, a few acked records each, then kill -9: every log is
    recovered with its records and end offset."""
    bs = node.bootstrap
    names = [unique_topic(f"rs-many{i:02d}") for i in range(30)]
    client = admin(bs)
    futures = client.create_topics([NewTopic(n, 3, 1) for n in names], request_timeout=30)
    for f in futures.values():
        f.result(timeout=TIMEOUT_S)
    p = producer(bs, **{"linger.ms": 20})
    for n in names:
        for part in range(3):
            for i in range(5):
                p.produce(n, value=b"%s/%d/%d" % (n.encode(), part, i), partition=part)
    assert p.flush(TIMEOUT_S) == 0

    node.kill()
    node.start()

    listed = topic_partitions(bs)
    assert {n: listed.get(n) for n in names} == {n: 3 for n in names}
    c = Consumer({"bootstrap.servers": bs, "group.id": f"assign-only-{uuid.uuid4().hex[:8]}"})
    try:
        marks = {
            (n, part): c.get_watermark_offsets(TopicPartition(n, part), timeout=10)
            for n in names
            for part in range(3)
        }
    finally:
        c.close()
    assert set(marks.values()) == {(0, 5)}, {k: v for k, v in marks.items() if v != (0, 5)}
    for n in (names[0], names[-1]):
        assert [m.value() for m in read_all(bs, n, 2)] == [
            b"%s/2/%d" % (n.encode(), i) for i in range(5)
        ]
