"""Leader elections through the controller shell in-process, over real sockets: a
controller-only ``ClusterNode`` (a one-voter quorum) with its controller listener, driven
with the RPCs brokers send (``cluster_controller_test``'s helpers).

- ElectLeaders v0-2 is advertised on the controller listener and answered after the
  leader change committed: ELECTION_NOT_NEEDED, NONE (the preferred replica leads),
  UNKNOWN_TOPIC_OR_PARTITION, and v0 (no election type) means PREFERRED;
- ``leader.imbalance.check.interval.seconds``: the active controller moves leadership back
  to the preferred replica on its own; with ``auto.leader.rebalance.enable=false`` it
  does not;
- ``unclean.leader.election.interval.ms``: an offline partition whose topic is switched to
  ``unclean.leader.election.enable=true`` gets its live out-of-sync replica as leader.
"""

from __future__ import annotations

import asyncio
import datetime
from pathlib import Path
from typing import Any

import pytest
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.elect_leaders.v0 import request as el0
from kio.schema.elect_leaders.v2 import request as el2

from controller.metadata.records import PartitionChangeRecord
from tests.unit.cluster_controller_test import (
    Controller,
    free_port,
    heartbeat,
    register,
    start_controller,
    stop_controller,
    wait_for,
)

pytestmark = pytest.mark.timeout(60)
TOPIC = "orders"


def create_assigned(name: str, assignments: dict[int, list[int]]) -> Any:
    from kio.schema.create_topics.v7 import request as ct

    return ct.CreateTopicsRequest(topics=(ct.CreatableTopic(
        name=name, num_partitions=-1, replication_factor=-1,
        assignments=tuple(ct.CreatableReplicaAssignment(partition_index=i, broker_ids=tuple(b))
                          for i, b in assignments.items()),
        configs=()),), timeout=datetime.timedelta(seconds=5), validate_only=False)


def elect(election_type: int, partitions: dict[str, list[int]] | None) -> Any:
    return el2.ElectLeadersRequest(
        election_type=election_type,  # type: ignore[arg-type]
        topic_partitions=None if partitions is None else tuple(
            el2.TopicPartitions(topic=t, partitions=tuple(ps))  # type: ignore[arg-type]
            for t, ps in partitions.items()),
        timeout=datetime.timedelta(seconds=5))


async def not_preferred_leader(c: Controller) -> dict[int, int]:
    """Brokers 1 and 2; partition 0 (replicas [1, 2]) created while 1 was still fenced, so
    2 leads it; then 1 is unfenced and caught up: the ISR change a leader's AlterPartition
    would ask for is written directly. Returns the broker epochs."""
    epochs = {b: await register(c, b) for b in (1, 2)}
    await heartbeat(c, 2, epochs[2])
    await heartbeat(c, 2, epochs[2])
    resp = await c.call(create_assigned(TOPIC, {0: [1, 2], 1: [2, 1]}))
    assert int(resp.topics[0].error_code) == 0, resp
    image = c.node.quorum.image
    part, topic = image.partition(TOPIC, 0), image.topic(TOPIC)
    assert part is not None and topic is not None and part.leader == 2
    await heartbeat(c, 1, epochs[1])
    await heartbeat(c, 1, epochs[1])
    assert not c.node.quorum.image.brokers[1].fenced
    if 1 not in part.isr:
        rejoin = PartitionChangeRecord(0, topic.topic_id, isr=(2, 1))
        await c.node.controller.decide(lambda image, _next: ((rejoin,), None))  # type: ignore[union-attr]
    part = c.node.quorum.image.partition(TOPIC, 0)
    assert part is not None and part.leader == 2 and 1 in part.isr
    return epochs


async def keep_beating(c: Controller, epochs: dict[int, int]) -> None:
    while True:
        for b, e in epochs.items():
            await heartbeat(c, b, e)
        await asyncio.sleep(0.1)


@pytest.fixture
async def quiet_controller(tmp_path: Path) -> Any:
    """A controller that never rebalances on its own."""
    c = await start_controller(tmp_path / "c1", free_port(),
                               **{"auto.leader.rebalance.enable": "false",
                                  "broker.session.timeout.ms": "5000"})
    try:
        await wait_for(lambda: c.node.controller is not None and c.node.controller.is_active,
                       "the one voter to become the active controller")
        yield c
    finally:
        await stop_controller(c)


async def test_elect_leaders_is_advertised_and_answered_after_commit(
        quiet_controller: Controller) -> None:
    c = quiet_controller
    resp = await c.call(ApiVersionsRequest(client_software_name="t",
                                           client_software_version="1"))
    [key] = [k for k in resp.api_keys if int(k.api_key) == 43]
    assert (key.min_version, key.max_version) == (0, 2)

    await not_preferred_leader(c)
    resp = await c.call(elect(0, {TOPIC: [0, 1, 7], "missing": [0]}))
    assert int(resp.error_code) == 0
    got = {(t.topic, p.partition_id): p.error_code.name
           for t in resp.replica_election_results for p in t.partition_result}
    assert got == {(TOPIC, 0): "none", (TOPIC, 1): "election_not_needed",
                   (TOPIC, 7): "unknown_topic_or_partition",
                   ("missing", 0): "unknown_topic_or_partition"}
    # answered after the commit: the image already shows it
    assert c.node.quorum.image.partition(TOPIC, 0).leader == 1  # type: ignore[union-attr]

    again = await c.call(el0.ElectLeadersRequest(  # v0: PREFERRED, no top-level error
        topic_partitions=(el0.TopicPartitions(topic=TOPIC, partitions=(0,)),),  # type: ignore[arg-type]
        timeout=datetime.timedelta(seconds=5)))
    [[p]] = [t.partition_result for t in again.replica_election_results]
    assert p.error_code.name == "election_not_needed"

    everything = await c.call(elect(1, None))  # UNCLEAN, all partitions: all have leaders
    assert [(t.topic, t.partition_result) for t in everything.replica_election_results] == [
        (TOPIC, ())]


async def test_auto_rebalance_moves_leadership_back_to_the_preferred_replica(
        tmp_path: Path) -> None:
    c = await start_controller(tmp_path / "c1", free_port(),
                               **{"leader.imbalance.check.interval.seconds": "1",
                                  "leader.imbalance.per.broker.percentage": "10",
                                  "broker.session.timeout.ms": "5000"})
    beats: asyncio.Task[None] | None = None
    try:
        await wait_for(lambda: c.node.controller is not None and c.node.controller.is_active,
                       "the one voter to become the active controller")
        epochs = await not_preferred_leader(c)
        beats = asyncio.get_running_loop().create_task(keep_beating(c, epochs))
        await wait_for(lambda: c.node.quorum.image.partition(TOPIC, 0).leader == 1,  # type: ignore[union-attr]
                       "the preferred replica to lead again", timeout=10)
        assert c.node.quorum.image.partition(TOPIC, 1).leader == 2  # type: ignore[union-attr]
    finally:
        if beats is not None:
            beats.cancel()
        await stop_controller(c)


async def test_no_rebalance_when_disabled(quiet_controller: Controller) -> None:
    c = quiet_controller
    c.node.controller.imbalance_check_interval_ms = 1  # type: ignore[union-attr]
    await not_preferred_leader(c)
    await asyncio.sleep(0.5)
    assert c.node.quorum.image.partition(TOPIC, 0).leader == 2  # type: ignore[union-attr]


async def test_offline_partition_gets_an_unclean_leader_once_its_topic_allows_it(
        tmp_path: Path) -> None:
    from kio.schema.incremental_alter_configs.v1 import request as iac

    c = await start_controller(tmp_path / "c1", free_port(),
                               **{"unclean.leader.election.interval.ms": "200",
                                  "broker.session.timeout.ms": "600"})
    beats: asyncio.Task[None] | None = None
    try:
        await wait_for(lambda: c.node.controller is not None and c.node.controller.is_active,
                       "the one voter to become the active controller")
        epochs = {b: await register(c, b) for b in (1, 2)}
        await heartbeat(c, 1, epochs[1])
        await heartbeat(c, 1, epochs[1])
        resp = await c.call(create_assigned(TOPIC, {0: [1, 2]}))  # 2 still fenced
        assert int(resp.topics[0].error_code) == 0, resp
        image = c.node.quorum.image
        part, topic = image.partition(TOPIC, 0), image.topic(TOPIC)
        assert part is not None and topic is not None and part.leader == 1
        if part.isr != (1,):  # 2 never caught up: the shrink the leader would ask for
            shrink = PartitionChangeRecord(0, topic.topic_id, isr=(1,))
            await c.node.controller.decide(lambda image, _next: ((shrink,), None))  # type: ignore[union-attr]
        beats = asyncio.get_running_loop().create_task(keep_beating(c, {2: epochs[2]}))
        await wait_for(lambda: c.node.quorum.image.brokers[1].fenced
                       and not c.node.quorum.image.brokers[2].fenced,
                       "broker 1 fenced, broker 2 serving")
        part = c.node.quorum.image.partition(TOPIC, 0)
        assert part is not None and (part.leader, part.isr) == (-1, (1,))
        await asyncio.sleep(0.5)  # unclean election is off: it stays offline
        assert c.node.quorum.image.partition(TOPIC, 0).leader == -1  # type: ignore[union-attr]

        altered = await c.call(iac.IncrementalAlterConfigsRequest(resources=(
            iac.AlterConfigsResource(resource_type=2, resource_name=TOPIC, configs=(
                iac.AlterableConfig(name="unclean.leader.election.enable",
                                    config_operation=0, value="true"),)),),
            validate_only=False))
        assert int(altered.responses[0].error_code) == 0, altered
        await wait_for(lambda: c.node.quorum.image.partition(TOPIC, 0).leader == 2,  # type: ignore[union-attr]
                       "the out-of-sync replica elected", timeout=10)
        assert c.node.quorum.image.partition(TOPIC, 0).isr == (2,)  # type: ignore[union-attr]
    finally:
        if beats is not None:
            beats.cancel()
        await stop_controller(c)
