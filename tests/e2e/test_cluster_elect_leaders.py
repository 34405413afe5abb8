"""ElectLeaders (KIP-460) on a real 3-node combined-mode cluster, asked by real admin
clients (confluent-kafka's ``AdminClient.elect_leaders`` and kafka-python's
``KafkaAdminClient.elect_leaders``) through any broker, which forwards to the active
controller.

The answers are checked against what the cluster's Metadata says, as Kafka decides them:
ELECTION_NOT_NEEDED while the preferred replica leads; with the preferred replica's broker
down, PREFERRED_LEADER_NOT_AVAILABLE (and UNCLEAN either not needed, because another
replica leads, or electing a live replica); once it is back, a PREFERRED election moves
leadership back if it is in the ISR and answers PREFERRED_LEADER_NOT_AVAILABLE otherwise.
The automatic rebalance is off there so only the admin requests move leaders; a second
test turns it on (1 s check) and watches leadership go back to a restarted preferred
replica once it is in the ISR again, with no admin request.

Every wait is bounded (``wait_until``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_cluster import Cluster, wait_until

pytestmark = pytest.mark.timeout(150)

TOPIC = "elect"
NOT_NEEDED, PREFERRED_NOT_AVAILABLE = 84, 80


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path, overrides={"auto.leader.rebalance.enable": "false"})
    try:
        yield c.start()
    finally:
        c.close()


def partitions(cluster: Cluster, node_id: int) -> dict[int, Any]:
    [t] = cluster.metadata(node_id, [TOPIC]).topics
    assert int(t.error_code) == 0, t
    return {p.partition_index: p for p in t.partitions}


def confluent_elect(bootstrap: str, election: str, parts: list[int]) -> dict[int, int]:
    """partition → error code (0 for success) of confluent-kafka's elect_leaders."""
    from confluent_kafka import ElectionType, TopicPartition
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    # no timeout keywords: confluent-kafka 2.16's binding rejects them (SystemError)
    future = admin.elect_leaders(getattr(ElectionType, election),
                                 [TopicPartition(TOPIC, p) for p in parts])
    result = future.result(40)
    out = {}
    for tp, err in result.items():
        assert tp.topic == TOPIC
        if err is not None and not hasattr(err, "code"):  # a KafkaException
            err = err.args[0]
        out[tp.partition] = 0 if err is None else err.code()
    return out


def kafka_python_elect(bootstrap: str, election_type: int, parts: list[int]) -> dict[int, int]:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    try:
        response = admin.elect_leaders(election_type, {TOPIC: parts}, raise_errors=False)
    finally:
        admin.close()
    return {p.partition_id: int(p.error_code)
            for t in response.replica_election_results if t.topic == TOPIC
            for p in t.partition_result}


def test_admin_clients_elect_preferred_leaders_as_kafka_answers(cluster: Cluster) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": cluster.bootstrap(1)})
    for f in admin.create_topics([NewTopic(TOPIC, 3, 3)]).values():
        f.result(20)
    before = wait_until(lambda: (lambda ps: ps if len(ps) == 3 and all(
        p.leader_id >= 0 for p in ps.values()) else None)(partitions(cluster, 1)), 15,
        f"every partition of {TOPIC} with a leader")
    assert all(p.leader_id == p.replica_nodes[0] for p in before.values())

    # the preferred replicas lead: nothing to do, through any broker and both clients
    assert confluent_elect(cluster.bootstrap(2), "PREFERRED", [0, 1, 2]) == {
        0: NOT_NEEDED, 1: NOT_NEEDED, 2: NOT_NEEDED}
    assert kafka_python_elect(cluster.bootstrap(3), 0, [0, 1, 2]) == {
        0: NOT_NEEDED, 1: NOT_NEEDED, 2: NOT_NEEDED}
    assert confluent_elect(cluster.bootstrap(1), "UNCLEAN", [0]) == {0: NOT_NEEDED}
    # every partition (topic_partitions null): Kafka leaves out the ones not needing one
    from confluent_kafka import ElectionType

    assert admin.elect_leaders(ElectionType.PREFERRED, None).result(40) == {}

    # stop the preferred leader of a partition (not the active controller's node)
    controller = cluster.quorum(1).leader_id
    victim_part, victim = next((i, p.replica_nodes[0]) for i, p in sorted(before.items())
                               if p.replica_nodes[0] != controller)
    witness = next(b for b in (1, 2, 3) if b != victim)
    cluster.nodes[victim].stop(timeout=20)
    cluster.wait_brokers({1, 2, 3} - {victim}, via=witness)
    down = partitions(cluster, witness)[victim_part]
    assert down.leader_id != victim
    assert confluent_elect(cluster.bootstrap(witness), "PREFERRED", [victim_part]) == {
        victim_part: PREFERRED_NOT_AVAILABLE}
    unclean = confluent_elect(cluster.bootstrap(witness), "UNCLEAN", [victim_part])
    if down.leader_id >= 0:  # another in-sync replica took over
        assert unclean == {victim_part: NOT_NEEDED}
    else:  # only the stopped broker was in the ISR: a live replica is elected
        assert unclean == {victim_part: 0}
        after = wait_until(lambda: (lambda p: p if p.leader_id >= 0 else None)(
            partitions(cluster, witness)[victim_part]), 10, "the unclean leader")
        assert after.leader_id != victim and tuple(after.isr_nodes) == (after.leader_id,)

    # the preferred replica returns, catches up and rejoins the ISR: electable again
    cluster.nodes[victim].start()
    cluster.wait_brokers({1, 2, 3}, via=witness)
    wait_until(lambda: victim in partitions(cluster, witness)[victim_part].isr_nodes, 30,
               f"broker {victim} back in the ISR")
    back = partitions(cluster, witness)[victim_part]
    expected = NOT_NEEDED if back.leader_id == victim else 0
    assert kafka_python_elect(cluster.bootstrap(witness), 0, [victim_part]) == {
        victim_part: expected}
    if expected == 0:  # the preferred replica leads again, on every broker
        for node_id in (1, 2, 3):
            wait_until(lambda n=node_id: partitions(cluster, n)[victim_part].leader_id
                       == victim, 10, f"broker {victim} leading again, seen by {node_id}")
    # an unknown partition, and the untouched ones still need nothing
    got = confluent_elect(cluster.bootstrap(victim), "PREFERRED",
                          [p for p in (0, 1, 2) if p != victim_part])
    assert set(got.values()) == {NOT_NEEDED}
    assert kafka_python_elect(cluster.bootstrap(victim), 0, [7]) == {7: 3}


def test_leadership_returns_to_the_preferred_replica_on_its_own(tmp_path: Path) -> None:
    """``auto.leader.rebalance.enable`` with a 1 s check: after the preferred leader's
    broker restarts and rejoins the ISR (replication), the controller hands leadership back
    without any admin request."""
    from confluent_kafka.admin import AdminClient, NewTopic

    c = Cluster(tmp_path, overrides={"leader.imbalance.check.interval.seconds": "1"})
    try:
        c.start()
        admin = AdminClient({"bootstrap.servers": c.bootstrap(1)})
        for f in admin.create_topics([NewTopic(TOPIC, 3, 3)]).values():
            f.result(20)
        before = wait_until(lambda: (lambda ps: ps if len(ps) == 3 and all(
            p.leader_id >= 0 for p in ps.values()) else None)(partitions(c, 1)), 15,
            f"every partition of {TOPIC} with a leader")
        controller = c.quorum(1).leader_id
        victim_part, victim = next((i, p.replica_nodes[0]) for i, p in sorted(before.items())
                                   if p.replica_nodes[0] != controller)
        witness = next(b for b in (1, 2, 3) if b != victim)
        c.nodes[victim].stop(timeout=20)
        wait_until(lambda: partitions(c, witness)[victim_part].leader_id not in (victim, -1),
                   15, "another replica leading")
        c.nodes[victim].start()
        c.wait_brokers({1, 2, 3}, via=witness)
        wait_until(lambda: victim in partitions(c, witness)[victim_part].isr_nodes, 20,
                   f"broker {victim} back in the ISR")
        wait_until(lambda: all(partitions(c, n)[victim_part].leader_id == victim
                               for n in (1, 2, 3)), 20,
                   f"broker {victim} leading {TOPIC}-{victim_part} again on every broker")
    finally:
        c.close()
