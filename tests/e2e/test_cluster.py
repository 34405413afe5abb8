"""A real 3-node combined-mode cluster (processes on 127.0.0.1) driven by real clients.

- partitions of a 6-partition topic get leaders on all three brokers; confluent-kafka and
  kafka-python produce to and consume from every partition through ONE bootstrap address
  (consumer groups included: the coordinator is the leader of the group's
  ``__consumer_offsets`` partition); ``strom quorum describe`` prints the quorum;
- kill -9 of the active controller: a new one is elected, topic creation still works, and
  the killed node rejoins and catches up (DescribeQuorum lag 0, its Metadata shows the
  topic created while it was down);
- kill -9 of a broker: it is fenced, Metadata stops listing it, its RF-1 partitions are
  LEADER_NOT_AVAILABLE (not silently gone); restarted, they come back with their data;
  it was the coordinator of a group whose last member left just before the kill (the
  other nodes paused until the LeaveGroup was answered): the next coordinator has the
  group empty with its committed offsets, so a new member joins at once and reads on.

Every wait is bounded (``wait_until``); nothing sleeps as an assertion.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic

from broker.cluster.quorum_cli import describe
from broker.group.partitioner import partition_for
from net.wire import WireClient
from tests.support.broker import REPO_ROOT, BrokerProcess

pytestmark = pytest.mark.timeout(150)

FAST = {
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "300",
    "controller.quorum.election.timeout.ms": "500",
    "controller.quorum.fetch.timeout.ms": "1000",
    "controller.quorum.request.timeout.ms": "1000",
    "offsets.topic.num.partitions": "6",
    "group.initial.rebalance.delay.ms": "0",
    "num.partitions": "3",
}
#: replica.fetch.wait.max.ms of these clusters (Kafka's default; FAST keeps it)
REPLICA_FETCH_WAIT_S = 0.5


def free_ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def wait_until(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = cond()
        except (OSError, ValueError, AssertionError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def metadata(port: int, topics: list[str] | None = None) -> Any:
    """Metadata v12 from the broker on 127.0.0.1:``port`` (no auto-creation)."""
    request = MetadataRequest(
        topics=None if topics is None else tuple(
            MetadataRequestTopic(topic_id=None, name=t) for t in topics),
        allow_auto_topic_creation=False, include_topic_authorized_operations=False)
    with WireClient("127.0.0.1", port, timeout=5) as client:
        return client.request(request)


class Cluster:
    """Three combined-mode nodes (node ids 1..3) on free ports under ``workdir``."""

    def __init__(self, workdir: Path, nodes: int = 3, overrides: dict[str, str] | None = None):
        ports = free_ports(2 * nodes)
        self.client_ports = dict(zip(range(1, nodes + 1), ports[:nodes], strict=True))
        self.controller_ports = dict(zip(range(1, nodes + 1), ports[nodes:], strict=True))
        voters = ",".join(f"{i}@127.0.0.1:{p}" for i, p in self.controller_ports.items())
        self.nodes: dict[int, BrokerProcess] = {}
        for i in range(1, nodes + 1):
            self.nodes[i] = BrokerProcess(workdir / f"node-{i}", {
                "node.id": i,
                "process.roles": "broker,controller",
                "controller.quorum.voters": voters,
                "listeners": f"PLAINTEXT://127.0.0.1:{self.client_ports[i]},"
                             f"CONTROLLER://127.0.0.1:{self.controller_ports[i]}",
                **FAST, **(overrides or {}),
            })

    def start(self) -> Cluster:
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(lambda n: n.start(), self.nodes.values()))
        self.wait_brokers(set(self.nodes))
        return self

    def close(self) -> None:
        for node in self.nodes.values():
            node.close()

    def bootstrap(self, node_id: int) -> str:
        return f"127.0.0.1:{self.client_ports[node_id]}"

    def controller(self, node_id: int) -> str:
        return f"127.0.0.1:{self.controller_ports[node_id]}"

    def metadata(self, node_id: int, topics: list[str] | None = None) -> Any:
        return metadata(self.client_ports[node_id], topics)

    def brokers(self, node_id: int) -> set[int]:
        return {b.node_id for b in self.metadata(node_id).brokers}

    def wait_brokers(self, expected: set[int], via: int | None = None,
                     timeout: float = 30) -> None:
        via = via or min(i for i, n in self.nodes.items() if n.running)
        wait_until(lambda: self.brokers(via) == expected, timeout,
                   f"brokers {sorted(expected)} in Metadata from node {via}")

    def leaders(self, node_id: int, topic: str) -> dict[int, tuple[int, int]]:
        """partition → (leader id, error code) as node ``node_id`` reports them."""
        [t] = self.metadata(node_id, [topic]).topics
        assert int(t.error_code) == 0, f"{topic}: {t.error_code!r}"
        return {p.partition_index: (p.leader_id, int(p.error_code)) for p in t.partitions}

    def quorum(self, node_id: int) -> Any:
        return describe(self.controller(node_id), timeout=3)


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=20_000)
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()


def produce_confluent(bootstrap: str, topic: str, partitions: int, per_partition: int,
                      tag: str) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                         "message.timeout.ms": 20_000})
    errors: list[Any] = []
    for p in range(partitions):
        for i in range(per_partition):
            producer.produce(topic, value=f"{tag}-{p}-{i}".encode(), partition=p,
                             on_delivery=lambda err, msg: err and errors.append(err))
    assert producer.flush(30) == 0
    assert not errors, errors


def consume_kafka_python(bootstrap: str, topic: str, expected: int, *,
                         group: str | None = None,
                         close: Callable[[Any], None] | None = None) -> list[tuple[int, bytes]]:
    """Up to ``expected`` records (40 s at most) of every partition, through a group
    (offsets committed at the end) or assigned; ``close(consumer)`` replaces
    ``consumer.close()``."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=1000)
    try:
        if group is None:
            parts = [TopicPartition(topic, p)
                     for p in sorted(consumer.partitions_for_topic(topic) or ())]
            consumer.assign(parts)
            consumer.seek_to_beginning()
        else:
            consumer.subscribe([topic])
        got: list[tuple[int, bytes]] = []
        deadline = time.monotonic() + 40
        while len(got) < expected and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                got += [(r.partition, r.value) for r in records]
        if group is not None:
            consumer.commit()
        return got
    finally:
        (close or KafkaConsumer.close)(consumer)


def leave_then_kill(cluster: Cluster, coordinator: int) -> Callable[[Any], None]:
    """A ``close`` for ``consume_kafka_python``: the consumer leaves its group while every
    other node is paused (SIGSTOP: until their replica fetches in flight are answered,
    then at most 1 s more; under FAST's 3 s broker session timeout), and the group's
    coordinator is killed (-9) as soon as the LeaveGroup is answered: at once if it was
    answered while the others were paused (its record then exists on the coordinator
    alone), else after they resumed; then the consumer closes."""
    def close(consumer: Any) -> None:
        others = [n for i, n in cluster.nodes.items() if i != coordinator]
        left = threading.Event()

        class LeaveAnswered(logging.Handler):  # kafka-python logs the LeaveGroup answer
            def emit(self, record: logging.LogRecord) -> None:
                if record.getMessage().startswith("LeaveGroup request for group"):
                    left.set()

        handler, logger = LeaveAnswered(logging.INFO), logging.getLogger("kafka.coordinator")
        level = logger.level
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        # unsubscribe sends the LeaveGroup to the coordinator alone (close also waits on
        # fetches to the paused nodes)
        closer = threading.Thread(target=consumer.unsubscribe)
        for node in others:
            os.kill(node.pid, signal.SIGSTOP)
        try:
            # a replica fetch parked at the coordinator when they paused would carry the
            # leave's record into their socket buffers: let it be answered (empty) first
            time.sleep(REPLICA_FETCH_WAIT_S + 0.1)
            closer.start()
            if left.wait(1.0):
                cluster.nodes[coordinator].kill()
        finally:
            for node in others:
                os.kill(node.pid, signal.SIGCONT)
            closer.join(30)
            logger.removeHandler(handler)
            logger.setLevel(level)
        assert not closer.is_alive(), "the consumer's unsubscribe did not return"
        assert left.is_set(), "the consumer's LeaveGroup was not answered"
        if cluster.nodes[coordinator].running:
            cluster.nodes[coordinator].kill()
        consumer.close()

    return close


def test_partitions_spread_and_both_clients_use_one_bootstrap(cluster: Cluster) -> None:
    create_topic(cluster.bootstrap(1), "spread", 6)

    def spread() -> dict[int, tuple[int, int]] | None:
        now = cluster.leaders(2, "spread")
        ok = all(code == 0 for _, code in now.values()) and len(now) == 6
        return now if ok else None

    leaders = wait_until(spread, 10, "every partition of 'spread' with a leader")
    assert sorted(leaders) == list(range(6))
    assert {leader for leader, _ in leaders.values()} == {1, 2, 3}

    one = cluster.bootstrap(2)  # every client below knows only this address
    produce_confluent(one, "spread", 6, 20, "conf")

    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=one, acks="all")
    futures = [producer.send("spread", value=f"kp-{p}-{i}".encode(), partition=p)
               for p in range(6) for i in range(10)]
    for f in futures:
        f.get(timeout=20)
    producer.close()

    # a request for a partition led elsewhere is refused with NOT_LEADER_OR_FOLLOWER
    from kio.schema.list_offsets.v7.request import (
        ListOffsetsPartition,
        ListOffsetsRequest,
        ListOffsetsTopic,
    )

    elsewhere = next(p for p, (leader, _) in leaders.items() if leader != 2)
    with WireClient("127.0.0.1", cluster.client_ports[2], timeout=5) as client:
        resp = client.request(ListOffsetsRequest(
            replica_id=-1, isolation_level=0, topics=(ListOffsetsTopic(
                name="spread", partitions=(ListOffsetsPartition(
                    partition_index=elsewhere, current_leader_epoch=-1, timestamp=-1),)),)))
    assert resp.topics[0].partitions[0].error_code.name == "not_leader_or_follower"

    expected = 6 * 30
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": one, "group.id": "g-confluent",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe(["spread"])
    got: list[tuple[int, bytes]] = []
    deadline = time.monotonic() + 40
    while len(got) < expected and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            got.append((msg.partition(), msg.value()))
    consumer.commit(asynchronous=False)
    consumer.close()
    assert len(got) == expected
    assert {p for p, _ in got} == set(range(6))

    got_kp = consumer_group_kp = consume_kafka_python(one, "spread", expected, group="g-kp")
    assert sorted(v for _, v in got_kp) == sorted(v for _, v in got)
    assert len(consumer_group_kp) == expected

    # the group's coordinator is the leader of its __consumer_offsets partition; any other
    # broker answers group requests with NOT_COORDINATOR
    from kio.schema.find_coordinator.v4.request import FindCoordinatorRequest
    from kio.schema.heartbeat.v4.request import HeartbeatRequest

    with WireClient("127.0.0.1", cluster.client_ports[1], timeout=5) as client:
        [coord] = client.request(FindCoordinatorRequest(key_type=0,
                                                        coordinator_keys=("g-kp",))).coordinators
    assert int(coord.error_code) == 0 and coord.node_id in (1, 2, 3)
    other = next(b for b in (1, 2, 3) if b != coord.node_id)
    heartbeat = HeartbeatRequest(group_id="g-kp", generation_id=1, member_id="m",
                                 group_instance_id=None)
    with WireClient("127.0.0.1", cluster.client_ports[other], timeout=5) as client:
        assert client.request(heartbeat).error_code.name == "not_coordinator"
    with WireClient("127.0.0.1", coord.port, timeout=5) as client:
        assert client.request(heartbeat).error_code.name != "not_coordinator"

    out = subprocess.run(
        [sys.executable, "-m", "broker", "quorum", "describe", "--bootstrap-server",
         cluster.controller(3)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "LeaderId:" in out.stdout and "HighWatermark:" in out.stdout
    assert "CurrentVoters:         [1, 2, 3]" in out.stdout
    rows = [line.split() for line in out.stdout.splitlines() if line[:1].isdigit()]
    assert sorted(int(r[0]) for r in rows) == [1, 2, 3]


def test_active_controller_killed_new_one_elected_and_killed_node_catches_up(
        cluster: Cluster) -> None:
    first = wait_until(lambda: cluster.quorum(1), 10, "a quorum leader")
    assert int(first.error_code) == 0 and first.leader_id in (1, 2, 3)
    old_leader, old_epoch = first.leader_id, first.leader_epoch
    cluster.nodes[old_leader].kill()
    survivor = next(i for i in cluster.nodes if i != old_leader)

    def new_leader() -> Any:
        q = cluster.quorum(survivor)
        return q if int(q.error_code) == 0 and q.leader_id != old_leader else None

    q = wait_until(new_leader, 15, "a new quorum leader")
    assert q.leader_epoch > old_epoch
    # the new controller fences the dead node once its session runs out
    cluster.wait_brokers(set(cluster.nodes) - {old_leader}, via=survivor, timeout=15)

    create_topic(cluster.bootstrap(survivor), "after-failover", 4)
    wait_until(lambda: len(cluster.leaders(survivor, "after-failover")) == 4, 10,
               "'after-failover' in Metadata")

    cluster.nodes[old_leader].start()

    def caught_up() -> bool:
        q = cluster.quorum(survivor)
        ends = {r.replica_id: r.log_end_offset for r in q.current_voters}
        return int(q.error_code) == 0 and ends[old_leader] == ends[q.leader_id]

    wait_until(caught_up, 20, f"node {old_leader} to catch up with the quorum leader")
    wait_until(lambda: len(cluster.leaders(old_leader, "after-failover")) == 4, 10,
               f"node {old_leader} to serve the metadata created while it was down")
    cluster.wait_brokers({1, 2, 3}, via=old_leader)


def test_killed_broker_is_fenced_and_its_partitions_return_with_their_data(
        cluster: Cluster) -> None:
    create_topic(cluster.bootstrap(1), "fenced", 6)
    leaders = wait_until(
        lambda: (lambda now: now if all(c == 0 for _, c in now.values()) else None)(
            cluster.leaders(1, "fenced")), 10, "every partition of 'fenced' with a leader")
    produce_confluent(cluster.bootstrap(1), "fenced", 6, 10, "before")
    controller = cluster.quorum(1).leader_id
    victim = next(b for b in (1, 2, 3) if b != controller)
    victim_parts = {p for p, (leader, _) in leaders.items() if leader == victim}
    assert victim_parts, leaders
    # a consumer group coordinated by the victim commits everything before the crash
    consume_kafka_python(cluster.bootstrap(1), "fenced", 60, group="warm-up")
    offsets_leaders = cluster.leaders(1, "__consumer_offsets")
    group = next(g for g in (f"g-{i}" for i in range(1000))
                 if offsets_leaders[partition_for(g, len(offsets_leaders))][0] == victim)
    # the coordinator dies right after the LeaveGroup is answered: the group record that
    # empties the group must be on the followers by then, or the next coordinator keeps
    # the member and the last join below waits out its session timeout (45 s)
    assert len(consume_kafka_python(cluster.bootstrap(1), "fenced", 60, group=group,
                                    close=leave_then_kill(cluster, victim))) == 60
    assert not cluster.nodes[victim].running
    watcher = controller

    def fenced() -> bool:
        now = cluster.leaders(watcher, "fenced")
        return (victim not in cluster.brokers(watcher)
                and all(now[p] == (-1, 5) for p in victim_parts)  # LEADER_NOT_AVAILABLE
                and all(now[p][0] == leaders[p][0] for p in now if p not in victim_parts))

    wait_until(fenced, 15, f"broker {victim} fenced and its partitions unavailable")

    cluster.nodes[victim].start()
    wait_until(lambda: cluster.leaders(watcher, "fenced") == {
        p: (leader, 0) for p, (leader, _) in leaders.items()}, 20,
        "every partition back with its leader")
    got = consume_kafka_python(cluster.bootstrap(watcher), "fenced", 60)
    assert sorted(v for _, v in got) == sorted(
        f"before-{p}-{i}".encode() for p in range(6) for i in range(10))
    # the restarted coordinator reloaded the group's committed offsets: nothing is re-read
    produce_confluent(cluster.bootstrap(watcher), "fenced", 6, 1, "after")
    again = consume_kafka_python(cluster.bootstrap(watcher), "fenced", 6, group=group)
    assert sorted(v for _, v in again) == sorted(f"after-{p}-0".encode() for p in range(6))


def test_admin_changes_through_any_broker_reach_every_broker(cluster: Cluster) -> None:
    from confluent_kafka.admin import (
        AdminClient,
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        NewPartitions,
        NewTopic,
    )

    admin = AdminClient({"bootstrap.servers": cluster.bootstrap(3)})
    for f in admin.create_topics([NewTopic("admin-t", 2, 1,
                                           config={"retention.ms": "3600000"})]).values():
        f.result(20)
    for f in admin.create_partitions([NewPartitions("admin-t", 5)]).values():
        f.result(20)
    resource = ConfigResource(ConfigResource.Type.TOPIC, "admin-t", incremental_configs=[
        ConfigEntry("cleanup.policy", "compact",
                    incremental_operation=AlterConfigOpType.SET)])
    for f in admin.incremental_alter_configs([resource]).values():
        f.result(20)
    bad = NewTopic("admin-bad", 1, 1, config={"retention.ms": "not-a-number"})
    with pytest.raises(Exception, match="retention.ms"):
        admin.create_topics([bad])["admin-bad"].result(20)

    for node_id in (1, 2):  # the other brokers see every change
        wait_until(lambda n=node_id: len(cluster.leaders(n, "admin-t")) == 5, 10,
                   f"5 partitions of admin-t at node {node_id}")
        other = AdminClient({"bootstrap.servers": cluster.bootstrap(node_id)})
        described = other.describe_configs([ConfigResource(ConfigResource.Type.TOPIC,
                                                           "admin-t")])
        [configs] = [f.result(20) for f in described.values()]
        assert configs["cleanup.policy"].value == "compact"
        assert configs["retention.ms"].value == "3600000"

    for f in admin.delete_topics(["admin-t"]).values():
        f.result(20)
    wait_until(lambda: all(not cluster.metadata(n, ["admin-t"]).topics[0].partitions
                           for n in (1, 2, 3)), 10, "admin-t gone from every broker")


def test_broker_only_node_follows_the_metadata_log_as_an_observer(tmp_path: Path) -> None:
    client1, ctrl1, client2 = free_ports(3)
    voters = f"1@127.0.0.1:{ctrl1}"
    combined = BrokerProcess(tmp_path / "node-1", {
        "node.id": 1, "controller.quorum.voters": voters, **FAST,
        "listeners": f"PLAINTEXT://127.0.0.1:{client1},CONTROLLER://127.0.0.1:{ctrl1}"})
    broker_only = BrokerProcess(tmp_path / "node-2", {
        "node.id": 2, "process.roles": "broker", "controller.quorum.voters": voters,
        "broker.rack": "rack-b", **FAST, "listeners": f"PLAINTEXT://127.0.0.1:{client2}"})
    try:
        combined.start()
        broker_only.start()
        wait_until(lambda: {b.node_id for b in metadata(client2).brokers} == {1, 2}, 20,
                   "both brokers registered, seen by the broker-only node")
        racks = {b.node_id: b.rack for b in metadata(client1).brokers}
        assert racks == {1: None, 2: "rack-b"}  # registered with its rack
        create_topic(f"127.0.0.1:{client2}", "observed", 4)
        wait_until(lambda: len(metadata(client2, ["observed"]).topics[0].partitions) == 4,
                   10, "the broker-only node to learn the new topic")
        [topic] = metadata(client2, ["observed"]).topics
        assert {p.leader_id for p in topic.partitions} == {1, 2}
        produce_confluent(f"127.0.0.1:{client2}", "observed", 4, 5, "obs")
        got = consume_kafka_python(f"127.0.0.1:{client1}", "observed", 20)
        assert len(got) == 20
        q = describe(f"127.0.0.1:{ctrl1}", timeout=3)
        assert [o.replica_id for o in q.observers] == [2]
        assert [v.replica_id for v in q.current_voters] == [1]
        broker_only.stop()  # SIGTERM: controlled shutdown, exit code 0
        wait_until(lambda: {b.node_id for b in metadata(client1).brokers} == {1}, 10,
                   "the stopped broker to leave Metadata at once (controlled shutdown)")
        combined.stop()
    finally:
        broker_only.close()
        combined.close()
