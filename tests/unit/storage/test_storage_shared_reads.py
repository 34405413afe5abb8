"""storage.shared_reads: a second replica read of the same new batches is served from the
first one's copy; a truncation (new generation) or a longer read never gets stale bytes;
the byte budget evicts least recently used reads first."""

from __future__ import annotations

from unittest import mock

from protocol.records import Record, build_batch
from storage import partition_log
from storage.partition_log import PartitionLog
from storage.shared_reads import MIN_SHARED_BYTES, SharedReads


def batch(size: int, ts: int) -> bytes:
    return bytes(build_batch([Record(-1, ts, b"k", b"v" * size, [])]))


def _fill(log: PartitionLog, batches: int, size: int = 100_000, ts: int = 1_000) -> None:
    for _ in range(batches):
        log.append_as_leader(batch(size, ts), leader_epoch=0, now_ms=0)


def test_second_replica_read_is_a_hit_with_the_same_bytes(open_log) -> None:
    shared = SharedReads()
    with mock.patch.object(partition_log, "SHARED_READS", shared):
        log = open_log()
        _fill(log, 3)
        first = log.read(0, 1 << 20, share=True).records
        second = log.read(0, 1 << 20, share=True).records
        assert bytes(second) == bytes(first) and shared.hits == 1
        consumer = log.read(0, 1 << 20).records  # consumers do not share
        assert bytes(consumer) == bytes(first) and shared.hits == 1
        # fewer bytes wanted: a view of the same copy, whole batches only
        one = log.read(0, 150_000, share=True).records
        assert bytes(one) == bytes(first)[:len(one)] and 0 < len(one) < len(first)


def test_truncation_and_reappend_never_serve_stale_bytes(open_log) -> None:
    shared = SharedReads()
    with mock.patch.object(partition_log, "SHARED_READS", shared):
        log = open_log()
        _fill(log, 2, ts=1_000)
        old = bytes(log.read(1, 1 << 20, share=True).records)
        log.truncate_to(1)
        _fill(log, 1, ts=2_000)  # offset 1 again, other bytes (timestamp)
        new = bytes(log.read(1, 1 << 20, share=True).records)
        assert new != old and new == bytes(log.read(1, 1 << 20).records)


def test_a_longer_read_after_an_append_reads_anew(open_log) -> None:
    shared = SharedReads()
    with mock.patch.object(partition_log, "SHARED_READS", shared):
        log = open_log()
        _fill(log, 1)
        short = log.read(0, 1 << 20, share=True).records
        _fill(log, 1)
        longer = log.read(0, 1 << 20, share=True).records
        assert len(longer) > len(short) and shared.hits == 0
        assert bytes(longer) == bytes(log.read(0, 1 << 20).records)


def test_budget_evicts_least_recently_used() -> None:
    shared = SharedReads(budget_bytes=3 * MIN_SHARED_BYTES)
    blob = bytes(MIN_SHARED_BYTES)
    for pos in range(3):
        shared.put(("seg", pos, 0), blob)
    assert shared.get(("seg", 0, 0), 10) is not None  # 0 is now the most recent
    shared.put(("seg", 3, 0), blob)
    assert shared.get(("seg", 1, 0), 10) is None
    assert shared.get(("seg", 0, 0), MIN_SHARED_BYTES) is not None
    assert shared.size_bytes <= 3 * MIN_SHARED_BYTES
    shared.put(("seg", 9, 0), b"small")  # below the minimum: not kept
    assert shared.get(("seg", 9, 0), 1) is None
