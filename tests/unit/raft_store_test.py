"""RaftStore: the on-disk quorum state, metadata log segments and snapshots."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from controller.raft import (
    DurableState,
    Entry,
    QuorumState,
    RaftConfig,
    RaftCore,
    Ready,
    Snapshot,
    SnapshotId,
)
from controller.raft_store import QUORUM_STATE, RaftStore, RaftStoreError

VOTERS = frozenset({1, 2, 3})
ROOT = Path(__file__).resolve().parents[2]


def open_store(path: Path, voters: frozenset[int] = VOTERS, cluster: str = "c1") -> RaftStore:
    return RaftStore.open(path, cluster_id=cluster, voters=voters)


def entries(start: int, count: int, epoch: int = 1) -> tuple[Entry, ...]:
    return tuple(Entry(o, epoch, b"v%d" % o) for o in range(start, start + count))


def test_fresh_directory_loads_empty_state(tmp_path: Path) -> None:
    assert open_store(tmp_path / "m").load() == DurableState()


def test_quorum_state_and_entries_survive_reopen(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.persist(Ready(quorum_state=QuorumState(3, 2, 2), entries=entries(0, 5)))
    store.persist(Ready(entries=(Entry(5, 3, b"ctl", control=True),)))
    state = open_store(tmp_path).load()
    assert state.quorum_state == QuorumState(3, 2, 2)
    assert state.entries == (*entries(0, 5), Entry(5, 3, b"ctl", control=True))
    doc = json.loads((tmp_path / QUORUM_STATE).read_text())
    assert doc["leaderEpoch"] == 3 and doc["votedId"] == 2
    assert doc["currentVoters"] == [{"voterId": 1}, {"voterId": 2}, {"voterId": 3}]


def test_truncate_then_append_replaces_the_tail(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.persist(Ready(entries=entries(0, 6)))
    store.persist(Ready(truncate_to=3, entries=entries(3, 2, epoch=2)))
    assert open_store(tmp_path).load().entries == (*entries(0, 3), *entries(3, 2, epoch=2))


def test_local_snapshot_compacts_segments(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.persist(Ready(entries=entries(0, 10)))
    snap = Snapshot(SnapshotId(8, 1), b"state@8")
    store.persist(Ready(snapshot=snap, entries=entries(10, 2)))
    store.persist(Ready(snapshot=Snapshot(SnapshotId(11, 1), b"state@11")))
    state = open_store(tmp_path).load()
    assert state.snapshot == Snapshot(SnapshotId(11, 1), b"state@11")
    assert state.entries == entries(11, 1)
    assert len(list(tmp_path.glob("*.checkpoint"))) == 1
    assert len(list(tmp_path.glob("*.log"))) <= 2  # old segments were deleted


def test_received_snapshot_replaces_the_log(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.persist(Ready(entries=entries(0, 4)))
    snap = Snapshot(SnapshotId(50, 3), b"leader state")
    store.persist(Ready(snapshot=snap, snapshot_received=True, entries=entries(50, 2, 3)))
    state = open_store(tmp_path).load()
    assert state.snapshot == snap and state.entries == entries(50, 2, 3)


def test_torn_tail_is_cut_and_reported(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.persist(Ready(entries=entries(0, 3)))
    segment = sorted(tmp_path.glob("*.log"))[-1]
    with open(segment, "ab") as f:
        f.write(b"\x00\x00\x00\x40\x12\x34")  # half a record header + a bit: a torn write
    reopened = open_store(tmp_path)
    assert reopened.load().entries == entries(0, 3)
    assert reopened.recovery_notes and "torn tail" in reopened.recovery_notes[0]
    reopened.persist(Ready(entries=entries(3, 1)))  # and the log is writable again
    assert open_store(tmp_path).load().entries == entries(0, 4)


def test_bad_last_record_is_a_torn_tail(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.persist(Ready(entries=entries(0, 3)))
    segment = sorted(tmp_path.glob("*.log"))[-1]
    data = bytearray(segment.read_bytes())
    data[-1] ^= 0xFF
    segment.write_bytes(bytes(data))
    assert open_store(tmp_path).load().entries == entries(0, 2)


def test_corruption_before_more_data_refuses_to_start(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.persist(Ready(entries=entries(0, 3)))
    segment = sorted(tmp_path.glob("*.log"))[-1]
    data = bytearray(segment.read_bytes())
    data[21] ^= 0xFF  # the first byte of the first record's payload
    segment.write_bytes(bytes(data))
    with pytest.raises(RaftStoreError, match=r"corrupted record at byte 0 .*checksum"):
        open_store(tmp_path)


@pytest.mark.parametrize("garbage", [b"{not json", b"[]", b'{"leaderEpoch": 1}', b""])
def test_corrupted_quorum_state_names_the_problem(tmp_path: Path, garbage: bytes) -> None:
    (tmp_path / QUORUM_STATE).write_bytes(garbage)
    with pytest.raises(RaftStoreError, match="corrupted quorum-state file"):
        open_store(tmp_path)


def test_flipped_vote_is_detected_by_the_checksum(tmp_path: Path) -> None:
    open_store(tmp_path).persist(Ready(quorum_state=QuorumState(4, -1, 2)))
    path = tmp_path / QUORUM_STATE
    path.write_text(path.read_text().replace('"votedId": 2', '"votedId": 3'))
    with pytest.raises(RaftStoreError, match="checksum"):
        open_store(tmp_path)


def test_voter_set_mismatch_refuses_to_start(tmp_path: Path) -> None:
    open_store(tmp_path).persist(Ready(quorum_state=QuorumState(1, 1, 1)))
    with pytest.raises(RaftStoreError, match=r"voter set \[1, 2, 3\] on disk differs"):
        open_store(tmp_path, voters=frozenset({1, 2, 4}))
    with pytest.raises(RaftStoreError, match="cluster id"):
        open_store(tmp_path, cluster="other")


def test_gap_between_snapshot_and_log_refuses_to_start(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.persist(Ready(snapshot=Snapshot(SnapshotId(5, 1), b"s"), snapshot_received=True))
    store.persist(Ready(entries=entries(5, 3)))
    sorted(tmp_path.glob("*.checkpoint"))[0].unlink()
    with pytest.raises(RaftStoreError, match="log starts at 5 but the snapshot ends at 0"):
        open_store(tmp_path)


def test_corrupted_snapshot_refuses_to_start(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.persist(Ready(snapshot=Snapshot(SnapshotId(5, 1), b"snapshot data"),
                        snapshot_received=True))
    path = sorted(tmp_path.glob("*.checkpoint"))[0]
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(RaftStoreError, match="snapshot data corrupted"):
        open_store(tmp_path)


def drive(core: RaftCore, store: RaftStore, now: int) -> list[Entry]:
    committed: list[Entry] = []
    core.tick(now)
    while core.has_ready():
        rd = core.ready()
        store.persist(rd)
        committed.extend(rd.committed)
        core.advance(rd)
    return committed


def test_single_voter_core_restarts_from_the_store(tmp_path: Path) -> None:
    config = RaftConfig(node_id=1, voters=frozenset({1}), cluster_id="c1")
    store = RaftStore.open(tmp_path, cluster_id="c1", voters=config.voters)
    core = RaftCore(config, random.Random(1), store.load())
    drive(core, store, 0)
    assert core.is_leader and core.epoch == 1
    core.propose([b"a", b"b"])
    committed = drive(core, store, 1)
    assert [e.payload for e in committed if not e.control] == [b"a", b"b"]
    # "kill" the process: drop everything in memory, recover from disk
    store = RaftStore.open(tmp_path, cluster_id="c1", voters=config.voters)
    core = RaftCore(config, random.Random(2), store.load(), now_ms=10)
    assert core.role == "resigned" and core.log.end_offset == 3
    replay = drive(core, store, 20)
    assert core.is_leader and core.epoch == 2
    assert [e.payload for e in replay if not e.control] == [b"a", b"b"]


CHILD = """
import sys
from pathlib import Path
from controller.raft import Entry, QuorumState, Ready
from controller.raft_store import RaftStore
store = RaftStore.open(Path(sys.argv[1]), cluster_id="c1", voters=frozenset({1, 2, 3}))
offset = len(store.load().entries)
epoch = 1
while True:
    epoch += 1
    store.persist(Ready(quorum_state=QuorumState(epoch, -1, 1),
                        entries=tuple(Entry(offset + i, 1, b"x" * 300) for i in range(20))))
    offset += 20
    print(offset, epoch, flush=True)
"""


@pytest.mark.timeout(60)
def test_recovery_after_kill_9(tmp_path: Path) -> None:
    """A writer killed with SIGKILL mid-stream: everything it acknowledged (printed after
    fsync) is there after reopening, the log is contiguous and the quorum state parses."""
    for _ in range(2):
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)],
                                stdout=subprocess.PIPE, text=True, cwd=ROOT,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
        acked = (0, 0)
        deadline = time.monotonic() + 20
        assert proc.stdout is not None
        for line in proc.stdout:
            off, ep = map(int, line.split())
            acked = (off, ep)
            if off >= 400 + random.randrange(200) or time.monotonic() > deadline:
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        state = open_store(tmp_path).load()
        assert len(state.entries) >= acked[0]
        assert [e.offset for e in state.entries] == list(range(len(state.entries)))
        assert state.quorum_state.epoch >= acked[1]
