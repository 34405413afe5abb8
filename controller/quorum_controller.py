"""The active controller on top of a ``QuorumNode`` (asyncio shell; decisions are pure).

While this node leads the quorum it keeps an ``ActiveController`` (committed image plus its
own pending proposals), created when the LeaderChange entry of its epoch is persisted and
usable once that entry is applied. Requests are turned into records by the pure functions
of ``controller.metadata`` against ``active.image`` and proposed as one entry
(``commit(records)``); the caller awaits the commit. Leadership loss fails every pending
proposal with ``NotControllerError`` (the client retries against the new controller).

Broker liveness: ``BrokerHeartbeats`` is rebuilt at each election (every registered broker
gets a fresh session); every driver cycle the brokers whose session expired
(``broker.session.timeout.ms``) are fenced and their partitions get new leaders from the
ISR where one is live (otherwise no leader: LEADER_NOT_AVAILABLE). A new incarnation of
the broker in the controller's own process (combined mode, after a restart) replaces the
old registration at once: the old one cannot be alive. Where no ISR member is live, a
topic whose ``unclean.leader.election.enable`` (else the broker default) is true gets the
first live replica as leader; once per ``unclean.leader.election.interval.ms`` the same
cycle does so for partitions already offline (their topic may allow it only now).

Leader balance: with ``auto.leader.rebalance.enable``, the same driver cycle checks the
leader imbalance once per ``leader.imbalance.check.interval.seconds`` and hands leadership
back to live in-sync preferred replicas (``elect_leaders.rebalance_leaders``); ElectLeaders
requests are decided by ``elect_leaders.elect_leaders`` (``QuorumController.elect_leaders``).

Reassignment: AlterPartitionReassignments is decided by
``reassignment.alter_reassignments`` and committed before it is answered;
ListPartitionReassignments reads the active image (``reassignment.ongoing``).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from common.logging import get_logger
from controller.metadata import broker_control, elect_leaders, isr_control, reassignment
from controller.metadata.active import ActiveController
from controller.metadata.codec import encode_batch
from controller.metadata.image import MetadataImage
from controller.metadata.records import (
    Endpoint,
    FenceBrokerRecord,
    MetadataRecord,
    PartitionChangeRecord,
)
from controller.quorum import QuorumNode, wall_ms
from controller.raft import Ready, decode_leader_change

log = get_logger("strom.controller")


class NotControllerError(Exception):
    """This node is not (or no longer) the active controller."""


class QuorumController:
    def __init__(self, node: QuorumNode, *, session_timeout_ms: int = 9000,
                 commit_timeout_ms: int = 10_000,
                 unclean_default: Callable[[], bool] = lambda: False,
                 auto_leader_rebalance: bool = True,
                 imbalance_check_interval_ms: int = 300_000,
                 imbalance_percentage: int = 10,
                 unclean_check_interval_ms: int = 300_000) -> None:
        """``unclean_default``: the broker default of ``unclean.leader.election.enable``
        (asked at each decision: it may change at runtime) for topics that do not set it.
        ``auto_leader_rebalance`` (``auto.leader.rebalance.enable``): every
        ``imbalance_check_interval_ms`` (``leader.imbalance.check.interval.seconds``) of
        being active, leadership goes back to preferred replicas of brokers whose
        imbalance exceeds ``imbalance_percentage``
        (``leader.imbalance.per.broker.percentage``; ``elect_leaders.rebalance_leaders``).
        Every ``unclean_check_interval_ms`` (``unclean.leader.election.interval.ms``)
        partitions without a live leader get one where their topic now allows unclean
        election (``elect_leaders.elect_unclean_leaderless``)."""
        self.node = node
        self.session_timeout_ms = session_timeout_ms
        self.commit_timeout_ms = commit_timeout_ms
        self.unclean_default = unclean_default
        self.auto_leader_rebalance = auto_leader_rebalance
        self.imbalance_check_interval_ms = imbalance_check_interval_ms
        self.imbalance_percentage = imbalance_percentage
        self.unclean_check_interval_ms = unclean_check_interval_ms
        #: wall-clock ms of the next leader-imbalance / unclean check (set on activation)
        self.next_balance_ms = 0
        self.next_unclean_ms = 0
        self.rng = random.Random()
        self.active: ActiveController | None = None
        self.active_epoch = -1
        self.heartbeats = broker_control.BrokerHeartbeats(session_timeout_ms)
        node.on_ready(self._after_ready)
        node.on_tick(self._on_tick)

    # ---- leadership -----------------------------------------------------------------
    def _after_ready(self, rd: Ready) -> None:
        core = self.node.core
        assert core is not None
        if self.active is not None and (not core.is_leader or core.epoch != self.active_epoch):
            self._abandon()
        if core.is_leader and self.active is None:
            for entry in rd.entries:
                change = decode_leader_change(entry.payload) if entry.control else None
                if change and change[0] == self.node.node_id and entry.epoch == core.epoch:
                    self.active = ActiveController(self.node.loader, entry.offset)
                    self.active_epoch = core.epoch
                    self.heartbeats = broker_control.BrokerHeartbeats(self.session_timeout_ms)
                    self.next_balance_ms = wall_ms() + self.imbalance_check_interval_ms
                    self.next_unclean_ms = wall_ms() + self.unclean_check_interval_ms
                    log.info("controller_activated", node_id=self.node.node_id,
                             epoch=core.epoch)
        if self.active is not None and rd.committed:
            for token in self.active.committed():
                if not token.done():
                    token.set_result(None)

    def _abandon(self) -> None:
        assert self.active is not None
        for token in self.active.abandon():
            if not token.done():
                token.set_exception(NotControllerError("leadership lost before commit"))
        log.info("controller_deactivated", node_id=self.node.node_id, epoch=self.active_epoch)
        self.active = None
        self.active_epoch = -1

    def _on_tick(self) -> None:
        core = self.node.core
        if self.active is not None and (core is None or not core.is_leader):
            self._abandon()
        active = self.active
        if active is None or not active.ready:
            return
        now = wall_ms()
        records = broker_control.fence_expired(active.image, self.heartbeats, now,
                                               unclean=self.unclean_default())
        if records:
            fenced = [r.broker_id for r in records if isinstance(r, FenceBrokerRecord)]
            log.warning("brokers_fenced", brokers=fenced, reason="session expired")
            self._propose_now(records)
        if now >= self.next_unclean_ms:
            self._elect_unclean(active, now)
        if self.auto_leader_rebalance and now >= self.next_balance_ms:
            self._balance_leaders(active, now)

    def _elect_unclean(self, active: ActiveController, now: int) -> None:
        """One periodic unclean check; the next after the interval (at the next tick when
        this batch hit its cap)."""
        changes, more = elect_leaders.elect_unclean_leaderless(active.image,
                                                               self.unclean_default())
        self.next_unclean_ms = now if more else now + self.unclean_check_interval_ms
        if changes:
            log.warning("unclean_leaders_elected", partitions=[
                (str(r.topic_id), r.partition_id, r.leader) for r in changes])
            self._propose_now(changes)

    def _balance_leaders(self, active: ActiveController, now: int) -> None:
        """One leader-imbalance check; the next one after the interval, or at the next
        tick when this batch hit its cap."""
        moves, more = elect_leaders.rebalance_leaders(active.image, self.imbalance_percentage)
        self.next_balance_ms = now if more else now + self.imbalance_check_interval_ms
        if moves:
            log.info("leaders_rebalanced", partitions=len(moves),
                     ratios=elect_leaders.imbalance_ratios(active.image))
            self._propose_now(moves)

    # ---- proposing ------------------------------------------------------------------
    @property
    def is_active(self) -> bool:
        return self.active is not None and self.active.ready

    def _propose_now(self, records: Sequence[MetadataRecord]) -> asyncio.Future[None]:
        """On the driver task: propose ``records`` as one entry; the future completes on
        commit (or fails with NotControllerError). A partition change that completes a
        reassignment completes it in the same record (``reassignment.complete_all``; the
        decisions that change ISRs do so already, this catches the others)."""
        core = self.node.core
        active = self.active
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if active is None or core is None or not core.is_leader:
            fut.set_exception(NotControllerError("not the active controller"))
            return fut
        records = reassignment.complete_all(active.image, records)
        offset = core.propose([encode_batch(list(records))])
        active.propose(records, offset, fut)
        return fut

    async def decide(self, decide: Any) -> Any:
        """Run ``decide(image, next_offset)`` on the driver task against the active image;
        it returns ``(records, result)``. The records are proposed together and committed
        before ``result`` is returned. Raises NotControllerError."""
        await self.wait_active(timeout=2.0)

        def run() -> tuple[asyncio.Future[None] | None, Any]:
            active = self.active
            core = self.node.core
            if active is None or not active.ready or core is None:
                raise NotControllerError("not the active controller")
            records, result = decide(active.image, core.log.end_offset)
            if not records:
                return None, result
            return self._propose_now(records), result

        fut, result = await self.node.call(run)
        if fut is not None:
            try:
                await asyncio.wait_for(fut, self.commit_timeout_ms / 1000)
            except TimeoutError:
                raise NotControllerError("the proposal did not commit in time") from None
        return result

    async def wait_active(self, timeout: float) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.is_active:
            core = self.node.core
            if core is None or (not core.is_leader and core.leader_id >= 0):
                leader = core.leader_id if core else -1
                raise NotControllerError(f"the active controller is {leader}")
            if asyncio.get_running_loop().time() >= deadline:
                raise NotControllerError("no active controller yet")
            await asyncio.sleep(0.02)

    # ---- brokers ----------------------------------------------------------------------
    async def register_broker(self, *, broker_id: int, incarnation_id: uuid.UUID,
                              endpoints: tuple[Endpoint, ...], rack: str | None,
                              log_dirs: tuple[uuid.UUID, ...] = ()
                              ) -> broker_control.RegistrationResult:
        """Register a broker (``broker_control.register_broker``); ``log_dirs`` are the
        directory ids it registers with. A registration that lost directories (their
        data is gone) is logged with the partitions it leaves."""
        def decide(image: MetadataImage, next_offset: int) -> tuple[Any, Any]:
            if broker_id == self.node.node_id:
                # the broker of this very process (combined mode): an older incarnation
                # of it cannot be alive, so it need not wait out its session
                self.heartbeats.forget(broker_id)
            res = broker_control.register_broker(
                image, self.heartbeats, broker_id=broker_id, incarnation_id=incarnation_id,
                endpoints=endpoints, rack=rack, next_offset=next_offset, now_ms=wall_ms(),
                log_dirs=log_dirs, unclean=self.unclean_default())
            return res.records, res

        result = await self.decide(decide)
        if result.records:
            log.info("broker_registered", broker_id=broker_id, epoch=result.broker_epoch)
        if result.lost_dirs:
            left = sorted(f"{r.topic_id}:{r.partition_id}" for r in result.records
                          if isinstance(r, PartitionChangeRecord))
            log.warning("broker_lost_data", broker_id=broker_id,
                        lost_directories=[str(d) for d in result.lost_dirs],
                        partitions_changed=left,
                        action="removed from every ISR and leadership; never elected "
                               "with its empty log unless unclean election is enabled")
        return result

    async def broker_heartbeat(self, *, broker_id: int, broker_epoch: int,
                               current_metadata_offset: int, want_fence: bool,
                               want_shut_down: bool) -> broker_control.HeartbeatResult:
        def decide(image: MetadataImage, next_offset: int) -> tuple[Any, Any]:
            res = broker_control.heartbeat(
                image, self.heartbeats, broker_id=broker_id, broker_epoch=broker_epoch,
                current_metadata_offset=current_metadata_offset, want_fence=want_fence,
                want_shut_down=want_shut_down, now_ms=wall_ms(),
                unclean=self.unclean_default())
            return res.records, res

        result = await self.decide(decide)
        if result.records:
            log.info("broker_state_changed", broker_id=broker_id, fenced=result.is_fenced,
                     shutting_down=want_shut_down)
        return result

    # ---- partitions -------------------------------------------------------------------
    async def alter_partition(self, *, broker_id: int, broker_epoch: int,
                              requests: Sequence[isr_control.IsrRequest]
                              ) -> isr_control.AlterPartitionDecision:
        """AlterPartition from a partition leader (``isr_control`` rules), answered once
        the ISR changes are committed."""
        def decide(image: MetadataImage, next_offset: int) -> tuple[Any, Any]:
            decision = isr_control.alter_partition(image, broker_id, broker_epoch, requests)
            return decision.records, decision

        result = await self.decide(decide)
        for r in result.records:
            log.info("isr_changed", topic_id=str(r.topic_id), partition=r.partition_id,
                     isr=list(r.isr or ()), requested_by=broker_id,
                     **({} if r.adding_replicas is None else {  # completed a reassignment
                         "reassignment_completed": True, "leader": r.leader,
                         "replicas": None if r.replicas is None else list(r.replicas)}))
        return result

    async def elect_leaders(self, election_type: int,
                            topic_partitions: Sequence[tuple[str, Sequence[int]]] | None
                            ) -> elect_leaders.ElectLeadersDecision:
        """ElectLeaders (``elect_leaders.elect_leaders`` rules) against the active image,
        answered once its leader changes are committed. Raises NotControllerError."""
        def decide(image: MetadataImage, next_offset: int) -> tuple[Any, Any]:
            decision = elect_leaders.elect_leaders(image, election_type, topic_partitions)
            return decision.records, decision

        result = await self.decide(decide)
        for r in result.records:
            log.info("leader_elected", topic_id=str(r.topic_id), partition=r.partition_id,
                     leader=r.leader, isr=None if r.isr is None else list(r.isr),
                     election_type=election_type)
        return result

    async def alter_partition_reassignments(
            self, requests: Sequence[tuple[str, Sequence[tuple[int, reassignment.Target]]]],
            *, allow_replication_factor_change: bool = True
            ) -> reassignment.ReassignmentDecision:
        """AlterPartitionReassignments (``reassignment.alter_reassignments`` rules) against
        the active image, answered once its changes are committed. A cancel may elect
        uncleanly only in topics whose ``unclean.leader.election.enable`` (else the broker
        default) is true. Raises NotControllerError."""
        def decide(image: MetadataImage, next_offset: int) -> tuple[Any, Any]:
            default = self.unclean_default()
            unclean = frozenset(name for name, _ in requests
                                if elect_leaders.unclean_enabled(image, name, default))
            decision = reassignment.alter_reassignments(
                image, requests, unclean=unclean,
                allow_replication_factor_change=allow_replication_factor_change)
            return decision.records, decision

        result = await self.decide(decide)
        for r in result.records:
            log.info("reassignment_changed", topic_id=str(r.topic_id),
                     partition=r.partition_id,
                     replicas=None if r.replicas is None else list(r.replicas),
                     adding=list(r.adding_replicas or ()),
                     removing=list(r.removing_replicas or ()), leader=r.leader)
        return result

    async def list_partition_reassignments(
            self, named: Sequence[tuple[str, Sequence[int]]] | None
            ) -> list[tuple[str, list[tuple[int, Any]]]]:
        """The reassignments in progress in the active image (``reassignment.ongoing``).
        Raises NotControllerError."""
        return await self.decide(lambda image, _next: ((), reassignment.ongoing(image, named)))
