"""Kafka's aborted-transaction index: ``<base_offset:020d>.txnindex``, one per segment.

The index of a segment lists the transactions whose ABORT marker lies in that segment
(a transaction may start in an earlier one). read_committed fetches use it to answer
``aborted_transactions`` (Kafka's ``TransactionIndex``, ``AbortedTxn``).

File layout (Kafka's, big-endian), entries of 34 bytes in increasing ``last_offset``::

    version            int16   0
    producer_id        int64
    first_offset       int64   first offset of the aborted transaction in the partition
    last_offset        int64   offset of its ABORT marker
    last_stable_offset int64   the partition's LSO once the marker was written: the first
                               offset of the oldest transaction then still open of
                               another producer, else last_offset + 1

The file is created with the first entry (a segment without aborted transactions has
none, as in Kafka). A file whose length is not a whole number of entries, an entry of
another version or one ending below the segment's base offset fails
:func:`decode_entries` with CorruptIndexError; the log then rebuilds the index from its
batches. Pure encoding and the search (:func:`collect_aborted`) are separate from the
file (:class:`TransactionIndex`).
"""

from __future__ import annotations

import bisect
import contextlib
import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from storage.checkpoint import write_atomic
from storage.index import CorruptIndexError

TXN_INDEX_SUFFIX = ".txnindex"
ENTRY = struct.Struct(">hqqqq")
ENTRY_SIZE = ENTRY.size  # 34
VERSION = 0


@dataclass(frozen=True, slots=True)
class AbortedTxn:
    """One aborted transaction; see the module docstring for the fields."""

    producer_id: int
    first_offset: int
    last_offset: int
    last_stable_offset: int


def encode_entries(entries: Iterable[AbortedTxn]) -> bytes:
    """The file bytes of ``entries`` (version 0)."""
    return b"".join(ENTRY.pack(VERSION, t.producer_id, t.first_offset, t.last_offset,
                               t.last_stable_offset) for t in entries)


def decode_entries(data: bytes, base_offset: int = 0) -> list[AbortedTxn]:
    """Entries of a .txnindex file; CorruptIndexError per the module docstring."""
    if len(data) % ENTRY_SIZE:
        raise CorruptIndexError(
            f"transaction index of {len(data)} bytes is not a multiple of {ENTRY_SIZE}")
    out: list[AbortedTxn] = []
    for version, pid, first, last, lso in ENTRY.iter_unpack(data):
        if version != VERSION:
            raise CorruptIndexError(f"transaction index entry of unknown version {version}")
        if last < base_offset or (out and last <= out[-1].last_offset):
            raise CorruptIndexError(
                f"transaction index entry ending at {last} is out of order "
                f"(segment base {base_offset})")
        out.append(AbortedTxn(pid, first, last, lso))
    return out


def collect_aborted(
    entries: Sequence[AbortedTxn], fetch_offset: int, upper_bound: int,
    last_offsets: Sequence[int] | None = None,
) -> tuple[list[AbortedTxn], bool]:
    """Kafka's ``collectAbortedTxns`` over one segment's entries.

    Returns the entries overlapping [fetch_offset, upper_bound) (last_offset >=
    fetch_offset and first_offset < upper_bound) and whether the search is complete:
    True once an entry's last_stable_offset >= upper_bound (no later segment can hold a
    transaction that began below the bound). ``last_offsets`` (each entry's last_offset)
    lets the walk start at the first entry ending at or after fetch_offset; earlier
    entries cannot end the search for a non-empty range, since last_stable_offset <=
    last_offset + 1.
    """
    start = 0 if last_offsets is None else bisect.bisect_left(last_offsets, fetch_offset)
    found: list[AbortedTxn] = []
    for k in range(start, len(entries)):
        t = entries[k]
        if t.last_offset >= fetch_offset and t.first_offset < upper_bound:
            found.append(t)
        if t.last_stable_offset >= upper_bound:
            return found, True
    return found, False


class TransactionIndex:
    """The .txnindex file of one segment; entries are cached in memory once read.

    ``append`` writes one entry (creating the file); ``truncate_to`` drops entries whose
    marker is at or after an offset; ``replace`` swaps in a whole new list atomically
    (the cleaner); ``reset`` deletes the file. OSError escapes to the caller.
    """

    __slots__ = ("path", "base_offset", "_entries", "_last_offsets")

    def __init__(self, path: Path, base_offset: int) -> None:
        self.path = path
        self.base_offset = base_offset
        self._entries: list[AbortedTxn] | None = None
        self._last_offsets: list[int] = []

    @property
    def entries(self) -> list[AbortedTxn]:
        """Every entry, read from the file on first use (CorruptIndexError if damaged)."""
        if self._entries is None:
            try:
                data = self.path.read_bytes()
            except FileNotFoundError:
                data = b""
            entries = decode_entries(data, self.base_offset)
            self._entries = entries
            self._last_offsets = [t.last_offset for t in entries]
        return self._entries

    def exists(self) -> bool:
        return os.path.exists(self.path)

    def collect(self, fetch_offset: int, upper_bound: int) -> tuple[list[AbortedTxn], bool]:
        """:func:`collect_aborted` over this segment."""
        entries = self.entries
        if not entries:
            return [], False
        return collect_aborted(entries, fetch_offset, upper_bound, self._last_offsets)

    def append(self, txn: AbortedTxn) -> bool:
        """Add an entry (ValueError unless it ends after the last one, as Kafka).

        Returns True when the file was created by this call (the directory changed).
        """
        entries = self.entries
        if entries and txn.last_offset <= entries[-1].last_offset:
            raise ValueError(
                f"{self.path}: aborted transaction ending at {txn.last_offset} does not "
                f"follow {entries[-1].last_offset}")
        created = not entries and not self.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        try:
            data = encode_entries([txn])
            n = os.write(fd, data)
            if n != len(data):
                raise OSError(f"{self.path}: short write of {n} bytes")
        finally:
            os.close(fd)
        entries.append(txn)
        self._last_offsets.append(txn.last_offset)
        return created

    def truncate_to(self, offset: int) -> None:
        """Drop entries whose last_offset >= ``offset`` (log truncation)."""
        entries = self.entries
        keep = bisect.bisect_left(self._last_offsets, offset)
        if keep == len(entries):
            return
        del entries[keep:]
        del self._last_offsets[keep:]
        if not keep:
            self.reset()
            return
        os.truncate(self.path, keep * ENTRY_SIZE)

    def replace(self, entries: list[AbortedTxn], *, sync: bool) -> None:
        """Make the file hold exactly ``entries`` (written atomically; removed if none)."""
        if entries:
            write_atomic(self.path, encode_entries(entries), sync=sync)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        self._entries = list(entries)
        self._last_offsets = [t.last_offset for t in entries]

    def reset(self) -> None:
        """Remove every entry and the file (before a rebuild, and on segment deletion)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self._entries = []
        self._last_offsets = []

    def forget(self) -> None:
        """Drop the cached entries (read again from the file on next use)."""
        self._entries = None
        self._last_offsets = []

    def flush(self) -> None:
        """fsync the file if it exists."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
