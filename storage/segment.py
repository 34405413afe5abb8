"""One log segment: ``<base_offset:020d>.log`` plus its ``.index`` and ``.timeindex``,
and a ``.txnindex`` once an aborted transaction ends in it (storage/txn_index.py: the
segment creates, truncates and deletes it; the partition log fills and rebuilds it,
since that needs producer state).

The .log file is a plain concatenation of RecordBatch v2 batches (protocol/records.py)
exactly as produced and fetched. The segment never decodes records: appends write the
caller's bytes with one pwrite; reads return raw bytes via pread; scans read batch
headers only (and CRCs during recovery). Indexes are loaded lazily from disk and rebuilt
from the log when missing or failing their sanity checks (an index is never trusted over
the log). Descriptors come from a shared :class:`FileCache`; none is held between calls.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from protocol.records import (
    HEADER_SIZE,
    BatchHeader,
    InvalidRecordBatch,
    parse_header,
    verify_crc,
)
from storage.file_cache import FileCache
from storage.index import CorruptIndexError, OffsetIndex, TimeIndex
from storage.txn_index import TXN_INDEX_SUFFIX, TransactionIndex

LOG_SUFFIX = ".log"
INDEX_SUFFIX = ".index"
TIMEINDEX_SUFFIX = ".timeindex"
HEADER_SCAN_CHUNK = 64 * 1024
VERIFY_SCAN_CHUNK = 4 * 1024 * 1024


def _write_all(
    fd: int, iov: list[bytes | bytearray | memoryview], pos: int, total: int
) -> None:
    """pwrite/pwritev every buffer (``total`` bytes) at ``pos``; loops over short writes."""
    if len(iov) <= 2:
        n = os.pwritev(fd, iov, pos) if len(iov) == 2 else os.pwrite(fd, iov[0], pos)
        if n == total:
            return
        rest = memoryview(b"".join(bytes(b) for b in iov))[n:]
        pos += n
        while rest:
            m = os.pwrite(fd, rest, pos)
            rest = rest[m:]
            pos += m
        return
    for k in range(0, len(iov), 512):
        chunk = iov[k : k + 512]
        want = sum(len(b) for b in chunk)
        n = os.pwritev(fd, chunk, pos)
        if n < want:  # short write: finish the rest the slow way
            rest = memoryview(b"".join(bytes(b) for b in chunk))[n:]
            while rest:
                m = os.pwrite(fd, rest, pos + n)
                rest = rest[m:]
                n += m
        pos += want


_FALLOC_FL_KEEP_SIZE = 0x01
_fallocate = None


def preallocate(fd: int, size: int) -> bool:
    """Reserve ``size`` bytes of disk for ``fd`` without changing its size; True if done.

    Linux fallocate(2) with FALLOC_FL_KEEP_SIZE: the blocks are allocated (contiguous
    where the file system can, and a full disk shows up here rather than mid-append) but
    the file's length stays the length of its data. So recovery, the clean-shutdown
    size check and the log end never see a zero-filled tail. Where the call is not
    available or fails (other OS, file system without support, no space), nothing is
    reserved and appends simply extend the file as usual.
    """
    global _fallocate
    if _fallocate is None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fn = libc.fallocate
            fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
            fn.restype = ctypes.c_int
            _fallocate = fn
        except (OSError, AttributeError):
            _fallocate = False
    if not _fallocate:
        return False
    return _fallocate(fd, _FALLOC_FL_KEEP_SIZE, 0, size) == 0


def segment_name(base_offset: int, suffix: str) -> str:
    return f"{base_offset:020d}{suffix}"


class LogSegment:
    """A segment of a partition log; see the module docstring for the file layout."""

    def __init__(
        self,
        directory: Path,
        base_offset: int,
        cache: FileCache,
        *,
        index_interval_bytes: int,
        size: int,
        next_offset: int | None = None,
        rolling_base_ms: int = -1,
    ) -> None:
        self.directory = directory
        self.base_offset = base_offset
        self.cache = cache
        self.index_interval_bytes = index_interval_bytes
        self.log_path = str(directory / segment_name(base_offset, LOG_SUFFIX))
        self.index_path = directory / segment_name(base_offset, INDEX_SUFFIX)
        self.timeindex_path = directory / segment_name(base_offset, TIMEINDEX_SUFFIX)
        self.txn_index = TransactionIndex(
            directory / segment_name(base_offset, TXN_INDEX_SUFFIX), base_offset)
        self.size = size
        #: offset after the last batch; None until learned (lazy segments)
        self._next_offset = next_offset
        self._index: OffsetIndex | None = None
        self._timeindex: TimeIndex | None = None
        self._max_timestamp: int | None = None
        self._offset_of_max_timestamp = -1
        self.bytes_since_last_index_entry = 0
        self.rolling_base_ms = rolling_base_ms

    # -- construction --------------------------------------------------------------------

    @classmethod
    def create(
        cls, directory: Path, base_offset: int, cache: FileCache, *, index_interval_bytes: int,
        now_ms: int, preallocate_bytes: int = 0,
    ) -> LogSegment:
        """A new empty segment. ``preallocate_bytes`` > 0 reserves that much disk space
        for the log file (see :func:`preallocate`)."""
        path = directory / segment_name(base_offset, LOG_SUFFIX)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            if preallocate_bytes > 0 and not preallocate(fd, preallocate_bytes):
                os.ftruncate(fd, 0)  # give back whatever a failed call reserved
        finally:
            os.close(fd)
        for suffix in (INDEX_SUFFIX, TIMEINDEX_SUFFIX, TXN_INDEX_SUFFIX):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(directory / segment_name(base_offset, suffix))
        seg = cls(
            directory, base_offset, cache, index_interval_bytes=index_interval_bytes, size=0,
            next_offset=base_offset, rolling_base_ms=now_ms,
        )
        seg._index = OffsetIndex(seg.index_path, base_offset)
        seg._timeindex = TimeIndex(seg.timeindex_path, base_offset)
        seg._max_timestamp = -1
        return seg

    # -- lazily-known facts ----------------------------------------------------------------

    @property
    def index(self) -> OffsetIndex:
        if self._index is None:
            self._load_indexes()
        assert self._index is not None
        return self._index

    @property
    def timeindex(self) -> TimeIndex:
        if self._timeindex is None:
            self._load_indexes()
        assert self._timeindex is not None
        return self._timeindex

    @property
    def next_offset(self) -> int:
        """Offset after this segment's last batch (scans the tail once if unknown)."""
        if self._next_offset is None:
            self._learn_tail()
        assert self._next_offset is not None
        return self._next_offset

    @property
    def max_timestamp(self) -> int:
        if self._max_timestamp is None:
            self._learn_tail()
        assert self._max_timestamp is not None
        return self._max_timestamp

    @property
    def offset_of_max_timestamp(self) -> int:
        if self._max_timestamp is None:
            self._learn_tail()
        return self._offset_of_max_timestamp

    def _load_indexes(self) -> None:
        try:
            idx = OffsetIndex.load(self.index_path, self.base_offset, self.size)
            tix = TimeIndex.load(self.timeindex_path, self.base_offset, self._next_offset)
            if len(idx):
                last_off, last_pos = idx.last_entry()
                h = self._header_at(last_pos)
                if h is None or h.last_offset != last_off:
                    raise CorruptIndexError(f"{self.index_path}: last entry does not match log")
        except (CorruptIndexError, InvalidRecordBatch):
            self.rebuild_indexes()
            return
        self._index, self._timeindex = idx, tix

    def _header_at(self, pos: int) -> BatchHeader | None:
        data = self.pread(pos, HEADER_SIZE)
        if len(data) < HEADER_SIZE:
            return None
        return parse_header(data, 0)

    def _learn_tail(self) -> None:
        """Scan from the last index entry to the end: next offset and max timestamp."""
        idx = self.index
        tix = self.timeindex
        last = tix.last_entry()
        max_ts, max_off = last if last else (-1, -1)
        _, pos = idx.last_entry()
        next_offset = self.base_offset
        since = 0
        try:
            for p, h in self.scan(pos, verify=False):
                next_offset = h.next_offset
                if h.max_timestamp > max_ts:
                    max_ts, max_off = h.max_timestamp, h.base_offset
                since = p + h.size_in_bytes - pos
        except InvalidRecordBatch:
            self.recover()  # the tail is damaged: never trust it, rescan with CRCs
            return
        if self._next_offset is None:
            self._next_offset = max(next_offset, idx.last_entry()[0] + 1 if len(idx) else 0,
                                    self.base_offset)
        self._max_timestamp = max_ts
        self._offset_of_max_timestamp = max_off
        self.bytes_since_last_index_entry = since

    # -- I/O ------------------------------------------------------------------------------

    def pread(self, pos: int, size: int) -> bytes:
        e = self.cache.acquire(self.log_path)
        try:
            return os.pread(e.fd, size, pos)
        finally:
            self.cache.release(e)

    def append(
        self,
        data: bytes | bytearray | memoryview,
        batches: list[tuple[int, int, int, int]],
    ) -> None:
        """Append ``data`` (whole batches); see :meth:`append_iov`."""
        self.append_iov([data], len(data), batches)

    def append_iov(
        self,
        iov: list[bytes | bytearray | memoryview],
        total: int,
        batches: list[tuple[int, int, int, int]],
        *,
        verify: Callable[[], None] | None = None,
    ) -> None:
        """Write the buffers in ``iov`` (``total`` bytes of whole batches) at the end.

        One pwrite/pwritev call in the normal case. ``batches`` holds (relative position,
        base offset, last offset, max timestamp) per batch, for the sparse indexes. On a
        failed write the file is cut back to its previous size and OSError is raised.
        ``verify`` runs after the write and before the segment takes the bytes in (size,
        indexes): if it raises, the file is cut back likewise and its exception raised.
        """
        idx = self.index
        tix = self.timeindex
        if self._max_timestamp is None or self._next_offset is None:
            self._learn_tail()
        start = self.size
        e = self.cache.acquire(self.log_path)
        try:
            try:
                _write_all(e.fd, iov, start, total)
                if verify is not None:
                    verify()
            except BaseException:
                with contextlib.suppress(OSError):
                    os.ftruncate(e.fd, start)
                raise
        finally:
            self.cache.release(e)
        if self.size == 0 and self.rolling_base_ms < 0 and batches:
            self.rolling_base_ms = batches[0][3]
        max_ts = self._max_timestamp
        assert max_ts is not None
        interval = self.index_interval_bytes
        since = self.bytes_since_last_index_entry
        n = len(batches)
        for i, (rel, base, last, ts) in enumerate(batches):
            if ts > max_ts:
                max_ts = ts
                self._offset_of_max_timestamp = base
            size = (batches[i + 1][0] if i + 1 < n else total) - rel
            if since >= interval:
                idx.append(last, start + rel)
                tix.maybe_append(max_ts, self._offset_of_max_timestamp)
                since = 0
            since += size
        self.bytes_since_last_index_entry = since
        self._max_timestamp = max_ts
        self.size = start + total
        self._next_offset = batches[-1][2] + 1

    def scan(
        self, start: int = 0, *, verify: bool, end: int | None = None
    ) -> Iterator[tuple[int, BatchHeader]]:
        """Yield (position, header) of batches from ``start`` to ``end`` (default: size).

        With ``verify`` every batch's CRC is checked. Raises InvalidRecordBatch at the
        first malformed or partial batch (the caller decides whether to truncate).
        """
        end = self.size if end is None else end
        chunk_size = VERIFY_SCAN_CHUNK if verify else HEADER_SCAN_CHUNK
        pos = start
        while pos < end:
            data = self.pread(pos, min(chunk_size, end - pos))
            if len(data) < HEADER_SIZE:
                raise InvalidRecordBatch(
                    f"{self.log_path}: partial batch header at position {pos}"
                )
            off = 0
            while off + HEADER_SIZE <= len(data):
                h = parse_header(data, off)
                size = h.size_in_bytes
                if pos + off + size > end:
                    raise InvalidRecordBatch(
                        f"{self.log_path}: partial batch at position {pos + off}"
                    )
                if off + size > len(data):
                    if verify:
                        whole = self.pread(pos + off, size)
                        verify_crc(whole, 0, h)
                    yield pos + off, h
                    off += size
                    break
                if verify:
                    verify_crc(data, off, h)
                yield pos + off, h
                off += size
            pos += off

    # -- lookups --------------------------------------------------------------------------

    def find_batch(self, offset: int) -> tuple[int, BatchHeader] | None:
        """(position, header) of the first batch whose last offset >= ``offset``."""
        _, pos = self.index.lookup(offset)
        for p, h in self.scan(pos, verify=False):
            if h.last_offset >= offset:
                return p, h
        return None

    def find_position(self, offset: int) -> int:
        """Position of the first batch with last offset >= ``offset`` (size if none)."""
        found = self.find_batch(offset)
        return self.size if found is None else found[0]

    def find_timestamp(self, timestamp: int) -> tuple[int, BatchHeader] | None:
        """(position, header) of the first batch whose max timestamp >= ``timestamp``."""
        entry = self.timeindex.lookup_below(timestamp)
        pos = 0 if entry is None else self.index.lookup(entry[1])[1]
        for p, h in self.scan(pos, verify=False):
            if h.max_timestamp >= timestamp:
                return p, h
        return None

    # -- maintenance ----------------------------------------------------------------------

    def recover(self, max_batch_bytes: int | None = None) -> int:
        """Re-scan the whole log verifying CRCs, rebuild indexes, cut a bad tail.

        Returns the number of bytes truncated. Also refreshes next offset and max timestamp.
        The .txnindex is left to the caller (its rebuild needs producer state).
        """
        idx = OffsetIndex(self.index_path, self.base_offset)
        tix = TimeIndex(self.timeindex_path, self.base_offset)
        self._index, self._timeindex = idx, tix
        max_ts, max_off = -1, -1
        since = 0
        valid_end = 0
        next_offset = self.base_offset
        last_next = -1
        try:
            for pos, h in self.scan(0, verify=True):
                if max_batch_bytes is not None and h.size_in_bytes > max_batch_bytes:
                    raise InvalidRecordBatch(f"batch at {pos} larger than {max_batch_bytes}")
                if h.base_offset < self.base_offset or h.base_offset < last_next:
                    raise InvalidRecordBatch(f"batch at {pos} has offset out of order")
                if h.max_timestamp > max_ts:
                    max_ts, max_off = h.max_timestamp, h.base_offset
                if since >= self.index_interval_bytes:
                    idx.append(h.last_offset, pos)
                    tix.maybe_append(max_ts, max_off)
                    since = 0
                since += h.size_in_bytes
                valid_end = pos + h.size_in_bytes
                next_offset = last_next = h.next_offset
        except InvalidRecordBatch:
            pass
        truncated = self.size - valid_end
        if truncated:
            self._truncate_file(valid_end)
        self.size = valid_end
        self._next_offset = next_offset
        self._max_timestamp = max_ts
        self._offset_of_max_timestamp = max_off
        self.bytes_since_last_index_entry = since
        idx.rewrite()
        tix.rewrite()
        idx.persist(sync=False)
        tix.persist(sync=False)
        return truncated

    def rebuild_indexes(self) -> None:
        """Rebuild the indexes from the log (used when an index file is damaged)."""
        self.recover()

    def _truncate_file(self, size: int) -> None:
        e = self.cache.acquire(self.log_path)
        try:
            os.ftruncate(e.fd, size)
        finally:
            self.cache.release(e)

    def truncate_to(self, offset: int) -> int:
        """Remove batches whose last offset >= ``offset``; return the new next offset.

        A batch straddling ``offset`` is removed whole (the log end moves to its base).
        """
        found = self.find_batch(offset)
        if found is None:
            return self.next_offset
        pos, h = found
        self.txn_index.truncate_to(h.base_offset)
        self._truncate_file(pos)
        self.size = pos
        self.index.truncate_to_position(pos)
        self.timeindex.truncate_to_offset(h.base_offset)
        self._next_offset = None
        self._max_timestamp = None
        # re-learn from the (now shorter) tail; indexes in memory remain valid
        self._learn_tail()
        if pos == 0:
            self._next_offset = self.base_offset
        self.index.persist(sync=False)
        self.timeindex.persist(sync=False)
        return self.next_offset

    def on_become_inactive(self) -> None:
        """Roll: add the final time-index entry so the max timestamp survives reopen."""
        if self.max_timestamp >= 0:
            self.timeindex.maybe_append(self.max_timestamp, self._offset_of_max_timestamp)

    def release_preallocation(self) -> None:
        """Give back disk space reserved past the data (roll and close of a preallocated
        segment): truncating to the current size frees blocks beyond end of file."""
        self._truncate_file(self.size)

    def flush(self) -> None:
        """fsync the log and persist + fsync both indexes."""
        fd = os.open(self.log_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if self._index is not None:
            self._index.persist(sync=True)
        if self._timeindex is not None:
            self._timeindex.persist(sync=True)

    def persist_indexes(self) -> None:
        if self._index is not None:
            self._index.persist(sync=False)
        if self._timeindex is not None:
            self._timeindex.persist(sync=False)

    def close(self) -> None:
        self.persist_indexes()
        self.cache.forget(self.log_path)

    def unload(self) -> None:
        """Drop in-memory indexes (after persisting) to save memory for idle segments."""
        self.persist_indexes()
        self._index = None
        self._timeindex = None
        self.txn_index.forget()

    def delete(self) -> None:
        self.cache.forget(self.log_path)
        for p in (self.log_path, self.index_path, self.timeindex_path, self.txn_index.path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)
