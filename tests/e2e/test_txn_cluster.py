"""A transaction spanning partitions led by three different brokers (issue 10): the
coordinator writes its markers in-process for the partitions it leads and sends
WriteTxnMarkers to the other leaders. read_committed consumers see a committed
transaction on every partition and an aborted one on none; read_uncommitted see both;
the group offsets sent with a transaction are committed with it."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from kio.schema.errors import ErrorCode

from tests.e2e.test_cluster import Cluster, create_topic, wait_until

pytestmark = pytest.mark.timeout(240)
DEADLINE_S = 60.0


def read_partitions(bootstrap: str, topic: str, isolation: str, expect: int
                    ) -> dict[int, list[bytes]]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"r-{uuid.uuid4().hex}",
                  "isolation.level": isolation, "enable.auto.commit": False,
                  "fetch.wait.max.ms": 50})
    got: dict[int, list[bytes]] = {0: [], 1: [], 2: []}
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(3)])
        deadline = time.monotonic() + DEADLINE_S
        quiet = None
        while time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is None or m.error() is not None:
                if sum(map(len, got.values())) >= expect:
                    quiet = quiet or time.monotonic() + 1.5
                    if time.monotonic() > quiet:
                        break
                continue
            got[m.partition()].append(m.value())
        return got
    finally:
        c.close()


def test_transaction_across_three_leaders(cluster: Cluster) -> None:
    bootstrap = cluster.bootstrap(1)
    topic = f"txn-spread-{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap, topic, 3)
    wait_until(lambda: all(err == 0 for _, err in cluster.leaders(1, topic).values()), 30,
               "leaders for every partition")
    leaders = {p: leader for p, (leader, _) in cluster.leaders(1, topic).items()}
    assert len(set(leaders.values())) == 3, leaders  # one partition per broker

    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"spread-{topic}",
                  "linger.ms": 5})
    p.init_transactions(DEADLINE_S)
    p.begin_transaction()
    for part in range(3):
        p.produce(topic, value=b"commit-%d" % part, partition=part)
    p.commit_transaction(DEADLINE_S)
    p.begin_transaction()
    for part in range(3):
        p.produce(topic, value=b"abort-%d" % part, partition=part)
    assert p.flush(DEADLINE_S) == 0
    p.abort_transaction(DEADLINE_S)
    p.begin_transaction()
    for part in range(3):
        p.produce(topic, value=b"last-%d" % part, partition=part)
    p.commit_transaction(DEADLINE_S)

    committed = read_partitions(bootstrap, topic, "read_committed", 6)
    assert committed == {i: [b"commit-%d" % i, b"last-%d" % i] for i in range(3)}
    everything = read_partitions(cluster.bootstrap(2), topic, "read_uncommitted", 9)
    assert everything == {i: [b"commit-%d" % i, b"abort-%d" % i, b"last-%d" % i]
                          for i in range(3)}

    # KIP-890 part 1 across brokers: a leader that does not coordinate the id asks the
    # coordinator (AddPartitionsToTxn v4 verify_only) before it takes a transactional
    # batch; one for a partition outside the transaction is refused
    from net.wire import WireClient
    from tests.integration.test_txn_protocol import add_partitions, end, init, produce_txn

    tid = f"verify-{topic}"
    coordinator = coordinator_of(bootstrap, tid)
    part, leader = next((p_, n) for p_, n in leaders.items() if n != coordinator)
    with WireClient(*_addr(cluster.bootstrap(coordinator)), timeout=20.0) as coord, \
            WireClient(*_addr(cluster.bootstrap(leader)), timeout=20.0) as lead:
        code, pid, epoch = init(coord, tid)
        assert code == 0
        assert produce_txn(lead, tid, topic, pid, epoch, 0, b"stray", part) == \
            ErrorCode.invalid_txn_state
        assert add_partitions(coord, tid, pid, epoch, {topic: [part]}) == {
            (topic, part): ErrorCode.none}
        assert produce_txn(lead, tid, topic, pid, epoch, 0, b"verified", part) == \
            ErrorCode.none
        assert end(coord, tid, pid, epoch, False) == ErrorCode.none

    # consume-transform-produce across brokers: the offsets commit with the transaction
    group, sink = f"g-{topic}", f"sink-{topic}"
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "isolation.level": "read_committed", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, i, 0) for i in range(3)])
    seen = []
    deadline = time.monotonic() + DEADLINE_S
    while len(seen) < 6 and time.monotonic() < deadline:
        seen += [m for m in c.consume(10, 0.5) if m.error() is None]
    assert len(seen) == 6
    p.begin_transaction()
    for m in seen:
        p.produce(sink, value=m.value().upper())
    p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(),
                                  DEADLINE_S)
    p.commit_transaction(DEADLINE_S)
    c.close()
    check = Consumer({"bootstrap.servers": cluster.bootstrap(3), "group.id": group,
                      "isolation.level": "read_committed"})
    try:
        offsets = check.committed([TopicPartition(topic, i) for i in range(3)],
                                  timeout=DEADLINE_S)
        # each partition: commit-i, marker, abort-i, marker, last-i, marker (and the
        # aborted "verified" record and its marker on ``part``); the consumer's position
        # has moved past the last marker (as against Kafka)
        assert [tp.offset for tp in offsets] == [8 if i == part else 6 for i in range(3)]
    finally:
        check.close()


def _addr(bootstrap: str) -> tuple[str, int]:
    host, _, port = bootstrap.rpartition(":")
    return host, int(port)


def coordinator_of(bootstrap: str, transactional_id: str) -> int:
    from kio.schema.find_coordinator.v4.request import FindCoordinatorRequest

    from net.wire import WireClient

    host, _, port = bootstrap.rpartition(":")
    with WireClient(host, int(port), timeout=20.0) as wire:
        [found] = wire.request(FindCoordinatorRequest(
            key_type=1, coordinator_keys=(transactional_id,))).coordinators
    assert int(found.error_code) == 0, found
    return int(found.node_id)


def test_coordinator_failover_mid_transaction(cluster: Cluster) -> None:
    """The coordinator's broker is SIGKILLed with a transaction open: the new leader of
    its __transaction_state partition (replicated, RF 3) loads it, and the producer's
    commit completes there, markers included, on partitions whose leaders moved too."""
    from kafka.admin import KafkaAdminClient, NewTopic

    topic = f"txn-failover-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap(1), request_timeout_ms=20_000)
    try:
        admin.create_topics([NewTopic(topic, 3, 3)])
    finally:
        admin.close()
    wait_until(lambda: all(err == 0 for _, err in cluster.leaders(1, topic).values()), 30,
               "leaders for every partition")
    tid = f"failover-{topic}"
    p = Producer({"bootstrap.servers": ",".join(cluster.bootstrap(i) for i in (1, 2, 3)),
                  "transactional.id": tid, "acks": "all", "linger.ms": 5})
    p.init_transactions(DEADLINE_S)
    p.begin_transaction()
    for part in range(3):
        p.produce(topic, value=b"before-%d" % part, partition=part)
    p.commit_transaction(DEADLINE_S)
    victim = coordinator_of(cluster.bootstrap(1), tid)
    p.begin_transaction()
    for part in range(3):
        p.produce(topic, value=b"open-%d" % part, partition=part)
    assert p.flush(DEADLINE_S) == 0
    cluster.nodes[victim].kill()
    p.commit_transaction(DEADLINE_S)
    survivor = next(i for i in (1, 2, 3) if i != victim)
    assert coordinator_of(cluster.bootstrap(survivor), tid) != victim
    got = read_partitions(cluster.bootstrap(survivor), topic, "read_committed", 6)
    assert got == {i: [b"before-%d" % i, b"open-%d" % i] for i in range(3)}


def test_copy_is_exactly_once_while_coordinator_and_leaders_are_killed(
        cluster: Cluster, tmp_path) -> None:
    """Kafka's transactions system test on 3 brokers (RF 3): a consume-transform-produce
    copier runs while the transaction coordinator's broker and then a partition leader's
    broker are SIGKILLed (and restarted); the copier itself is killed and restarted with
    the same transactional.id after each. The output holds every input record exactly
    once, in order per partition, under read_committed."""
    import subprocess
    import sys

    from kafka.admin import KafkaAdminClient, NewTopic

    from tests.integration.test_txn_copy_kill import COPIER

    records, partitions = 10_000, 2
    source, sink = f"ecopy-in-{uuid.uuid4().hex[:8]}", f"ecopy-out-{uuid.uuid4().hex[:8]}"
    tid = group = f"ecopier-{source}"
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap(1), request_timeout_ms=20_000)
    try:
        admin.create_topics([NewTopic(source, partitions, 3), NewTopic(sink, partitions, 3)])
    finally:
        admin.close()
    for t in (source, sink):
        wait_until(lambda t=t: all(e == 0 for _, e in cluster.leaders(1, t).values()), 30,
                   f"leaders of {t}")
    everyone = ",".join(cluster.bootstrap(i) for i in (1, 2, 3))
    p = Producer({"bootstrap.servers": everyone, "enable.idempotence": True,
                  "linger.ms": 5})
    for i in range(records):
        p.produce(source, b"%d" % i, partition=i % partitions)
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(60) == 0
    script = tmp_path / "copier.py"
    script.write_text(COPIER)

    errors = tmp_path / "copier.err"

    def start_copier() -> subprocess.Popen[bytes]:
        # 100 records per transaction and a pause after each: the kills land mid-copy
        return subprocess.Popen([sys.executable, str(script), everyone, source, sink, tid,
                                 group, str(partitions), "100", "0.1"],
                                stdout=subprocess.PIPE, stderr=errors.open("ab"))

    def wait_commits(proc: subprocess.Popen[bytes], count: int, *, required: bool = True
                     ) -> None:
        import select

        assert proc.stdout is not None
        seen = 0
        deadline = time.monotonic() + DEADLINE_S
        while seen < count and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], deadline - time.monotonic())
            if not ready:
                break
            line = proc.stdout.readline()
            if not line:
                break
            seen += line.startswith(b"committed")
        assert seen >= count or not required, (
            f"copier committed {seen} transactions, wanted {count}; "
                               f"stderr: {errors.read_text()[-3000:]}")

    copier = start_copier()
    try:
        wait_commits(copier, 2)
        victims = [coordinator_of(cluster.bootstrap(1), tid)]
        leader = cluster.leaders(next(i for i in (1, 2, 3) if i != victims[0]), sink)[0][0]
        victims.append(leader if leader != victims[0] else
                       next(i for i in (1, 2, 3) if i != victims[0]))
        for victim in victims:
            cluster.nodes[victim].kill()
            copier.kill()
            copier.wait(10)
            copier = start_copier()
            # progress without the victim (unless the copy is already complete: the
            # final check below decides)
            wait_commits(copier, 1, required=False)
            cluster.nodes[victim].start()
            via = next(i for i in (1, 2, 3) if i != victim)
            cluster.wait_brokers({1, 2, 3}, via=via)
            # back in every ISR before the next kill (min.insync.replicas 2 of
            # __transaction_state would refuse the coordinator's writes otherwise)
            for t in (source, sink, "__transaction_state", "__consumer_offsets"):
                wait_until(lambda t=t, via=via: all(
                    len(p_.isr_nodes) == 3 for p_ in cluster.metadata(via, [t]).topics[0]
                    .partitions), 60, f"full ISR of {t}")
        survivor = next(i for i in (1, 2, 3) if i != victims[-1])
        got = read_partitions(cluster.bootstrap(survivor), sink, "read_committed", records)
    finally:
        copier.kill()
        copier.wait(10)
    for part in range(partitions):
        expected = [b"%d" % i for i in range(part, records, partitions)]
        assert len(got[part]) == len(expected), (
            f"partition {part}: {len(got[part])} records, {len(set(got[part]))} distinct")
        assert got[part] == expected, f"partition {part}: duplicated, lost or reordered"
