"""Fetch purgatory: long-polling fetches wait here until an append wakes them.

A waiting fetch registers one future under every (topic, partition) it reads; an append
to a partition completes every future registered under it (``notify``). The fetch then
re-reads and decides again (enough bytes → answer; otherwise wait for the rest of
``max_wait_ms``). No polling loop: an idle long poll costs one timer and one future.
``wake_all`` completes everything (shutdown, topic deletion).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

TopicPartition = tuple[str, int]


class FetchPurgatory:
    """Per-partition sets of futures woken by appends."""

    def __init__(self) -> None:
        self._waiters: dict[TopicPartition, set[asyncio.Future[None]]] = {}
        self.closed = False

    def watch(self, keys: Iterable[TopicPartition]) -> asyncio.Future[None]:
        """A future completed by the next append to any of ``keys`` (or by wake_all)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.closed:
            fut.set_result(None)
            return fut
        for key in keys:
            self._waiters.setdefault(key, set()).add(fut)
        return fut

    def unwatch(self, keys: Iterable[TopicPartition], fut: asyncio.Future[None]) -> None:
        for key in keys:
            waiters = self._waiters.get(key)
            if waiters is not None:
                waiters.discard(fut)
                if not waiters:
                    del self._waiters[key]

    def notify(self, key: TopicPartition) -> None:
        waiters = self._waiters.pop(key, None)
        if waiters:
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    def wake_all(self) -> None:
        waiters = self._waiters
        self._waiters = {}
        for futs in waiters.values():
            for fut in futs:
                if not fut.done():
                    fut.set_result(None)

    def close(self) -> None:
        """Wake everyone and complete future watches immediately (shutdown)."""
        self.closed = True
        self.wake_all()

    def waiting(self) -> int:
        return sum(len(v) for v in self._waiters.values())
