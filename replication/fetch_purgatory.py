"""Fetch purgatory: long-polling fetches wait here until an append wakes them.

A waiting fetch registers one future under every (topic, partition) it reads; an append
to a partition completes every future registered under it (``notify``). The fetch then
re-reads and decides again (enough bytes → answer; otherwise wait for the rest of
``max_wait_ms``). No polling loop: an idle long poll costs one timer and one future.
``wake_all`` completes everything (shutdown, topic deletion).

Replica fetches wait apart (``watch(keys, replica=True)``): a high watermark move alone
(``notify(key, replicas=False)``) wakes only consumers. Without a replica selector a
follower gains nothing from it: it reads to the log end, learns the high watermark with
its next answer, and its re-read would find nothing new (one wasted read per produce
round for the follower whose fetch did not move the high watermark).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

TopicPartition = tuple[str, int]


class FetchPurgatory:
    """Per-partition sets of futures woken by appends."""

    def __init__(self) -> None:
        self._waiters: dict[TopicPartition, set[asyncio.Future[None]]] = {}
        self._replica_waiters: dict[TopicPartition, set[asyncio.Future[None]]] = {}
        self.closed = False

    def watch(self, keys: Iterable[TopicPartition], *,
              replica: bool = False) -> asyncio.Future[None]:
        """A future completed by the next append to any of ``keys`` (or by wake_all);
        for a consumer (not ``replica``) also by a high watermark move."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.closed:
            fut.set_result(None)
            return fut
        table = self._replica_waiters if replica else self._waiters
        for key in keys:
            table.setdefault(key, set()).add(fut)
        return fut

    def unwatch(self, keys: Iterable[TopicPartition], fut: asyncio.Future[None]) -> None:
        for key in keys:
            for table in (self._waiters, self._replica_waiters):
                waiters = table.get(key)
                if waiters is not None:
                    waiters.discard(fut)
                    if not waiters:
                        del table[key]

    def notify(self, key: TopicPartition, *, replicas: bool = True) -> None:
        """Wake the fetches waiting on ``key``: all after an append; with
        ``replicas=False`` (only the high watermark moved) only consumers'."""
        _complete(self._waiters.pop(key, None))
        if replicas:
            _complete(self._replica_waiters.pop(key, None))

    def wake_all(self) -> None:
        for table in (self._waiters, self._replica_waiters):
            for futs in table.values():
                _complete(futs)
        self._waiters = {}
        self._replica_waiters = {}

    def close(self) -> None:
        """Wake everyone and complete future watches immediately (shutdown)."""
        self.closed = True
        self.wake_all()

    def waiting(self) -> int:
        return sum(len(v) for t in (self._waiters, self._replica_waiters) for v in t.values())


def _complete(waiters: set[asyncio.Future[None]] | None) -> None:
    if waiters:
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)
