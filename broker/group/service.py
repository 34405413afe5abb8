"""The asyncio shell around the pure GroupCoordinator.

One ``GroupService`` per broker, created on the first group request
(``service_for(broker)``): it replays ``__consumer_offsets`` into a fresh coordinator,
then serves. Every call runs on the event-loop thread, so the coordinator needs no locks.

- Delayed answers (Kafka's join purgatory): ``join``/``sync`` hand the coordinator a token
  and await a future; whatever completions the coordinator produces after *any* call (or
  timer) resolve their futures. A JoinGroup waiting for a rebalance suspends only its own
  handler coroutine: other connections are served meanwhile (per connection, requests
  stay in order, as with Kafka's muted channels).
- One ``loop.call_at`` timer is kept armed at the coordinator's ``next_deadline()``;
  when it fires, ``tick(now)`` runs session/rebalance/retention timers.
- Clock: wall-clock milliseconds (commit and state timestamps are persisted, as Kafka's).
- Shutdown: waiting JoinGroup/SyncGroup requests are answered NOT_COORDINATOR.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
import uuid
from typing import Any

from broker.group.config import GroupConfig
from broker.group.consumer_config import consumer_config_from
from broker.group.consumer_coordinator import ConsumerGroupCoordinator
from broker.group.coordinator import JoinResult, SyncResult
from broker.group.persistence import OffsetsTopicStore
from common.logging import get_logger

log = get_logger("strom.group")

EXTENSION_KEY = "groups"
#: a key no partition has: its purgatory watch only wakes on wake_all()/close()
SHUTDOWN_KEY = ("__strom_group_shutdown__", -1)


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def group_config_from(broker_config: Any) -> GroupConfig:
    """GroupConfig from the broker's settings (Kafka property names, Kafka defaults)."""
    values: dict[str, int] = {}
    for name in (
        "group_min_session_timeout_ms",
        "group_max_session_timeout_ms",
        "group_initial_rebalance_delay_ms",
        "group_max_size",
        "offsets_retention_minutes",
        "offsets_retention_check_interval_ms",
        "offset_metadata_max_bytes",
        "offsets_topic_num_partitions",
        "offsets_topic_segment_bytes",
    ):
        value = getattr(broker_config, name, None)
        if value is not None:
            values[name.removeprefix("group_")] = int(value)
    return GroupConfig(**values)


def _new_member_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


class GroupService:
    def __init__(self, broker: Any, config: GroupConfig | None = None) -> None:
        self.broker = broker
        self.config = config or group_config_from(broker.config)
        self.store = OffsetsTopicStore(broker, self.config, wall_ms)
        self.coordinator = ConsumerGroupCoordinator(
            self.config, self.store, new_member_id=_new_member_id,
            consumer_config=consumer_config_from(broker.config))
        self._futures: dict[int, asyncio.Future[Any]] = {}
        self._tokens = itertools.count(1)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_deadline: int | None = None
        self._closed = False

    # ------------------------------------------------------------------ lifecycle
    def load(self) -> None:
        existing = self.store.partition_count()
        if existing and existing != self.config.offsets_topic_num_partitions:
            # as Kafka: an existing __consumer_offsets keeps its partition count (and so
            # every group's coordinator partition), whatever the configuration says now
            log.warning(
                "offsets_topic_partition_count_kept",
                existing=existing,
                configured=self.config.offsets_topic_num_partitions,
            )
            self.config = dataclasses.replace(self.config, offsets_topic_num_partitions=existing)
            self.store.config = self.config
            self.coordinator.config = self.config
        now = wall_ms()
        self.coordinator.begin_load()
        started = time.monotonic()
        count = self.store.replay(self.coordinator, now)
        self.coordinator.complete_load(wall_ms())
        log.info(
            "groups_loaded",
            records=count,
            groups=len(self.coordinator.groups),
            ms=round((time.monotonic() - started) * 1000, 1),
        )
        self._after()

    def on_partition_leadership(self, partition: int, leader: bool) -> None:
        """Cluster mode: call when this node becomes (``leader=True``) or stops being the
        leader of ``__consumer_offsets`` partition ``partition``: its groups are loaded
        from the log, or unloaded (waiting requests answer NOT_COORDINATOR)."""
        coordinator = self.coordinator
        coordinator.unload_partition(partition)
        if leader and not self._closed:
            now = wall_ms()
            count = self.store.replay_partition(coordinator, partition, now)
            coordinator.complete_partition_load(partition, wall_ms())
            log.info("group_partition_loaded", partition=partition, records=count)
        self._after()

    def on_topic_change(self, topic: str) -> None:
        """A deleted topic's committed offsets go too (Kafka's handleDeletedPartitions)."""
        if self._closed or self.broker.topics.get(topic) is not None:
            return
        try:
            self.call("delete_topic_offsets", wall_ms(), topic)
        except Exception as exc:
            log.error("group_offsets_cleanup_failed", topic=topic, error=repr(exc))

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.coordinator.shutdown()
        self._after()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # ------------------------------------------------------------------ plumbing
    def now(self) -> int:
        return wall_ms()

    def _after(self) -> None:
        """Resolve finished delayed requests and re-arm the timer."""
        for completion in self.coordinator.drain_completions():
            fut = self._futures.pop(completion.token, None)
            if fut is not None and not fut.done():
                fut.set_result(completion)
        if self._closed:
            return
        deadline = self.coordinator.next_deadline()
        if deadline == self._timer_deadline:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_deadline = deadline
        if deadline is not None:
            loop = asyncio.get_running_loop()
            delay = max(deadline - wall_ms(), 0) / 1000
            self._timer = loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_deadline = None
        try:
            self.coordinator.tick(wall_ms())
        except Exception as exc:  # a bug must not stop the timers of every other group
            log.exception("group_timer_failed", error=repr(exc))
        self._after()

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Run an immediate coordinator event (heartbeat, commit, ...) at ``now``."""
        try:
            return getattr(self.coordinator, method)(*args, **kwargs)
        finally:
            self._after()

    async def _delayed(self, method: str, **kwargs: Any) -> Any:
        token = next(self._tokens)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._futures[token] = fut
        try:
            getattr(self.coordinator, method)(token, wall_ms(), **kwargs)
        except BaseException:
            self._futures.pop(token, None)
            raise
        finally:
            self._after()
        purgatory = getattr(self.broker, "purgatory", None)
        try:
            while purgatory is not None and not fut.done():
                # the fetch purgatory closes when the server starts shutting down: answer
                # waiting joins/syncs NOT_COORDINATOR at once, as Kafka's unload does, so a
                # clean shutdown never waits for a rebalance
                shutdown = purgatory.watch([SHUTDOWN_KEY])
                try:
                    await asyncio.wait({fut, shutdown}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    purgatory.unwatch([SHUTDOWN_KEY], shutdown)
                if purgatory.closed and not fut.done():
                    self.shutdown()
            return await fut
        finally:
            self._futures.pop(token, None)

    async def join(self, **kwargs: Any) -> JoinResult:
        return await self._delayed("join_group", **kwargs)

    async def sync(self, **kwargs: Any) -> SyncResult:
        return await self._delayed("sync_group", **kwargs)


def service_for(broker: Any) -> GroupService:
    """The broker's GroupService, created and loaded on first use."""
    service = broker.extensions.get(EXTENSION_KEY)
    if service is None:
        service = GroupService(broker)
        broker.extensions[EXTENSION_KEY] = service
        service.load()
        broker.add_shutdown_hook(service.shutdown)
        broker.topics.on_change(service.on_topic_change)
    return service
