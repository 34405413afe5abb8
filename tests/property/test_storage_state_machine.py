"""Hypothesis state machine: PartitionLog against a simple in-memory model.

The model is the list of batches appended so far (offsets and decoded records). Rules
append, read, roll, truncate, delete records / retention, compact, close + reopen, and
crash + reopen. A crash abandons the log object (descriptors closed, no checkpoint) and
then damages the files the way a power cut can: unflushed bytes are dropped, or the last
write is torn (cut mid-batch or garbled). Recovery must keep every batch below the
recovery point, return nothing past the damage, and continue at the right offset.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from protocol.records import Record, build_batch, decode_batch_records, iter_batches
from storage.file_cache import FileCache
from storage.log_config import LogConfig
from storage.partition_log import PartitionLog

KEYS = [b"a", b"b", b"c", b"d", b"e"]


@dataclass
class MBatch:
    base: int
    last: int
    size: int
    records: list[tuple[int, bytes | None, bytes | None]]


def decode_all(data: bytes) -> list[MBatch]:
    out = []
    for pos, h in iter_batches(data):
        recs = [(r.offset, r.key, r.value) for r in decode_batch_records(data, pos)]
        out.append(MBatch(h.base_offset, h.last_offset, h.size_in_bytes, recs))
    return out


class PartitionLogMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="strom-sm-"))
        self.dir = self.tmp / "t-0"
        self.cache = FileCache(8)
        self.now = 1_000
        self.model: list[MBatch] = []
        self.start = 0
        self.log: PartitionLog | None = None

    @initialize(compact=st.booleans(), interval=st.sampled_from([1, 100, 4096]),
                append_time=st.booleans(), preallocate=st.booleans(),
                dirty_ratio=st.sampled_from([0.0, 0.5]))
    def setup(self, compact: bool, interval: int, append_time: bool, preallocate: bool,
              dirty_ratio: float) -> None:
        policy = {"compact", "delete"} if compact else {"delete"}
        self.config = LogConfig(
            segment_bytes=900, index_interval_bytes=interval, retention_ms=-1,
            cleanup_policy=frozenset(policy), delete_retention_ms=10**12,
            message_timestamp_type="LogAppendTime" if append_time else "CreateTime",
            preallocate=preallocate, min_cleanable_dirty_ratio=dirty_ratio,
        )
        self.log = self._open()

    def _open(self) -> PartitionLog:
        return PartitionLog.open(self.dir, self.config, now_ms=self.now, file_cache=self.cache)

    def teardown(self) -> None:
        if self.log is not None:
            self.log.close()
        self.cache.close_all()
        shutil.rmtree(self.tmp, ignore_errors=True)

    start_if_empty = 0

    # ------------------------------------------------------------------ rules

    @rule(
        n=st.integers(1, 4),
        size=st.integers(0, 200),
        key=st.sampled_from(KEYS),
        tombstone=st.booleans(),
        codec=st.sampled_from([0, 0, 1, 4]),
    )
    def append(self, n: int, size: int, key: bytes, tombstone: bool, codec: int) -> None:
        assert self.log is not None
        self.now += 10
        recs = [
            Record(-1, self.now, key, None if tombstone and i == n - 1 else
                   bytes([len(self.model) % 256]) * size)
            for i in range(n)
        ]
        data = build_batch(recs, compression=codec)
        r = self.log.append_as_leader(data, leader_epoch=1, now_ms=self.now)
        assert r.first_offset == self.log_end_expected()
        self.model.append(MBatch(r.first_offset, r.last_offset, len(data),
                                 [(r.first_offset + i, x.key, x.value) for i, x in
                                  enumerate(recs)]))

    def log_end_expected(self) -> int:
        return self.model[-1].last + 1 if self.model else self.start_if_empty

    @rule(data=st.data(), max_bytes=st.integers(1, 3000))
    def read(self, data, max_bytes: int) -> None:
        assert self.log is not None
        leo = self.log_end_expected()
        offset = data.draw(st.integers(self.log.log_start_offset, leo))
        got = decode_all(self.log.read(offset, max_bytes).records)
        expected = [b for b in self.model if b.last >= offset]
        if not expected:
            assert got == []
            return
        assert got, f"read({offset}) returned nothing, model has {expected[0]}"
        assert [(b.base, b.last, b.records) for b in got] == [
            (b.base, b.last, b.records) for b in expected[: len(got)]
        ]
        assert len(got) == 1 or sum(b.size for b in got) <= max_bytes

    @rule()
    def roll(self) -> None:
        assert self.log is not None
        self.log.roll(self.now)

    @rule()
    def flush(self) -> None:
        assert self.log is not None
        self.log.flush(self.now)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def truncate(self, data) -> None:
        assert self.log is not None
        offset = data.draw(st.integers(self.log.log_start_offset, self.log_end_expected()))
        start = self.log.log_start_offset
        self.log.truncate_to(offset)
        # batches holding offsets >= offset go whole; the log then ends after the last
        # remaining batch (or, if none is left, at the log start offset)
        if any(b.last >= offset for b in self.model):
            self.model = [b for b in self.model if b.last < offset]
            if not self.model:
                self.start_if_empty = start
        assert self.log.log_end_offset == self.log_end_expected()

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def delete_records(self, data) -> None:
        assert self.log is not None
        offset = data.draw(st.integers(self.log.log_start_offset, self.log_end_expected()))
        assert self.log.delete_records_before(offset) == offset
        self.log.enforce_retention(self.now)
        self.model = [b for b in self.model if b.last >= offset]
        if not self.model:
            self.start_if_empty = self.log.log_end_offset

    @precondition(lambda self: self.model)
    @rule(limit=st.integers(0, 3000))
    def size_retention(self, limit: int) -> None:
        assert self.log is not None
        before = self.log.config
        self.log.update_config(replace(before, retention_bytes=limit))
        self.log.enforce_retention(self.now)
        self.log.update_config(before)
        assert self.log.size_in_bytes - self.log.segments[0].size < max(limit, 1) or len(
            self.log.segments) == 1
        start = self.log.log_start_offset
        self.model = [b for b in self.model if b.last >= start]
        if not self.model:
            self.start_if_empty = self.log.log_end_offset

    @rule()
    def compact(self) -> None:
        assert self.log is not None
        if not self.config.compact:
            return
        latest_before = self._latest_per_key()
        before = {r for b in self.model for r in b.records}
        self.log.compact(self.now)
        self.model = self._read_everything()
        after = [r for b in self.model for r in b.records]
        assert set(after) <= before  # nothing invented, offsets kept
        assert self._latest_per_key() == latest_before

    @rule()
    def close_and_reopen(self) -> None:
        assert self.log is not None
        self.log.close()
        self.log = self._open()
        assert self.log.log_end_offset == self.log_end_expected()

    @rule(mode=st.sampled_from(["drop", "tear", "garble", "keep"]), data=st.data())
    def crash_and_reopen(self, mode: str, data) -> None:
        assert self.log is not None
        log = self.log
        rp = log.recovery_point
        # file-level truth before the crash: (segment path, [(pos, size, base, next)])
        layout = []
        for seg in log.segments:
            batches = [(p, h.size_in_bytes, h.base_offset, h.next_offset)
                       for p, h in seg.scan(0, verify=False)]
            layout.append((seg.log_path, seg.size, batches))
        self.cache.close_all()  # the process dies: descriptors vanish, nothing else runs
        self.log = None
        expected_end = self.log_end_expected()
        # where the log must end after the first damage: after the last batch that
        # survives in front of it (compaction leaves gaps, so this may lie below the
        # destroyed batch's base offset), or at the damaged segment's base offset
        damaged_at: int | None = None

        def damaged(seg_base: int, batches: list, first_bad: int) -> None:
            nonlocal damaged_at
            end = seg_base
            for _p, _s, _base, nxt in batches[:first_bad]:
                end = nxt
            damaged_at = end if damaged_at is None else min(damaged_at, end)

        for path, size, batches in layout:
            seg_base = int(Path(path).name[:20])
            durable = 0
            for p, s, base, _nxt in batches:
                if base < rp:
                    durable = p + s
            if durable >= size or mode == "keep":
                continue
            unflushed = [b for b in batches if b[0] >= durable]
            if mode == "drop":
                cut = durable
            elif mode == "tear":
                cut = data.draw(st.integers(durable, size - 1))
            else:  # garble: flip a byte inside the last written batch
                p, s, base, _ = unflushed[-1]
                with open(path, "r+b") as f:
                    f.seek(p + data.draw(st.integers(21, s - 1)))  # inside the CRC range
                    byte = f.read(1)
                    f.seek(-1, os.SEEK_CUR)
                    f.write(bytes([byte[0] ^ 0x5A]))
                damaged(seg_base, batches, len(batches) - 1)
                continue
            os.truncate(path, cut)
            for i, (p, s, _base, _) in enumerate(batches):
                if p + s > cut:
                    damaged(seg_base, batches, i)
                    break
        if damaged_at is not None:
            # the log start is checkpointed durably: the log never restarts below it
            expected_end = max(damaged_at, log.log_start_offset)
        self.log = self._open()
        assert self.log.log_end_offset >= min(rp, expected_end)
        # the garbled byte may sit in a field that no check covers only if CRC is broken
        assert self.log.log_end_offset == expected_end, (
            mode, rp, expected_end, self.log.log_end_offset)
        self.model = [b for b in self.model if b.last < expected_end]
        if not self.model:
            self.start_if_empty = self.log.log_end_offset
        assert self._read_everything_matches()

    # ------------------------------------------------------------------ checks

    def _latest_per_key(self) -> dict[bytes | None, tuple[int, bytes | None]]:
        latest = {}
        for b in self.model:
            for off, k, v in b.records:
                latest[k] = (off, v)
        return latest

    def _read_everything(self) -> list[MBatch]:
        assert self.log is not None
        out: list[MBatch] = []
        off = self.log.log_start_offset
        while off < self.log.log_end_offset:
            got = decode_all(self.log.read(off, 10**7).records)
            if not got:
                break
            out += got
            off = got[-1].last + 1
        return out

    def _read_everything_matches(self) -> bool:
        got = self._read_everything()
        return [(b.base, b.records) for b in got] == [(b.base, b.records) for b in self.model]

    @invariant()
    def offsets_agree(self) -> None:
        if self.log is None:
            return
        assert self.log.log_end_offset == self.log_end_expected()
        assert self.log.log_start_offset <= self.log.log_end_offset
        assert self.log.recovery_point <= self.log.log_end_offset


PartitionLogMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=30, deadline=None
)
TestPartitionLog = PartitionLogMachine.TestCase
