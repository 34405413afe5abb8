"""PartitionLog contract: append/read/offsets/roll/truncate/reopen."""

from __future__ import annotations

import pytest

from protocol.records import Record, build_batch, decode_batch_records, iter_batches
from storage.errors import (
    CorruptRecordError,
    InvalidRecordError,
    OffsetOutOfRangeError,
    RecordTooLargeError,
)
from storage.log_config import LogConfig
from tests.unit.storage.conftest import batch


def offsets_of(data: bytes) -> list[tuple[int, int]]:
    return [(h.base_offset, h.last_offset) for _, h in iter_batches(data)]


def test_leader_append_assigns_offsets_and_stamps_epoch(open_log) -> None:
    log = open_log()
    r1 = log.append_as_leader(batch(3), leader_epoch=5, now_ms=10)
    r2 = log.append_as_leader(batch(2) + batch(4), leader_epoch=5, now_ms=10)
    assert (r1.first_offset, r1.last_offset, r1.batch_count) == (0, 2, 1)
    assert (r2.first_offset, r2.last_offset, r2.batch_count) == (3, 8, 2)
    assert r1.log_append_time == -1 and r1.max_timestamp == 1_000
    assert log.log_end_offset == 9
    data = log.read(0, 10**6).records
    assert offsets_of(data) == [(0, 2), (3, 4), (5, 8)]
    assert {h.partition_leader_epoch for _, h in iter_batches(data)} == {5}
    assert log.leader_epochs == [(5, 0)]


def test_caller_buffer_is_not_modified(open_log) -> None:
    log = open_log()
    log.append_as_leader(batch(1), leader_epoch=0, now_ms=0)
    b = batch(2)
    before = bytes(b)
    log.append_as_leader(b, leader_epoch=3, now_ms=0)
    assert b == before


def test_log_append_time(open_log) -> None:
    log = open_log(LogConfig(message_timestamp_type="LogAppendTime"))
    r = log.append_as_leader(batch(2, ts=5), leader_epoch=0, now_ms=777)
    assert r.log_append_time == 777 and r.max_timestamp == 777
    recs = decode_batch_records(log.read(0, 10**6).records)  # CRC was recomputed
    assert [x.timestamp for x in recs] == [777, 777]


def test_all_or_nothing_on_bad_batch(open_log) -> None:
    log = open_log()
    bad = bytearray(batch(1))
    bad[-1] ^= 1
    with pytest.raises(CorruptRecordError):
        log.append_as_leader(batch(1) + bytes(bad), leader_epoch=0, now_ms=0)
    with pytest.raises(CorruptRecordError):
        log.append_as_leader(b"", leader_epoch=0, now_ms=0)
    with pytest.raises(CorruptRecordError):
        log.append_as_leader(b"\x00" * 30, leader_epoch=0, now_ms=0)
    assert log.log_end_offset == 0 and log.size_in_bytes == 0


def test_max_message_bytes(open_log) -> None:
    log = open_log(LogConfig(max_message_bytes=200))
    with pytest.raises(RecordTooLargeError):
        log.append_as_leader(batch(1, size=500), leader_epoch=0, now_ms=0)


def test_keyless_record_rejected_on_compacted_topic(open_log) -> None:
    log = open_log(LogConfig(cleanup_policy=frozenset({"compact"})))
    with pytest.raises(InvalidRecordError):
        log.append_as_leader(batch(1, key=None), leader_epoch=0, now_ms=0)
    log.append_as_leader(batch(1, key=b"a"), leader_epoch=0, now_ms=0)
    assert log.log_end_offset == 1


def test_read_bounds(open_log) -> None:
    log = open_log(LogConfig(index_interval_bytes=100))
    for _ in range(20):
        log.append_as_leader(batch(2, size=50), leader_epoch=0, now_ms=0)
    size = len(batch(2, size=50))
    # starts at the batch containing the offset
    assert offsets_of(log.read(5, size).records) == [(4, 5)]
    # whole batches only, up to max_bytes
    assert len(offsets_of(log.read(0, size * 3 + 10).records)) == 3
    # at least one batch even if larger than max_bytes
    assert offsets_of(log.read(7, 1).records) == [(6, 7)]
    assert log.read(7, 1, min_one_batch=False).records == b""
    # bounded by max_offset (high watermark)
    assert offsets_of(log.read(0, 10**6, max_offset=6).records)[-1] == (4, 5)
    assert log.read(6, 10**6, max_offset=6).records == b""
    assert log.read(40, 100).records == b""
    with pytest.raises(OffsetOutOfRangeError):
        log.read(41, 100)
    with pytest.raises(OffsetOutOfRangeError):
        log.read(-1, 100)


def test_roll_by_size_and_read_across_segments(open_log) -> None:
    log = open_log(LogConfig(segment_bytes=1000))
    for _ in range(30):
        log.append_as_leader(batch(1, size=200), leader_epoch=0, now_ms=0)
    assert len(log.segments) > 5
    assert all(s.size <= 1000 for s in log.segments)
    seen = []
    off = 0
    while off < log.log_end_offset:
        data = log.read(off, 10**6).records
        got = offsets_of(data)
        seen += got
        off = got[-1][1] + 1
    assert seen == [(i, i) for i in range(30)]


def test_roll_by_time(open_log) -> None:
    log = open_log(LogConfig(segment_ms=1000))
    log.append_as_leader(batch(1, ts=0), leader_epoch=0, now_ms=0)
    assert not log.maybe_roll(500)
    log.append_as_leader(batch(1, ts=500), leader_epoch=0, now_ms=500)
    assert len(log.segments) == 1
    log.append_as_leader(batch(1, ts=1500), leader_epoch=0, now_ms=1500)
    assert len(log.segments) == 2 and log.segments[1].base_offset == 2
    assert log.flush_if_due(1500)  # a roll schedules an fsync of the old segment


def test_offset_for_timestamp(open_log) -> None:
    log = open_log(LogConfig(index_interval_bytes=64, segment_bytes=2000))
    stamps = [10, 20, 20, 30, 25, 40, 50, 45, 60]
    for t in stamps:
        log.append_as_leader(build_batch([Record(-1, t - 1, b"k", b"x" * 50),
                                          Record(-1, t, b"k", b"y" * 50)]),
                             leader_epoch=0, now_ms=0)
    # each batch has two records with timestamps (t-1, t)
    for target in range(0, 70, 3):
        expected = None
        for i, t in enumerate(stamps):
            if t - 1 >= target:
                expected = (2 * i, t - 1)
                break
            if t >= target:
                expected = (2 * i + 1, t)
                break
        assert log.offset_for_timestamp(target) == expected, target
    assert log.max_timestamp_and_offset() == (60, 17)


def test_truncate_to_and_reappend(open_log) -> None:
    log = open_log(LogConfig(segment_bytes=500))
    for _ in range(20):
        log.append_as_leader(batch(2, size=50), leader_epoch=1, now_ms=0)
    log.high_watermark = 40
    log.truncate_to(11)  # batch (10, 11) straddles: removed whole
    assert log.log_end_offset == 10 and log.high_watermark == 10
    r = log.append_as_leader(batch(1), leader_epoch=2, now_ms=0)
    assert r.first_offset == 10
    assert log.leader_epochs == [(1, 0), (2, 10)]
    assert offsets_of(log.read(8, 10**6).records) == [(8, 9), (10, 10)]


def test_truncate_fully_and_start_at(open_log) -> None:
    log = open_log()
    log.append_as_leader(batch(5), leader_epoch=0, now_ms=0)
    log.truncate_fully_and_start_at(100)
    assert (log.log_start_offset, log.log_end_offset) == (100, 100)
    assert log.append_as_leader(batch(1), leader_epoch=0, now_ms=0).first_offset == 100


def test_follower_append_keeps_offsets_and_rejects_overlap_and_gap(open_log) -> None:
    log = open_log()
    log.append_as_follower(batch(3, base_offset=0, partition_leader_epoch=2))
    log.append_as_follower(batch(2, base_offset=3, partition_leader_epoch=3))
    assert log.log_end_offset == 5 and log.leader_epochs == [(2, 0), (3, 3)]
    with pytest.raises(CorruptRecordError):
        log.append_as_follower(batch(1, base_offset=4))
    with pytest.raises(CorruptRecordError):
        log.append_as_follower(batch(1, base_offset=9))
    assert log.log_end_offset == 5
    assert log.end_offset_for_epoch(2) == (2, 3)
    assert log.end_offset_for_epoch(7) == (3, 5)


def test_delete_records_and_retention(open_log) -> None:
    log = open_log(LogConfig(segment_bytes=300, retention_ms=1000))
    for i in range(10):
        log.append_as_leader(batch(1, ts=i * 100, size=150), leader_epoch=0, now_ms=0)
    n = len(log.segments)
    assert log.delete_records_before(3) == 3
    assert log.log_start_offset == 3
    with pytest.raises(OffsetOutOfRangeError):
        log.read(2, 100)
    assert log.segments[0].base_offset <= 3 < log.segments[0].next_offset
    with pytest.raises(OffsetOutOfRangeError):
        log.delete_records_before(11)
    # time retention: everything older than 1000 ms before now, except the active segment
    deleted = log.enforce_retention(now_ms=1550)
    assert deleted >= 1 and len(log.segments) < n
    assert all(s.max_timestamp >= 550 for s in log.segments[:-1])
    assert log.log_start_offset == log.segments[0].base_offset
    log.enforce_retention(now_ms=10**9)
    assert len(log.segments) == 1 and log.log_start_offset == log.segments[0].base_offset


def test_size_retention(open_log) -> None:
    log = open_log(LogConfig(segment_bytes=300, retention_bytes=600, retention_ms=-1))
    for _ in range(10):
        log.append_as_leader(batch(1, size=150), leader_epoch=0, now_ms=0)
    log.enforce_retention(now_ms=0)
    assert log.size_in_bytes - log.segments[0].size < 600 <= log.size_in_bytes + 1000
    assert log.size_in_bytes <= 600 + log.segments[0].size


def test_clean_reopen_scans_nothing_and_continues(tmp_path) -> None:
    from storage.partition_log import PartitionLog

    cfg = LogConfig(segment_bytes=1000, index_interval_bytes=100)
    log = PartitionLog.open(tmp_path / "a-1", cfg, now_ms=0)
    for _ in range(20):
        log.append_as_leader(batch(1, size=100), leader_epoch=0, now_ms=0)
    log.high_watermark = 15
    log.close()
    log = PartitionLog.open(tmp_path / "a-1", cfg, now_ms=0)
    assert all(s._index is None for s in log.segments)  # lazily loaded, nothing scanned
    assert (log.log_end_offset, log.high_watermark, log.recovery_point) == (20, 15, 20)
    assert log.append_as_leader(batch(1), leader_epoch=0, now_ms=0).first_offset == 20
    assert offsets_of(log.read(3, 1).records) == [(3, 3)]
    log.close()


def test_unclean_reopen_truncates_torn_tail_and_rebuilds_index(tmp_path) -> None:
    from storage.partition_log import PartitionLog

    cfg = LogConfig(index_interval_bytes=100)
    log = PartitionLog.open(tmp_path / "a-1", cfg, now_ms=0)
    for _ in range(10):
        log.append_as_leader(batch(1, size=100), leader_epoch=0, now_ms=0)
    log.flush()
    path = log.segments[-1].log_path
    one = len(batch(1, size=100))
    # simulate a crash: torn last batch, no clean checkpoint, index lost
    with open(path, "r+b") as f:
        f.truncate(10 * one - 7)
    log.segments[-1].index_path.unlink(missing_ok=True)
    log2 = PartitionLog.open(tmp_path / "a-1", cfg, now_ms=0)
    assert log2.log_end_offset == 9 and log2.recovered_bytes == one - 7
    assert len(log2.segments[-1].index) > 0
    assert log2.append_as_leader(batch(1), leader_epoch=0, now_ms=0).first_offset == 9
    log2.close()


def test_flush_and_retention_threads_while_appending_and_reading(open_log) -> None:
    """flush()/enforce_retention() from a worker thread while this thread appends/reads."""
    import threading

    log = open_log(LogConfig(segment_bytes=20_000, retention_bytes=200_000, retention_ms=-1))
    stop = threading.Event()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            while not stop.is_set():
                log.flush()
                log.enforce_retention(0)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    t = threading.Thread(target=worker)
    t.start()
    try:
        for i in range(1500):
            log.append_as_leader(batch(2, size=100), leader_epoch=0, now_ms=0)
            if i % 7 == 0:
                start = log.log_start_offset
                try:
                    got = offsets_of(log.read(start, 5000).records)
                except OffsetOutOfRangeError:  # retention moved the start meanwhile
                    assert log.log_start_offset > start
                    continue
                assert got and got[0][0] <= start <= got[0][1]
    finally:
        stop.set()
        t.join(timeout=30)
    assert not errors, errors
    log.flush()
    assert log.recovery_point == log.log_end_offset == 3000
    assert log.size_in_bytes < 200_000 + 20_000


def test_large_reads_copy_without_the_lock_and_restart_on_truncation(open_log) -> None:
    """A fetch copying >= 256 KiB releases the lock; a truncation meanwhile restarts it."""
    import threading

    from storage import partition_log as pl

    log = open_log()
    for _ in range(40):
        log.append_as_leader(batch(10, size=1000), leader_epoch=0, now_ms=0)
    seg = log.segments[0]
    real_pread = seg.pread
    copying = threading.Event()
    release = threading.Event()
    calls = []

    def slow_pread(pos: int, size: int) -> bytes:
        calls.append(size)
        if size >= pl.UNLOCKED_READ_BYTES and len(calls) < 3:
            copying.set()
            assert release.wait(10)
        return real_pread(pos, size)

    seg.pread = slow_pread  # type: ignore[method-assign]
    result: list = []
    t = threading.Thread(target=lambda: result.append(log.read(0, 10**6)))
    t.start()
    assert copying.wait(10)
    # the reader holds no lock now: an append and a truncation go through
    log.append_as_leader(batch(1), leader_epoch=0, now_ms=0)
    log.truncate_to(200)
    release.set()
    t.join(10)
    got = offsets_of(result[0].records)
    assert got[-1][1] < 200 and got[0][0] == 0  # restarted after the truncation


def test_corruption_found_lazily_after_a_clean_open_moves_the_log_end_back(tmp_path) -> None:
    from storage.partition_log import PartitionLog

    cfg = LogConfig(index_interval_bytes=100)
    log = PartitionLog.open(tmp_path / "z-0", cfg, now_ms=0)
    for _ in range(10):
        log.append_as_leader(batch(1, size=100), leader_epoch=0, now_ms=0)
    log.close()
    seg = "0" * 20
    one = len(batch(1, size=100))
    p = tmp_path / "z-0" / f"{seg}.log"
    data = bytearray(p.read_bytes())
    data[one * 8 + 40] ^= 0xFF  # corrupt batch 8 (same size: the clean mark still matches)
    p.write_bytes(bytes(data))
    (tmp_path / "z-0" / f"{seg}.index").write_bytes(b"\x00" * 5)  # and a damaged index
    log = PartitionLog.open(tmp_path / "z-0", cfg, now_ms=0)
    assert log.log_end_offset == 10  # trusted from the clean checkpoint (no scan)
    r = log.append_as_leader(batch(1), leader_epoch=0, now_ms=0)
    assert r.first_offset == 8  # the rebuild found the corrupt batch and cut there
    assert offsets_of(log.read(7, 10**6).records) == [(7, 7), (8, 8)]
    log.close()


def test_read_cut_to_whole_batches_is_bytes_like(open_log) -> None:
    """A max_bytes limit inside a batch drops that batch; the result is a bytes-like
    view (len, slicing, comparison, buffer protocol) without an extra copy."""
    log = open_log()
    for _ in range(5):
        log.append_as_leader(batch(2, size=500), leader_epoch=0, now_ms=0)
    one = len(batch(2, size=500))
    whole = log.read(0, 10**6).records
    part = log.read(0, 2 * one + one // 2).records
    assert len(part) == 2 * one and part == whole[: 2 * one]
    assert offsets_of(bytes(part)) == [(0, 1), (2, 3)]
    assert b"" + part == bytes(part) and memoryview(part).nbytes == 2 * one
    assert isinstance(part, memoryview) and part.readonly
    assert len(part.obj) > len(part)  # a view on the read buffer: the cut copied nothing
    hinted = log.read(4, 2 * one + 10).records  # continues from the read hint
    assert offsets_of(hinted) == [(4, 5), (6, 7)]
