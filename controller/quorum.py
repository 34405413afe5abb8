"""The asyncio driver of one quorum member (voter or observer): RaftStore + RaftCore +
MetadataLoader, as sketched in ``controller/__init__.py``.

One task (``QuorumNode._run``) owns the core. Everything that touches the core — an
inbound RPC, a response to one of its requests, a proposal — is queued as a callable and
run by that task between two ``Ready`` cycles, so the core is never stepped while a Ready
is being persisted. Per cycle, in order: run queued work, ``tick``, then while the core
has a Ready: persist it in a worker thread (fsync; the event loop keeps serving), load a
received snapshot, apply committed entries to the loader (publishing a new
``MetadataImage``), run the after-Ready hooks (the active controller), and only then send
its messages (persist before send) and ``advance``.

Networking: requests the core sends go to the voter's controller endpoint
(``controller.quorum.voters``) through ``net.client.ClientPool`` (TLS and SASL login as
the controller listener needs) — Fetch/FetchSnapshot on
their own connection so a long-polling Fetch never delays a Vote. A failed or timed-out
request is dropped: the core's timers resend. Inbound requests (``handle``) are stepped
into the core with a local correlation id; the handler waits (bounded) for the core's
response message with that id.

Observability: ``metadata_lag`` (committed entries not yet applied) with a warning log
line while it stays above zero, and DescribeQuorum (``describe``) on the leader.

Failure: a store error, a log written by a quorum with another voter set
(``InconsistentVoterSetError``) or a metadata record that does not apply stops the node:
``fatal`` names the problem and ``on_fatal`` callbacks run (the process exits).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import itertools
import os
import random
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.logging import get_logger
from controller.metadata.image import MetadataImage
from controller.metadata.loader import MetadataLoader
from controller.raft import RaftConfig, RaftCore, Ready, wire
from controller.raft.messages import (
    BeginQuorumEpochRequest,
    EndQuorumEpochRequest,
    FetchRequest,
    FetchSnapshotRequest,
    Message,
    VoteRequest,
)
from controller.raft_store import RaftStore
from net.client import ClientPool, RequestError
from net.sasl_login import SaslLogin

log = get_logger("strom.quorum")

REQUEST_TYPES = (VoteRequest, BeginQuorumEpochRequest, EndQuorumEpochRequest, FetchRequest,
                 FetchSnapshotRequest)
METADATA_DIR = "__cluster_metadata-0"
LAG_WARN_S = 3.0


class VoterConfigError(ValueError):
    """``controller.quorum.voters`` cannot be parsed."""


def parse_voters(spec: str) -> dict[int, tuple[str, int]]:
    """``1@host:port,2@host:port`` → {1: (host, port), ...}; raises VoterConfigError."""
    out: dict[int, tuple[str, int]] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        node, at, address = part.partition("@")
        host, colon, port = address.rpartition(":")
        try:
            node_id, port_no = int(node), int(port)
        except ValueError:
            node_id = port_no = -1
        if not at or not colon or not host or node_id < 0 or not 0 < port_no < 65536:
            raise VoterConfigError(
                f"controller.quorum.voters entry {part!r} is not id@host:port")
        if node_id in out:
            raise VoterConfigError(f"controller.quorum.voters names node {node_id} twice")
        out[node_id] = (host.strip("[]"), port_no)
    if not out:
        raise VoterConfigError("controller.quorum.voters is empty")
    return out


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class QuorumNode:
    """One member of the metadata quorum; see the module doc."""

    def __init__(
        self,
        *,
        node_id: int,
        voters: dict[int, tuple[str, int]],
        directory: Path,
        cluster_id: str,
        election_timeout_ms: int = 1000,
        fetch_timeout_ms: int = 2000,
        request_timeout_ms: int = 2000,
        fetch_max_wait_ms: int = 500,
        snapshot_every: int = 1000,
        ssl_context: ssl.SSLContext | None = None,
        sasl: SaslLogin | None = None,
    ) -> None:
        self.node_id = node_id
        self.voters = dict(voters)
        self.directory = directory
        self.cluster_id = cluster_id
        self.config = RaftConfig(
            node_id=node_id, voters=frozenset(voters), cluster_id=cluster_id,
            election_timeout_ms=election_timeout_ms, fetch_timeout_ms=fetch_timeout_ms,
            request_timeout_ms=request_timeout_ms, fetch_max_wait_ms=fetch_max_wait_ms)
        self.snapshot_every = snapshot_every
        self.store: RaftStore | None = None
        self.core: RaftCore | None = None
        self.loader = MetadataLoader()
        #: TLS to the other voters when the controller listener is SSL/SASL_SSL, and the
        #: SASL login (``sasl.mechanism.controller.protocol``) when it is SASL_*
        self.pool = ClientPool(client_id=f"strom-quorum-{node_id}", ssl_context=ssl_context,
                               sasl=sasl)
        self.fatal: str | None = None
        self._inbox: collections.deque[Callable[[], None]] = collections.deque()
        self._wake = asyncio.Event()
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._task: asyncio.Task[None] | None = None
        self._send_tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._since_snapshot = 0
        self._image_listeners: list[Callable[[MetadataImage], None]] = []
        self._ready_hooks: list[Callable[[Ready], None]] = []
        self._tick_hooks: list[Callable[[], None]] = []
        self._fatal_listeners: list[Callable[[str], None]] = []
        self._image_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self.last_lag_log = 0.0
        self._behind_since: float | None = None
        self._lag_warned = False

    # ---- lifecycle ----------------------------------------------------------------
    def open(self) -> list[str]:
        """Open the store (raises ``RaftStoreError`` naming the problem) and build the core."""
        self.store = RaftStore.open(self.directory, cluster_id=self.cluster_id,
                                    voters=frozenset(self.voters))
        durable = self.store.load()
        if durable.snapshot is not None:
            self.loader.load_snapshot(durable.snapshot)
        self.core = RaftCore(self.config, random.Random(os.urandom(8)), durable,
                             now_ms=wall_ms())
        return list(self.store.recovery_notes)

    async def start(self) -> None:
        assert self.core is not None, "open() first"
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self, timeout: float = 1.5) -> None:
        """Resign leadership (EndQuorumEpoch reaches the voters when it can) and stop. A
        lone voter does not resign: nobody could take over, and it would only elect itself
        again in a new epoch while stopping."""
        if self._task is None:
            return
        if self.core is not None and self.core.is_leader and self.fatal is None \
                and len(self.voters) > 1:
            self.submit(self.core.resign)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._drain_sends(), timeout)
        self._stopping = True
        self._wake.set()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        for task in list(self._send_tasks):
            task.cancel()
        self.pool.close()
        for fut in self._waiting.values():
            if not fut.done():
                fut.cancel()

    async def _drain_sends(self) -> None:
        await asyncio.sleep(0.05)
        while self._send_tasks:
            await asyncio.wait(set(self._send_tasks))

    # ---- observers ----------------------------------------------------------------
    def on_image(self, listener: Callable[[MetadataImage], None]) -> None:
        self._image_listeners.append(listener)

    def on_ready(self, hook: Callable[[Ready], None]) -> None:
        """``hook(rd)`` after a Ready is persisted and applied, before its messages leave."""
        self._ready_hooks.append(hook)

    def on_tick(self, hook: Callable[[], None]) -> None:
        """``hook()`` once per driver cycle (after the core's tick)."""
        self._tick_hooks.append(hook)

    def on_fatal(self, listener: Callable[[str], None]) -> None:
        self._fatal_listeners.append(listener)

    @property
    def image(self) -> MetadataImage:
        return self.loader.image

    @property
    def leader_id(self) -> int:
        return self.core.leader_id if self.core is not None else -1

    @property
    def epoch(self) -> int:
        return self.core.epoch if self.core is not None else -1

    @property
    def is_leader(self) -> bool:
        return self.core is not None and self.core.is_leader

    @property
    def high_watermark(self) -> int:
        return self.core.high_watermark if self.core is not None else 0

    def submit(self, work: Callable[[], None]) -> None:
        """Run ``work()`` on the driver task (the only place the core is touched)."""
        self._inbox.append(work)
        self._wake.set()

    async def call(self, work: Callable[[], Any]) -> Any:
        """Run ``work()`` on the driver task and return its result (or raise its error)."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def run() -> None:
            try:
                result = work()
            except Exception as exc:
                if not fut.done():
                    fut.set_exception(exc)
            else:
                if not fut.done():
                    fut.set_result(result)

        self.submit(run)
        return await fut

    async def wait_for_offset(self, offset: int, timeout: float) -> bool:
        """Wait until the local image has applied ``offset``; False on timeout."""
        if self.loader.image.offset >= offset:
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._image_waiters.append((offset, fut))
        try:
            await asyncio.wait_for(fut, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self._image_waiters = [w for w in self._image_waiters if w[1] is not fut]

    # ---- inbound RPCs -------------------------------------------------------------
    async def handle(self, entity: Any) -> Any:
        """Answer an inbound quorum request (kio entity) with the core's kio response.
        Raises ``TimeoutError`` when the core does not answer in time (the connection
        should then be closed)."""
        cid = next(self._ids)
        msg = wire.from_kio(entity, src=-1, dst=self.node_id, correlation_id=cid)
        src = getattr(msg, "replica_id", None)
        if src is None:
            src = getattr(msg, "leader_id", -1)
        msg = dataclasses.replace(msg, src=src)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[cid] = fut
        self.submit(lambda: self._step(msg))
        wait_ms = self.config.request_timeout_ms
        if isinstance(msg, FetchRequest):
            wait_ms += msg.max_wait_ms
        try:
            return await asyncio.wait_for(fut, wait_ms / 1000)
        finally:
            self._waiting.pop(cid, None)

    def describe(self) -> Any:
        """DescribeQuorum v2 response (NOT_LEADER_OR_FOLLOWER unless this is the leader)."""
        core = self.core
        assert core is not None
        return wire.describe_quorum_response(core.describe_quorum(), leader_id=core.leader_id,
                                             leader_epoch=core.epoch)

    # ---- the driver ---------------------------------------------------------------
    def _step(self, msg: Message) -> None:
        assert self.core is not None
        self.core.step(msg, wall_ms())

    def _fail(self, problem: str) -> None:
        if self.fatal is None:
            self.fatal = problem
            log.error("quorum_stopped", node_id=self.node_id, problem=problem)
            for listener in self._fatal_listeners:
                listener(problem)

    async def _run(self) -> None:
        try:
            await self._loop()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(f"{type(exc).__name__}: {exc}")

    def _run_inbox(self) -> None:
        while self._inbox:
            self._inbox.popleft()()

    async def _loop(self) -> None:
        core = self.core
        store = self.store
        assert core is not None and store is not None
        while not self._stopping:
            self._wake.clear()
            self._run_inbox()
            core.tick(wall_ms())
            for hook in self._tick_hooks:
                hook()
            before = self.loader.image
            while core.has_ready():
                rd = core.ready()
                await asyncio.to_thread(store.persist, rd)
                if rd.snapshot is not None and rd.snapshot_received:
                    self.loader.load_snapshot(rd.snapshot)
                if rd.committed:
                    self.loader.apply_entries(rd.committed)
                    self._since_snapshot += len(rd.committed)
                for hook in self._ready_hooks:
                    hook(rd)
                for m in rd.messages:
                    self._send(m)
                core.advance(rd)
                self._maybe_snapshot()
                self._run_inbox()
            if self.loader.image is not before:
                self._publish()
            self._check_lag()
            delay = max(core.next_deadline() - wall_ms(), 0) / 1000
            if not self._inbox:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), min(delay, 1.0))

    def _publish(self) -> None:
        image = self.loader.image
        for listener in self._image_listeners:
            try:
                listener(image)
            except Exception as exc:  # a listener bug must not stop the quorum
                log.exception("image_listener_failed", error=repr(exc))
        for offset, fut in self._image_waiters:
            if image.offset >= offset and not fut.done():
                fut.set_result(None)

    @property
    def metadata_lag(self) -> int:
        """Committed entries (below the known high watermark) not yet in the image."""
        return max(self.high_watermark - 1 - self.loader.image.offset, 0)

    def _check_lag(self) -> None:
        """Metadata lag is observable: a warning while the image stays behind the high
        watermark (or no leader is known) for more than ``LAG_WARN_S``, every few seconds,
        and a note when it has caught up again. DescribeQuorum shows every replica's log
        end offset as well."""
        now = time.monotonic()
        behind = self.metadata_lag > 0 or self.leader_id < 0
        if not behind:
            if self._lag_warned:
                log.info("metadata_caught_up", node_id=self.node_id,
                         applied=self.loader.image.offset, leader=self.leader_id)
            self._behind_since, self._lag_warned = None, False
            return
        if self._behind_since is None:
            self._behind_since = now
        if now - self._behind_since > LAG_WARN_S and now - self.last_lag_log > LAG_WARN_S:
            self.last_lag_log = now
            self._lag_warned = True
            log.warning("metadata_lag", node_id=self.node_id, applied=self.loader.image.offset,
                        high_watermark=self.high_watermark, lag=self.metadata_lag,
                        leader=self.leader_id,
                        behind_ms=int((now - self._behind_since) * 1000))

    def _maybe_snapshot(self) -> None:
        core = self.core
        assert core is not None
        if self._since_snapshot < self.snapshot_every or self.loader.last_epoch < 0:
            return
        try:
            core.snapshot_taken(self.loader.snapshot())
        except ValueError as exc:
            log.debug("snapshot_skipped", reason=str(exc))
            return
        self._since_snapshot = 0

    def _send(self, m: Message) -> None:
        if not isinstance(m, REQUEST_TYPES):
            fut = self._waiting.get(m.correlation_id)
            if fut is not None and not fut.done():
                fut.set_result(wire.to_kio(m))
            return
        address = self.voters.get(m.dst)
        if address is None:
            return
        task = asyncio.get_running_loop().create_task(self._request(m, address))
        self._send_tasks.add(task)
        task.add_done_callback(self._send_tasks.discard)

    async def _request(self, m: Message, address: tuple[str, int]) -> None:
        channel = "fetch" if isinstance(m, FetchRequest | FetchSnapshotRequest) else "raft"
        timeout = self.config.request_timeout_ms / 1000
        if isinstance(m, FetchRequest):
            timeout += m.max_wait_ms / 1000
        try:
            response = await self.pool.request(address[0], address[1], wire.to_kio(m),
                                               timeout=timeout, channel=channel)
            reply = wire.from_kio(response, src=m.dst, dst=self.node_id,
                                  correlation_id=m.correlation_id)
        except (RequestError, wire.WireError) as exc:
            log.debug("quorum_request_failed", dst=m.dst, kind=type(m).__name__,
                      error=str(exc))
            return
        self.submit(lambda: self._step(reply))
