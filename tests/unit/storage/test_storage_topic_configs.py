"""Topic configs applied by the storage engine: message.timestamp.before/after.max.ms,
segment.jitter.ms, max.compaction.lag.ms (roll side), and LogConfig property parsing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from protocol.records import Record, build_batch, iter_batches
from storage.errors import InvalidTimestampError
from storage.log_config import LONG_MAX, LogConfig
from storage.partition_log import PartitionLog
from tests.unit.storage.conftest import batch

NOW = 1_000_000


def batch_at(*timestamps: int, **kw: object) -> bytes:
    recs = [Record(-1, ts, b"k", b"v") for ts in timestamps]
    return build_batch(recs, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("compression", [0, 1, 4])
def test_timestamp_before_max_checks_every_record(open_log, compression: int) -> None:
    log = open_log(LogConfig(message_timestamp_before_max_ms=1000))
    log.append_as_leader(batch_at(NOW - 1000, NOW), leader_epoch=0, now_ms=NOW)
    # the oldest record is not the first one and not in the header's max timestamp
    bad = batch_at(NOW, NOW - 1001, NOW, compression=compression)
    with pytest.raises(InvalidTimestampError, match="before"):
        log.append_as_leader(bad, leader_epoch=0, now_ms=NOW)
    # all-or-nothing: a good batch in front of a bad one is not appended either
    with pytest.raises(InvalidTimestampError):
        log.append_as_leader(batch_at(NOW) + bad, leader_epoch=0, now_ms=NOW)
    assert log.log_end_offset == 2
    # far-future timestamps are fine while only the "before" bound is set
    log.append_as_leader(batch_at(NOW + 10**9), leader_epoch=0, now_ms=NOW)


def test_timestamp_after_max(open_log) -> None:
    log = open_log(LogConfig(message_timestamp_after_max_ms=500))
    log.append_as_leader(batch_at(NOW + 500, 0), leader_epoch=0, now_ms=NOW)
    with pytest.raises(InvalidTimestampError, match="after"):
        log.append_as_leader(batch_at(NOW, NOW + 501), leader_epoch=0, now_ms=NOW)
    assert log.log_end_offset == 2


def test_records_without_timestamp_are_not_checked(open_log) -> None:
    log = open_log(LogConfig(message_timestamp_before_max_ms=0,
                             message_timestamp_after_max_ms=0))
    log.append_as_leader(batch_at(-1, NOW, -1), leader_epoch=0, now_ms=NOW)
    with pytest.raises(InvalidTimestampError):
        log.append_as_leader(batch_at(NOW - 1), leader_epoch=0, now_ms=NOW)


def test_timestamp_bounds_ignored_for_log_append_time_and_followers(open_log) -> None:
    cfg = LogConfig(message_timestamp_before_max_ms=0, message_timestamp_after_max_ms=0,
                    message_timestamp_type="LogAppendTime")
    log = open_log(cfg)
    log.append_as_leader(batch_at(5), leader_epoch=0, now_ms=NOW)
    follower = open_log(LogConfig(message_timestamp_before_max_ms=0), name="f-0")
    follower.append_as_follower(batch_at(5, base_offset=0))
    assert follower.log_end_offset == 1


def test_deprecated_difference_max_applies_while_the_new_keys_are_unset() -> None:
    cfg = LogConfig(message_timestamp_difference_max_ms=100)
    assert (cfg.timestamp_before_max_ms, cfg.timestamp_after_max_ms) == (100, 100)
    cfg = LogConfig(message_timestamp_difference_max_ms=100,
                    message_timestamp_before_max_ms=7)
    assert (cfg.timestamp_before_max_ms, cfg.timestamp_after_max_ms) == (7, 100)
    assert LogConfig().timestamp_before_max_ms == LONG_MAX


def test_difference_max_rejects_either_side(open_log) -> None:
    log = open_log(LogConfig(message_timestamp_difference_max_ms=10))
    for ts in (NOW - 11, NOW + 11):
        with pytest.raises(InvalidTimestampError):
            log.append_as_leader(batch_at(ts), leader_epoch=0, now_ms=NOW)
    log.append_as_leader(batch_at(NOW - 10, NOW + 10), leader_epoch=0, now_ms=NOW)


def test_with_properties_parses_the_new_keys() -> None:
    cfg = LogConfig().with_properties({
        "message.timestamp.before.max.ms": "10", "message.timestamp.after.max.ms": 20,
        "max.compaction.lag.ms": "30", "min.cleanable.dirty.ratio": "0.25",
        "segment.jitter.ms": "40", "preallocate": "true",
    })
    assert cfg.message_timestamp_before_max_ms == 10
    assert cfg.message_timestamp_after_max_ms == 20
    assert cfg.max_compaction_lag_ms == 30
    assert cfg.min_cleanable_dirty_ratio == 0.25
    assert cfg.segment_jitter_ms == 40
    assert cfg.preallocate is True
    for key, bad in (("min.cleanable.dirty.ratio", "1.5"), ("preallocate", "yes")):
        with pytest.raises(ValueError):
            LogConfig().with_properties({key: bad})


def _roll_time(cfg: LogConfig, directory: Path) -> int:
    """The first now_ms (in 10 ms steps) at which the first segment rolls."""
    log = PartitionLog.open(directory, cfg, now_ms=0)
    try:
        log.append_as_leader(batch(1, ts=0), leader_epoch=0, now_ms=1)
        for now in range(10, 20_001, 10):
            if log.maybe_roll(now):
                return now
        raise AssertionError("never rolled")
    finally:
        log.close()


def test_segment_jitter_rolls_earlier_by_a_stable_per_partition_amount(tmp_path) -> None:
    assert _roll_time(LogConfig(segment_ms=10_000), tmp_path / "p-0") == 10_000
    jittered = LogConfig(segment_ms=10_000, segment_jitter_ms=5_000)
    times = [_roll_time(jittered, tmp_path / f"j-{i}") for i in range(8)]
    assert all(5_000 < t <= 10_000 for t in times)
    assert len(set(times)) > 1  # partitions do not all roll at the same moment
    # the same partition elsewhere (or after a restart) gets the same jitter
    assert _roll_time(jittered, tmp_path / "other" / "j-3") == times[3]


def test_max_compaction_lag_caps_segment_ms_on_compacted_topics(tmp_path) -> None:
    compacted = LogConfig(cleanup_policy=frozenset({"compact"}), segment_ms=10_000,
                          max_compaction_lag_ms=3_000)
    assert compacted.max_segment_ms == 3_000
    assert _roll_time(compacted, tmp_path / "c-0") == 3_000
    deleting = LogConfig(segment_ms=10_000, max_compaction_lag_ms=3_000)
    assert deleting.max_segment_ms == 10_000


def _allocated(path: str) -> int:
    return os.stat(path).st_blocks * 512


def test_preallocate_reserves_disk_but_not_length(tmp_path) -> None:
    cfg = LogConfig(preallocate=True, segment_bytes=4 * 1024 * 1024)
    log = PartitionLog.open(tmp_path / "pre-0", cfg, now_ms=0)
    first = log.segments[-1].log_path
    assert os.path.getsize(first) == 0
    assert _allocated(first) >= cfg.segment_bytes
    for _ in range(5):
        log.append_as_leader(batch(2, size=1000), leader_epoch=0, now_ms=0)
    assert os.path.getsize(first) == log.segments[-1].size
    log.roll(0)  # the rolled segment gives back what it did not use
    assert _allocated(first) < 64 * 1024
    assert _allocated(log.segments[-1].log_path) >= cfg.segment_bytes
    log.append_as_leader(batch(1), leader_epoch=0, now_ms=0)
    log.flush()
    # crash: no close, no clean checkpoint; the reservation is still there
    log.cache.close_all()
    again = PartitionLog.open(tmp_path / "pre-0", cfg, now_ms=0)
    assert again.log_end_offset == 11 and again.recovered_bytes == 0
    assert again.append_as_leader(batch(1), leader_epoch=0, now_ms=0).first_offset == 11
    assert [h.base_offset for _, h in iter_batches(again.read(10, 10**6).records)] == [10, 11]
    active = again.segments[-1].log_path
    again.close()  # close gives back the active segment's unused reservation
    assert _allocated(active) < 64 * 1024


def test_zero_filled_tail_is_cut_at_recovery(tmp_path) -> None:
    """A file extended with zeros (Kafka-style visible preallocation, or a file system
    that grew the file before a crash) never fools the log end."""
    cfg = LogConfig()
    log = PartitionLog.open(tmp_path / "z-0", cfg, now_ms=0)
    for _ in range(3):
        log.append_as_leader(batch(1, size=100), leader_epoch=0, now_ms=0)
    size = log.segments[-1].size
    log.close()
    path = tmp_path / "z-0" / "00000000000000000000.log"
    with open(path, "r+b") as f:
        f.truncate(size + 1024 * 1024)
    again = PartitionLog.open(tmp_path / "z-0", cfg, now_ms=0)
    assert again.log_end_offset == 3 and again.recovered_bytes == 1024 * 1024
    assert again.append_as_leader(batch(1), leader_epoch=0, now_ms=0).first_offset == 3
    assert os.path.getsize(path) == again.segments[-1].size
    assert len(list(iter_batches(again.read(0, 10**7).records))) == 4
    again.close()
