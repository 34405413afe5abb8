"""A KIP-848 consumer group survives the loss of its coordinator (3-node cluster, RF 3
``__consumer_offsets``): two members reconcile to a shared epoch with raw
ConsumerGroupHeartbeats, the coordinator is SIGKILLed, and the new coordinator (the new
leader of the group's ``__consumer_offsets`` partition) knows both members at their
epochs with their assignments: they heartbeat on without rejoining."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_cluster import Cluster, wait_until
from tests.e2e.test_replication import REPLICATED, coordinator_of, create_topic, full_isr, live

pytestmark = pytest.mark.timeout(240)

RETRY = {"not_coordinator", "coordinator_not_available", "coordinator_load_in_progress"}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path, overrides={
        **REPLICATED,
        # long enough for the members to outlive the failover without heartbeating
        "group.consumer.session.timeout.ms": "60000",
        "group.consumer.heartbeat.interval.ms": "500",
        "group.consumer.min.heartbeat.interval.ms": "100",
    })
    try:
        yield c.start()
    finally:
        c.close()


def heartbeat(c: Cluster, node: int, **kw: Any) -> Any:
    from kio.schema.consumer_group_heartbeat.v1.request import ConsumerGroupHeartbeatRequest
    from kio.static.primitive import i32, i32Timedelta

    from net.wire import WireClient

    fields: dict[str, Any] = {
        "member_epoch": i32(kw.pop("member_epoch", 0)),
        "topic_partitions": kw.pop("topic_partitions", ()),
        "rebalance_timeout": i32Timedelta.parse(datetime.timedelta(milliseconds=30_000)),
        **kw,
    }
    with WireClient("127.0.0.1", c.client_ports[node], timeout=10) as client:
        return client.request(ConsumerGroupHeartbeatRequest(**fields))


def until_served(c: Cluster, group: str, **kw: Any) -> Any:
    """Heartbeat the group's current coordinator until it answers something other than
    'not (yet) the coordinator'."""
    def attempt() -> Any:
        try:
            r = heartbeat(c, coordinator_of(c, group), group_id=group, **kw)
        except OSError:  # the node just died
            return None
        return None if r.error_code.name in RETRY else r

    return wait_until(attempt, 60, f"a heartbeat answered by the coordinator of {group}")


def owned(r: Any) -> tuple[Any, ...]:
    return tuple(r.assignment.topic_partitions) if r.assignment is not None else ()


def test_member_epochs_and_assignments_survive_a_coordinator_kill(cluster: Cluster) -> None:
    topic, group = "cg-failover", "cg-failover-group"
    create_topic(cluster, topic, 4)
    coordinator_of(cluster, group)  # creates __consumer_offsets
    wait_until(lambda: full_isr(cluster, "__consumer_offsets"), 60,
               "__consumer_offsets fully replicated")
    a = until_served(cluster, group, member_id="m-a", subscribed_topic_names=(topic,))
    assert a.error_code.name == "none" and a.member_epoch == 1
    a_parts = owned(a)
    b = until_served(cluster, group, member_id="m-b", subscribed_topic_names=(topic,))
    assert b.member_epoch == 2 and owned(b) == ()  # a still owns everything
    # a revokes what moves to b, then both reach epoch 2
    a = until_served(cluster, group, member_id="m-a", member_epoch=1, topic_partitions=a_parts)
    a_parts = owned(a)
    assert sum(len(tp.partitions) for tp in a_parts) == 2
    a = until_served(cluster, group, member_id="m-a", member_epoch=1, topic_partitions=a_parts)
    assert a.member_epoch == 2
    b = until_served(cluster, group, member_id="m-b", member_epoch=2, topic_partitions=())
    b_parts = owned(b)
    assert b.member_epoch == 2 and sum(len(tp.partitions) for tp in b_parts) == 2
    b = until_served(cluster, group, member_id="m-b", member_epoch=2, topic_partitions=b_parts)
    assert b.error_code.name == "none"

    old = coordinator_of(cluster, group)
    cluster.nodes[old].kill()
    wait_until(lambda: coordinator_of(cluster, group) != old and live(cluster) != old, 60,
               "a new coordinator")
    # both members go on at epoch 2 with what they own: no rejoin, no new assignment
    for member, parts in (("m-a", a_parts), ("m-b", b_parts)):
        r = until_served(cluster, group, member_id=member, member_epoch=2,
                         topic_partitions=parts)
        assert (r.error_code.name, r.member_epoch) == ("none", 2), r
        assert r.assignment is None, r  # the new coordinator already knew this assignment
