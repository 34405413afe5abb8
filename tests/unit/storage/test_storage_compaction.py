"""Compaction: latest per key, tombstones, offsets kept, transactions, active untouched."""

from __future__ import annotations

import os
from pathlib import Path

from protocol.records import (
    Record,
    build_batch,
    build_control_batch,
    decode_batch_records,
    iter_batches,
)
from storage.log_config import LogConfig

COMPACT = LogConfig(cleanup_policy=frozenset({"compact"}), segment_bytes=600,
                    delete_retention_ms=1000)


def all_records(log) -> list[Record]:
    out = []
    off = log.log_start_offset
    while off < log.log_end_offset:
        data = log.read(off, 10**6).records
        if not data:
            break
        for pos, h in iter_batches(data):
            out += decode_batch_records(data, pos)
            off = h.next_offset
    return out


def all_headers(log) -> list:
    out = []
    off = log.log_start_offset
    while off < log.log_end_offset:
        data = log.read(off, 10**6).records
        if not data:
            break
        for _, h in iter_batches(data):
            out.append(h)
            off = h.next_offset
    return out


def kv(key: str, value: str | None, ts: int = 0) -> bytes:
    return build_batch([Record(-1, ts, key.encode(), None if value is None else value.encode())])


def test_keeps_latest_per_key_preserving_offsets(open_log) -> None:
    log = open_log(COMPACT)
    expected: dict[str, tuple[int, str]] = {}
    for i in range(60):
        key = f"k{i % 7}"
        r = log.append_as_leader(kv(key, f"v{i}" * 10), leader_epoch=0, now_ms=0)
        expected[key] = (r.first_offset, f"v{i}" * 10)
    active_before = log.segments[-1].size
    active_base = log.segments[-1].base_offset
    removed = log.compact(now_ms=0)
    assert removed > 0
    recs = all_records(log)
    # every key's latest value survives at its original offset
    got = {}
    for r in recs:
        got[r.key.decode()] = (r.offset, r.value.decode())
    assert got == expected
    # closed segments hold only latest-per-key records
    closed = [r for r in recs if r.offset < active_base]
    assert all(expected[r.key.decode()][0] == r.offset or r.offset >= active_base
               for r in closed if r.key.decode() in expected and
               expected[r.key.decode()][0] < active_base)
    assert len({r.key for r in closed}) == len(closed)
    assert log.segments[-1].size == active_before  # active untouched
    offsets = [r.offset for r in recs]
    assert offsets == sorted(offsets)
    # appends continue at the right offset, reads in gaps land on the next batch
    assert log.append_as_leader(kv("z", "1"), leader_epoch=0, now_ms=0).first_offset == 60
    assert log.read(1, 10**6).first_offset >= 1


def test_tombstones_removed_after_delete_retention(open_log) -> None:
    log = open_log(COMPACT)
    log.append_as_leader(kv("a", "1" * 100, ts=0), leader_epoch=0, now_ms=0)
    log.append_as_leader(kv("a", None, ts=100), leader_epoch=0, now_ms=0)  # tombstone
    for i in range(20):
        log.append_as_leader(kv(f"b{i}", "x" * 100, ts=200), leader_epoch=0, now_ms=0)
    log.compact(now_ms=500)  # first sight: the tombstone gets a horizon of 500 + 1000
    keys = [(r.key, r.value) for r in all_records(log)]
    assert (b"a", None) in keys and (b"a", b"1" * 100) not in keys
    tomb = [r for r in all_records(log) if r.key == b"a"]
    assert tomb[0].timestamp == 100  # record timestamps survive the horizon stamp
    log.compact(now_ms=1499)
    assert b"a" in [r.key for r in all_records(log)]
    log.compact(now_ms=1500)
    keys = [r.key for r in all_records(log)]
    assert b"a" not in keys


def test_aborted_transaction_records_removed_markers_kept(open_log) -> None:
    log = open_log(COMPACT)
    txn = dict(producer_id=9, producer_epoch=0, is_transactional=True)
    log.append_as_leader(build_batch([Record(-1, 0, b"t", b"aborted" * 20)], base_sequence=0,
                                     **txn), leader_epoch=0, now_ms=0)
    log.append_as_leader(build_control_batch(producer_id=9, producer_epoch=0, commit=False),
                         leader_epoch=0, now_ms=0, origin="coordinator")
    log.append_as_leader(build_batch([Record(-1, 0, b"t", b"committed" * 20)],
                                     base_sequence=1, **txn), leader_epoch=0, now_ms=0)
    log.append_as_leader(build_control_batch(producer_id=9, producer_epoch=0, commit=True),
                         leader_epoch=0, now_ms=0, origin="coordinator")
    for i in range(15):
        log.append_as_leader(kv(f"f{i}", "y" * 100), leader_epoch=0, now_ms=0)
    assert log.aborted_transactions(0, 100) == [(9, 0)]
    log.compact(now_ms=0)
    controls = [h for h in all_headers(log) if h.is_control]
    assert len(controls) == 2
    values = [r.value for r in all_records(log) if r.key == b"t"]
    assert values == [b"committed" * 20]


MARKERS = LogConfig(cleanup_policy=frozenset({"compact"}), segment_bytes=2000,
                    delete_retention_ms=1000)


def _txn_log(tmp_path: Path):
    """Producer 9's transactions: o0 aborted (ABORT o1), o2 c=v1 committed (COMMIT o3,
    superseded by o6), o4 k committed (COMMIT o5, survives), o6 c=v2 committed (COMMIT
    o7, its last batch); then 20 distinct-key records that roll the segment."""
    from storage.partition_log import PartitionLog

    log = PartitionLog.open(tmp_path / "m-0", MARKERS, now_ms=0)
    txn = dict(producer_id=9, producer_epoch=0, is_transactional=True)
    for seq, (key, value, commit) in enumerate(
            [(b"t", b"aborted" * 20, False), (b"c", b"v1", True), (b"k", b"keep", True),
             (b"c", b"v2", True)]):
        log.append_as_leader(build_batch([Record(-1, 0, key, value)], base_sequence=seq,
                                         **txn), leader_epoch=0, now_ms=0)
        log.append_as_leader(build_control_batch(producer_id=9, producer_epoch=0,
                                                 commit=commit),
                             leader_epoch=0, now_ms=0, origin="coordinator")
    for i in range(20):
        log.append_as_leader(kv(f"f{i}", "y" * 150), leader_epoch=0, now_ms=0)
    assert log.segments[0].next_offset > 8  # the transactions are in a closed segment
    return log


def _markers(log) -> dict[int, bool]:
    """Marker offset -> whether it carries a delete horizon."""
    return {h.base_offset: h.has_delete_horizon for h in all_headers(log) if h.is_control}


def test_markers_go_once_their_transaction_is_gone_and_the_horizon_passed(
        tmp_path: Path) -> None:
    log = _txn_log(tmp_path)
    assert log.aborted_transactions(0, 100) == [(9, 0)]
    log.compact(now_ms=0)
    # o0 (aborted) and o2 (superseded) are gone: their markers are stamped, not removed;
    # o5 and o7 still have a batch of their transaction
    assert _markers(log) == {1: True, 3: True, 5: False, 7: False}
    assert log.aborted_transactions(0, 100) == [(9, 0)]  # the ABORT marker is still there
    assert log.compact(now_ms=999) == 0  # the horizon (0 + 1000) has not come
    assert set(_markers(log)) == {1, 3, 5, 7}
    assert log.compact(now_ms=1000) == 2  # the pass due at the horizon removes both
    assert _markers(log) == {5: False, 7: False}
    assert log.aborted_transactions(0, 100) == []
    values = [(r.key, r.value) for r in all_records(log) if r.key in (b"t", b"c", b"k")]
    assert values == [(b"k", b"keep"), (b"c", b"v2")]
    end = log.log_end_offset
    log.close()
    for snapshot in (tmp_path / "m-0").glob("*.snapshot"):
        snapshot.unlink()  # producer state is rebuilt from the cleaned log itself
    from storage.partition_log import PartitionLog

    log = PartitionLog.open(tmp_path / "m-0", MARKERS, now_ms=2000)
    try:
        assert _markers(log) == {5: False, 7: False}
        assert log.aborted_transactions(0, 100) == []
        assert log.log_end_offset == end
        assert log._producers().first_unstable_offset() is None  # no transaction left open
    finally:
        log.close()


def test_a_producers_last_batch_keeps_its_marker(open_log) -> None:
    log = open_log(MARKERS)
    txn = dict(producer_id=4, producer_epoch=2, is_transactional=True)
    log.append_as_leader(build_batch([Record(-1, 0, b"a", b"old")], base_sequence=0, **txn),
                         leader_epoch=0, now_ms=0)
    log.append_as_leader(build_control_batch(producer_id=4, producer_epoch=2, commit=True),
                         leader_epoch=0, now_ms=0, origin="coordinator")
    for i in range(20):  # supersede "a" without producer 4
        log.append_as_leader(kv("a" if i == 0 else f"f{i}", "y" * 150), leader_epoch=0,
                             now_ms=0)
    for now in (0, 5000, 10_000):
        log.compact(now_ms=now)
    # the data batch is gone, but the marker holds producer 4's latest epoch
    assert _markers(log) == {1: False}
    assert [r.value for r in all_records(log) if r.key == b"a"] == [b"y" * 150]


def test_ongoing_transaction_blocks_cleaning(open_log) -> None:
    log = open_log(COMPACT)
    txn = dict(producer_id=3, producer_epoch=0, is_transactional=True)
    log.append_as_leader(kv("a", "1" * 200), leader_epoch=0, now_ms=0)
    log.append_as_leader(build_batch([Record(-1, 0, b"a", b"t" * 200)], base_sequence=0,
                                     **txn), leader_epoch=0, now_ms=0)
    for i in range(10):
        log.append_as_leader(kv("a", str(i) * 200), leader_epoch=0, now_ms=0)
    assert log.last_stable_offset <= 1
    assert log.compact(now_ms=0) == 0


def test_compaction_survives_reopen_and_crash_files(tmp_path) -> None:
    from storage.partition_log import PartitionLog

    log = PartitionLog.open(tmp_path / "c-0", COMPACT, now_ms=0)
    for i in range(40):
        log.append_as_leader(kv(f"k{i % 3}", str(i) * 50), leader_epoch=0, now_ms=0)
    log.compact(now_ms=0)
    before = [(r.offset, r.key, r.value) for r in all_records(log)]
    log.close()
    # a stray .cleaned file from an interrupted pass is discarded at open
    (tmp_path / "c-0" / ("0" * 20 + ".log.cleaned")).write_bytes(b"junk")
    log = PartitionLog.open(tmp_path / "c-0", COMPACT, now_ms=0)
    assert [(r.offset, r.key, r.value) for r in all_records(log)] == before
    assert not [p for p in os.listdir(tmp_path / "c-0") if p.endswith(".cleaned")]
    log.close()


def test_min_compaction_lag(open_log) -> None:
    cfg = LogConfig(cleanup_policy=frozenset({"compact"}), segment_bytes=600,
                    min_compaction_lag_ms=10_000)
    log = open_log(cfg)
    for _i in range(20):
        log.append_as_leader(kv("k", "v" * 100, ts=5_000), leader_epoch=0, now_ms=0)
    assert log.compact(now_ms=6_000) == 0
    assert log.compact(now_ms=20_000) > 0


def test_small_segments_are_merged(open_log) -> None:
    cfg = LogConfig(cleanup_policy=frozenset({"compact"}), segment_bytes=2000,
                    min_cleanable_dirty_ratio=0.0)
    log = open_log(cfg)
    for i in range(120):
        log.append_as_leader(kv(f"k{i % 4}", str(i) * 40), leader_epoch=0, now_ms=0)
    before = len(log.segments)
    log.compact(now_ms=0)
    # some new dirty data lets a second pass run: it merges what the first one shrank
    r = log.append_as_leader(kv("k9", "new"), leader_epoch=0, now_ms=0)
    log.roll(0)
    expected = {r.key: (r.offset, r.value) for r in all_records(log)}
    assert expected[b"k9"] == (r.first_offset, b"new")
    assert log.compact(now_ms=0) > 0  # the old active segment's duplicates go now
    assert len(log.segments) < before // 2
    bases = [s.base_offset for s in log.segments]
    assert all(a.next_offset == b.base_offset for a, b in zip(log.segments, log.segments[1:],
                                                               strict=False))
    assert {r.key: (r.offset, r.value) for r in all_records(log)} == expected
    assert bases == sorted(bases)


def test_interrupted_merge_is_completed_at_open(tmp_path) -> None:
    """Crash after the merged file was committed as .swap, before the old segments went."""
    from storage.partition_log import PartitionLog

    cfg = LogConfig(cleanup_policy=frozenset({"compact"}), segment_bytes=600)
    d = tmp_path / "m-0"
    log = PartitionLog.open(d, cfg, now_ms=0)
    for i in range(30):
        log.append_as_leader(kv(f"k{i}", "v" * 100), leader_epoch=0, now_ms=0)
    records = [(r.offset, r.key, r.value) for r in all_records(log)]
    s0, s1, s2 = log.segments[0], log.segments[1], log.segments[2]
    log.close()
    # the merged copy of the first three segments (nothing removed: unique keys)
    merged = b"".join(Path(s.log_path).read_bytes() for s in (s0, s1, s2))
    (d / (s0.log_path.rsplit("/", 1)[1] + ".swap")).write_bytes(merged)
    log = PartitionLog.open(d, cfg, now_ms=0)
    assert log.segments[0].base_offset == s0.base_offset
    assert log.segments[1].base_offset == s2.next_offset
    assert not os.path.exists(s1.log_path) and not os.path.exists(s2.log_path)
    assert [(r.offset, r.key, r.value) for r in all_records(log)] == records
    log.close()


def test_compact_and_delete_policy_does_both(tmp_path) -> None:
    from storage.log_manager import LogManager

    cfg = LogConfig(cleanup_policy=frozenset({"compact", "delete"}), segment_bytes=600,
                    retention_ms=10_000)
    lm = LogManager(tmp_path, cfg)
    lm.startup(0)
    log = lm.create("cd", 0, now_ms=0)
    for i in range(40):
        log.append_as_leader(kv(f"k{i % 3}", str(i) * 60, ts=i * 1000), leader_epoch=0,
                             now_ms=0)
    assert lm.run_cleaner(now_ms=40_000) > 0  # compaction ran
    assert {r.key for r in all_records(log)} == {b"k0", b"k1", b"k2"}
    deleted = lm.run_retention(now_ms=60_000)  # and time retention deletes old segments
    assert deleted > 0 and log.log_start_offset > 0
    assert len(log.segments) >= 1
    lm.shutdown()


def _dupes(log) -> int:
    recs = all_records(log)
    return len(recs) - len({r.key for r in recs})


def test_min_cleanable_dirty_ratio_decides_when_a_pass_runs(tmp_path) -> None:
    from storage.partition_files import read_cleaner_checkpoint
    from storage.partition_log import PartitionLog

    cfg = LogConfig(cleanup_policy=frozenset({"compact"}), segment_bytes=600,
                    min_cleanable_dirty_ratio=0.5)
    log = PartitionLog.open(tmp_path / "r-0", cfg, now_ms=0)
    for i in range(60):
        log.append_as_leader(kv(f"k{i % 20}", "x" * 60), leader_epoch=0, now_ms=0)
    assert log.cleaner_checkpoint() == (0, -1)  # nothing cleaned yet: all dirty
    assert log.compact(now_ms=0) > 0
    first_dirty, _ = log.cleaner_checkpoint()
    assert first_dirty == log.segments[-1].base_offset  # everything closed was cleaned
    # a little new dirty data: ratio below 0.5, no pass, duplicates stay
    for i in range(8):
        log.append_as_leader(kv(f"k{i}", "y" * 60), leader_epoch=0, now_ms=0)
    log.roll(0)
    dupes = _dupes(log)
    assert dupes > 0
    assert log.compact(now_ms=0) == 0 and _dupes(log) == dupes
    # the checkpoint survives a restart: still no pass without more dirty data
    log.close()
    log = PartitionLog.open(tmp_path / "r-0", cfg, now_ms=0)
    assert log.cleaner_checkpoint()[0] == first_dirty
    assert log.compact(now_ms=0) == 0
    # enough dirty data: the ratio passes 0.5 and the pass cleans everything
    for i in range(60):
        log.append_as_leader(kv(f"k{i % 20}", "z" * 60), leader_epoch=0, now_ms=0)
    log.roll(0)
    assert log.compact(now_ms=0) > 0 and _dupes(log) == 0
    # truncation below the first dirty offset makes the rest dirty again
    end = log.log_end_offset
    assert log.cleaner_checkpoint()[0] == end
    log.truncate_to(end - 1)
    assert read_cleaner_checkpoint(tmp_path / "r-0")[0] == end - 1
    assert log.cleaner_checkpoint()[0] <= log.log_end_offset < end
    log.close()


def test_ratio_zero_cleans_any_dirty_data_and_one_never(open_log) -> None:
    eager = open_log(LogConfig(cleanup_policy=frozenset({"compact"}), segment_bytes=600,
                               min_cleanable_dirty_ratio=0.0), name="e-0")
    never = open_log(LogConfig(cleanup_policy=frozenset({"compact"}), segment_bytes=600,
                               min_cleanable_dirty_ratio=1.0), name="n-0")
    for log in (eager, never):
        for _i in range(30):
            log.append_as_leader(kv("k", "v" * 60), leader_epoch=0, now_ms=0)
    assert eager.compact(now_ms=0) > 0
    assert never.compact(now_ms=10**12) == 0  # no max.compaction.lag.ms: never due
    eager.append_as_leader(kv("k", "w" * 600), leader_epoch=0, now_ms=0)
    eager.roll(0)
    assert eager.compact(now_ms=0) > 0


def test_max_compaction_lag_forces_a_pass(open_log) -> None:
    cfg = LogConfig(cleanup_policy=frozenset({"compact"}), segment_bytes=600,
                    min_cleanable_dirty_ratio=1.0, max_compaction_lag_ms=10_000)
    log = open_log(cfg)
    for _i in range(30):
        log.append_as_leader(kv("k", "v" * 60, ts=1_000), leader_epoch=0, now_ms=1_000)
    assert log.compact(now_ms=11_000) == 0  # the oldest dirty batch is exactly 10 s old
    assert log.compact(now_ms=11_001) > 0
    assert _dupes(log) <= len(log.segments)  # only the active segment may hold dupes
    assert log.compact(now_ms=10**9) == 0  # nothing dirty left
