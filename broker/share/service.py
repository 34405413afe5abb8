"""The asyncio shell of share groups: one ``ShareService`` per broker.

It owns the pure parts and moves time and bytes to them:

- ``coordinator`` (``broker.share.group``): membership of the share groups this node
  coordinates (the leader of the group's ``__consumer_offsets`` partition, as for every
  group). Membership is in memory: members re-join with epoch 0 after a restart.
- ``sessions`` (``broker.share.sessions``): share sessions of the members fetching here.
- ``partitions``: the ``SharePartition`` of each (group, topic id, partition) led here,
  created on first ShareFetch from its stored snapshot, else at the log end (Kafka's
  ``share.auto.offset.reset=latest``), and written to ``__share_group_state`` whenever an
  acknowledgement, release, lock expiry or SPSO move changed it (``persist``), before
  the request that changed it is answered.
- One ``loop.call_later`` timer at the earliest deadline (a record lock or a member
  session); when it fires, expired locks are released (and persisted) and waiting
  ShareFetch requests are woken (``released`` future), expired members removed.
Clock: wall-clock milliseconds.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from broker.group.partitioner import partition_for
from broker.share.config import ShareGroupConfig, share_config_from
from broker.share.group import ShareGroupCoordinator
from broker.share.partition import SharePartition
from broker.share.persister import SharePersister
from broker.share.sessions import ShareSessionCache
from broker.share.state_format import ShareSnapshot, ShareStateKey
from broker.share.store import ShareStateStore
from common.logging import get_logger
from protocol.errors import ErrorCode

log = get_logger("strom.share")

EXTENSION_KEY = "share_groups"


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class ShareService:
    def __init__(self, broker: Any, config: ShareGroupConfig | None = None) -> None:
        self.broker = broker
        self.config = config or share_config_from(broker.config)
        self.store = ShareStateStore(broker, self.config, wall_ms)
        self.coordinator = ShareGroupCoordinator(
            self.config, is_local=self._is_local_group, other_group_type=self._other_type)
        self.sessions = ShareSessionCache(self.config.max_share_sessions,
                                          idle_ms=self.config.session_timeout_ms)
        self.persister = SharePersister(broker, self.store, wall_ms)
        self.partitions: dict[ShareStateKey, SharePartition] = {}
        self._loaded_epoch: dict[ShareStateKey, int] = {}
        self._locks: dict[ShareStateKey, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._released: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_deadline: int | None = None
        self._closed = False

    # ------------------------------------------------------------------ group plumbing
    def _groups(self) -> Any:
        from broker.group.service import service_for  # the classic/consumer coordinator

        return service_for(self.broker)

    def _is_local_group(self, group_id: str) -> bool:
        groups = self._groups()
        count = groups.store.partition_count() or groups.config.offsets_topic_num_partitions
        return bool(groups.store.is_local(partition_for(group_id, count)))

    def _other_type(self, group_id: str) -> str | None:
        kind = getattr(self._groups().coordinator, "group_type", lambda _g: None)(group_id)
        return kind if kind in ("classic", "consumer") else None

    # ------------------------------------------------------------------ lifecycle
    def load(self) -> None:
        started = time.monotonic()
        stored = self.store.replay()  # every local replica: which groups have state
        self.coordinator.stored = {k.group_id for k in stored}
        log.info("share_state_loaded", share_partitions=len(stored),
                 ms=round((time.monotonic() - started) * 1000, 1))

    def shutdown(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.wake()

    # ------------------------------------------------------------------ share-partitions
    async def share_partition(self, key: ShareStateKey, plog: Any, *,
                              revalidate: bool = False) -> tuple[int, SharePartition | None]:
        """(error, share-partition of ``key`` on its local leader log ``plog``): created
        from the share coordinator's snapshot, else at the log end. Re-read when this
        node's leader epoch of the partition changed, or with ``revalidate`` (a share
        session opens) while nothing is locked, so an AlterShareGroupOffsets made through
        another node is seen."""
        epoch = self.broker.replica_manager.leader_epoch(plog.topic, plog.partition)

        def current() -> SharePartition | None:
            sp = self.partitions.get(key)
            if sp is None or self._loaded_epoch.get(key) != epoch:
                return None
            idle = sp.next_deadline() is None and not sp.dirty
            return None if revalidate and idle else sp

        sp = current()
        if sp is None:
            code, snap = await self.persister.read(key)
            if code:
                return code, None
            sp = current()  # another request may have loaded (or used) it meanwhile
            if sp is None:
                # one object per key for the broker's life, reloaded in place: a fetch
                # waiting on it must never hold a second copy of the same records
                sp = self.partitions.get(key)
                if sp is None:
                    sp = self.partitions[key] = SharePartition(
                        plog.high_watermark,
                        lock_duration_ms=self.config.record_lock_duration_ms,
                        delivery_count_limit=self.config.delivery_count_limit,
                        max_in_flight=self.config.partition_max_record_locks)
                if snap is not None:
                    sp.load(snap.start_offset, snap.state_batches)
                    sp.state_epoch = snap.state_epoch
                else:
                    sp.reset(plog.high_watermark)  # dirty: the initial SPSO is written
                self._loaded_epoch[key] = epoch
        sp.move_start(plog.log_start_offset)
        return 0, sp

    async def persist(self, key: ShareStateKey, sp: SharePartition,
                      leader_epoch: int = -1) -> int:
        """Write the share-partition's snapshot if it changed (one write at a time per
        key, each taken when its turn comes, so the latest state is written last); the
        error code (0 = ok). FENCED_STATE_EPOCH drops the cached share-partition."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if not sp.dirty:
                return 0
            now = wall_ms()
            snap = ShareSnapshot(0, sp.state_epoch, leader_epoch, sp.start_offset, now, now,
                                 tuple(sp.state_batches()))
            sp.dirty = False
            code = await self.persister.write(key, snap)
            if code == 0:
                self.coordinator.stored.add(key.group_id)
            else:
                sp.dirty = True
                if code == ErrorCode.fenced_state_epoch:
                    self._loaded_epoch.pop(key, None)  # re-read at its next use
                log.warning("share_state_write_failed", group_id=key.group_id,
                            topic_id=str(key.topic_id), partition=key.partition, error=code)
            return code

    def cached(self, key: ShareStateKey) -> SharePartition | None:
        """The share-partition of ``key`` as loaded here, or None (not loaded, or stale)."""
        return self.partitions.get(key) if key in self._loaded_epoch else None

    def persist_later(self, key: ShareStateKey, sp: SharePartition) -> None:
        """``persist`` from a timer callback (a task, kept until done)."""
        task = asyncio.get_running_loop().create_task(self.persist(key, sp))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def delete_state(self, key: ShareStateKey) -> int:
        self._loaded_epoch.pop(key, None)  # starts afresh (at the log end) at its next use
        return await self.persister.delete(key)

    def has_group(self, group_id: str) -> bool:
        return bool(self.coordinator.describe([group_id])[0].group is not None)

    async def delete_group(self, group_id: str) -> int:
        """DeleteGroups of a share group: NON_EMPTY_GROUP while it has members, else its
        share-partition state is deleted (tombstones) with it; the error code."""
        code = self.coordinator.delete_group(group_id)
        if code:
            return code
        for key in self.keys_of_group(group_id):
            code = await self.delete_state(key) or code
        self.coordinator.stored.discard(group_id)
        return code

    async def forget_deleted_topics(self, live_topic_ids: set[uuid.UUID]) -> int:
        """Drop the share state of topics that no longer exist (Kafka deletes it with the
        topic); the number of share-partitions dropped."""
        gone = {k for k in (*self.persister.snapshots, *self.partitions)
                if k.topic_id not in live_topic_ids}
        for key in gone:
            self.partitions.pop(key, None)
            code = await self.delete_state(key)
            if code:
                log.warning("share_state_delete_failed", group_id=key.group_id,
                            topic_id=str(key.topic_id), partition=key.partition, error=code)
        return len(gone)

    def keys_of_group(self, group_id: str) -> list[ShareStateKey]:
        """The share-partitions of ``group_id`` known here: stored in the state partitions
        this node leads, cached here, or of the topics its members subscribe to."""
        keys = {k for k in self.persister.snapshots if k.group_id == group_id}
        keys |= {k for k in self._loaded_epoch if k.group_id == group_id}
        group = self.coordinator.groups.get(group_id)
        if group is not None:
            for name in group.subscribed_topics():
                meta = self.coordinator.topics.get(name)
                if meta is not None:
                    keys |= {ShareStateKey(group_id, meta.topic_id, i)
                             for i in range(meta.num_partitions)}
        return sorted(keys, key=lambda k: (str(k.topic_id), k.partition))

    async def release_member(self, group_id: str, member_id: str,
                             keys: list[tuple[uuid.UUID, int]]) -> None:
        released = False
        for topic_id, partition in keys:
            key = ShareStateKey(group_id, topic_id, partition)
            sp = self.partitions.get(key)
            if sp is not None and sp.release_member(member_id):
                await self.persist(key, sp)
                released = True
        if released:
            self.wake()

    # ------------------------------------------------------------------ waiting
    def released_future(self) -> asyncio.Future[None]:
        """Completed the next time records become available again (release, expiry)."""
        if self._released is None or self._released.done():
            self._released = asyncio.get_running_loop().create_future()
        return self._released

    def wake(self) -> None:
        if self._released is not None and not self._released.done():
            self._released.set_result(None)

    # ------------------------------------------------------------------ timers
    def after(self) -> None:
        """Re-arm the timer at the earliest lock or session deadline."""
        if self._closed:
            return
        deadlines = [d for d in (sp.next_deadline() for sp in self.partitions.values())
                     if d is not None]
        member = self.coordinator.next_deadline()
        if member is not None:
            deadlines.append(member)
        deadline = min(deadlines) if deadlines else None
        if deadline == self._timer_deadline and self._timer is not None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_deadline = deadline
        if deadline is not None:
            delay = max(deadline - wall_ms(), 0) / 1000
            self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_deadline = None
        now = wall_ms()
        try:
            released = False
            for key, sp in self.partitions.items():
                if sp.expire(now):
                    released = True
                    self.persist_later(key, sp)
            for group_id, member_id in self.coordinator.tick(now):
                # as Kafka: a member removed from the group gives back what it holds here
                log.info("share_member_expired", group_id=group_id, member_id=member_id)
                session = self.sessions.remove_member(group_id, member_id)
                if session is not None:
                    for topic_id, partition in session.partitions:
                        key = ShareStateKey(group_id, topic_id, partition)
                        sp = self.partitions.get(key)
                        if sp is not None and sp.release_member(member_id):
                            released = True
                            self.persist_later(key, sp)
            if released:
                self.wake()
        except Exception as exc:  # a bug must not stop every other timer
            log.exception("share_timer_failed", error=repr(exc))
        self.after()


def share_service(broker: Any) -> ShareService:
    """The broker's ShareService, created and loaded on first use."""
    service = broker.extensions.get(EXTENSION_KEY)
    if service is None:
        service = ShareService(broker)
        broker.extensions[EXTENSION_KEY] = service
        service.load()
        broker.add_shutdown_hook(service.shutdown)
    return service
