"""Where share-partition state is read and written (Kafka's ``Persister``): the share
coordinator of a share-partition is the leader of its ``__share_group_state`` partition.

- Partition-leader side (``read``/``write``/``delete``): when that leader is this node the
  call is local (``*_local``); otherwise it is ReadShareGroupState v0 /
  WriteShareGroupState v0 / DeleteShareGroupState v0 to it over the inter-broker
  listener. Any failure (no leader, connection, timeout) is an error code, never a hang.
- Share-coordinator side (``*_local``, also behind the three APIs): the latest snapshot
  per key is kept in memory, rebuilt from the partition's log whenever this node's leader
  epoch of that partition differs from the one it was read at (so a node that becomes
  leader after a failover reads what the previous leader wrote). A write whose state
  epoch is below the stored one is FENCED_STATE_EPOCH (AlterShareGroupOffsets started
  the share-partition afresh; its leader must re-read), as Kafka's share coordinator
  answers.
"""

from __future__ import annotations

from typing import Any

from kio.schema.delete_share_group_state.v0 import request as del_req
from kio.schema.read_share_group_state.v0 import request as read_req
from kio.schema.write_share_group_state.v0 import request as write_req

from broker.share.partition import StateBatch
from broker.share.state_format import ShareSnapshot, ShareStateKey
from broker.share.store import TOPIC, ShareStateStore
from common.logging import get_logger
from net.client import RequestError
from protocol.errors import ErrorCode

log = get_logger("strom.share")

RPC_TIMEOUT_S = 5.0
NOT_INITIALIZED = -1


class SharePersister:
    def __init__(self, broker: Any, store: ShareStateStore, clock: Any) -> None:
        self.broker = broker
        self.store = store
        self.clock = clock
        self.snapshots: dict[ShareStateKey, ShareSnapshot] = {}
        #: state partition -> this node's leader epoch when ``snapshots`` was read for it
        self._fresh: dict[int, int] = {}

    # ------------------------------------------------------------------ routing
    def _leader(self, partition: int) -> int | None:
        """Node id leading ``__share_group_state`` ``partition`` (this node when there is
        no cluster or it leads it), or None when unknown."""
        if self.broker.replica_manager.log(TOPIC, partition) is not None:
            return int(self.broker.node_id)
        cluster = getattr(self.broker, "cluster", None)
        if cluster is None:
            return None
        topic = cluster.quorum.image.topic(TOPIC)
        part = topic.partitions.get(partition) if topic is not None else None
        if part is None or part.leader < 0:
            return None
        return int(part.leader)

    def is_local(self, key: ShareStateKey) -> bool:
        return self.broker.replica_manager.log(TOPIC, self.store.partition_of(key)) is not None

    async def _rpc(self, key: ShareStateKey, body: Any) -> Any | int:
        await self.store.ensure_topic_ready()
        leader = self._leader(self.store.partition_of(key))
        cluster = getattr(self.broker, "cluster", None)
        if leader is None or cluster is None:
            return int(ErrorCode.coordinator_not_available)
        if leader == self.broker.node_id:
            return -1  # local after all (leadership arrived meanwhile)
        address = cluster._broker_address(leader)
        if address is None:
            return int(ErrorCode.coordinator_not_available)
        try:
            return await cluster.replica_pool.request(*address, body, timeout=RPC_TIMEOUT_S,
                                                      channel="share-state")
        except RequestError as exc:
            log.debug("share_state_rpc_failed", leader=leader, error=str(exc))
            return int(ErrorCode.coordinator_not_available)

    # ------------------------------------------------------------------ leader side
    async def read(self, key: ShareStateKey) -> tuple[int, ShareSnapshot | None]:
        await self.store.ensure_topic_ready()
        if self.is_local(key):
            return self.read_local(key)
        body = read_req.ReadShareGroupStateRequest(group_id=key.group_id, topics=(
            read_req.ReadStateData(topic_id=key.topic_id, partitions=(
                read_req.PartitionData(partition=key.partition, leader_epoch=-1),)),))
        resp = await self._rpc(key, body)
        if resp == -1:
            return self.read_local(key)
        if isinstance(resp, int):
            return resp, None
        try:
            p = resp.results[0].partitions[0]
        except IndexError:
            return int(ErrorCode.unknown_server_error), None
        if p.error_code:
            return int(p.error_code), None
        if p.start_offset == NOT_INITIALIZED:
            return 0, None
        now = self.clock()
        return 0, ShareSnapshot(0, p.state_epoch, -1, p.start_offset, now, now, tuple(
            StateBatch(b.first_offset, b.last_offset, b.delivery_state, b.delivery_count)
            for b in p.state_batches))

    async def replicated(self, key: ShareStateKey, code: int) -> int:
        """After a local write: wait (bounded) until the state partition's in-sync
        replicas have it, as Kafka's share coordinator writes with acks=all, so a
        failover of the share coordinator keeps what was answered."""
        if code:
            return code
        partition = self.store.partition_of(key)
        plog = self.broker.replica_manager.log(TOPIC, partition)
        if plog is None:
            return code
        waited = await self.broker.replica_manager.wait_replicated(
            (TOPIC, partition), plog.log_end_offset, RPC_TIMEOUT_S)
        if waited:
            log.warning("share_state_not_replicated", partition=partition,
                        error=ErrorCode(waited).name)
        return code

    async def write(self, key: ShareStateKey, snap: ShareSnapshot) -> int:
        await self.store.ensure_topic_ready()
        if self.is_local(key):
            return await self.replicated(key, self.write_local(key, snap))
        body = write_req.WriteShareGroupStateRequest(group_id=key.group_id, topics=(
            write_req.WriteStateData(topic_id=key.topic_id, partitions=(
                write_req.PartitionData(
                    partition=key.partition, state_epoch=snap.state_epoch,
                    leader_epoch=snap.leader_epoch, start_offset=snap.start_offset,
                    state_batches=tuple(write_req.StateBatch(
                        first_offset=b.first_offset, last_offset=b.last_offset,
                        delivery_state=b.state, delivery_count=b.delivery_count)
                        for b in snap.state_batches)),)),))
        resp = await self._rpc(key, body)
        if resp == -1:
            return await self.replicated(key, self.write_local(key, snap))
        if isinstance(resp, int):
            return resp
        try:
            return int(resp.results[0].partitions[0].error_code)
        except IndexError:
            return int(ErrorCode.unknown_server_error)

    async def delete(self, key: ShareStateKey) -> int:
        await self.store.ensure_topic_ready()
        if self.is_local(key):
            return await self.replicated(key, self.delete_local(key))
        body = del_req.DeleteShareGroupStateRequest(group_id=key.group_id, topics=(
            del_req.DeleteStateData(topic_id=key.topic_id, partitions=(
                del_req.PartitionData(partition=key.partition),)),))
        resp = await self._rpc(key, body)
        if resp == -1:
            return await self.replicated(key, self.delete_local(key))
        if isinstance(resp, int):
            return resp
        try:
            return int(resp.results[0].partitions[0].error_code)
        except IndexError:
            return int(ErrorCode.unknown_server_error)

    # ------------------------------------------------------------------ coordinator side
    def _refresh(self, partition: int) -> None:
        epoch = self.broker.replica_manager.leader_epoch(TOPIC, partition)
        if self._fresh.get(partition) == epoch:
            return
        for k in [k for k in self.snapshots if self.store.partition_of(k) == partition]:
            del self.snapshots[k]
        self.snapshots.update(self.store.replay_partition(partition))
        self._fresh[partition] = epoch

    def read_local(self, key: ShareStateKey) -> tuple[int, ShareSnapshot | None]:
        partition = self.store.partition_of(key)
        if self.broker.replica_manager.log(TOPIC, partition) is None:
            return int(ErrorCode.not_coordinator), None
        self._refresh(partition)
        return 0, self.snapshots.get(key)

    def write_local(self, key: ShareStateKey, snap: ShareSnapshot) -> int:
        code, prev = self.read_local(key)
        if code:
            return code
        if prev is not None and snap.state_epoch < prev.state_epoch:
            return int(ErrorCode.fenced_state_epoch)
        stored = ShareSnapshot(
            (prev.snapshot_epoch + 1) if prev else 0, snap.state_epoch, snap.leader_epoch,
            snap.start_offset, prev.create_timestamp if prev else snap.create_timestamp,
            snap.write_timestamp, snap.state_batches)
        code = int(self.store.write(key, stored))
        if code == 0:
            self.snapshots[key] = stored
        return code

    def delete_local(self, key: ShareStateKey) -> int:
        code, prev = self.read_local(key)
        if code or prev is None:
            return code
        code = int(self.store.write(key, None))
        if code == 0:
            self.snapshots.pop(key, None)
        return code
