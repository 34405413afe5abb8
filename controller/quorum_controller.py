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
old registration at once: the old one cannot be alive.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Sequence
from typing import Any

from common.logging import get_logger
from controller.metadata import broker_control
from controller.metadata.active import ActiveController
from controller.metadata.codec import encode_batch
from controller.metadata.image import MetadataImage
from controller.metadata.records import Endpoint, FenceBrokerRecord, MetadataRecord
from controller.quorum import QuorumNode, wall_ms
from controller.raft import Ready, decode_leader_change

log = get_logger("strom.controller")


class NotControllerError(Exception):
    """This node is not (or no longer) the active controller."""


class QuorumController:
    def __init__(self, node: QuorumNode, *, session_timeout_ms: int = 9000,
                 commit_timeout_ms: int = 10_000) -> None:
        self.node = node
        self.session_timeout_ms = session_timeout_ms
        self.commit_timeout_ms = commit_timeout_ms
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
        records = broker_control.fence_expired(active.image, self.heartbeats, wall_ms())
        if records:
            fenced = [r.broker_id for r in records if isinstance(r, FenceBrokerRecord)]
            log.warning("brokers_fenced", brokers=fenced, reason="session expired")
            self._propose_now(records)

    # ---- proposing ------------------------------------------------------------------
    @property
    def is_active(self) -> bool:
        return self.active is not None and self.active.ready

    def _propose_now(self, records: Sequence[MetadataRecord]) -> asyncio.Future[None]:
        """On the driver task: propose ``records`` as one entry; the future completes on
        commit (or fails with NotControllerError)."""
        core = self.node.core
        active = self.active
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if active is None or core is None or not core.is_leader:
            fut.set_exception(NotControllerError("not the active controller"))
            return fut
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
                              endpoints: tuple[Endpoint, ...], rack: str | None
                              ) -> broker_control.RegistrationResult:
        def decide(image: MetadataImage, next_offset: int) -> tuple[Any, Any]:
            if broker_id == self.node.node_id:
                # the broker of this very process (combined mode): an older incarnation
                # of it cannot be alive, so it need not wait out its session
                self.heartbeats.forget(broker_id)
            res = broker_control.register_broker(
                image, self.heartbeats, broker_id=broker_id, incarnation_id=incarnation_id,
                endpoints=endpoints, rack=rack, next_offset=next_offset, now_ms=wall_ms())
            return res.records, res

        result = await self.decide(decide)
        if result.records:
            log.info("broker_registered", broker_id=broker_id, epoch=result.broker_epoch)
        return result

    async def broker_heartbeat(self, *, broker_id: int, broker_epoch: int,
                               current_metadata_offset: int, want_fence: bool,
                               want_shut_down: bool) -> broker_control.HeartbeatResult:
        def decide(image: MetadataImage, next_offset: int) -> tuple[Any, Any]:
            res = broker_control.heartbeat(
                image, self.heartbeats, broker_id=broker_id, broker_epoch=broker_epoch,
                current_metadata_offset=current_metadata_offset, want_fence=want_fence,
                want_shut_down=want_shut_down, now_ms=wall_ms())
            return res.records, res

        result = await self.decide(decide)
        if result.records:
            log.info("broker_state_changed", broker_id=broker_id, fenced=result.is_fenced,
                     shutting_down=want_shut_down)
        return result
