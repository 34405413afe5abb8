"""OffsetsTopicStore.wait_replicated with concurrent callers: each answers only after
every write made before it asked is replicated, its own included, even while another
caller is already waiting for an earlier write."""

from __future__ import annotations

import asyncio

from broker.group.config import GroupConfig
from broker.group.persistence import TOPIC, OffsetsTopicStore


class _Replication:
    """The replica manager's wait_replicated(tp, offset, timeout) seam: an offset counts
    as replicated once ``replicate(partition, offset)`` has been called for it."""

    def __init__(self) -> None:
        self.hw: dict[int, int] = {}
        self.changed = asyncio.Event()

    def replicate(self, partition: int, offset: int) -> None:
        self.hw[partition] = offset
        self.changed.set()

    async def wait_replicated(self, tp: tuple[str, int], offset: int, timeout_s: float) -> int:
        assert tp[0] == TOPIC
        while self.hw.get(tp[1], -1) < offset:
            self.changed.clear()
            await self.changed.wait()
        return 0


class _Broker:
    def __init__(self) -> None:
        self.replica_manager = _Replication()


async def test_a_later_caller_waits_for_its_own_write() -> None:
    broker = _Broker()
    store = OffsetsTopicStore(broker, GroupConfig(), clock=lambda: 0)
    store.unreplicated[3] = 10  # caller A's write ends at offset 10
    first = asyncio.create_task(store.wait_replicated(5.0))
    await asyncio.sleep(0)
    store.unreplicated[3] = 20  # caller B's write, made while A waits
    second = asyncio.create_task(store.wait_replicated(5.0))
    broker.replica_manager.replicate(3, 10)
    await asyncio.wait_for(first, 1.0)
    await asyncio.sleep(0.01)
    assert not second.done(), "B answered before its own write was replicated"
    broker.replica_manager.replicate(3, 20)
    await asyncio.wait_for(second, 1.0)
    assert store.unreplicated == {}
