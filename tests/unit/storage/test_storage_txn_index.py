"""Aborted-transaction index (.txnindex): codec, search, and the partition log keeping it
right across rolls, unclean reopen, truncation, retention, compaction and the migration
from snapshots that carried the aborted list; coordinator-epoch fencing of markers."""

from __future__ import annotations

import heapq
import json
import random
import struct
from pathlib import Path

import pytest
from crc32c import crc32c

from protocol.records import (
    CONTROL_ABORT,
    Record,
    build_batch,
    build_control_batch,
    control_batch_type,
    decode_batch_records,
    iter_batches,
)
from storage.errors import TransactionCoordinatorFencedError
from storage.index import CorruptIndexError
from storage.log_config import LogConfig
from storage.partition_files import snapshot_offsets, snapshot_path
from storage.partition_log import PartitionLog
from storage.txn_index import (
    ENTRY_SIZE,
    AbortedTxn,
    collect_aborted,
    decode_entries,
    encode_entries,
)

# ---------------------------------------------------------------------- codec and search


def test_entry_is_kafkas_34_byte_big_endian_layout() -> None:
    data = encode_entries([AbortedTxn(7, 100, 130, 131)])
    assert ENTRY_SIZE == 34 and len(data) == 34
    assert data == (struct.pack(">h", 0) + struct.pack(">q", 7) + struct.pack(">q", 100)
                    + struct.pack(">q", 130) + struct.pack(">q", 131))
    assert data.hex() == ("0000" "0000000000000007" "0000000000000064"
                          "0000000000000082" "0000000000000083")
    two = [AbortedTxn(7, 100, 130, 131), AbortedTxn(-5, 2**40, 2**40 + 9, 2**40 + 3)]
    assert decode_entries(encode_entries(two), 100) == two


@pytest.mark.parametrize("data", [
    b"\x00" * 33,  # not a whole entry
    struct.pack(">hqqqq", 1, 1, 0, 5, 6),  # unknown version
    struct.pack(">hqqqq", 0, 1, 0, 5, 6) * 2,  # not increasing
    struct.pack(">hqqqq", 0, 1, 0, 5, 6),  # ends below the segment base (10)
])
def test_damaged_index_is_refused(data: bytes) -> None:
    with pytest.raises(CorruptIndexError):
        decode_entries(data, 10)


def test_collect_overlap_and_completion() -> None:
    entries = [AbortedTxn(1, 0, 5, 3), AbortedTxn(2, 3, 9, 10), AbortedTxn(1, 12, 15, 16)]
    lasts = [t.last_offset for t in entries]
    for hint in (None, lasts):
        # [6, 10): only pid 2's ends inside; its LSO (10) reaches the bound: complete
        assert collect_aborted(entries, 6, 10, hint) == ([entries[1]], True)
        # [0, 4): pid 1's (0..5) and pid 2's (3..9) overlap; LSO 3 < 4, then 10 >= 4
        assert collect_aborted(entries, 0, 4, hint) == (entries[:2], True)
        # [10, 40): the last one only, and no entry's LSO reaches 40: not complete
        assert collect_aborted(entries, 10, 40, hint) == ([entries[2]], False)
        # [16, 20): nothing ends at/after 16
        assert collect_aborted(entries, 16, 20, hint) == ([], False)


# ---------------------------------------------------------------------- log scenarios

CFG = LogConfig(segment_bytes=700)


def data(pid: int, seq: int, value: bytes, *, txn: bool = True) -> bytes:
    return build_batch([Record(-1, 0, value[:4], value)], producer_id=pid, producer_epoch=0,
                       base_sequence=seq, is_transactional=txn)


def marker(pid: int, commit: bool, coordinator_epoch: int = 0) -> bytes:
    return build_control_batch(producer_id=pid, producer_epoch=0, commit=commit,
                               coordinator_epoch=coordinator_epoch)


class Workload:
    """Interleaved transactions of three producers plus plain records; remembers which
    values a read_committed reader must see."""

    def __init__(self, log: PartitionLog, seed: int) -> None:
        self.log = log
        self.rng = random.Random(seed)
        self.seq = {1: 0, 2: 0, 3: 0}
        self.open: dict[int, list[bytes]] = {}
        self.committed: list[bytes] = []
        self.n = 0

    def step(self) -> None:
        log, rng = self.log, self.rng
        pid = rng.choice([0, 1, 2, 3])
        self.n += 1
        value = f"v{self.n:05d}-".encode() + b"x" * 40
        if pid == 0:
            log.append_as_leader(build_batch([Record(-1, 0, b"k", value)]), leader_epoch=0,
                                 now_ms=0)
            self.committed.append(value)
        elif pid in self.open and rng.random() < 0.35:
            commit = rng.random() < 0.5
            log.append_as_leader(marker(pid, commit), leader_epoch=0, now_ms=0,
                                 origin="coordinator")
            values = self.open.pop(pid)
            if commit:
                self.committed += values
        else:
            log.append_as_leader(data(pid, self.seq[pid], value), leader_epoch=0, now_ms=0)
            self.seq[pid] += 1
            self.open.setdefault(pid, []).append(value)
        log.high_watermark = log.log_end_offset

    def finish(self) -> None:
        for pid in sorted(self.open):
            self.log.append_as_leader(marker(pid, False), leader_epoch=0, now_ms=0,
                                      origin="coordinator")
        self.open.clear()
        self.log.high_watermark = self.log.log_end_offset


def read_committed(log: PartitionLog, start: int, max_bytes: int = 500) -> list[bytes]:
    """What a read_committed consumer from ``start`` gets, fetch by fetch: each fetch's
    batches filtered with that fetch's aborted list (Kafka's consumer algorithm)."""
    out: list[bytes] = []
    position = start
    while position < log.last_stable_offset:
        fetched = log.read(position, max_bytes, max_offset=log.last_stable_offset)
        aborted = [(first, pid) for pid, first in
                   log.aborted_transactions(position, fetched.next_offset)]
        heapq.heapify(aborted)
        aborting: set[int] = set()
        buf = bytes(fetched.records)
        for pos, h in iter_batches(buf):
            if h.is_transactional:
                while aborted and aborted[0][0] <= h.last_offset:
                    aborting.add(heapq.heappop(aborted)[1])
                if h.is_control:
                    if control_batch_type(buf, pos) == CONTROL_ABORT:
                        aborting.discard(h.producer_id)
                    continue
                if h.producer_id in aborting:
                    continue
            if not h.is_control:
                out += [r.value for r in decode_batch_records(buf, pos) if r.offset >= position]
        position = fetched.next_offset
    return out


def txn_files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.glob("*.txnindex"))}


def expected_entries(log: PartitionLog) -> dict[str, bytes]:
    """The .txnindex files a replay of the whole log from empty state gives (an
    independent model: Kafka's rule per ABORT marker, LSO over the other producers)."""
    first_of: dict[int, int] = {}
    files: dict[str, list[AbortedTxn]] = {}
    for seg in log.segments:
        for pos, h in seg.scan(0, verify=False):
            if not h.is_transactional:
                continue
            if not h.is_control:
                first_of.setdefault(h.producer_id, h.base_offset)
                continue
            start = first_of.pop(h.producer_id, None)
            kind = control_batch_type(seg.pread(pos, h.size_in_bytes), 0)
            if start is not None and kind == CONTROL_ABORT:
                lso = min(first_of.values(), default=h.base_offset + 1)
                files.setdefault(f"{seg.base_offset:020d}.txnindex", []).append(
                    AbortedTxn(h.producer_id, start, h.base_offset, lso))
    return {name: encode_entries(es) for name, es in files.items()}


def committed_from(w: Workload, log: PartitionLog, start: int) -> list[bytes]:
    """The committed values at offsets >= start (from a full read_uncommitted scan)."""
    wanted = set(w.committed)
    out = []
    for seg in log.segments:
        for pos, h in seg.scan(0, verify=False):
            if h.is_control:
                continue
            for r in decode_batch_records(seg.pread(pos, h.size_in_bytes), 0):
                if r.offset >= start and r.value in wanted:
                    out.append(r.value)
    return out


def starts(log: PartitionLog) -> list[int]:
    end = log.last_stable_offset
    return sorted({log.log_start_offset, *range(log.log_start_offset, end, 7), end - 1})


def build(tmp_path: Path, steps: int = 160, seed: int = 3) -> tuple[PartitionLog, Workload]:
    log = PartitionLog.open(tmp_path / "t-0", CFG, now_ms=0)
    w = Workload(log, seed)
    for _ in range(steps):
        w.step()
    w.finish()
    return log, w


def check_reads(log: PartitionLog, w: Workload) -> None:
    for start in starts(log):
        assert read_committed(log, start) == committed_from(w, log, start), start
        assert read_committed(log, start, 10**6) == committed_from(w, log, start), start


def test_aborts_across_segment_rolls(tmp_path: Path) -> None:
    log, w = build(tmp_path)
    assert len(log.segments) > 8
    files = txn_files(log.directory)
    assert files == expected_entries(log) and len(files) >= 3
    # lazily created: segments without an aborted marker have no file
    assert len(files) < len(log.segments)
    check_reads(log, w)
    log.close()
    reopened = PartitionLog.open(tmp_path / "t-0", CFG, now_ms=0)
    assert txn_files(reopened.directory) == files
    check_reads(reopened, w)
    reopened.close()


def test_unclean_reopen_rebuilds_unflushed_indexes(tmp_path: Path) -> None:
    log, w = build(tmp_path)
    files = txn_files(log.directory)
    # a crash: the recovery point stays at 0 (nothing flushed), indexes partly lost
    for name in list(files)[1:]:
        (log.directory / name).unlink()
    (log.directory / list(files)[0]).write_bytes(b"garbage")
    crashed = PartitionLog.open(tmp_path / "t-0", CFG, now_ms=0)
    assert crashed.recovery_point == 0 and crashed.log_end_offset == log.log_end_offset
    assert txn_files(crashed.directory) == files
    crashed.high_watermark = crashed.log_end_offset  # no checkpoint was written
    check_reads(crashed, w)
    crashed.close()


def test_damaged_index_after_clean_close_is_rebuilt(tmp_path: Path) -> None:
    log, w = build(tmp_path)
    files = txn_files(log.directory)
    log.close()
    name = list(files)[-1]
    (log.directory / name).write_bytes(files[name][:-3])
    reopened = PartitionLog.open(tmp_path / "t-0", CFG, now_ms=0)
    assert txn_files(reopened.directory) == files
    check_reads(reopened, w)
    reopened.close()


def test_truncation_cuts_entries_at_and_after_the_offset(tmp_path: Path) -> None:
    log, w = build(tmp_path)
    entries = [t for s in log.segments for t in s.txn_index.entries]
    cut = entries[len(entries) // 2].last_offset  # an ABORT marker's offset
    log.truncate_to(cut)
    left = [t for s in log.segments for t in s.txn_index.entries]
    assert left == [t for t in entries if t.last_offset < cut]
    assert txn_files(log.directory) == expected_entries(log)
    log.close()


def test_retention_deletes_index_files_with_their_segments(tmp_path: Path) -> None:
    log, w = build(tmp_path)
    files = txn_files(log.directory)
    target = next(s for s in log.segments[3:] if s.txn_index.exists())
    log.delete_records_before(target.base_offset)
    remaining = txn_files(log.directory)
    assert remaining == {n: b for n, b in files.items() if int(n[:20]) >= target.base_offset}
    assert f"{target.base_offset:020d}.txnindex" in remaining
    for start in starts(log):
        assert read_committed(log, start) == committed_from(w, log, start)
    log.close()


def test_legacy_snapshot_with_aborted_list_is_migrated(tmp_path: Path) -> None:
    log, w = build(tmp_path)
    files = txn_files(log.directory)
    log.close()
    # what an older Strom left: snapshots carrying "aborted", no .txnindex files
    for b in snapshot_offsets(log.directory):
        path = snapshot_path(log.directory, b)
        body = json.loads(path.read_bytes().split(b"\n", 1)[1])
        body["aborted"] = [[1, 0, 5]]
        raw = json.dumps(body).encode()
        path.write_bytes(f"strom-producer-snapshot 1 {crc32c(raw)}\n".encode() + raw)
    for name in files:
        (log.directory / name).unlink()
    reopened = PartitionLog.open(tmp_path / "t-0", CFG, now_ms=0)
    check_reads(reopened, w)
    assert txn_files(reopened.directory) == files
    reopened.close()


def test_compaction_keeps_relevant_entries(tmp_path: Path) -> None:
    cfg = LogConfig(cleanup_policy=frozenset({"compact"}), segment_bytes=700,
                    min_cleanable_dirty_ratio=0.01)
    log = PartitionLog.open(tmp_path / "c-0", cfg, now_ms=0)
    w = Workload(log, 11)
    for _ in range(160):
        w.step()
    w.finish()
    for i in range(12):  # closes the last transactional segment
        log.append_as_leader(build_batch([Record(-1, 0, f"z{i}".encode(), b"z" * 60)]),
                             leader_epoch=0, now_ms=0)
    log.high_watermark = log.log_end_offset
    before = [t for s in log.segments for t in s.txn_index.entries]
    assert log.compact(now_ms=0) > 0
    after = [t for s in log.segments for t in s.txn_index.entries]
    # every aborted record is gone; the entries of the first pass are the originals
    # (their data batches were read), each in the segment holding its marker
    assert after == before
    assert txn_files(log.directory) == {
        f"{s.base_offset:020d}.txnindex": encode_entries(s.txn_index.entries)
        for s in log.segments if s.txn_index.entries}
    latest = {r.key: r.value for r in _records(log)}
    for start in starts(log):
        got = read_committed(log, start)
        assert all(v in w.committed or v.startswith(b"z") for v in got)
    assert set(read_committed(log, 0)) == set(latest.values())
    # a second pass sees no batch of those aborted transactions left: entries dropped
    # where no (empty) batch of the transaction survived
    log.append_as_leader(build_batch([Record(-1, 0, b"v000", b"again" * 30)]),
                         leader_epoch=0, now_ms=0)
    for i in range(12):
        log.append_as_leader(build_batch([Record(-1, 0, f"y{i}".encode(), b"y" * 60)]),
                             leader_epoch=0, now_ms=0)
    log.high_watermark = log.log_end_offset
    survivors = {(h.producer_id, h.base_offset) for s in log.segments
                 for _, h in s.scan(0, verify=False) if h.is_transactional and not h.is_control}
    relevant = [t for t in after if any(p == t.producer_id and t.first_offset <= o < t.last_offset
                                        for p, o in survivors)]
    assert log.compact(now_ms=0) > 0
    again = [t for s in log.segments for t in s.txn_index.entries]
    assert again == relevant and len(again) < len(after)
    assert set(read_committed(log, 0)) == {r.value for r in _records(log)
                                           if r.value in w.committed or r.key[:1] in b"zyv"}
    log.close()
    reopened = PartitionLog.open(tmp_path / "c-0", cfg, now_ms=0)
    assert [t for s in reopened.segments for t in s.txn_index.entries] == again
    reopened.close()


def _records(log: PartitionLog) -> list[Record]:
    out = []
    for seg in log.segments:
        for pos, h in seg.scan(0, verify=False):
            if not h.is_control:
                out += decode_batch_records(seg.pread(pos, h.size_in_bytes), 0)
    return out


# ---------------------------------------------------------------------- fencing


def test_marker_of_older_coordinator_epoch_is_fenced(tmp_path: Path) -> None:
    log = PartitionLog.open(tmp_path / "f-0", LogConfig(), now_ms=0)
    log.append_as_leader(data(5, 0, b"one-" * 5), leader_epoch=0, now_ms=0)
    log.append_as_leader(marker(5, False, coordinator_epoch=3), leader_epoch=0, now_ms=0,
                         origin="coordinator")
    assert log.producer_state[5].coordinator_epoch == 3
    log.append_as_leader(data(5, 1, b"two-" * 5), leader_epoch=0, now_ms=0)
    end = log.log_end_offset
    with pytest.raises(TransactionCoordinatorFencedError) as err:
        log.append_as_leader(marker(5, True, coordinator_epoch=2), leader_epoch=0, now_ms=0,
                             origin="coordinator")
    assert err.value.error_code == 52
    log.high_watermark = log.log_end_offset
    assert log.log_end_offset == end and log.last_stable_offset == 2  # still open
    log.append_as_leader(marker(5, True, coordinator_epoch=3), leader_epoch=0, now_ms=0,
                         origin="coordinator")
    log.close()
    # the recorded epoch survives a clean restart (snapshot) and a crash (replay)
    reopened = PartitionLog.open(tmp_path / "f-0", LogConfig(), now_ms=0)
    assert reopened.producer_state[5].coordinator_epoch == 3
    reopened.close()
    for p in reopened.directory.glob("*.snapshot"):
        p.unlink()
    replayed = PartitionLog.open(tmp_path / "f-0", LogConfig(), now_ms=0)
    assert replayed.producer_state[5].coordinator_epoch == 3
    with pytest.raises(TransactionCoordinatorFencedError):
        replayed.append_as_leader(marker(5, False, coordinator_epoch=1), leader_epoch=0,
                                  now_ms=0, origin="coordinator")
    replayed.close()


def test_follower_builds_the_same_indexes(tmp_path: Path) -> None:
    leader, w = build(tmp_path)
    follower = PartitionLog.open(tmp_path / "t-1", CFG, now_ms=0)
    offset = 0
    while offset < leader.log_end_offset:  # what replica fetches carry, batch runs as read
        fetched = leader.read(offset, 900)
        follower.append_as_follower(bytes(fetched.records))
        offset = fetched.next_offset
    follower.high_watermark = follower.log_end_offset
    assert [s.base_offset for s in follower.segments] == [s.base_offset for s in leader.segments]
    assert txn_files(follower.directory) == txn_files(leader.directory)
    check_reads(follower, w)
    leader.close()
    follower.close()
