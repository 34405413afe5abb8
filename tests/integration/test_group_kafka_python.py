"""Consumer groups with kafka-python 3.x against a real Strom broker."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.structs import OffsetAndMetadata
from test_group_support import (
    CHILD_KAFKA_PYTHON,
    GROUP_OVERRIDES,
    SESSION_MS,
    ChildConsumer,
    create_topic,
    is_split,
    produce,
    wait_until,
)

from tests.support.fixtures import unique_topic

BROKER_OVERRIDES = GROUP_OVERRIDES
pytestmark = pytest.mark.timeout(90)


def _subscribed(bootstrap: str, group: str, topic: str) -> KafkaConsumer:
    """A consumer that knows ``topic``'s partitions before it subscribes: kafka-python
    3.0.12 otherwise may join before its first metadata answer, rebalance a second time
    once the metadata arrives, and then never fetch (a client-side stall, 2 runs in 12,
    on earlier Strom versions as well)."""
    c = _consumer(bootstrap, group)
    deadline = time.monotonic() + 20
    while not c.partitions_for_topic(topic):
        assert time.monotonic() < deadline, f"no metadata for {topic}"
        time.sleep(0.05)
    c.subscribe([topic])
    return c


def _consumer(bootstrap: str, group: str, *topics: str, **extra: object) -> KafkaConsumer:
    conf: dict[str, object] = {
        "bootstrap_servers": bootstrap,
        "group_id": group,
        "session_timeout_ms": SESSION_MS,
        "heartbeat_interval_ms": 300,
        "auto_offset_reset": "earliest",
        "enable_auto_commit": False,
        **extra,
    }
    return KafkaConsumer(*topics, **conf)


class Poller:
    """One KafkaConsumer polled in a tight loop by its own thread, as applications do.

    kafka-python 3.0.12 loses a JoinGroup/SyncGroup round that outlives the poll() call
    which started it (a client-side race: on the next poll, need_rejoin() is checked
    before the finished round is collected, so its assignment is never applied, or a new
    round starts and the group rebalances forever). Hence one thread per consumer and a
    poll timeout far above a rebalance round trip. Only this thread touches the consumer
    until ``stop()``; ``parts`` is its last assignment.
    """

    def __init__(self, consumer: KafkaConsumer) -> None:
        self.consumer = consumer
        self.parts: list[int] = []
        self.generation = -1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.consumer.poll(timeout_ms=1000)
            self.parts = sorted(tp.partition for tp in self.consumer.assignment())
            self.generation = self.consumer._coordinator._generation.generation_id

    def stop(self) -> KafkaConsumer:
        self._stop.set()
        self._thread.join(10)
        return self.consumer

    def close(self) -> None:
        if not self._stop.is_set():
            self.stop()
        self.consumer.close(autocommit=False)


@pytest.fixture
def pollers() -> Iterator[list[Poller]]:
    made: list[Poller] = []
    yield made
    for p in made:
        p.close()


def _parts(c: KafkaConsumer) -> list[int]:
    return sorted(tp.partition for tp in c.assignment())


def test_members_split_leave_and_kill(bootstrap: str, pollers: list[Poller]) -> None:
    """2 then 3 members split 6 partitions; a clean leave and a killed process are taken
    over by the survivors."""
    topic, group = unique_topic("kp-split"), unique_topic("g")
    create_topic(bootstrap, topic, 6)
    for _ in range(2):
        pollers.append(Poller(_consumer(bootstrap, group, topic)))

    def split(extra: list[list[int]], n: int) -> bool:
        views = [p.parts for p in pollers] + extra
        return len(views) == n and is_split(views, 6)

    wait_until(lambda: split([], 2), 30, what="2-way split")
    child = ChildConsumer(CHILD_KAFKA_PYTHON, [bootstrap, group, topic, str(SESSION_MS)])
    try:
        wait_until(lambda: split([child.current()], 3), 30, what="3-way split")
        assert sorted(len(p.parts) for p in pollers) == [2, 2]
        leaver = pollers.pop()
        leaver.close()  # sends LeaveGroup
        t0 = time.monotonic()
        wait_until(lambda: split([child.current()], 2), 15, what="after leave")
        clean_s = time.monotonic() - t0
        child.kill()
        t0 = time.monotonic()
        wait_until(lambda: split([], 1), SESSION_MS / 1000 + 10, what="after kill")
        killed_s = time.monotonic() - t0
        print(f"kafka-python takeover: leave {clean_s:.2f} s, kill {killed_s:.2f} s")
        assert killed_s < SESSION_MS / 1000 + 5
    finally:
        child.close()


def test_commit_restart_resume_and_broker_kill9(fresh_broker) -> None:  # type: ignore[no-untyped-def]
    bootstrap = fresh_broker.bootstrap
    topic, group = unique_topic("kp-resume"), unique_topic("g")
    create_topic(bootstrap, topic, 2)
    produce(bootstrap, topic, 20, 2)
    c = _subscribed(bootstrap, group, topic)
    got = 0
    deadline = time.monotonic() + 20
    while got < 20:
        assert time.monotonic() < deadline
        got += sum(len(v) for v in c.poll(timeout_ms=200).values())
    c.commit(
        {
            TopicPartition(topic, 0): OffsetAndMetadata(3, "m0", -1),
            TopicPartition(topic, 1): OffsetAndMetadata(6, "m1", -1),
        }
    )
    c.close(autocommit=False)
    c2 = _subscribed(bootstrap, group, topic)
    try:
        first: dict[int, int] = {}
        deadline = time.monotonic() + 20
        while len(first) < 2:
            assert time.monotonic() < deadline
            for tp, records in c2.poll(timeout_ms=200).items():
                first.setdefault(tp.partition, records[0].offset)
        assert first == {0: 3, 1: 6}
    finally:
        c2.close(autocommit=False)
    fresh_broker.restart(clean=False)  # kill -9
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets(group)[group]
        assert {tp.partition: (o.offset, o.metadata) for tp, o in offsets.items()} == {
            0: (3, "m0"),
            1: (6, "m1"),
        }
    finally:
        admin.close()


def test_static_membership_round_trip(bootstrap: str, pollers: list[Poller]) -> None:
    topic, group = unique_topic("kp-static"), unique_topic("g")
    create_topic(bootstrap, topic, 4)
    a = Poller(_consumer(bootstrap, group, topic, group_instance_id="a", session_timeout_ms=10000))
    b = Poller(_consumer(bootstrap, group, topic, group_instance_id="b", session_timeout_ms=10000))
    pollers.extend([a, b])
    wait_until(lambda: is_split([a.parts, b.parts], 4), 30, what="split")
    wait_until(lambda: a.generation == b.generation, 10, what="same generation")
    gen_before = a.generation
    before_b = b.parts
    pollers.remove(b)
    b.close()  # a static member does not leave the group on close
    b2 = Poller(_consumer(bootstrap, group, topic, group_instance_id="b", session_timeout_ms=10000))
    pollers.append(b2)
    wait_until(lambda: b2.parts == before_b, 20, what="same assignment back")
    time.sleep(0.5)  # a rebalance (which must not happen) would show up meanwhile
    assert a.generation == gen_before, "a rebalance happened"
    assert b2.generation == gen_before


def test_admin_list_describe_delete(bootstrap: str, pollers: list[Poller]) -> None:
    topic, active, idle = unique_topic("kp-admin"), unique_topic("act"), unique_topic("idle")
    create_topic(bootstrap, topic, 2)
    c = Poller(_consumer(bootstrap, active, topic, client_id="kp-admin-client"))
    pollers.append(c)
    wait_until(lambda: c.parts == [0, 1], 20, what="assignment")
    simple = _consumer(bootstrap, idle)
    simple.assign([TopicPartition(topic, 0)])
    simple.commit({TopicPartition(topic, 0): OffsetAndMetadata(1, "", -1)})
    simple.close(autocommit=False)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        groups = {g["group_id"]: g for g in admin.list_groups()}
        assert groups[active]["protocol_type"] == "consumer"
        assert idle in groups
        empties = {g["group_id"] for g in admin.list_groups(states_filter=["Empty"])}
        assert idle in empties and active not in empties
        described = admin.describe_groups([active])[active]
        assert described["group_state"] == "Stable"
        (member,) = described["members"]
        assert member["client_id"] == "kp-admin-client"
        both = admin.list_group_offsets([active, idle])  # OffsetFetch v8: several groups
        assert {tp.partition: o.offset for tp, o in both[idle].items()} == {0: 1}
        assert both[active] == {}
        result = admin.delete_groups([active, idle])
        assert result == {active: "NonEmptyGroupError", idle: "OK"}
        assert idle not in {g["group_id"] for g in admin.list_groups()}
    finally:
        admin.close()
