"""Real-process crash test: SIGKILL a child that appends with flush.messages=1.

After every kill the parent reopens the log (running crash recovery) and checks: every
acknowledged (hence fsynced) batch is present and intact, every stored batch is exactly
what the child wrote at that offset, nothing follows a torn tail, and the next child
appends at the recovered log end. On about a third of the kills the parent also tears
the last unacknowledged batch on disk (a write cut short by a power loss).
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

from protocol.records import decode_batch_records, iter_batches
from storage.file_cache import FileCache
from storage.partition_log import PartitionLog
from tests.e2e.storage_child import CONFIG, batch_for, run

KILLS = int(os.environ.get("STROM_CRASH_KILLS", "50"))


class Child:
    """A forked child process running storage_child.run; killed with SIGKILL."""

    def __init__(self, directory: Path) -> None:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: never returns into pytest
            code = 0
            try:
                os.close(r)
                run(directory, w)
            except BaseException:
                import traceback

                traceback.print_exc()
                code = 1
            finally:
                os._exit(code)
        os.close(w)
        self.pid = pid
        self.lines = os.fdopen(r, "r")

    def readline(self) -> str:
        return self.lines.readline()

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        _, status = os.waitpid(self.pid, 0)
        assert os.WIFSIGNALED(status), f"child exited on its own: {status}"
        self.lines.close()


def _start_child(directory: Path) -> tuple[Child, int]:
    child = Child(directory)
    line = child.readline()
    if not line.startswith("ready "):
        child.kill()
        raise AssertionError(f"child failed to start: {line!r}")
    return child, int(line.split()[1])


def _verify(directory: Path, acked: dict[int, int], last_acked_end: int) -> int:
    """Open (recover) the log, check everything, return its log end offset."""
    cache = FileCache(16)
    log = PartitionLog.open(directory, CONFIG, now_ms=0, file_cache=cache)
    try:
        leo = log.log_end_offset
        assert leo >= last_acked_end, f"acked data lost: log end {leo} < {last_acked_end}"
        seen: dict[int, int] = {}
        off = log.log_start_offset
        while off < leo:
            data = log.read(off, 1 << 20).records
            assert data, f"no batch at {off} below log end {leo}"
            for pos, h in iter_batches(data):  # CRC checked
                assert h.base_offset == off, f"gap or overlap at {off}: {h.base_offset}"
                n, recs = batch_for(h.base_offset)
                got = decode_batch_records(data, pos)
                assert [(r.key, r.value) for r in got] == recs, f"batch {off} corrupt"
                assert h.records_count == n
                seen[h.base_offset] = h.last_offset
                off = h.next_offset
        for first, last in acked.items():
            assert seen.get(first) == last, f"acked batch {first}..{last} missing"
        return leo
    finally:
        cache.close_all()


def _tear_unacked_tail(directory: Path, last_acked_end: int, rng: random.Random) -> bool:
    """Chop bytes off the last batch on disk if it was never acknowledged."""
    logs = sorted(directory.glob("*.log"))
    if not logs:
        return False
    path = logs[-1]
    data = path.read_bytes()
    last = None
    try:
        for pos, h in iter_batches(data, verify_crc=False):
            last = (pos, h)
    except Exception:
        return False
    if last is None or last[1].base_offset < last_acked_end:
        return False
    pos, h = last
    os.truncate(path, pos + rng.randrange(1, h.size_in_bytes))
    return True


@pytest.mark.timeout(240)
def test_sigkill_during_flushed_appends(tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("STROM_CRASH_SEED", "0")) or time.time_ns())
    directory = tmp_path / "crash-0"
    acked: dict[int, int] = {}
    last_acked_end = 0
    tears = 0
    for _kill in range(KILLS):
        child, start = _start_child(directory)
        assert start >= last_acked_end
        deadline = time.monotonic() + rng.uniform(0.0, 0.05)
        first_ack = True
        while time.monotonic() < deadline or first_ack:
            line = child.readline()
            if not line:
                raise AssertionError("child died (traceback on stderr)")
            _, a, b = line.split()
            first, last = int(a), int(b)
            if first_ack:
                # appends continue exactly at the recovered log end
                assert first == start, (first, start)
                first_ack = False
            acked[first] = last
            last_acked_end = last + 1
        child.kill()
        if rng.random() < 0.5 and _tear_unacked_tail(directory, last_acked_end, rng):
            tears += 1
        leo = _verify(directory, acked, last_acked_end)
        # acked batches only: anything unacked that survived is fine but not required
        acked = {f: la for f, la in acked.items() if f < leo}
    print(f"kills={KILLS} tears={tears} acked_batches={len(acked)} log_end={last_acked_end}")
    assert len(acked) > KILLS  # the children made progress
    if KILLS >= 30:
        assert tears > 0  # the torn-tail path was exercised
