"""A keyed timer queue: one deadline per key, re-arming replaces the old deadline.

A binary heap with lazy cancellation: ``schedule`` pushes a new entry and remembers its
sequence number for the key; stale entries are skipped when popped and the heap is rebuilt
when stale entries dominate, so heartbeats (re-armed on every call) stay O(log n).
Pure: the caller passes ``now_ms``.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from itertools import count


class TimerQueue:
    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Hashable]] = []
        self._live: dict[Hashable, tuple[int, int]] = {}  # key -> (deadline, seq)
        self._seq = count()

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._live

    def deadline(self, key: Hashable) -> int | None:
        entry = self._live.get(key)
        return entry[0] if entry else None

    def schedule(self, key: Hashable, deadline_ms: int) -> None:
        seq = next(self._seq)
        self._live[key] = (deadline_ms, seq)
        heapq.heappush(self._heap, (deadline_ms, seq, key))
        if len(self._heap) > 64 and len(self._heap) > 3 * len(self._live):
            self._heap = [(d, s, k) for k, (d, s) in self._live.items()]
            heapq.heapify(self._heap)

    def cancel(self, key: Hashable) -> None:
        self._live.pop(key, None)

    def next_deadline(self) -> int | None:
        heap = self._heap
        while heap:
            deadline, seq, key = heap[0]
            if self._live.get(key) == (deadline, seq):
                return deadline
            heapq.heappop(heap)
        return None

    def pop_expired(self, now_ms: int) -> Hashable | None:
        """Remove and return one key whose deadline is <= now_ms (earliest first)."""
        heap = self._heap
        while heap and heap[0][0] <= now_ms:
            deadline, seq, key = heapq.heappop(heap)
            if self._live.get(key) == (deadline, seq):
                del self._live[key]
                return key
        return None
