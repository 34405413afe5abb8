"""Consumer groups with confluent-kafka (librdkafka) against a real Strom broker."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, ConsumerGroupState, TopicPartition
from confluent_kafka.admin import AdminClient
from test_group_support import (
    CHILD_CONFLUENT,
    GROUP_OVERRIDES,
    SESSION_MS,
    ChildConsumer,
    assert_split,
    broker_view,
    create_topic,
    is_split,
    produce,
    wait_until,
)

from tests.support.fixtures import unique_topic

BROKER_OVERRIDES = GROUP_OVERRIDES
pytestmark = pytest.mark.timeout(90)


def _consumer(bootstrap: str, group: str, **extra: object) -> Consumer:
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "session.timeout.ms": SESSION_MS,
        "heartbeat.interval.ms": 300,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        **extra,
    }
    return Consumer(conf)


@pytest.fixture
def consumers() -> Iterator[list[Consumer]]:
    made: list[Consumer] = []
    yield made
    for c in made:
        with contextlib.suppress(RuntimeError):  # already closed by the test
            c.close()


def _parts(c: Consumer) -> list[int]:
    return sorted(tp.partition for tp in c.assignment())


def _poll_all(cs: list[Consumer]) -> None:
    for c in cs:
        c.poll(0.05)


def _wait_split(cs: list[Consumer], partitions: int, timeout: float = 20) -> None:
    def done() -> bool:
        _poll_all(cs)
        return is_split([_parts(c) for c in cs], partitions)

    wait_until(done, timeout, interval=0, what="an even split")


def test_two_then_three_members_split_six_partitions(
    bootstrap: str, consumers: list[Consumer]
) -> None:
    topic, group = unique_topic("split"), unique_topic("g")
    create_topic(bootstrap, topic, 6)
    for _ in range(2):
        consumers.append(_consumer(bootstrap, group))
        consumers[-1].subscribe([topic])
    _wait_split(consumers, 6)
    assert sorted(len(_parts(c)) for c in consumers) == [3, 3]
    consumers.append(_consumer(bootstrap, group))
    consumers[-1].subscribe([topic])
    _wait_split(consumers, 6)
    assert sorted(len(_parts(c)) for c in consumers) == [2, 2, 2]
    # the broker's own view agrees once the group is stable
    state, members = wait_until(
        lambda: (
            (_poll_all(consumers), broker_view(bootstrap, group, topic))[1]
            if broker_view(bootstrap, group, topic)[0] == "Stable"
            else None
        ),
        10,
        what="Stable",
    )
    assert len(members) == 3
    assert_split(members, 6)


def test_clean_leave_and_killed_member_are_taken_over(
    bootstrap: str, consumers: list[Consumer]
) -> None:
    topic, group = unique_topic("takeover"), unique_topic("g")
    create_topic(bootstrap, topic, 6)
    child = ChildConsumer(CHILD_CONFLUENT, [bootstrap, group, topic, str(SESSION_MS)])
    try:
        for _ in range(2):
            consumers.append(_consumer(bootstrap, group))
            consumers[-1].subscribe([topic])

        def split3() -> bool:
            _poll_all(consumers)
            return is_split([_parts(c) for c in consumers] + [child.current()], 6)

        wait_until(split3, 30, interval=0, what="3-way split")
        # clean leave: close() sends LeaveGroup, survivors rebalance at once
        leaver = consumers.pop()
        leaver.close()
        t0 = time.monotonic()

        def split2() -> bool:
            _poll_all(consumers)
            return is_split([_parts(consumers[0]), child.current()], 6)

        wait_until(split2, 15, interval=0, what="split after clean leave")
        clean_s = time.monotonic() - t0
        # a killed process never says goodbye: its session times out
        child.kill()
        t0 = time.monotonic()

        def alone() -> bool:
            _poll_all(consumers)
            return _parts(consumers[0]) == list(range(6))

        wait_until(alone, SESSION_MS / 1000 + 10, interval=0, what="takeover after kill")
        killed_s = time.monotonic() - t0
        print(
            f"takeover: clean leave {clean_s:.2f} s, killed member {killed_s:.2f} s "
            f"(session timeout {SESSION_MS / 1000} s)"
        )
        assert clean_s < SESSION_MS / 1000  # no session wait for a clean leave
        assert killed_s < SESSION_MS / 1000 + 5
    finally:
        child.close()


def test_commit_restart_and_resume_exactly_after_the_last_commit(bootstrap: str) -> None:
    topic, group = unique_topic("resume"), unique_topic("g")
    create_topic(bootstrap, topic, 1)
    produce(bootstrap, topic, 20, 1)
    c = _consumer(bootstrap, group)
    c.subscribe([topic])
    seen: list[int] = []
    while len(seen) < 7:
        m = c.poll(1.0)
        if m is not None and not m.error():
            seen.append(m.offset())
    assert seen == list(range(7))
    tp = TopicPartition(topic, 0, 7, metadata="checkpoint-7", leader_epoch=0)
    c.commit(offsets=[tp], asynchronous=False)
    committed = c.committed([TopicPartition(topic, 0)], timeout=10)[0]
    assert committed.offset == 7 and committed.metadata == "checkpoint-7"
    assert committed.leader_epoch == 0
    c.close()
    c2 = _consumer(bootstrap, group)
    try:
        c2.subscribe([topic])
        m = None
        deadline = time.monotonic() + 20
        while m is None or m.error():
            assert time.monotonic() < deadline
            m = c2.poll(1.0)
        assert m.offset() == 7 and m.value() == b"7"
    finally:
        c2.close()


def test_broker_kill9_keeps_group_offsets(fresh_broker) -> None:  # type: ignore[no-untyped-def]
    bootstrap = fresh_broker.bootstrap
    topic, group = unique_topic("kill9"), unique_topic("g")
    create_topic(bootstrap, topic, 3)
    produce(bootstrap, topic, 30, 3)
    c = _consumer(bootstrap, group)
    c.subscribe([topic])
    got = 0
    deadline = time.monotonic() + 20
    while got < 30:
        assert time.monotonic() < deadline
        m = c.poll(0.5)
        if m is not None and not m.error():
            got += 1
    offsets = [TopicPartition(topic, p, 4 + p) for p in range(3)]
    c.commit(offsets=offsets, asynchronous=False)
    c.close()
    fresh_broker.restart(clean=False)  # kill -9, same data dir and port
    c2 = _consumer(bootstrap, group)
    try:
        got_offsets = c2.committed([TopicPartition(topic, p) for p in range(3)], timeout=15)
        assert [(tp.partition, tp.offset) for tp in got_offsets] == [(0, 4), (1, 5), (2, 6)]
        # group metadata survived too: the group is known (Empty) after the restart
        desc = _describe(bootstrap, group)
        assert desc.state == ConsumerGroupState.EMPTY
        c2.subscribe([topic])
        first: dict[int, int] = {}
        deadline = time.monotonic() + 20
        while len(first) < 3:
            assert time.monotonic() < deadline
            m = c2.poll(0.5)
            if m is not None and not m.error():
                first.setdefault(m.partition(), m.offset())
        assert first == {0: 4, 1: 5, 2: 6}  # resumed exactly at the committed offsets
    finally:
        c2.close()


def test_static_membership_restart_keeps_assignment_without_rebalance(
    bootstrap: str, consumers: list[Consumer]
) -> None:
    topic, group = unique_topic("static"), unique_topic("g")
    create_topic(bootstrap, topic, 6)
    assigns: list[list[int]] = []
    a = _consumer(bootstrap, group, **{"group.instance.id": "a", "session.timeout.ms": 10000})
    a.subscribe([topic], on_assign=lambda c, ps: assigns.append([p.partition for p in ps]))
    b = _consumer(bootstrap, group, **{"group.instance.id": "b", "session.timeout.ms": 10000})
    b.subscribe([topic])
    consumers.extend([a, b])
    _wait_split([a, b], 6)
    wait_until(
        lambda: (_poll_all([a, b]), broker_view(bootstrap, group, topic))[1][0] == "Stable",
        10,
        what="Stable",
    )
    rebalances = len(assigns)
    before_b = _parts(b)
    b.close()  # static member: no LeaveGroup, the slot stays
    consumers.remove(b)
    b2 = _consumer(bootstrap, group, **{"group.instance.id": "b", "session.timeout.ms": 10000})
    consumers.append(b2)
    b2.subscribe([topic])

    def back() -> bool:
        _poll_all([a, b2])
        return _parts(b2) == before_b

    wait_until(back, 15, interval=0, what="static member's assignment back")
    for _ in range(10):
        _poll_all([a, b2])
    assert len(assigns) == rebalances, f"a saw a rebalance: {assigns}"
    assert is_split([_parts(a), _parts(b2)], 6)
    members = {m.group_instance_id for m in _describe(bootstrap, group).members}
    assert members == {"a", "b"}


def _describe(bootstrap: str, group: str):  # type: ignore[no-untyped-def]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    return admin.describe_consumer_groups([group])[group].result(10)


def test_cooperative_sticky_rebalances_incrementally(
    bootstrap: str, consumers: list[Consumer]
) -> None:
    topic, group = unique_topic("coop"), unique_topic("g")
    create_topic(bootstrap, topic, 6)
    events: list[tuple[str, list[int]]] = []

    def on_assign(c: Consumer, ps: list[TopicPartition]) -> None:
        events.append(("assign", sorted(p.partition for p in ps)))

    def on_revoke(c: Consumer, ps: list[TopicPartition]) -> None:
        events.append(("revoke", sorted(p.partition for p in ps)))

    a = _consumer(bootstrap, group, **{"partition.assignment.strategy": "cooperative-sticky"})
    a.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    consumers.append(a)
    wait_until(
        lambda: (a.poll(0.05), _parts(a) == list(range(6)))[1],
        20,
        interval=0,
        what="a owns everything",
    )
    b = _consumer(bootstrap, group, **{"partition.assignment.strategy": "cooperative-sticky"})
    b.subscribe([topic])
    consumers.append(b)
    _wait_split([a, b], 6)
    wait_until(
        lambda: (_poll_all([a, b]), len(_parts(a)) == 3 and len(_parts(b)) == 3)[1],
        20,
        interval=0,
        what="3/3",
    )
    # incremental: a only ever gave up the 3 partitions b took, never everything
    revoked = [ps for kind, ps in events if kind == "revoke"]
    assert revoked and all(len(ps) == 3 for ps in revoked), events
    assert sorted(set(range(6)) - set(revoked[0])) == _parts(a)
    assert _describe(bootstrap, group).partition_assignor == "cooperative-sticky"


def test_admin_list_describe_delete_groups(bootstrap: str, consumers: list[Consumer]) -> None:
    topic = unique_topic("admin")
    active, idle = unique_topic("active"), unique_topic("idle")
    create_topic(bootstrap, topic, 2)
    c = _consumer(bootstrap, active, **{"client.id": "admin-test-client"})
    c.subscribe([topic])
    consumers.append(c)
    wait_until(lambda: (c.poll(0.05), _parts(c) == [0, 1])[1], 20, interval=0, what="assign")
    wait_until(
        lambda: (c.poll(0.05), broker_view(bootstrap, active, topic))[1][0] == "Stable",
        10,
        what="Stable",
    )
    simple = _consumer(bootstrap, idle)
    simple.commit(offsets=[TopicPartition(topic, 0, 1)], asynchronous=False)
    simple.close()
    admin = AdminClient({"bootstrap.servers": bootstrap})
    listing = admin.list_consumer_groups(request_timeout=10).result()
    states = {g.group_id: g.state for g in listing.valid}
    assert states[active] == ConsumerGroupState.STABLE
    assert states[idle] == ConsumerGroupState.EMPTY
    only_empty = admin.list_consumer_groups(
        request_timeout=10, states={ConsumerGroupState.EMPTY}
    ).result()
    assert idle in {g.group_id for g in only_empty.valid}
    assert active not in {g.group_id for g in only_empty.valid}
    desc = admin.describe_consumer_groups([active])[active].result(10)
    assert desc.state == ConsumerGroupState.STABLE and desc.partition_assignor
    (member,) = desc.members
    assert member.client_id == "admin-test-client" and member.host.endswith("127.0.0.1")
    assert sorted(tp.partition for tp in member.assignment.topic_partitions) == [0, 1]
    # an active group cannot be deleted; an empty one can
    futures = admin.delete_consumer_groups([active, idle], request_timeout=10)
    with pytest.raises(Exception) as err:
        futures[active].result()
    assert "NON_EMPTY_GROUP" in str(err.value)
    futures[idle].result()
    listing = admin.list_consumer_groups(request_timeout=10).result()
    assert idle not in {g.group_id for g in listing.valid}
    offsets = admin.list_consumer_group_offsets([_group_offsets_request(idle, topic)])[
        idle
    ].result()
    assert [tp.offset for tp in offsets.topic_partitions] == [-1001]


def _group_offsets_request(group: str, topic: str):  # type: ignore[no-untyped-def]
    from confluent_kafka import ConsumerGroupTopicPartitions

    return ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0)])


def test_internal_topic_is_flagged_internal(bootstrap: str) -> None:
    from kio.schema.metadata.v5.request import MetadataRequest
    from test_group_support import wire

    create_topic(bootstrap, unique_topic("x"), 1)
    _describe(bootstrap, "any")  # FindCoordinator creates __consumer_offsets, as Kafka does
    with wire(bootstrap) as w:
        resp = w.request(MetadataRequest(topics=None, allow_auto_topic_creation=False))
    internal = {t.name: t.is_internal for t in resp.topics}
    assert internal.get("__consumer_offsets") is True
    assert len([t for t in resp.topics if t.name == "__consumer_offsets"][0].partitions) == 50
    assert not any(v for k, v in internal.items() if k != "__consumer_offsets")
    json.dumps(internal)
