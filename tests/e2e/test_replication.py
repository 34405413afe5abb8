"""Data replication on a real 3-node cluster (processes on 127.0.0.1), RF 3,
min.insync.replicas 2, checked with real clients:

- an idempotent acks=all producer under continuous load while the leader of its
  partition is SIGKILLed again and again (restarted each time, back in the ISR before the
  next kill): afterwards a fresh consumer finds every acknowledged record, none twice, in
  the order they were acknowledged per partition;
- a follower stopped: the ISR shrinks, acks=all still succeeds with 2 of 3; with 1 of 3
  acks=all gets NOT_ENOUGH_REPLICAS; the followers return, catch up and rejoin the ISR;
- an old leader that appended records nobody else got (acks=1, its followers frozen with
  SIGSTOP, then kill -9): when it returns as a follower it truncates them, and its log
  ends up equal to the new leader's, offset for offset;
- a consumer group keeps its committed offsets when the broker coordinating it is killed.

Every wait is bounded; nothing sleeps as an assertion.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_cluster import Cluster, wait_until

pytestmark = pytest.mark.timeout(240)

REPLICATED = {
    "default.replication.factor": "3",
    "min.insync.replicas": "2",
    "replica.lag.time.max.ms": "4000",
    "broker.session.timeout.ms": "2000",
    "broker.heartbeat.interval.ms": "200",
    "offsets.topic.replication.factor": "3",
}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path, overrides=REPLICATED)
    try:
        yield c.start()
    finally:
        c.close()


def create_topic(c: Cluster, name: str, partitions: int, configs: dict[str, str] | None = None
                 ) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": c.bootstrap(1)})
    for fut in admin.create_topics([NewTopic(name, partitions, 3, config=configs or {})]
                                   ).values():
        fut.result(20)
    wait_until(lambda: all(len(isr) == 3 for _, isr in state(c, name).values()), 20,
               f"{name} created with 3 in-sync replicas")


def live(c: Cluster) -> int:
    return next(i for i, n in c.nodes.items() if n.running)


def state(c: Cluster, topic: str, via: int | None = None) -> dict[int, tuple[int, tuple[int, ...]]]:
    """partition → (leader, ISR) as a live node reports them."""
    [t] = c.metadata(via or live(c), [topic]).topics
    assert int(t.error_code) == 0, t
    return {p.partition_index: (p.leader_id, tuple(sorted(p.isr_nodes))) for p in t.partitions}


def full_isr(c: Cluster, topic: str) -> bool:
    return all(leader > 0 and len(isr) == 3 for leader, isr in state(c, topic).values())


def consume_all(c: Cluster, topic: str, partitions: int, expected: int,
                via: int | None = None, timeout: float = 40) -> dict[int, list[bytes]]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": c.bootstrap(via or live(c)),
                         "group.id": f"check-{time.monotonic_ns()}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    got: dict[int, list[bytes]] = {p: [] for p in range(partitions)}
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        deadline = time.monotonic() + timeout
        while sum(map(len, got.values())) < expected and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got[msg.partition()].append(msg.value())
    finally:
        consumer.close()
    return got


class Load:
    """An idempotent acks=all producer sending ``<partition>-<seq>`` values round robin
    over the partitions until stopped; remembers what was acknowledged, in order."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        from confluent_kafka import Producer

        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                                  "enable.idempotence": True, "linger.ms": 5,
                                  "message.timeout.ms": 120_000, "retry.backoff.ms": 50,
                                  "topic.metadata.refresh.interval.ms": 1000})
        self.topic, self.partitions = topic, partitions
        self.acked: dict[int, list[bytes]] = {p: [] for p in range(partitions)}
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _done(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.failed.append(str(err))
        else:
            self.acked[msg.partition()].append(msg.value())

    def _run(self) -> None:
        seq = 0
        while not self._stop.is_set():
            for p in range(self.partitions):
                try:
                    self.producer.produce(self.topic, value=f"{p}-{seq}".encode(), partition=p,
                                          on_delivery=self._done)
                except BufferError:
                    self.producer.poll(0.05)
            seq += 1
            self.producer.poll(0.002)

    def count(self) -> int:
        return sum(map(len, self.acked.values()))

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self.producer.flush(60)


def check_log(acked: dict[int, list[bytes]], got: dict[int, list[bytes]]) -> None:
    """0 acknowledged records missing, 0 duplicates, acknowledged order kept."""
    for p, values in acked.items():
        read = got[p]
        assert len(read) == len(set(read)), f"partition {p}: duplicates"
        missing = set(values) - set(read)
        assert not missing, f"partition {p}: {len(missing)} acknowledged records lost"
        position = {v: i for i, v in enumerate(read)}
        order = [position[v] for v in values]
        assert order == sorted(order), f"partition {p}: acknowledged records reordered"


def test_leader_killed_repeatedly_under_acks_all_load_loses_nothing(cluster: Cluster) -> None:
    topic, partitions, kills = "failover", 2, 10
    create_topic(cluster, topic, partitions)
    with Load(cluster.bootstrap(1), topic, partitions) as load:
        wait_until(lambda: load.count() > 200, 20, "the load to start")
        for kill in range(kills):
            index = kill % partitions
            leader, _ = state(cluster, topic)[index]
            before = load.count()
            cluster.nodes[leader].kill()
            wait_until(lambda old=leader, i=index: state(cluster, topic)[i][0]
                       not in (old, -1), 30, f"a new leader after kill {kill + 1}")
            wait_until(lambda b=before: load.count() > b + 50, 30,
                       f"acks=all produces after kill {kill + 1}")
            cluster.nodes[leader].start()
            wait_until(lambda: full_isr(cluster, topic), 40,
                       f"3 in-sync replicas again after kill {kill + 1}")
    assert not load.failed, load.failed[:5]
    got = consume_all(cluster, topic, partitions, load.count())
    check_log(load.acked, got)
    assert sum(map(len, got.values())) == load.count()


def produce_one(bootstrap: str, topic: str, value: bytes, acks: str, timeout: float = 20
                ) -> Any:
    """Deliver one record; returns the delivery error (None on success)."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "acks": acks,
                         "message.timeout.ms": int(timeout * 1000), "retries": 0})
    result: list[Any] = []
    producer.produce(topic, value=value, partition=0,
                     on_delivery=lambda err, msg: result.append(err))
    producer.flush(timeout + 5)
    return result[0] if result else "no delivery report"


def test_isr_shrinks_and_expands_and_min_insync_replicas_is_enforced(cluster: Cluster) -> None:
    from confluent_kafka import KafkaError

    topic = "isr"
    create_topic(cluster, topic, 1)
    leader, _ = state(cluster, topic)[0]
    followers = [n for n in cluster.nodes if n != leader]
    cluster.nodes[followers[0]].stop()
    wait_until(lambda: len(state(cluster, topic)[0][1]) == 2, 20, "the ISR to shrink to 2")
    assert produce_one(cluster.bootstrap(leader), topic, b"two-of-three", "all") is None
    cluster.nodes[followers[1]].stop()
    wait_until(lambda: len(state(cluster, topic, via=leader)[0][1]) == 1, 30,
               "the ISR to shrink to the leader")
    err = produce_one(cluster.bootstrap(leader), topic, b"refused", "all", timeout=5)
    assert err is not None and err.code() == KafkaError.NOT_ENOUGH_REPLICAS, err
    # acks=1 still lands on the leader; consumers see it once the ISR holds 2 again
    assert produce_one(cluster.bootstrap(leader), topic, b"acks-one", "1") is None
    for node in followers:
        cluster.nodes[node].start()
    wait_until(lambda: full_isr(cluster, topic), 40, "both followers back in the ISR")
    assert produce_one(cluster.bootstrap(leader), topic, b"three", "all") is None
    got = consume_all(cluster, topic, 1, 3)
    assert got[0] == [b"two-of-three", b"acks-one", b"three"]


def test_old_leader_truncates_records_nobody_else_got(cluster: Cluster) -> None:
    topic = "diverge"
    create_topic(cluster, topic, 1, {"unclean.leader.election.enable": "false"})
    assert produce_one(cluster.bootstrap(1), topic, b"committed", "all") is None
    old, _ = state(cluster, topic)[0]
    followers = [n for n in cluster.nodes if n != old]
    wait_until(lambda: full_isr(cluster, topic), 20, "3 in-sync replicas")
    for node in followers:  # frozen: they fetch nothing more
        os.kill(cluster.nodes[node].pid or 0, signal.SIGSTOP)
    try:
        for i in range(3):
            assert produce_one(cluster.bootstrap(old), topic, f"lost-{i}".encode(), "1",
                               timeout=5) is None
    finally:
        cluster.nodes[old].kill()
        for node in followers:
            os.kill(cluster.nodes[node].pid or 0, signal.SIGCONT)
    via = followers[0]
    wait_until(lambda: state(cluster, topic, via=via)[0][0] in followers, 40,
               "a follower elected leader")
    new_leader = state(cluster, topic, via=via)[0][0]
    for i in range(2):
        assert produce_one(cluster.bootstrap(new_leader), topic, f"new-{i}".encode(),
                           "all") is None
    cluster.nodes[old].start()
    wait_until(lambda: full_isr(cluster, topic), 40, "the old leader back in the ISR")
    got = consume_all(cluster, topic, 1, 6, via=new_leader, timeout=10)[0]
    # a follower may have received the first acks=1 record before it froze (a fetch was
    # in flight): it is then committed like any other; the rest existed only on the old
    # leader and must be gone
    assert got[0] == b"committed" and got[-2:] == [b"new-0", b"new-1"], got
    assert [v for v in got[1:-2]] == [f"lost-{i}".encode() for i in range(len(got) - 3)]
    assert len(got) < 6, "no lost record was truncated"
    # the old leader's own log holds exactly the new leader's records at those offsets
    wait_until(lambda: local_values(cluster, old, topic) == got, 20,
               "the old leader's log to match the new leader's")


def local_values(c: Cluster, node: int, topic: str) -> list[bytes]:
    """The record values in node ``node``'s log of partition 0, read from its files."""
    from protocol.records import decode_batch_records, iter_batches

    out: list[bytes] = []
    for seg in sorted((c.nodes[node].data_dir / f"{topic}-0").glob("*.log")):
        data = seg.read_bytes()
        for pos, _ in iter_batches(data):
            out += [r.value or b"" for r in decode_batch_records(data, pos)]
    return out


def test_group_keeps_committed_offsets_when_its_coordinator_is_killed(cluster: Cluster) -> None:
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    topic, group = "orders", "billing"
    create_topic(cluster, topic, 1)
    for i in range(10):
        assert produce_one(cluster.bootstrap(1), topic, f"o-{i}".encode(), "all") is None

    def consumer() -> Any:
        return Consumer({"bootstrap.servers": cluster.bootstrap(live(cluster)),
                         "group.id": group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "session.timeout.ms": 6000})

    first = consumer()
    first.subscribe([topic])
    seen: list[bytes] = []
    deadline = time.monotonic() + 30
    while len(seen) < 6 and time.monotonic() < deadline:
        msg = first.poll(0.5)
        if msg is not None and msg.error() is None:
            seen.append(msg.value())
    assert len(seen) >= 6
    first.commit(offsets=[TopicPartition(topic, 0, 6)], asynchronous=False)
    first.close()
    coordinator = coordinator_of(cluster, group)
    wait_until(lambda: full_isr(cluster, "__consumer_offsets"), 20,
               "__consumer_offsets fully replicated")
    cluster.nodes[coordinator].kill()
    second = consumer()

    def committed() -> Any:
        try:
            return second.committed([TopicPartition(topic, 0)], timeout=5)[0]
        except KafkaException as exc:  # the old coordinator is gone: ask again
            return exc
    try:
        # until the new coordinator answers (a load in progress answers no offset yet)
        wait_until(lambda: getattr(committed(), "offset", None) == 6, 40,
                   "the committed offset 6 from the new coordinator")
    finally:
        second.close()


def coordinator_of(c: Cluster, group: str) -> int:
    from kio.schema.find_coordinator.v4.request import FindCoordinatorRequest

    from net.wire import WireClient

    def find() -> int:
        with WireClient("127.0.0.1", c.client_ports[live(c)], timeout=5) as client:
            resp = client.request(FindCoordinatorRequest(key_type=0, coordinator_keys=(group,)))
        [entry] = resp.coordinators
        return int(entry.node_id) if int(entry.error_code) == 0 else 0

    return wait_until(find, 20, f"the coordinator of {group}")
