"""Recent segment reads shared between readers that ask for the same bytes.

With replication factor 3 a leader's two followers fetch the same new batches within a
millisecond of each other; each fetch used to ``pread`` its own copy of them out of the
page cache. ``SharedReads`` keeps the most recent such reads (at most ``budget_bytes``
in all, least recently used dropped first) keyed by (segment, position, log generation):
bytes below a segment's size never change while the log's generation stays the same
(truncation, compaction and deletion bump it), so a hit is exactly what a new ``pread``
would return. A hit needing fewer bytes gets a view of the cached ones (no copy); one
needing more reads anew.

Thread-safe (one small lock); the module-level ``SHARED_READS`` serves every log of the
process. Pure bookkeeping: the caller does the I/O.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

DEFAULT_BUDGET_BYTES = 32 * 1024 * 1024
#: reads smaller than this are not worth keeping (a pread of them is cheap)
MIN_SHARED_BYTES = 64 * 1024

Key = tuple[Any, int, int]  # (segment object, position, log generation)


class SharedReads:
    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        self.budget_bytes = budget_bytes
        self._entries: OrderedDict[Key, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0

    def get(self, key: Key, want: int) -> bytes | memoryview | None:
        """The first ``want`` bytes read earlier under ``key``, or None."""
        with self._lock:
            data = self._entries.get(key)
            if data is None or len(data) < want:
                return None
            self._entries.move_to_end(key)
            self.hits += 1
        return data if len(data) == want else memoryview(data)[:want]

    def put(self, key: Key, data: bytes) -> None:
        size = len(data)
        if size < MIN_SHARED_BYTES or size > self.budget_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old)
            self._entries[key] = data
            self._bytes += size
            while self._bytes > self.budget_bytes:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= len(dropped)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    @property
    def size_bytes(self) -> int:
        return self._bytes


SHARED_READS = SharedReads()
