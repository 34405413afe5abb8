"""KIP-848 consumer groups with librdkafka (confluent-kafka, ``group.protocol=consumer``)
against a real Strom broker, plus raw ConsumerGroupHeartbeat/ConsumerGroupDescribe.

The broker runs with small consumer-group timeouts (session 3 s, heartbeat 300 ms) so a
killed member's partitions move quickly. Each librdkafka consumer polls in its own thread
and records every message and every (incremental) assign/revoke callback.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka import Consumer, ConsumerGroupType, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from test_group_support import ChildConsumer, create_topic, produce, wait_until, wire

from tests.support.fixtures import unique_topic

SESSION_MS = 3000
BROKER_OVERRIDES = {
    "group.initial.rebalance.delay.ms": "0",
    "group.consumer.session.timeout.ms": str(SESSION_MS),
    "group.consumer.min.session.timeout.ms": "1000",
    "group.consumer.heartbeat.interval.ms": "300",
    "group.consumer.min.heartbeat.interval.ms": "100",
    "group.min.session.timeout.ms": "1000",  # for the classic members below
}
pytestmark = pytest.mark.timeout(120)

CHILD = """
import json, sys
from confluent_kafka import Consumer
bootstrap, group, topic = sys.argv[1], sys.argv[2], sys.argv[3]
c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": "consumer",
              "auto.offset.reset": "earliest"})
last = None
c.subscribe([topic])
while True:
    c.poll(0.1)
    now = sorted(tp.partition for tp in c.assignment())
    if now != last:
        print(json.dumps(now), flush=True)
        last = now
"""


@dataclass
class Member:
    """A ``group.protocol=consumer`` librdkafka consumer polling in its own thread."""

    bootstrap: str
    group: str
    topics: list[str]
    extra: dict[str, Any] = field(default_factory=dict)
    records: list[tuple[float, str, int, int]] = field(default_factory=list)
    events: list[tuple[float, str, list[tuple[str, int]]]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.consumer = Consumer({
            "bootstrap.servers": self.bootstrap, "group.id": self.group,
            "group.protocol": "consumer", "auto.offset.reset": "earliest",
            "enable.auto.commit": False, **self.extra,
        })
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._commits: list[tuple[list[TopicPartition], threading.Event]] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def commit(self, offsets: list[TopicPartition], timeout: float = 15) -> None:
        """A synchronous commit made by the polling thread (one thread per consumer)."""
        done = threading.Event()
        with self._lock:
            self._commits.append((offsets, done))
        assert done.wait(timeout), "commit did not complete"

    def _note(self, kind: str, parts: list[TopicPartition]) -> None:
        with self._lock:
            self.events.append((time.monotonic(), kind, [(p.topic, p.partition) for p in parts]))

    def _run(self) -> None:
        c = self.consumer
        c.subscribe(self.topics, on_assign=lambda _c, ps: self._note("assign", ps),
                    on_revoke=lambda _c, ps: self._note("revoke", ps))
        while not self._stop.is_set():
            with self._lock:
                commits, self._commits = self._commits, []
            for offsets, done in commits:
                c.commit(offsets=offsets, asynchronous=False)
                done.set()
            m = c.poll(0.05)
            if m is None:
                continue
            if m.error():
                self.errors.append(str(m.error()))
                continue
            with self._lock:
                self.records.append((time.monotonic(), m.topic(), m.partition(), m.offset()))
        c.close()

    def assignment(self) -> set[tuple[str, int]]:
        """What the callbacks say this member owns now."""
        owned: set[tuple[str, int]] = set()
        with self._lock:
            for _, kind, parts in self.events:
                owned = owned | set(parts) if kind == "assign" else owned - set(parts)
        return owned

    def partitions(self, topic: str) -> set[int]:
        return {p for t, p in self.assignment() if t == topic}

    def received(self, since: float = 0.0, until: float = float("inf")) -> list[tuple]:
        with self._lock:
            return [r for r in self.records if since <= r[0] < until]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)


@pytest.fixture
def members() -> Iterator[list[Member]]:
    made: list[Member] = []
    yield made
    for m in made:
        m.stop()


class Load:
    """Produces to every partition of ``topic`` continuously (round robin, ~300/s)."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 2})
        self.topic, self.partitions = topic, partitions
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            self.producer.produce(self.topic, value=b"%d" % i, partition=i % self.partitions)
            self.producer.poll(0)
            i += 1
            time.sleep(0.003)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.producer.flush(10)


def split(ms: list[Member], topic: str, partitions: int) -> bool:
    """Every partition owned once, balanced (sizes differ by at most one)."""
    sets = [m.partitions(topic) for m in ms]
    owned = [p for s in sets for p in s]
    sizes = [len(s) for s in sets]
    return (len(owned) == len(set(owned)) == partitions and min(sizes) >= 1
            and max(sizes) - min(sizes) <= 1)


def max_gap(times: list[float], start: float, end: float) -> float:
    """Longest stretch in [start, end] without a record."""
    points = [start] + [t for t in times if start <= t <= end] + [end]
    return max(b - a for a, b in zip(points, points[1:], strict=False))


def test_three_members_and_a_join_and_leave_that_do_not_stop_the_others(
    bootstrap: str, members: list[Member]
) -> None:
    topic, group = unique_topic("cg"), unique_topic("g")
    create_topic(bootstrap, topic, 6)
    load = Load(bootstrap, topic, 6)
    try:
        for _ in range(3):
            members.append(Member(bootstrap, group, [topic]))
        wait_until(lambda: split(members, topic, 6), 30, what="3 members x 2 partitions")
        assert sorted(len(m.partitions(topic)) for m in members) == [2, 2, 2]
        # the broker's view: ConsumerGroupDescribe through the admin client
        admin = AdminClient({"bootstrap.servers": bootstrap})
        desc = admin.describe_consumer_groups([group])[group].result(15)
        assert desc.type == ConsumerGroupType.CONSUMER and len(desc.members) == 3
        # a fourth member joins, then leaves: the others keep what they keep
        before = {id(m): m.partitions(topic) for m in members}
        joined_at = time.monotonic()
        members.append(Member(bootstrap, group, [topic]))
        wait_until(lambda: split(members, topic, 6), 30, what="4 members")
        joined_done = time.monotonic()
        time.sleep(0.5)
        newcomer = members.pop()
        left_at = time.monotonic()
        newcomer.stop()
        wait_until(lambda: split(members, topic, 6), 30, what="back to 3 members")
        left_done = time.monotonic()
        time.sleep(0.5)
    finally:
        load.stop()
    pauses = []
    for m in members:
        revoked = {p for t0, kind, parts in m.events if kind == "revoke" and t0 >= joined_at
                   for t, p in parts if t == topic}
        kept = before[id(m)] - revoked  # incremental: only what moved was revoked
        assert kept, f"an old member lost all its partitions: {before[id(m)]} {m.events}"
        times = [t for t, _, p, _ in m.received() if p in kept]
        # records of kept partitions arrived while the group reconciled
        assert m.received(joined_at, joined_done) and m.received(left_at, left_done)
        pauses.append(max(max_gap(times, joined_at, joined_done),
                          max_gap(times, left_at, left_done)))
    print(f"\nKIP-848 join {joined_done - joined_at:.2f}s, leave {left_done - left_at:.2f}s; "
          f"longest pause on kept partitions: {max(pauses) * 1000:.0f} ms")


def test_killed_member_partitions_move_after_the_session_timeout(
    bootstrap: str, members: list[Member]
) -> None:
    topic, group = unique_topic("cgkill"), unique_topic("g")
    create_topic(bootstrap, topic, 6)
    child = ChildConsumer(CHILD, [bootstrap, group, topic])
    try:
        members.append(Member(bootstrap, group, [topic]))
        wait_until(lambda: child.current() and members[0].partitions(topic)
                   and len(child.current()) + len(members[0].partitions(topic)) == 6,
                   30, what="split with the child")
        killed = time.monotonic()
        child.kill()
        wait_until(lambda: members[0].partitions(topic) == set(range(6)), 30,
                   what="survivor owns all partitions")
        took = time.monotonic() - killed
        # not before the session timeout: a killed member sends no leave
        assert took >= SESSION_MS / 1000 * 0.8, took
        print(f"\nkilled member's partitions reassigned after {took:.2f}s "
              f"(session timeout {SESSION_MS} ms)")
    finally:
        child.close()


def test_regex_subscription_picks_up_a_new_topic(
    bootstrap: str, members: list[Member]
) -> None:
    prefix = f"rx{uuid.uuid4().hex[:8]}"
    first, second = f"{prefix}-a", f"{prefix}-b"
    create_topic(bootstrap, first, 2)
    create_topic(bootstrap, unique_topic("other"), 1)
    members.append(Member(bootstrap, unique_topic("g"), [f"^{prefix}.*"]))
    m = members[0]
    wait_until(lambda: m.partitions(first) == {0, 1}, 30, what="regex matches the first topic")
    assert {t for t, _ in m.assignment()} == {first}
    create_topic(bootstrap, second, 3)
    wait_until(lambda: m.partitions(second) == {0, 1, 2}, 30, what="the new topic is assigned")
    produce(bootstrap, second, 3, 3)
    wait_until(lambda: len([r for r in m.received() if r[1] == second]) == 3, 30,
               what="records of the new topic")


def test_offsets_committed_by_members_are_resumed_by_a_new_member(
    bootstrap: str, members: list[Member]
) -> None:
    topic, group = unique_topic("cgoff"), unique_topic("g")
    create_topic(bootstrap, topic, 2)
    produce(bootstrap, topic, 20, 2)
    first = Member(bootstrap, group, [topic])
    members.append(first)
    wait_until(lambda: len(first.received()) == 20, 30, what="20 records")
    # commit offset 4 of each partition (records 0-3 processed)
    first.commit([TopicPartition(topic, p, 4) for p in (0, 1)])
    admin = AdminClient({"bootstrap.servers": bootstrap})
    listed = admin.list_consumer_groups().result(15)
    kinds = {g.group_id: g.type for g in listed.valid}
    assert kinds.get(group) == ConsumerGroupType.CONSUMER
    members.remove(first)
    first.stop()
    second = Member(bootstrap, group, [topic])
    members.append(second)
    wait_until(lambda: len(second.received()) == 12, 30, what="the 12 uncommitted records")
    time.sleep(0.3)
    got = sorted((p, o) for _, _, p, o in second.received())
    assert got == [(p, o) for p in (0, 1) for o in range(4, 10)]


# ---------------------------------------------------------------------- raw protocol


def _heartbeat(c: Any, version: int = 1, **kw: Any) -> Any:
    from kio.schema.consumer_group_heartbeat.v0.request import (
        ConsumerGroupHeartbeatRequest as V0,
    )
    from kio.schema.consumer_group_heartbeat.v1.request import (
        ConsumerGroupHeartbeatRequest as V1,
    )
    from kio.static.primitive import i32, i32Timedelta

    fields: dict[str, Any] = {"member_epoch": i32(kw.pop("member_epoch", 0)),
                              "topic_partitions": kw.pop("topic_partitions", ()),
                              "rebalance_timeout": i32Timedelta.parse(
                                  __import__("datetime").timedelta(
                                      milliseconds=kw.pop("rebalance_ms", 30_000)))}
    fields.update(kw)
    return c.request((V1 if version == 1 else V0)(**fields))


def test_raw_heartbeats_epochs_errors_and_a_restart_that_keeps_them(fresh_broker) -> None:  # type: ignore[no-untyped-def]
    from kio.schema.consumer_group_describe.v1.request import ConsumerGroupDescribeRequest
    from kio.schema.describe_groups.v6.request import DescribeGroupsRequest
    from kio.schema.errors import ErrorCode as E

    b = fresh_broker
    topic, group = unique_topic("raw"), unique_topic("g")
    create_topic(b.bootstrap, topic, 4)
    with wire(b.bootstrap) as c:
        bad = _heartbeat(c, group_id=group, member_id="", subscribed_topic_names=(topic,))
        assert bad.error_code == E.invalid_request  # v1: the client names itself
        # the first group request creates __consumer_offsets: retry while it is not there
        r = wait_until(lambda: (lambda x: x if x.error_code != E.coordinator_not_available
                                else None)(_heartbeat(c, group_id=group, member_id="m-1",
                                                      subscribed_topic_names=(topic,))),
                       15, interval=0.2, what="the coordinator")
        assert r.error_code == E.none and r.member_epoch == 1 and r.member_id == "m-1"
        owned = r.assignment.topic_partitions
        assert [sorted(tp.partitions) for tp in owned] == [[0, 1, 2, 3]]
        v0 = _heartbeat(c, version=0, group_id=group, member_id="",
                        subscribed_topic_names=(topic,))
        assert v0.error_code == E.none and v0.member_id  # v0: the coordinator names it
        assert _heartbeat(c, group_id=group, member_id="m-1", member_epoch=9,
                          topic_partitions=None).error_code == E.fenced_member_epoch
        regex = _heartbeat(c, group_id=group, member_id="m-2", subscribed_topic_regex="(")
        assert regex.error_code == E.invalid_regular_expression
        described = c.request(DescribeGroupsRequest(groups=(group,),
                                                     include_authorized_operations=False))
        assert described.groups[0].error_code == E.group_id_not_found
        assert described.groups[0].error_message == f"Group {group} is not a classic group."
        before = c.request(ConsumerGroupDescribeRequest(group_ids=(group,),
                                                        include_authorized_operations=False))
    g = before.groups[0]
    assert g.error_code == E.none and g.group_epoch == 2 and len(g.members) == 2
    b.stop()
    b.start()
    with wire(b.bootstrap) as c:
        after = wait_until(lambda: (lambda d: d if d.groups[0].error_code == E.none else None)(
            c.request(ConsumerGroupDescribeRequest(group_ids=(group,),
                                                   include_authorized_operations=False))),
            15, what="the group after the restart")
        ga = after.groups[0]
        assert (ga.group_epoch, ga.assignment_epoch, ga.group_state) == (
            g.group_epoch, g.assignment_epoch, g.group_state)
        assert sorted((m.member_id, m.member_epoch) for m in ga.members) == sorted(
            (m.member_id, m.member_epoch) for m in g.members)
        m1 = next(m for m in ga.members if m.member_id == "m-1")
        # m-1 heartbeats at its epoch as if nothing happened
        r = _heartbeat(c, group_id=group, member_id="m-1", member_epoch=m1.member_epoch,
                       topic_partitions=None)
        assert r.error_code == E.none and r.member_epoch == m1.member_epoch


def test_consumer_protocol_is_not_advertised_when_disabled(broker_factory) -> None:  # type: ignore[no-untyped-def]
    from kio.schema.api_versions.v3.request import ApiVersionsRequest

    b = broker_factory({"group.coordinator.rebalance.protocols": "classic"})
    with wire(b.bootstrap) as c:
        keys = {k.api_key for k in c.request(ApiVersionsRequest(
            client_software_name="t", client_software_version="1")).api_keys}
    assert 11 in keys and not keys & {68, 69}
    print(json.dumps(sorted(keys)))


def test_static_member_restart_keeps_its_partitions_and_the_remote_assignor_is_used(
    broker_factory, members: list[Member]  # type: ignore[no-untyped-def]
) -> None:
    from kio.schema.consumer_group_describe.v1.request import ConsumerGroupDescribeRequest

    # a session long enough that the restart below never races it
    b = broker_factory({**BROKER_OVERRIDES, "group.consumer.session.timeout.ms": "20000"})
    topic, group = unique_topic("cgstatic"), unique_topic("g")
    create_topic(b.bootstrap, topic, 4)
    conf = {"group.remote.assignor": "range"}
    a = Member(b.bootstrap, group, [topic], {**conf, "group.instance.id": "i-a"})
    other = Member(b.bootstrap, group, [topic], {**conf, "group.instance.id": "i-b"})
    members.extend([a, other])
    wait_until(lambda: split(members, topic, 4), 30, what="2 static members x 2 partitions")
    kept = a.partitions(topic)

    def describe() -> Any:
        with wire(b.bootstrap) as c:
            return c.request(ConsumerGroupDescribeRequest(
                group_ids=(group,), include_authorized_operations=False)).groups[0]

    before = describe()
    assert before.assignor_name == "range"
    assert sorted(m.instance_id for m in before.members) == ["i-a", "i-b"]
    members.remove(a)
    restart = time.monotonic()
    a.stop()  # a static member's close keeps its partitions for it (member epoch -2)
    assert wait_until(lambda: [m.member_epoch for m in describe().members
                               if m.instance_id == "i-a"] == [-2], 15, what="epoch -2")
    again = Member(b.bootstrap, group, [topic], {**conf, "group.instance.id": "i-a"})
    members.append(again)
    wait_until(lambda: again.partitions(topic) == kept, 30, what="the same partitions back")
    after = describe()
    assert after.group_epoch == before.group_epoch  # no rebalance for the restart
    assert other.partitions(topic) == set(range(4)) - kept
    assert not [t for t, kind, parts in other.events
                if kind == "revoke" and parts and t >= restart]


def test_a_classic_kafka_python_member_joins_a_consumer_group(
    bootstrap: str, members: list[Member]
) -> None:
    from kio.schema.consumer_group_describe.v1.request import ConsumerGroupDescribeRequest
    from test_group_support import CHILD_KAFKA_PYTHON

    topic, group = unique_topic("cgmix"), unique_topic("g")
    create_topic(bootstrap, topic, 6)
    for _ in range(2):
        members.append(Member(bootstrap, group, [topic]))
    wait_until(lambda: split(members, topic, 6), 30, what="2 consumer-protocol members")
    classic = ChildConsumer(CHILD_KAFKA_PYTHON, [bootstrap, group, topic, "2000"])
    try:
        def balanced_with_child() -> bool:
            sets = [m.partitions(topic) for m in members] + [set(classic.current())]
            owned = [p for s in sets for p in s]
            sizes = [len(s) for s in sets]
            return (len(owned) == len(set(owned)) == 6 and min(sizes) >= 1
                    and max(sizes) - min(sizes) <= 1)

        # kafka-python: classic protocol, eager range assignor
        wait_until(balanced_with_child, 45, what="the classic member gets its share")
        # librdkafka on the classic protocol joins as well (range: a protocol the other
        # classic member supports, else INCONSISTENT_GROUP_PROTOCOL, as Kafka)
        members.append(Member(bootstrap, group, [topic], {
            "group.protocol": "classic", "partition.assignment.strategy": "range",
            "session.timeout.ms": 2000, "heartbeat.interval.ms": 300}))
        wait_until(balanced_with_child, 45, what="4 members of 2 protocols")
        with wire(bootstrap) as c:
            described = c.request(ConsumerGroupDescribeRequest(
                group_ids=(group,), include_authorized_operations=False)).groups[0]
        assert sorted(m.member_type for m in described.members) == [0, 0, 1, 1]
        classic.kill()  # no LeaveGroup: its own session timeout (2 s) removes it
        wait_until(lambda: split(members, topic, 6), 45, what="the 3 others share it all")
        # the consumer-protocol members leave: the group goes back to classic (online
        # downgrade) and the librdkafka classic member ends up with everything
        last = members[-1]
        for m in members[:-1]:
            m.stop()
        del members[:-1]
        wait_until(lambda: last.partitions(topic) == set(range(6)), 45,
                   what="the classic member owns every partition")
        admin = AdminClient({"bootstrap.servers": bootstrap})
        listed = admin.list_consumer_groups().result(15)
        kinds = {g.group_id: g.type for g in listed.valid}
        assert kinds.get(group) == ConsumerGroupType.CLASSIC, (kinds, listed.errors)
    finally:
        classic.close()


def test_a_live_classic_group_is_upgraded_when_a_consumer_protocol_member_joins(
    bootstrap: str, members: list[Member]
) -> None:
    from test_group_support import CHILD_KAFKA_PYTHON

    topic, group = unique_topic("cgup"), unique_topic("g")
    create_topic(bootstrap, topic, 6)
    classic = ChildConsumer(CHILD_KAFKA_PYTHON, [bootstrap, group, topic, "2000"])
    try:
        wait_until(lambda: classic.current() == list(range(6)), 45,
                   what="a Stable classic group")
        admin = AdminClient({"bootstrap.servers": bootstrap})

        def group_type() -> Any:
            listed = admin.list_consumer_groups().result(15)
            return {g.group_id: g.type for g in listed.valid}.get(group)

        assert group_type() == ConsumerGroupType.CLASSIC
        members.append(Member(bootstrap, group, [topic]))
        m = members[0]

        def shared() -> bool:
            mine, theirs = m.partitions(topic), set(classic.current())
            return len(mine) == len(theirs) == 3 and not mine & theirs

        wait_until(shared, 45, what="the classic member and the new one share the topic")
        assert group_type() == ConsumerGroupType.CONSUMER
    finally:
        classic.close()
