"""The in-memory view of the replicated log that the pure core reasons about.

The log holds the entries after the latest snapshot (offsets ``start_offset`` ..
``end_offset - 1``) and an epoch index: the first offset of every epoch present, which is
what divergence checks need (Kafka's leader-epoch cache). The snapshot acts as the base
of the index: its epoch "starts" before ``start_offset``.

Contracts: appends are contiguous; ``truncate_to`` never goes below ``start_offset``;
``compact_to`` only moves the start forward to a snapshot end.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from itertools import islice

from controller.raft.types import NO_EPOCH, Entry, OffsetAndEpoch, SnapshotId


class RaftLog:
    def __init__(self, snapshot_id: SnapshotId | None = None, entries: Iterable[Entry] = ()):
        self.snapshot_id = snapshot_id
        self.start_offset = snapshot_id.end_offset if snapshot_id else 0
        self._entries: list[Entry] = []
        # (epoch, first offset) in increasing order; first offset -1 for the snapshot base
        self._epochs: list[tuple[int, int]] = []
        if snapshot_id is not None:
            self._epochs.append((snapshot_id.epoch, -1))
        for entry in entries:
            self.append(entry)

    # ---- reading ----------------------------------------------------------------
    @property
    def end_offset(self) -> int:
        return self.start_offset + len(self._entries)

    @property
    def last_epoch(self) -> int:
        """Epoch of the last entry (or of the snapshot when the log is empty), -1 if none."""
        return self._epochs[-1][0] if self._epochs else NO_EPOCH

    def end_offset_and_epoch(self) -> OffsetAndEpoch:
        return OffsetAndEpoch(self.last_epoch, self.end_offset)

    def entry(self, offset: int) -> Entry:
        return self._entries[offset - self.start_offset]

    def read(self, offset: int, max_bytes: int) -> tuple[Entry, ...]:
        """Entries from ``offset`` on, at most ``max_bytes`` of payload (at least one)."""
        first = offset - self.start_offset
        if first < 0 or first >= len(self._entries):
            return ()
        out: list[Entry] = []
        size = 0
        for entry in islice(self._entries, first, None):
            size += len(entry.payload) + 16
            if out and size > max_bytes:
                break
            out.append(entry)
        return tuple(out)

    def slice(self, start: int, end: int) -> tuple[Entry, ...]:
        lo = max(start, self.start_offset) - self.start_offset
        hi = min(end, self.end_offset) - self.start_offset
        return tuple(self._entries[lo:hi]) if hi > lo else ()

    def epoch_start_offset(self, epoch: int) -> int | None:
        for e, start in self._epochs:
            if e == epoch:
                return start
        return None

    def end_offset_for_epoch(self, epoch: int) -> OffsetAndEpoch | None:
        """The largest epoch <= ``epoch`` in this log and the end offset of that epoch (the
        first offset of the next epoch, or the log end). None when every such epoch lies
        inside the snapshot (the asker must fetch the snapshot). Kafka's
        ``LeaderEpochFileCache.endOffsetFor``."""
        keys = [e for e, _ in self._epochs]
        i = bisect_right(keys, epoch) - 1
        if i < 0:
            return None
        found = self._epochs[i][0]
        end = self._epochs[i + 1][1] if i + 1 < len(self._epochs) else self.end_offset
        return OffsetAndEpoch(found, end)

    # ---- writing ----------------------------------------------------------------
    def append(self, entry: Entry) -> None:
        if entry.offset != self.end_offset:
            raise ValueError(f"append at {entry.offset}, log ends at {self.end_offset}")
        if entry.epoch < self.last_epoch:
            raise ValueError(f"entry epoch {entry.epoch} < last epoch {self.last_epoch}")
        if entry.epoch > self.last_epoch:
            self._epochs.append((entry.epoch, entry.offset))
        self._entries.append(entry)

    def truncate_to(self, offset: int) -> None:
        """Remove every entry with offset >= ``offset`` (clamped to the log start)."""
        offset = max(offset, self.start_offset)
        if offset >= self.end_offset:
            return
        del self._entries[offset - self.start_offset :]
        while self._epochs and self._epochs[-1][1] >= offset:
            self._epochs.pop()

    def compact_to(self, snapshot_id: SnapshotId) -> None:
        """Drop entries below a snapshot taken locally at ``snapshot_id.end_offset``."""
        end = snapshot_id.end_offset
        if end <= self.start_offset:
            return
        if end > self.end_offset:
            raise ValueError(f"snapshot end {end} beyond log end {self.end_offset}")
        del self._entries[: end - self.start_offset]
        self.start_offset = end
        self.snapshot_id = snapshot_id
        # keep the epochs that still cover entries, and the snapshot's epoch as the base
        self._epochs = [(snapshot_id.epoch, -1)] + [(e, s) for e, s in self._epochs if s >= end]

    def reset_to_snapshot(self, snapshot_id: SnapshotId) -> None:
        """Replace the whole log by a snapshot received from the leader."""
        self._entries = []
        self.start_offset = snapshot_id.end_offset
        self.snapshot_id = snapshot_id
        self._epochs = [(snapshot_id.epoch, -1)]
