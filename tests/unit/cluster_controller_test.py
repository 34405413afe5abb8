"""The controller shell in-process, over real sockets on 127.0.0.1: a controller-only
``ClusterNode`` (a one-voter quorum) with its controller listener, driven through the
outbound client ``net.client.ClientPool`` with the RPCs brokers send.

- ApiVersions on the controller listener advertises exactly the controller RPCs;
- BrokerRegistration / BrokerHeartbeat register and unfence a broker; a broker that stops
  heartbeating is fenced after ``broker.session.timeout.ms`` and its partitions lose their
  leader; a stale epoch is refused;
- forwarded CreateTopics / CreatePartitions / IncrementalAlterConfigs / DeleteTopics are
  decided against the image, committed, and visible in it; bad configs are refused;
- AlterPartitionReassignments v0-1 start, refuse (replication factor, replicas, topic,
  nothing to cancel) and cancel reassignments, committed before the answer;
  ListPartitionReassignments v0 lists what is in progress;
- an observer that joins after the leader compacted its log into a snapshot catches up
  through FetchSnapshot;
- the client pool: a refused connection backs off, a silent peer times out, a restarted
  peer is reconnected.
"""

from __future__ import annotations

import asyncio
import datetime
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kio.schema.allocate_producer_ids.v0.request import AllocateProducerIdsRequest
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.broker_heartbeat.v1.request import BrokerHeartbeatRequest
from kio.schema.broker_registration.v4.request import BrokerRegistrationRequest, Listener
from kio.schema.create_partitions.v3 import request as cp
from kio.schema.create_topics.v7 import request as ct
from kio.schema.delete_topics.v6 import request as dt
from kio.schema.incremental_alter_configs.v1 import request as iac

from broker.cluster.node import ClusterNode
from broker.config import load_config
from broker.server import KafkaServer
from controller.quorum import QuorumNode
from net.client import ClientPool, RequestError

pytestmark = pytest.mark.timeout(60)
TIMEOUT = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Controller:
    def __init__(self, node: ClusterNode, server: KafkaServer, port: int) -> None:
        self.node, self.server, self.port = node, server, port
        self.pool = ClientPool(client_id="test")

    async def call(self, body: Any) -> Any:
        return await self.pool.request("127.0.0.1", self.port, body, timeout=TIMEOUT)


async def start_controller(data: Path, port: int, **extra: str) -> Controller:
    overrides = {"log.dirs": str(data), "node.id": "1", "process.roles": "controller",
                 "controller.quorum.voters": f"1@127.0.0.1:{port}",
                 "listeners": f"CONTROLLER://127.0.0.1:{port}", "cluster.id": "unit",
                 "broker.session.timeout.ms": "600", **extra}
    config, unknown = load_config(None, overrides, environ={})
    assert not unknown
    node = ClusterNode(config)
    node.open()
    node.quorum.snapshot_every = 5
    server = KafkaServer(node.controller_endpoint())  # type: ignore[arg-type]
    await server.start("127.0.0.1", port)
    await node.start_quorum()
    return Controller(node, server, port)


async def stop_controller(c: Controller) -> None:
    c.pool.close()
    await c.node.stop()
    await c.server.shutdown()
    c.node.release_data_dir()


@pytest.fixture
async def controller(tmp_path: Path) -> AsyncIterator[Controller]:
    c = await start_controller(tmp_path / "c1", free_port())
    try:
        await wait_for(lambda: c.node.controller is not None and c.node.controller.is_active,
                       "the one voter to become the active controller")
        yield c
    finally:
        await stop_controller(c)


async def wait_for(cond: Any, what: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def register(c: Controller, broker_id: int,
                   log_dirs: tuple[uuid.UUID, ...] = ()) -> int:
    resp = await c.call(BrokerRegistrationRequest(
        broker_id=broker_id, cluster_id="unit", incarnation_id=uuid.uuid4(),
        listeners=(Listener(name="PLAINTEXT", host="127.0.0.1", port=9000 + broker_id,
                            security_protocol=0),), features=(), rack=None,
        log_dirs=log_dirs))
    assert int(resp.error_code) == 0
    return int(resp.broker_epoch)


async def heartbeat(c: Controller, broker_id: int, epoch: int) -> Any:
    return await c.call(BrokerHeartbeatRequest(
        broker_id=broker_id, broker_epoch=epoch,
        current_metadata_offset=c.node.quorum.image.offset, want_fence=False,
        want_shut_down=False))


def create(name: str, partitions: int, configs: dict[str, str] | None = None) -> Any:
    return ct.CreateTopicsRequest(topics=(ct.CreatableTopic(
        name=name, num_partitions=partitions, replication_factor=1, assignments=(),
        configs=tuple(ct.CreatableTopicConfig(name=k, value=v)
                      for k, v in (configs or {}).items())),),
        timeout=datetime.timedelta(seconds=5), validate_only=False)


async def test_controller_listener_advertises_only_controller_rpcs(
        controller: Controller) -> None:
    resp = await controller.call(ApiVersionsRequest(client_software_name="t",
                                                    client_software_version="1"))
    assert {int(k.api_key) for k in resp.api_keys} == {
        18, 52, 53, 54, 1, 59, 55, 56, 62, 63, 19, 20, 37, 33, 44, 67, 43, 45, 46,
        30, 31, 51, 49,  # ACLs, SCRAM credentials and quotas, forwarded by brokers
        17, 36,  # SaslHandshake and SaslAuthenticate, as Kafka's controller listener
        58}  # Envelope: brokers forward clients' topic mutations with their identity
    fetch = next(k for k in resp.api_keys if int(k.api_key) == 1)
    assert (fetch.min_version, fetch.max_version) == (18, 18)


async def test_allocate_producer_ids_hands_out_disjoint_committed_blocks(
        controller: Controller) -> None:
    c = controller
    epochs = {b: await register(c, b) for b in (1, 2)}
    blocks = []
    for b in (1, 2, 1):
        resp = await c.call(AllocateProducerIdsRequest(broker_id=b, broker_epoch=epochs[b]))
        assert int(resp.error_code) == 0, resp
        blocks.append((int(resp.producer_id_start), int(resp.producer_id_len)))
    assert blocks == [(0, 1000), (1000, 1000), (2000, 1000)]
    assert c.node.quorum.image.next_producer_id == 3000  # committed before the answer
    stale = await c.call(AllocateProducerIdsRequest(broker_id=1, broker_epoch=epochs[1] - 1))
    assert stale.error_code.name == "stale_broker_epoch"
    assert (int(stale.producer_id_start), int(stale.producer_id_len)) == (-1, 0)
    unknown = await c.call(AllocateProducerIdsRequest(broker_id=9, broker_epoch=1))
    assert unknown.error_code.name == "broker_id_not_registered"
    assert c.node.quorum.image.next_producer_id == 3000


async def test_broker_back_with_a_wiped_directory_is_not_elected_with_an_empty_log(
        controller: Controller) -> None:
    c = controller
    epoch = await register(c, 1, (uuid.UUID(int=0xA),))
    for _ in range(2):
        resp = await heartbeat(c, 1, epoch)
    assert int(resp.error_code) == 0 and not resp.is_fenced
    assert c.node.quorum.image.brokers[1].log_dirs == (uuid.UUID(int=0xA),)
    resp = await c.call(create("kept", 1))
    assert int(resp.topics[0].error_code) == 0, resp
    await wait_for(lambda: c.node.quorum.image.brokers[1].fenced, "broker 1 to be fenced")
    part = c.node.quorum.image.partition("kept", 0)
    assert part is not None and (part.leader, part.isr) == (-1, (1,))  # may lead again
    await register(c, 1, (uuid.UUID(int=0xB),))  # a new process on an empty disk
    part = c.node.quorum.image.partition("kept", 0)
    assert part is not None and (part.leader, part.isr) == (-1, ())
    epoch = await register(c, 1, (uuid.UUID(int=0xB),))
    for _ in range(2):
        resp = await heartbeat(c, 1, epoch)
    assert not resp.is_fenced
    part = c.node.quorum.image.partition("kept", 0)
    assert part is not None and part.leader == -1  # unfenced, still never elected


async def test_brokers_register_heartbeat_get_topics_and_are_fenced(
        controller: Controller) -> None:
    c = controller
    epochs = {b: await register(c, b) for b in (1, 2)}
    for b, e in epochs.items():
        await heartbeat(c, b, e)
        resp = await heartbeat(c, b, e)
        assert int(resp.error_code) == 0 and not resp.is_fenced
    stale = await heartbeat(c, 1, epochs[1] - 1)
    assert stale.error_code.name == "stale_broker_epoch"

    resp = await c.call(create("orders", 4, {"retention.ms": "60000"}))
    assert int(resp.topics[0].error_code) == 0, resp
    image = c.node.quorum.image
    topic = image.topic("orders")
    assert topic is not None and len(topic.partitions) == 4
    assert {p.leader for p in topic.partitions.values()} == {1, 2}
    assert dict(image.topic_config("orders")) == {"retention.ms": "60000"}

    bad = await c.call(create("bad", 1, {"retention.ms": "soon"}))
    assert bad.topics[0].error_code.name == "invalid_config"
    again = await c.call(create("orders", 1))
    assert again.topics[0].error_code.name == "topic_already_exists"

    grown = await c.call(cp.CreatePartitionsRequest(
        topics=(cp.CreatePartitionsTopic(name="orders", count=6, assignments=None),),
        timeout=datetime.timedelta(seconds=5), validate_only=False))
    assert int(grown.results[0].error_code) == 0
    assert len(c.node.quorum.image.topic("orders").partitions) == 6  # type: ignore[union-attr]

    altered = await c.call(iac.IncrementalAlterConfigsRequest(resources=(
        iac.AlterConfigsResource(resource_type=2, resource_name="orders", configs=(
            iac.AlterableConfig(name="cleanup.policy", config_operation=0,
                                value="compact"),)),), validate_only=False))
    assert int(altered.responses[0].error_code) == 0
    assert c.node.quorum.image.topic_config("orders")["cleanup.policy"] == "compact"

    # broker 2 stops heartbeating: fenced after the session timeout, partitions leaderless
    led_by_2 = {i for i, p in c.node.quorum.image.topic("orders").partitions.items()  # type: ignore[union-attr]
                if p.leader == 2}
    loop = asyncio.get_running_loop()
    end = loop.time() + 10
    while not c.node.quorum.image.brokers[2].fenced:
        assert loop.time() < end, "broker 2 was not fenced"
        await heartbeat(c, 1, epochs[1])
        await asyncio.sleep(0.1)
    parts = c.node.quorum.image.topic("orders").partitions  # type: ignore[union-attr]
    assert all(parts[i].leader == -1 for i in led_by_2)
    assert not c.node.quorum.image.brokers[1].fenced

    deleted = await c.call(dt.DeleteTopicsRequest(
        topics=(dt.DeleteTopicState(name="orders", topic_id=uuid.UUID(int=0)),),
        timeout=datetime.timedelta(seconds=5)))
    assert int(deleted.responses[0].error_code) == 0
    assert c.node.quorum.image.topic("orders") is None


async def test_observer_behind_a_snapshot_catches_up_with_fetch_snapshot(
        controller: Controller, tmp_path: Path) -> None:
    c = controller
    epoch = await register(c, 1)
    await heartbeat(c, 1, epoch)
    for i in range(8):  # more entries than snapshot_every: the leader compacts its log
        resp = await c.call(create(f"t{i}", 1))
        assert int(resp.topics[0].error_code) == 0
    await wait_for(lambda: any((c.node.quorum.directory).glob("*.checkpoint")),
                   "the leader to write a snapshot")
    assert c.node.quorum.core is not None and c.node.quorum.core.log.start_offset > 0

    observer = QuorumNode(node_id=9, voters={1: ("127.0.0.1", c.port)},
                          directory=tmp_path / "observer", cluster_id="unit")
    observer.open()
    await observer.start()
    try:
        await wait_for(lambda: observer.image.offset >= c.node.quorum.image.offset,
                       "the observer to catch up")
        assert sorted(observer.image.topic_ids) == [f"t{i}" for i in range(8)]
        assert any((tmp_path / "observer").glob("*.checkpoint"))
        described = c.node.quorum.describe().topics[0].partitions[0]
        assert [o.replica_id for o in described.observers] == [9]
    finally:
        await observer.stop()


async def test_client_pool_backs_off_times_out_and_reconnects(tmp_path: Path) -> None:
    pool = ClientPool(client_id="test", reconnect_backoff_ms=300, reconnect_backoff_max_ms=300)
    port = free_port()
    body = ApiVersionsRequest(client_software_name="t", client_software_version="1")
    with pytest.raises(RequestError, match="cannot connect"):
        await pool.request("127.0.0.1", port, body, timeout=1)
    with pytest.raises(RequestError, match="backing off"):
        await pool.request("127.0.0.1", port, body, timeout=1)

    silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    silent_port = silent.sockets[0].getsockname()[1]
    with pytest.raises(RequestError, match="timed out"):
        await pool.request("127.0.0.1", silent_port, body, timeout=0.3)
    silent.close()

    await asyncio.sleep(0.35)  # the backoff period of the refused port ends
    c = await start_controller(tmp_path / "c", port)
    try:
        resp = await pool.request("127.0.0.1", port, body, timeout=TIMEOUT)
        assert int(resp.error_code) == 0
        await stop_controller(c)
        with pytest.raises(RequestError):
            await pool.request("127.0.0.1", port, body, timeout=1)
        c = await start_controller(tmp_path / "c", port)
        await asyncio.sleep(0.35)
        resp = await pool.request("127.0.0.1", port, body, timeout=TIMEOUT)
        assert int(resp.error_code) == 0
    finally:
        pool.close()
        await stop_controller(c)


async def test_partition_reassignments_are_decided_committed_and_listed(
        controller: Controller) -> None:
    """AlterPartitionReassignments v0-1 and ListPartitionReassignments v0 on the
    controller listener (rules: controller/metadata/reassignment.py)."""
    from kio.schema.alter_partition_reassignments.v0 import request as apr0
    from kio.schema.alter_partition_reassignments.v1 import request as apr1
    from kio.schema.list_partition_reassignments.v0 import request as lpr

    c = controller
    for b in (1, 2, 3):
        await register(c, b)
    resp = await c.call(ct.CreateTopicsRequest(topics=(ct.CreatableTopic(
        name="moving", num_partitions=-1, replication_factor=-1, configs=(),
        assignments=(ct.CreatableReplicaAssignment(partition_index=0, broker_ids=(1, 2)),)),),
        timeout=datetime.timedelta(seconds=5), validate_only=False))
    assert int(resp.topics[0].error_code) == 0, resp

    def alter0(name: str, replicas: tuple[int, ...] | None) -> Any:
        return apr0.AlterPartitionReassignmentsRequest(topics=(apr0.ReassignableTopic(
            name=name, partitions=(apr0.ReassignablePartition(partition_index=0,
                                                              replicas=replicas),)),))

    def codes(response: Any) -> list[str]:
        return [p.error_code.name for t in response.responses for p in t.partitions]

    same_size = await c.call(apr1.AlterPartitionReassignmentsRequest(
        allow_replication_factor_change=False, topics=(apr1.ReassignableTopic(
            name="moving", partitions=(apr1.ReassignablePartition(
                partition_index=0, replicas=(3, 2, 1)),)),)))
    assert codes(same_size) == ["invalid_replication_factor"]
    assert same_size.allow_replication_factor_change is False
    assert codes(await c.call(alter0("moving", (3, 9)))) == ["invalid_replica_assignment"]
    assert codes(await c.call(alter0("nope", (3, 2)))) == ["unknown_topic_or_partition"]
    assert codes(await c.call(alter0("moving", None))) == ["no_reassignment_in_progress"]

    resp = await c.call(alter0("moving", (3, 2)))
    assert int(resp.error_code) == 0 and codes(resp) == ["none"]
    part = c.node.quorum.image.partition("moving", 0)  # committed before the answer
    assert part is not None and (part.replicas, part.adding_replicas,
                                 part.removing_replicas) == ((3, 2, 1), (3,), (1,))
    listed = await c.call(lpr.ListPartitionReassignmentsRequest(topics=None))
    assert int(listed.error_code) == 0
    assert [(t.name, [(p.partition_index, p.replicas, p.adding_replicas, p.removing_replicas)
                      for p in t.partitions]) for t in listed.topics] == \
        [("moving", [(0, (3, 2, 1), (3,), (1,))])]
    named = await c.call(lpr.ListPartitionReassignmentsRequest(topics=(
        lpr.ListPartitionReassignmentsTopics(name="moving", partition_indexes=(0, 5)),
        lpr.ListPartitionReassignmentsTopics(name="nope", partition_indexes=(0,)))))
    assert [t.name for t in named.topics] == ["moving"]

    assert codes(await c.call(alter0("moving", None))) == ["none"]
    part = c.node.quorum.image.partition("moving", 0)
    assert part is not None and part.replicas == (2, 1) and not part.reassigning
    listed = await c.call(lpr.ListPartitionReassignmentsRequest(topics=None))
    assert listed.topics == ()
