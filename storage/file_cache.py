"""A bounded LRU of open file descriptors shared by all segments of a log directory.

Segments never keep a descriptor of their own: they ``acquire`` one for the duration of
a read or write and ``release`` it. Idle descriptors beyond ``max_open`` are closed, so
10,000 partitions work under ``ulimit -n 1024``. A pinned (acquired) descriptor is never
closed under its user: eviction skips it, and ``forget`` defers the close to ``release``.
Thread-safe (one lock); the critical sections are a few dict operations.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict


class _Entry:
    __slots__ = ("fd", "pins", "doomed", "path")

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self.fd = fd
        self.pins = 0
        self.doomed = False


class FileCache:
    """LRU cache path -> O_RDWR descriptor (files are created by their owners, not here)."""

    def __init__(self, max_open: int = 512) -> None:
        self.max_open = max(1, max_open)
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.opens = 0  # statistics: how many os.open calls were made

    def acquire(self, path: str) -> _Entry:
        """Pin and return the entry for ``path`` (opening it if needed); pair with release."""
        with self._lock:
            e = self._entries.get(path)
            if e is not None:
                self._entries.move_to_end(path)
                e.pins += 1
                return e
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            self.opens += 1
            e = _Entry(path, fd)
            e.pins = 1
            self._entries[path] = e
            if len(self._entries) > self.max_open:
                self._evict_locked()
            return e

    def release(self, entry: _Entry) -> None:
        with self._lock:
            entry.pins -= 1
            if entry.doomed and entry.pins == 0:
                os.close(entry.fd)
                entry.fd = -1

    def forget(self, path: str) -> None:
        """Close the descriptor of ``path`` (before a rename/unlink); deferred if pinned."""
        with self._lock:
            e = self._entries.pop(path, None)
            if e is None:
                return
            if e.pins:
                e.doomed = True
            else:
                os.close(e.fd)
                e.fd = -1

    def close_all(self) -> None:
        with self._lock:
            for e in self._entries.values():
                if e.pins:
                    e.doomed = True
                else:
                    os.close(e.fd)
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _evict_locked(self) -> None:
        excess = len(self._entries) - self.max_open
        for path in list(self._entries):
            if excess <= 0:
                break
            e = self._entries[path]
            if e.pins:
                continue
            del self._entries[path]
            os.close(e.fd)
            e.fd = -1
            excess -= 1


DEFAULT_FILE_CACHE = FileCache(512)
