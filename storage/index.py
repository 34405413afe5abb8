"""Sparse offset and time indexes of one segment, kept in memory, persisted append-only.

On-disk formats (Kafka's, big-endian)::

    .index      entries of 8 bytes: relative_offset:int32, position:int32
                (relative_offset = last offset of the indexed batch - segment base offset;
                position = byte position of that batch in the .log)
    .timeindex  entries of 12 bytes: timestamp:int64, relative_offset:int32
                (timestamp = largest timestamp seen so far in the segment; offset = base
                offset of the batch that carried it, relative to the segment base)

Both are strictly increasing in every field. An index holds one entry per
``index.interval.bytes`` of log, so lookups return a floor entry and the caller scans
forward at most one interval in the log. Indexes are never trusted over the log:
:meth:`OffsetIndex.load` sanity-checks a file and the segment rebuilds a damaged one.
Entries live in ``array('i'/'q')``; :meth:`persist` writes entries not yet on disk with
one pwrite (no descriptor is kept open).
"""

from __future__ import annotations

import os
import struct
import sys
from array import array
from bisect import bisect_left, bisect_right
from pathlib import Path

_TIME_ENTRY = struct.Struct(">qi")


class CorruptIndexError(ValueError):
    """An index file fails its sanity checks and must be rebuilt from the log."""


def _to_big_endian(a: array) -> bytes:
    if sys.byteorder == "little":
        a = array(a.typecode, a)
        a.byteswap()
    return a.tobytes()


def _from_big_endian(typecode: str, data: bytes) -> array:
    a = array(typecode)
    a.frombytes(data)
    if sys.byteorder == "little":
        a.byteswap()
    return a


class _PersistentIndex:
    """Shared persistence: ``persisted`` entries are on disk; the rest only in memory."""

    ENTRY_SIZE = 0
    path: Path
    persisted: int
    _cut: bool = False  # entries were dropped: the file must be shortened

    def __len__(self) -> int:
        raise NotImplementedError

    def _encode_from(self, start: int) -> bytes:
        raise NotImplementedError

    def persist(self, *, sync: bool) -> None:
        """Write unpersisted entries (and cut any stale tail) to the file."""
        n = len(self)
        if self.persisted == n and not sync and not self._cut:
            return
        if n == 0 and not self.path.exists():
            return  # an empty index needs no file: a missing one is rebuilt cheaply
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            if self.persisted < n:
                os.pwrite(fd, self._encode_from(self.persisted), self.persisted * self.ENTRY_SIZE)
            size = os.fstat(fd).st_size
            if size != n * self.ENTRY_SIZE:
                os.ftruncate(fd, n * self.ENTRY_SIZE)
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        self.persisted = n
        self._cut = False

    def rewrite(self) -> None:
        """Forget what is on disk; the next persist writes the whole index."""
        self.persisted = 0
        self._cut = True


class OffsetIndex(_PersistentIndex):
    """Sparse map offset -> file position (entry = last offset of a batch, its position)."""

    ENTRY_SIZE = 8

    def __init__(self, path: Path, base_offset: int) -> None:
        self.path = path
        self.base_offset = base_offset
        self.offsets = array("q")  # absolute last offsets
        self.positions = array("q")
        self.persisted = 0

    def __len__(self) -> int:
        return len(self.offsets)

    @classmethod
    def load(cls, path: Path, base_offset: int, log_size: int) -> OffsetIndex:
        """Read and sanity-check an index file (missing file -> CorruptIndexError)."""
        idx = cls(path, base_offset)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CorruptIndexError(f"{path}: {exc}") from exc
        if len(data) % 8:
            raise CorruptIndexError(f"{path}: size {len(data)} is not a multiple of 8")
        raw = _from_big_endian("i", data)
        rel = raw[0::2]
        pos = raw[1::2]
        for i in range(1, len(rel)):
            if rel[i] <= rel[i - 1] or pos[i] <= pos[i - 1]:
                raise CorruptIndexError(f"{path}: entry {i} is not increasing")
        if rel and (rel[0] < 0 or pos[0] < 0 or pos[-1] >= log_size):
            raise CorruptIndexError(f"{path}: entries point outside the log")
        idx.offsets = array("q", (base_offset + r for r in rel))
        idx.positions = array("q", pos)
        idx.persisted = len(rel)
        return idx

    def append(self, last_offset: int, position: int) -> None:
        if self.offsets and (last_offset <= self.offsets[-1] or position <= self.positions[-1]):
            return  # never out of order; a duplicate point adds nothing
        self.offsets.append(last_offset)
        self.positions.append(position)

    def lookup(self, offset: int) -> tuple[int, int]:
        """(entry offset, position) of the largest entry <= offset; (base, 0) if none."""
        i = bisect_right(self.offsets, offset)
        if i == 0:
            return self.base_offset, 0
        return self.offsets[i - 1], self.positions[i - 1]

    def last_entry(self) -> tuple[int, int]:
        if not self.offsets:
            return self.base_offset, 0
        return self.offsets[-1], self.positions[-1]

    def truncate_to_position(self, position: int) -> None:
        """Drop entries whose batch starts at or after ``position``."""
        i = bisect_left(self.positions, position)
        if i < len(self.offsets):
            del self.offsets[i:]
            del self.positions[i:]
            self.persisted = min(self.persisted, i)
            self._cut = True

    def clear(self) -> None:
        self.offsets = array("q")
        self.positions = array("q")
        self.persisted = 0
        self._cut = True

    def _encode_from(self, start: int) -> bytes:
        out = array("i")
        for o, p in zip(self.offsets[start:], self.positions[start:], strict=True):
            out.append(o - self.base_offset)
            out.append(p)
        return _to_big_endian(out)


class TimeIndex(_PersistentIndex):
    """Sparse map timestamp -> offset; timestamps are the running maximum of the segment."""

    ENTRY_SIZE = 12

    def __init__(self, path: Path, base_offset: int) -> None:
        self.path = path
        self.base_offset = base_offset
        self.timestamps = array("q")
        self.offsets = array("q")  # absolute base offsets of the batches
        self.persisted = 0

    def __len__(self) -> int:
        return len(self.timestamps)

    @classmethod
    def load(cls, path: Path, base_offset: int, next_offset: int | None = None) -> TimeIndex:
        idx = cls(path, base_offset)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CorruptIndexError(f"{path}: {exc}") from exc
        if len(data) % 12:
            raise CorruptIndexError(f"{path}: size {len(data)} is not a multiple of 12")
        n = len(data) // 12
        pairs = list(_TIME_ENTRY.iter_unpack(data))
        ts = array("q", (p[0] for p in pairs))
        rel = array("q", (p[1] for p in pairs))
        for i in range(1, n):
            if ts[i] <= ts[i - 1] or rel[i] < rel[i - 1]:
                raise CorruptIndexError(f"{path}: entry {i} is not increasing")
        if n and rel[0] < 0:
            raise CorruptIndexError(f"{path}: negative relative offset")
        if n and next_offset is not None and base_offset + rel[-1] >= next_offset:
            raise CorruptIndexError(f"{path}: entries point past the end of the log")
        idx.timestamps = ts
        idx.offsets = array("q", (base_offset + r for r in rel))
        idx.persisted = n
        return idx

    def maybe_append(self, timestamp: int, offset: int) -> None:
        """Add (timestamp, offset) if timestamp exceeds the last entry's."""
        if timestamp < 0:
            return
        if self.timestamps and (
            timestamp <= self.timestamps[-1] or offset < self.offsets[-1]
        ):
            return
        self.timestamps.append(timestamp)
        self.offsets.append(offset)

    def last_entry(self) -> tuple[int, int] | None:
        if not self.timestamps:
            return None
        return self.timestamps[-1], self.offsets[-1]

    def lookup_below(self, timestamp: int) -> tuple[int, int] | None:
        """The last entry with timestamp < ``timestamp`` (every earlier batch is older)."""
        i = bisect_left(self.timestamps, timestamp)
        if i == 0:
            return None
        return self.timestamps[i - 1], self.offsets[i - 1]

    def truncate_to_offset(self, offset: int) -> None:
        """Drop entries for batches at or after ``offset``."""
        i = bisect_left(self.offsets, offset)
        if i < len(self.timestamps):
            del self.timestamps[i:]
            del self.offsets[i:]
            self.persisted = min(self.persisted, i)
            self._cut = True

    def clear(self) -> None:
        self.timestamps = array("q")
        self.offsets = array("q")
        self.persisted = 0
        self._cut = True

    def _encode_from(self, start: int) -> bytes:
        pack = _TIME_ENTRY.pack
        base = self.base_offset
        return b"".join(
            pack(t, o - base)
            for t, o in zip(self.timestamps[start:], self.offsets[start:], strict=True)
        )
