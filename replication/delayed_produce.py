"""Delayed-produce purgatory: acks=-1 produces wait here until their partition's high
watermark passes them.

A waiting produce registers ``(required_offset, future)`` under its (topic, partition);
``check(key, status)`` completes every waiter whose ``status(required_offset)`` says done
(``Partition.produce_status``: the high watermark reached it, the ISR shrank below
``min.insync.replicas``, or leadership was lost) with that error code. The caller bounds
the wait (``timeout.ms``: REQUEST_TIMED_OUT); ``close`` answers everyone
NOT_LEADER_OR_FOLLOWER (shutdown: the client retries on the new leader).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from protocol.errors import ErrorCode

TopicPartition = tuple[str, int]
Status = Callable[[int], tuple[bool, int]]


class DelayedProducePurgatory:
    def __init__(self) -> None:
        self._waiters: dict[TopicPartition, list[tuple[int, asyncio.Future[int]]]] = {}

    def watch(self, key: TopicPartition, required_offset: int) -> asyncio.Future[int]:
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(key, []).append((required_offset, fut))
        return fut

    def check(self, key: TopicPartition, status: Status) -> None:
        waiters = self._waiters.get(key)
        if not waiters:
            return
        left = []
        for required, fut in waiters:
            if fut.done():
                continue
            done, error = status(required)
            if done:
                fut.set_result(error)
            else:
                left.append((required, fut))
        if left:
            self._waiters[key] = left
        else:
            del self._waiters[key]

    def keys(self) -> list[TopicPartition]:
        return list(self._waiters)

    def close(self) -> None:
        waiters, self._waiters = self._waiters, {}
        for entries in waiters.values():
            for _, fut in entries:
                if not fut.done():
                    fut.set_result(int(ErrorCode.not_leader_or_follower))

    def waiting(self) -> int:
        return sum(len(v) for v in self._waiters.values())
