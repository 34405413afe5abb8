"""RaftLog: the in-memory log and epoch index behind divergence checks."""

from __future__ import annotations

import pytest

from controller.raft import Entry, OffsetAndEpoch, SnapshotId
from controller.raft.log import RaftLog


def log_with(*epochs: int) -> RaftLog:
    log = RaftLog()
    for offset, epoch in enumerate(epochs):
        log.append(Entry(offset, epoch, b""))
    return log


def test_end_offset_for_epoch_is_kafkas_epoch_cache_lookup() -> None:
    log = log_with(1, 1, 3, 3, 3, 5)
    assert log.end_offset_for_epoch(1) == OffsetAndEpoch(1, 2)
    assert log.end_offset_for_epoch(2) == OffsetAndEpoch(1, 2)  # largest epoch <= 2
    assert log.end_offset_for_epoch(3) == OffsetAndEpoch(3, 5)
    assert log.end_offset_for_epoch(5) == OffsetAndEpoch(5, 6)
    assert log.end_offset_for_epoch(9) == OffsetAndEpoch(5, 6)
    assert log.end_offset_for_epoch(0) is None
    assert log.end_offset_and_epoch() == OffsetAndEpoch(5, 6)


def test_truncate_drops_whole_epochs_from_the_index() -> None:
    log = log_with(1, 1, 3, 3, 5)
    log.truncate_to(3)
    assert log.end_offset == 3 and log.last_epoch == 3
    log.truncate_to(2)
    assert log.last_epoch == 1 and log.end_offset_for_epoch(3) == OffsetAndEpoch(1, 2)


def test_compaction_keeps_the_snapshot_epoch_as_the_base() -> None:
    log = log_with(1, 1, 2, 2, 3, 3)
    log.compact_to(SnapshotId(4, 2))
    assert log.start_offset == 4 and log.snapshot_id == SnapshotId(4, 2)
    assert log.end_offset_for_epoch(2) == OffsetAndEpoch(2, 4)
    assert log.end_offset_for_epoch(3) == OffsetAndEpoch(3, 6)
    assert log.end_offset_for_epoch(1) is None  # inside the snapshot: fetch it
    assert [e.offset for e in log.read(4, 1 << 20)] == [4, 5]
    assert log.read(2, 100) == ()


def test_reset_to_snapshot_empties_the_log() -> None:
    log = log_with(1, 1)
    log.reset_to_snapshot(SnapshotId(50, 4))
    assert log.end_offset == 50 and log.last_epoch == 4
    log.append(Entry(50, 4, b"x"))
    assert log.end_offset_for_epoch(4) == OffsetAndEpoch(4, 51)


def test_appends_must_be_contiguous_and_epochs_monotonic() -> None:
    log = log_with(2)
    with pytest.raises(ValueError, match="append at 5"):
        log.append(Entry(5, 2, b""))
    with pytest.raises(ValueError, match="epoch 1 < last epoch 2"):
        log.append(Entry(1, 1, b""))


def test_read_respects_max_bytes_but_returns_at_least_one_entry() -> None:
    log = RaftLog()
    for offset in range(5):
        log.append(Entry(offset, 1, b"x" * 100))
    assert len(log.read(0, 1)) == 1
    assert len(log.read(0, 260)) == 2
