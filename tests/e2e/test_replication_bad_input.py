"""Bad replication input to a real 3-node cluster (processes on 127.0.0.1, RF 3,
min.insync.replicas 2), sent with the raw wire client:

- a replica Fetch v12 from a broker id that is not an assigned replica (99, or the leader
  itself) → NOT_LEADER_OR_FOLLOWER and no records; the leader keeps serving, its ISR and
  high watermark untouched;
- a replica Fetch v12 in an in-sync (frozen) follower's name from beyond the leader's
  log end → OFFSET_OUT_OF_RANGE, and the high watermark stays where that follower's
  log ends (it used to jump to the leader's log end: records the follower lacked became
  visible, fixed in replication/replica_manager.py);
- a replica Fetch v12 as a real follower with a current leader epoch one below the
  leader's → FENCED_LEADER_EPOCH, one above → UNKNOWN_LEADER_EPOCH (consumers alike), no
  records, and the follower stays in the ISR;
- AlterPartition v3 to the active controller's controller listener: a made-up or -1
  broker epoch → STALE_BROKER_EPOCH for the whole request; the leader's real broker
  epoch (learned from its log's ``broker_registered``) with a stale partition epoch →
  INVALID_UPDATE_VERSION, with a wrong leader epoch or from a follower →
  FENCED_LEADER_EPOCH, an unknown topic id → UNKNOWN_TOPIC_ID; a standby controller →
  NOT_CONTROLLER; nothing is written (no ``isr_changed``) and Metadata shows the ISR
  unchanged;
- AlterPartition v3 with every epoch right (the partition epoch found by probing: an
  empty ISR is INVALID_REQUEST only once the partition epoch matched): an ISR without
  the leader, with a duplicate or with a broker not assigned → INVALID_REQUEST, adding
  a fenced broker → INELIGIBLE_REPLICA; a well-formed shrink is applied (as Kafka does:
  only the epochs authenticate it), its replay is INVALID_UPDATE_VERSION, and the leader
  adopts the new ISR and takes its caught-up follower back (acks=all works again);
- a broker restarted on an emptied data directory (after a clean stop, or a kill -9
  while it leads) rejoins under load: the controller logs ``broker_lost_data`` (its old
  directory id is gone), it catches up from the leader, the leader takes it back into
  the ISR (``isr_changed``), it becomes leader again (a PREFERRED election: it is the
  preferred replica) and a consumer reading through it finds every acknowledged record,
  none twice, in order; its own files hold them all.

Every wait is bounded; nothing sleeps as an assertion.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kio.schema.alter_partition.v3 import request as ap
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic

from net.wire import WireClient
from tests.e2e.test_cluster import Cluster, wait_until
from tests.e2e.test_cluster_wiped_disk import create_assigned
from tests.e2e.test_replication import (
    REPLICATED,
    Load,
    check_log,
    consume_all,
    create_topic,
    full_isr,
    local_values,
    produce_one,
    state,
)

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("replication-bad-input"), overrides=REPLICATED)
    try:
        yield c.start()
    finally:
        c.close()


# ----------------------------------------------------------------------------- helpers
def partition_of(c: Cluster, topic: str, via: int) -> tuple[uuid.UUID, Any]:
    """(topic id, partition 0) as Metadata v12 from node ``via`` reports them."""
    [t] = c.metadata(via, [topic]).topics
    assert int(t.error_code) == 0, t
    [p] = [p for p in t.partitions if p.partition_index == 0]
    return t.topic_id, p


def fetch(c: Cluster, node: int, topic: str, *, replica_id: int, current_leader_epoch: int,
          fetch_offset: int = 0) -> Any:
    """One Fetch v12 (no session, no wait) for partition 0; returns that partition."""
    request = FetchRequest(
        replica_id=replica_id, max_wait=datetime.timedelta(0), min_bytes=1,
        max_bytes=1 << 20, isolation_level=0, session_id=0, session_epoch=-1,
        topics=(FetchTopic(topic=topic, partitions=(FetchPartition(
            partition=0, current_leader_epoch=current_leader_epoch,
            fetch_offset=fetch_offset, last_fetched_epoch=-1, log_start_offset=-1,
            partition_max_bytes=1 << 20),)),),
        forgotten_topics_data=(), rack_id="")
    with WireClient("127.0.0.1", c.client_ports[node], timeout=10) as client:
        resp = client.request(request)
    assert int(resp.error_code) == 0, resp
    [t] = resp.responses
    [p] = t.partitions
    return p


def no_records(p: Any) -> bool:
    return not p.records


def events(c: Cluster, node: int, name: str, start: int = 0) -> list[dict[str, Any]]:
    """The JSON log events called ``name`` in node ``node``'s log, from byte ``start``."""
    data = c.nodes[node].log_path.read_bytes()[start:]
    out = []
    for line in data.decode(errors="replace").splitlines():
        if f'"event": "{name}"' in line and line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def log_size(c: Cluster, node: int) -> int:
    return c.nodes[node].log_path.stat().st_size


def broker_epoch(c: Cluster, node: int) -> int:
    """The epoch node ``node``'s broker registered with last (its own log says)."""
    mine = [e for e in events(c, node, "broker_registered") if "broker_epoch" in e]
    assert mine, f"node {node} never logged broker_registered"
    return int(mine[-1]["broker_epoch"])


def active_controller(c: Cluster) -> int:
    def leader() -> int | None:
        q = c.quorum(next(i for i, n in c.nodes.items() if n.running))
        return q.leader_id if int(q.error_code) == 0 and q.leader_id > 0 else None

    return wait_until(leader, 15, "an active controller")


def alter_partition(c: Cluster, controller: int, *, broker_id: int, broker_epoch: int,
                    topic_id: uuid.UUID, leader_epoch: int, partition_epoch: int,
                    isr: list[int]) -> Any:
    request = ap.AlterPartitionRequest(
        broker_id=broker_id, broker_epoch=broker_epoch, topics=(ap.TopicData(
            topic_id=topic_id, partitions=(ap.PartitionData(
                partition_index=0, leader_epoch=leader_epoch,
                new_isr_with_epochs=tuple(ap.BrokerState(broker_id=b, broker_epoch=-1)
                                          for b in isr),
                partition_epoch=partition_epoch),)),))
    with WireClient("127.0.0.1", c.controller_ports[controller], timeout=10) as client:
        return client.request(request)


def partition_error(resp: Any) -> str:
    """The one partition's error name of an AlterPartition answer without a top error."""
    assert int(resp.error_code) == 0, resp
    [t] = resp.topics
    [p] = t.partitions
    return p.error_code.name


def probe_partition_epoch(c: Cluster, controller: int, *, broker_id: int,
                          broker_epoch: int, topic_id: uuid.UUID, leader_epoch: int) -> int:
    """The controller's partition epoch, found without changing anything: an empty ISR
    is INVALID_REQUEST, checked only once the partition epoch matched
    (INVALID_UPDATE_VERSION before)."""
    for guess in range(100):
        code = partition_error(alter_partition(
            c, controller, broker_id=broker_id, broker_epoch=broker_epoch, topic_id=topic_id,
            leader_epoch=leader_epoch, partition_epoch=guess, isr=[]))
        if code == "invalid_request":
            return guess
        assert code == "invalid_update_version", (guess, code)
    raise AssertionError("no partition epoch below 100 matched")


def bump_partition_epoch(c: Cluster, topic: str) -> None:
    """A follower stopped and started: the ISR shrinks and grows back, so the partition
    epoch is at least 2 (0 is certainly stale) and the leader stays."""
    leader, _ = state(c, topic)[0]
    follower = next(n for n in sorted(c.nodes) if n != leader)
    c.nodes[follower].stop()
    wait_until(lambda: len(state(c, topic, via=leader)[0][1]) == 2, 20, "the ISR to shrink")
    c.nodes[follower].start()
    wait_until(lambda: full_isr(c, topic), 40, "the follower back in the ISR")
    assert state(c, topic)[0][0] == leader


def healthy(c: Cluster, topic: str) -> None:
    for node in c.nodes.values():
        if not node.running:
            node.start()
    c.wait_brokers(set(c.nodes), timeout=40)
    wait_until(lambda: full_isr(c, topic), 40, f"3 in-sync replicas of {topic}")


# ----------------------------------------------------------------------------- Fetch
def test_replica_fetch_from_a_broker_that_is_not_a_replica_is_refused(cluster: Cluster
                                                                      ) -> None:
    topic = "not-a-replica"
    create_topic(cluster, topic, 1)
    for i in range(3):
        assert produce_one(cluster.bootstrap(1), topic, f"r-{i}".encode(), "all") is None
    leader, isr = state(cluster, topic)[0]
    _, before = partition_of(cluster, topic, leader)
    epoch = before.leader_epoch
    start = log_size(cluster, leader)
    for replica_id in (99, leader):
        for current in (epoch, -1):
            p = fetch(cluster, leader, topic, replica_id=replica_id,
                      current_leader_epoch=current)
            assert p.error_code.name == "not_leader_or_follower", (replica_id, current, p)
            assert no_records(p), p
    refused = {e["replica_id"] for e in events(cluster, leader, "replica_fetch_refused",
                                               start)}
    assert {99, leader} <= refused
    # a consumer fetch right after is served, and the leader keeps its ISR and replicates
    p = fetch(cluster, leader, topic, replica_id=-1, current_leader_epoch=epoch)
    assert int(p.error_code) == 0 and p.high_watermark == 3 and p.records, p
    assert produce_one(cluster.bootstrap(leader), topic, b"after", "all") is None
    assert state(cluster, topic)[0] == (leader, isr)
    got = consume_all(cluster, topic, 1, 4, via=leader)
    assert got[0] == [b"r-0", b"r-1", b"r-2", b"after"]


def test_replica_fetch_with_a_wrong_leader_epoch_is_fenced_or_unknown(cluster: Cluster
                                                                      ) -> None:
    topic = "wrong-epoch"
    create_topic(cluster, topic, 1)
    # a leader change first, so the leader epoch is at least 1 and "one below" is a real
    # epoch (-1 would mean "unchecked")
    first, _ = state(cluster, topic)[0]
    cluster.nodes[first].stop()
    wait_until(lambda: state(cluster, topic)[0][0] not in (first, -1), 20, "a new leader")
    cluster.nodes[first].start()
    healthy(cluster, topic)
    assert produce_one(cluster.bootstrap(first), topic, b"one", "all") is None
    leader, isr = state(cluster, topic)[0]
    _, before = partition_of(cluster, topic, leader)
    epoch = before.leader_epoch
    assert epoch >= 1, before
    follower = next(n for n in isr if n != leader)
    for replica_id in (follower, -1):  # a follower, then a consumer
        p = fetch(cluster, leader, topic, replica_id=replica_id,
                  current_leader_epoch=epoch - 1)
        assert p.error_code.name == "fenced_leader_epoch", (replica_id, p)
        assert no_records(p), p
        p = fetch(cluster, leader, topic, replica_id=replica_id,
                  current_leader_epoch=epoch + 1)
        assert p.error_code.name == "unknown_leader_epoch", (replica_id, p)
        assert no_records(p), p
    # a replica fetch from a broker that does not lead the partition
    p = fetch(cluster, follower, topic, replica_id=leader, current_leader_epoch=epoch)
    assert p.error_code.name == "not_leader_or_follower", p
    assert no_records(p), p
    # none of it counted as the follower's fetch: it stays in the ISR, the high watermark
    # keeps moving with acks=all
    assert produce_one(cluster.bootstrap(leader), topic, b"two", "all") is None
    assert state(cluster, topic)[0] == (leader, isr)
    p = fetch(cluster, leader, topic, replica_id=-1, current_leader_epoch=epoch)
    assert int(p.error_code) == 0 and p.high_watermark == 2, p


# ----------------------------------------------------------------------------- AlterPartition
def test_alter_partition_with_stale_epochs_is_refused_and_changes_nothing(cluster: Cluster
                                                                         ) -> None:
    topic = "alter-stale"
    create_topic(cluster, topic, 1)
    bump_partition_epoch(cluster, topic)
    leader, isr = state(cluster, topic)[0]
    topic_id, part = partition_of(cluster, topic, leader)
    epoch = part.leader_epoch
    follower = next(n for n in isr if n != leader)
    shrunk = [n for n in isr if n != follower]  # a change, were it accepted
    controller = active_controller(cluster)
    standby = next(n for n in cluster.nodes if n != controller)
    start = log_size(cluster, controller)
    leader_epoch_of_broker = broker_epoch(cluster, leader)

    def send(**kw: Any) -> Any:
        args = {"broker_id": leader, "broker_epoch": leader_epoch_of_broker,
                "topic_id": topic_id, "leader_epoch": epoch, "partition_epoch": 0,
                "isr": shrunk, **kw}
        return alter_partition(cluster, controller, **args)

    # the whole request: an unknown broker epoch, or none
    for made_up in (leader_epoch_of_broker + 1000, -1):
        resp = send(broker_epoch=made_up)
        assert resp.error_code.name == "stale_broker_epoch", resp
        assert not resp.topics, resp
    resp = send(broker_id=99, broker_epoch=1)
    assert resp.error_code.name == "stale_broker_epoch", resp

    # the real broker epoch: the partition's checks
    assert partition_error(send()) == "invalid_update_version"  # partition epoch 0
    assert partition_error(send(leader_epoch=epoch + 1)) == "fenced_leader_epoch"
    assert partition_error(send(leader_epoch=epoch - 1)) == "fenced_leader_epoch"
    assert partition_error(send(broker_id=follower,
                                broker_epoch=broker_epoch(cluster, follower),
                                isr=[n for n in isr if n != leader])) == "fenced_leader_epoch"
    assert partition_error(send(topic_id=uuid.uuid4())) == "unknown_topic_id"
    # a controller that is not active
    resp = alter_partition(cluster, standby, broker_id=leader,
                           broker_epoch=leader_epoch_of_broker, topic_id=topic_id,
                           leader_epoch=epoch, partition_epoch=0, isr=shrunk)
    assert resp.error_code.name == "not_controller", resp

    # nothing was written: the controller logged no ISR change, every broker reports the
    # same ISR, and acks=all still needs (and gets) the full ISR
    assert events(cluster, controller, "isr_changed", start) == []
    for node in cluster.nodes:
        assert state(cluster, topic, via=node)[0] == (leader, isr), node
        _, now = partition_of(cluster, topic, node)
        assert now.leader_epoch == epoch
    assert produce_one(cluster.bootstrap(leader), topic, b"still", "all") is None
    assert state(cluster, topic)[0] == (leader, isr)


# ----------------------------------------------------------------------------- wiped disk
@pytest.fixture
def fresh_cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path, overrides=REPLICATED)
    try:
        yield c.start()
    finally:
        c.close()


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_broker_restarted_on_an_emptied_data_dir_catches_up_and_serves_everything(
        fresh_cluster: Cluster, how: str) -> None:
    c = fresh_cluster
    controller = active_controller(c)
    victim = next(n for n in sorted(c.nodes) if n != controller)
    others = [n for n in sorted(c.nodes) if n != victim]
    topic = "wiped"
    create_assigned(c.bootstrap(controller), topic, [victim, *others])
    wait_until(lambda: full_isr(c, topic) and state(c, topic)[0][0] == victim, 30,
               f"{topic} led by {victim} with 3 in-sync replicas")
    bulk = [f"bulk-{i}-".encode() + b"x" * 1000 for i in range(500)]
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": c.bootstrap(controller), "acks": "all",
                         "linger.ms": 5, "message.timeout.ms": 30_000})
    errors: list[Any] = []
    for v in bulk:
        producer.produce(topic, value=v, partition=0,
                         on_delivery=lambda err, msg: err and errors.append(err))
    assert producer.flush(40) == 0 and not errors, errors[:3]

    node = c.nodes[victim]
    bootstrap = ",".join(c.bootstrap(n) for n in others)
    with Load(bootstrap, topic, 1) as load:
        wait_until(lambda: load.count() > 100, 20, "the load to start")
        if how == "stop":  # controlled shutdown: out of the ISR before it exits
            node.stop()
            wait_until(lambda: victim not in state(c, topic, via=controller)[0][1], 20,
                       f"{victim} out of the ISR after its clean shutdown")
        else:  # kill -9 of the leader: still leader and in the ISR as it restarts
            node.kill()
        for child in node.data_dir.iterdir():  # an empty disk, the directory kept
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
        start = log_size(c, controller)
        node.start()
        lost = wait_until(lambda: [e for e in events(c, controller, "broker_lost_data", start)
                                   if e.get("broker_id") == victim], 30,
                          f"the controller to log that {victim} lost its data")
        assert lost[0]["lost_directories"], lost
        c.wait_brokers(set(c.nodes), via=controller, timeout=40)
        before = load.count()
        wait_until(lambda: full_isr(c, topic), 60, f"{victim} caught up and back in the ISR")
        rejoined = [e for e in events(c, controller, "isr_changed", start)
                    if victim in e.get("isr", ())]
        assert rejoined, "no isr_changed taking the wiped broker back"
        wait_until(lambda b=before: load.count() > b + 100, 30,
                   "acks=all produces with the wiped broker back")
        # the preferred replica leads again (it kept nothing from before the wipe but what
        # it fetched since)
        from confluent_kafka import ElectionType, TopicPartition
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": c.bootstrap(controller)})
        result = admin.elect_leaders(ElectionType.PREFERRED,
                                     [TopicPartition(topic, 0)]).result(40)
        assert all(err is None for err in result.values()), result
        wait_until(lambda: state(c, topic)[0][0] == victim, 20, f"{victim} leading again")
        before = load.count()
        wait_until(lambda b=before: load.count() > b + 100, 30,
                   "acks=all produces with the wiped broker leading")
    assert not load.failed, load.failed[:5]
    expected = len(bulk) + load.count()
    got = consume_all(c, topic, 1, expected, via=victim)
    assert got[0][:len(bulk)] == bulk
    check_log(load.acked, {0: got[0][len(bulk):]})
    assert len(got[0]) == expected
    # the new leader's own files hold every record (nothing served from elsewhere)
    wait_until(lambda: len(local_values(c, victim, topic)) >= expected, 20,
               f"{victim}'s log to hold every record")
    assert local_values(c, victim, topic) == got[0]


def test_alter_partition_with_the_right_epochs_checks_the_isr_and_the_leader_heals(
        cluster: Cluster) -> None:
    topic = "alter-right"
    create_topic(cluster, topic, 1)
    leader, isr = state(cluster, topic)[0]
    topic_id, part = partition_of(cluster, topic, leader)
    epoch = part.leader_epoch
    controller = active_controller(cluster)
    # ``other`` is killed below: not the active controller, so this one stays active
    other, follower = sorted((n for n in isr if n != leader), key=lambda n: n == controller)
    start = log_size(cluster, controller)
    ident = {"broker_id": leader, "broker_epoch": broker_epoch(cluster, leader),
             "topic_id": topic_id, "leader_epoch": epoch}
    pe = probe_partition_epoch(cluster, controller, **ident)

    def send(isr: list[int], partition_epoch: int) -> Any:
        return alter_partition(cluster, controller, partition_epoch=partition_epoch,
                               isr=isr, **ident)

    # malformed ISRs: without the leader, with a duplicate, with a broker not assigned
    for bad in ([follower, other], [leader, leader, follower], [leader, follower, 99]):
        assert partition_error(send(bad, pe)) == "invalid_request", bad
    assert events(cluster, controller, "isr_changed", start) == []
    assert state(cluster, topic)[0] == (leader, isr)

    # a fenced broker cannot be added
    cluster.nodes[other].kill()
    wait_until(lambda: state(cluster, topic, via=leader)[0][1] == tuple(sorted(
        (leader, follower))), 20, f"{other} fenced and out of the ISR")
    pe = probe_partition_epoch(cluster, controller, **ident)
    assert partition_error(send([leader, follower, other], pe)) == "ineligible_replica"

    # a well-formed shrink with every epoch right is applied, as from the leader itself;
    # the leader adopts it and takes the follower (still fetching) back
    start = log_size(cluster, controller)
    resp = send([leader], pe)
    assert partition_error(resp) == "none", resp
    [answer] = resp.topics[0].partitions
    assert (answer.leader_id, tuple(answer.isr), answer.partition_epoch) == (
        leader, (leader,), pe + 1), answer
    assert partition_error(send([leader], pe)) == "invalid_update_version"  # replayed
    # (the leader's Metadata may still show the ISR from before the forged shrink: wait
    # for the controller to commit the expansion the leader asked for after it)
    changes = wait_until(lambda: (lambda ch: ch if len(ch) >= 2 else None)(
        events(cluster, controller, "isr_changed", start)), 30,
        f"the leader asking to take {follower} back into the ISR")
    assert changes[0]["isr"] == [leader], changes
    assert changes[1]["requested_by"] == leader
    assert sorted(changes[1]["isr"]) == sorted((leader, follower)), changes
    wait_until(lambda: state(cluster, topic, via=leader)[0][1] == tuple(sorted(
        (leader, follower))), 30, f"the leader's Metadata to show {follower} back")
    assert produce_one(cluster.bootstrap(leader), topic, b"healed", "all") is None
    cluster.nodes[other].start()
    healthy(cluster, topic)
    assert produce_one(cluster.bootstrap(leader), topic, b"full", "all") is None
    assert consume_all(cluster, topic, 1, 2, via=leader)[0] == [b"healed", b"full"]


# ----------------------------------------------------------------------------- Fetch beyond
@pytest.fixture
def patient_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """Sessions and lag allowances long enough that a follower frozen for a few seconds
    stays registered and in the ISR."""
    c = Cluster(tmp_path, overrides={**REPLICATED, "broker.session.timeout.ms": "15000",
                                     "replica.lag.time.max.ms": "15000"})
    try:
        yield c.start()
    finally:
        c.close()


def test_replica_fetch_beyond_the_log_end_is_out_of_range_and_moves_nothing(
        patient_cluster: Cluster) -> None:
    c = patient_cluster
    topic = "beyond"
    create_topic(c, topic, 1)
    leader, isr = state(c, topic)[0]
    frozen, other = [n for n in isr if n != leader]
    for i in range(3):
        assert produce_one(c.bootstrap(leader), topic, f"all-{i}".encode(), "all") is None
    _, part = partition_of(c, topic, leader)
    epoch = part.leader_epoch
    os.kill(c.nodes[frozen].pid or 0, signal.SIGSTOP)  # its replica stays at offset 3
    try:
        for i in range(2):
            assert produce_one(c.bootstrap(leader), topic, f"one-{i}".encode(), "1") is None
        wait_until(lambda: len(local_values(c, other, topic)) == 5, 10,
                   f"{other} to fetch the acks=1 records")
        p = fetch(c, leader, topic, replica_id=-1, current_leader_epoch=epoch)
        assert p.high_watermark == 3, p  # held by the frozen follower
        # a fetch in its name, from beyond the leader's log end (5)
        p = fetch(c, leader, topic, replica_id=frozen, current_leader_epoch=epoch,
                  fetch_offset=105)
        assert p.error_code.name == "offset_out_of_range", p
        assert no_records(p), p
        p = fetch(c, leader, topic, replica_id=-1, current_leader_epoch=epoch)
        held = p.high_watermark
        still = state(c, topic, via=leader)[0][1]
    finally:
        os.kill(c.nodes[frozen].pid or 0, signal.SIGCONT)
    assert frozen in still, still  # not explained by an ISR shrink
    assert held == 3, ("the high watermark moved past what the frozen follower has: "
                       f"{held}")
    wait_until(lambda: fetch(c, leader, topic, replica_id=-1,
                             current_leader_epoch=epoch).high_watermark == 5, 20,
               "the high watermark once the follower fetches again")
