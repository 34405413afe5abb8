"""Durable state of one quorum member on disk: quorum state, log segments, snapshots.

This is the thin I/O half of the Raft core: ``RaftStore.persist(ready)`` performs steps
1-4 of the ``Ready`` contract (snapshot, quorum state, truncation, append + fsync) and
``RaftStore.open(...).load()`` gives back the ``DurableState`` to build a ``RaftCore`` from
after a restart (clean or kill -9).

Directory layout (``<dir>`` is e.g. ``<metadata.log.dir>/__cluster_metadata-0``)::

    quorum-state                          JSON, replaced atomically (tmp, fsync, rename)
    <base_offset:020d>.log                log segments, append-only
    <end_offset:020d>-<epoch:010d>.checkpoint   the latest snapshot, written atomically

``quorum-state`` (Kafka's fields plus a checksum)::

    {"clusterId": str, "leaderId": int, "leaderEpoch": int, "votedId": int,
     "appliedOffset": 0, "currentVoters": [{"voterId": int}, ...], "data_version": 0,
     "crc": crc32c of the canonical JSON of every other key}

Log record (big-endian)::

    offset size field
    0      4    length   bytes that follow this field (17 + len(payload))
    4      4    crc      CRC-32C of the bytes after this field
    8      8    offset   log offset of the entry
    16     4    epoch    leader epoch of the entry
    20     1    flags    bit 0: control entry
    21     n    payload

Snapshot file (big-endian)::

    0  8  magic b"STROMSNP"    8  2  version (1)   10 8  end_offset   18 4  epoch
    22 8  data length          30 4  CRC-32C of data                  34 n  data

Recovery: a torn write at the end of the last segment (a partial record, or a bad record
that is the last one in the file) is cut off and reported in ``recovery_notes``. Anything
else — a corrupted quorum-state file, a cluster id or voter set that disagrees with the
configuration, a bad record followed by more data, a gap between snapshot and log or
inside the log, a corrupted snapshot — raises ``RaftStoreError`` naming the file and the
problem: the node refuses to start rather than join with a different view of the log.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import crc32c

from controller.raft.types import DurableState, Entry, QuorumState, Ready, Snapshot, SnapshotId
from storage.checkpoint import fsync_dir, write_atomic

QUORUM_STATE = "quorum-state"
_RECORD_HEAD = struct.Struct(">II")  # length, crc
_RECORD_BODY = struct.Struct(">qiB")  # offset, epoch, flags
_SNAP_HEAD = struct.Struct(">8sHqiQI")
_SNAP_MAGIC = b"STROMSNP"


class RaftStoreError(Exception):
    """The on-disk quorum state or metadata log is unusable; the message says why."""


@dataclass
class _Segment:
    base: int
    path: Path
    positions: list[int] = field(default_factory=list)  # file position of each entry
    size: int = 0

    @property
    def end(self) -> int:
        return self.base + len(self.positions)


def encode_entry(entry: Entry) -> bytes:
    body = _RECORD_BODY.pack(entry.offset, entry.epoch, 1 if entry.control else 0)
    body += entry.payload
    return _RECORD_HEAD.pack(len(body) + 4, crc32c.crc32c(body)) + body


def _quorum_state_json(qs: QuorumState, cluster_id: str, voters: frozenset[int]) -> bytes:
    doc = {
        "clusterId": cluster_id,
        "leaderId": qs.leader_id,
        "leaderEpoch": qs.epoch,
        "votedId": qs.voted_for,
        "appliedOffset": 0,
        "currentVoters": [{"voterId": v} for v in sorted(voters)],
        "data_version": 0,
    }
    doc["crc"] = crc32c.crc32c(json.dumps(doc, sort_keys=True).encode())
    return json.dumps(doc, sort_keys=True).encode() + b"\n"


class RaftStore:
    """One node's quorum state + metadata log + snapshot in ``directory``."""

    def __init__(self, directory: Path, *, cluster_id: str, voters: frozenset[int]) -> None:
        self.directory = directory
        self.cluster_id = cluster_id
        self.voters = frozenset(voters)
        self.recovery_notes: list[str] = []
        self._segments: list[_Segment] = []
        self._snapshot: Snapshot | None = None
        self._quorum_state = QuorumState()
        self._entries: list[Entry] = []

    # ---- opening / recovery -----------------------------------------------------
    @classmethod
    def open(cls, directory: Path, *, cluster_id: str, voters: frozenset[int]) -> RaftStore:
        directory.mkdir(parents=True, exist_ok=True)
        store = cls(directory, cluster_id=cluster_id, voters=voters)
        for tmp in directory.glob("*.tmp"):
            tmp.unlink()
        store._load_quorum_state()
        store._load_snapshot()
        store._load_segments()
        return store

    def load(self) -> DurableState:
        """What the core needs to restart: quorum state, snapshot, entries after it."""
        return DurableState(self._quorum_state, self._snapshot, tuple(self._entries))

    def _load_quorum_state(self) -> None:
        path = self.directory / QUORUM_STATE
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return
        try:
            doc = json.loads(raw)
            if not isinstance(doc, dict):
                raise ValueError("not a JSON object")
            crc = doc.pop("crc")
            if crc != crc32c.crc32c(json.dumps(doc, sort_keys=True).encode()):
                raise ValueError("checksum mismatch")
            qs = QuorumState(int(doc["leaderEpoch"]), int(doc["leaderId"]), int(doc["votedId"]))
            stored_voters = frozenset(int(v["voterId"]) for v in doc["currentVoters"])
            stored_cluster = str(doc["clusterId"])
        except (ValueError, KeyError, TypeError) as exc:
            raise RaftStoreError(f"{path}: corrupted quorum-state file ({exc}); refusing to "
                                 "start: the node could forget a vote it cast") from exc
        if stored_cluster != self.cluster_id:
            raise RaftStoreError(f"{path}: cluster id {stored_cluster!r} on disk differs from "
                                 f"the configured {self.cluster_id!r}")
        if stored_voters != self.voters:
            raise RaftStoreError(
                f"{path}: voter set {sorted(stored_voters)} on disk differs from "
                f"controller.quorum.voters {sorted(self.voters)}; refusing to join with a "
                "different view of the quorum")
        if qs.epoch < 0:
            raise RaftStoreError(f"{path}: negative epoch {qs.epoch}")
        self._quorum_state = qs

    def _load_snapshot(self) -> None:
        files = sorted(self.directory.glob("*.checkpoint"))
        if not files:
            return
        path = files[-1]
        raw = path.read_bytes()
        try:
            magic, version, end, epoch, size, crc = _SNAP_HEAD.unpack_from(raw)
        except struct.error as exc:
            raise RaftStoreError(f"{path}: snapshot header truncated") from exc
        data = raw[_SNAP_HEAD.size:]
        if magic != _SNAP_MAGIC or version != 1:
            raise RaftStoreError(f"{path}: not a snapshot file (magic/version)")
        if len(data) != size or crc32c.crc32c(data) != crc:
            raise RaftStoreError(f"{path}: snapshot data corrupted (size or checksum)")
        self._snapshot = Snapshot(SnapshotId(end, epoch), data)
        for older in files[:-1]:
            older.unlink()

    def _load_segments(self) -> None:
        paths = sorted(self.directory.glob("*.log"))
        snap_end = self._snapshot.snapshot_id.end_offset if self._snapshot else 0
        entries: list[Entry] = []
        for i, path in enumerate(paths):
            try:
                base = int(path.stem)
            except ValueError as exc:
                raise RaftStoreError(f"{path}: not a log segment name") from exc
            seg = _Segment(base, path)
            seg_entries = self._scan(seg, last=i == len(paths) - 1)
            self._segments.append(seg)
            entries.extend(seg_entries)
        expected = None
        for entry in entries:
            if expected is not None and entry.offset != expected:
                raise RaftStoreError(f"{self.directory}: log offsets jump from {expected - 1} "
                                     f"to {entry.offset}")
            expected = entry.offset + 1
        entries = [e for e in entries if e.offset >= snap_end]
        if entries and entries[0].offset != snap_end:
            raise RaftStoreError(f"{self.directory}: log starts at {entries[0].offset} but "
                                 f"the snapshot ends at {snap_end} (entries missing)")
        if self._segments and not entries and self._segments[-1].end < snap_end:
            self._reset(snap_end)  # everything is below the snapshot
        self._entries = entries

    def _scan(self, seg: _Segment, *, last: bool) -> list[Entry]:
        raw = seg.path.read_bytes()
        pos = 0
        out: list[Entry] = []
        while pos < len(raw):
            problem = None
            if pos + _RECORD_HEAD.size > len(raw):
                problem = "partial record header"
            else:
                length, crc = _RECORD_HEAD.unpack_from(raw, pos)
                end = pos + 4 + length
                if length < 4 + _RECORD_BODY.size or end > len(raw):
                    problem = f"record length {length} runs past the end of the file"
                else:
                    body = raw[pos + 8 : end]
                    if crc32c.crc32c(body) != crc:
                        problem = "checksum mismatch"
            if problem is not None:
                torn_tail = last and (problem != "checksum mismatch" or end == len(raw))
                if not torn_tail:
                    raise RaftStoreError(
                        f"{seg.path}: corrupted record at byte {pos} ({problem}) with data "
                        "after it; refusing to start with a damaged metadata log")
                self.recovery_notes.append(
                    f"{seg.path.name}: cut torn tail at byte {pos} ({problem}, "
                    f"{len(raw) - pos} bytes)")
                with open(seg.path, "r+b") as f:
                    f.truncate(pos)
                    os.fsync(f.fileno())
                break
            offset, epoch, flags = _RECORD_BODY.unpack_from(body)
            if offset != seg.base + len(seg.positions):
                raise RaftStoreError(f"{seg.path}: record at byte {pos} has offset {offset}, "
                                     f"expected {seg.base + len(seg.positions)}")
            seg.positions.append(pos)
            out.append(Entry(offset, epoch, bytes(body[_RECORD_BODY.size :]), bool(flags & 1)))
            pos = end
        seg.size = pos
        return out

    # ---- persisting a Ready -----------------------------------------------------
    def persist(self, rd: Ready) -> None:
        """Make steps 1-4 of ``rd`` durable (see ``Ready``); returns after fsync."""
        if rd.snapshot is not None:
            self._write_snapshot(rd.snapshot, received=rd.snapshot_received)
        if rd.quorum_state is not None:
            write_atomic(self.directory / QUORUM_STATE,
                         _quorum_state_json(rd.quorum_state, self.cluster_id, self.voters))
            self._quorum_state = rd.quorum_state
        if rd.truncate_to is not None:
            self._truncate(rd.truncate_to)
        if rd.entries:
            self._append(rd.entries)

    def _write_snapshot(self, snapshot: Snapshot, *, received: bool) -> None:
        sid = snapshot.snapshot_id
        name = f"{sid.end_offset:020d}-{sid.epoch:010d}.checkpoint"
        head = _SNAP_HEAD.pack(_SNAP_MAGIC, 1, sid.end_offset, sid.epoch, len(snapshot.data),
                               crc32c.crc32c(snapshot.data))
        write_atomic(self.directory / name, head + snapshot.data)
        for older in self.directory.glob("*.checkpoint"):
            if older.name != name:
                older.unlink()
        self._snapshot = snapshot
        if received:
            self._reset(sid.end_offset)
            self._entries = []
        else:
            self._drop_covered(sid.end_offset)
            self._entries = [e for e in self._entries if e.offset >= sid.end_offset]

    def _drop_covered(self, end: int) -> None:
        """Roll a new active segment and delete segments holding only entries < ``end``."""
        if self._segments and self._segments[-1].positions:
            self._new_segment(self._segments[-1].end)
        keep: list[_Segment] = []
        for i, seg in enumerate(self._segments):
            nxt = self._segments[i + 1].base if i + 1 < len(self._segments) else None
            if nxt is not None and nxt <= end:
                seg.path.unlink(missing_ok=True)
            else:
                keep.append(seg)
        self._segments = keep
        fsync_dir(self.directory)

    def _reset(self, at: int) -> None:
        """Delete every segment; the log restarts empty at offset ``at``."""
        for seg in self._segments:
            seg.path.unlink(missing_ok=True)
        self._segments = []
        self._new_segment(at)
        fsync_dir(self.directory)

    def _new_segment(self, base: int) -> _Segment:
        seg = _Segment(base, self.directory / f"{base:020d}.log")
        with open(seg.path, "wb") as f:
            os.fsync(f.fileno())
        self._segments.append(seg)
        return seg

    def _truncate(self, offset: int) -> None:
        while self._segments and self._segments[-1].base > offset:
            self._segments.pop().path.unlink()
        if self._segments:
            seg = self._segments[-1]
            if offset < seg.end:
                pos = seg.positions[offset - seg.base]
                with open(seg.path, "r+b") as f:
                    f.truncate(pos)
                    os.fsync(f.fileno())
                del seg.positions[offset - seg.base :]
                seg.size = pos
        fsync_dir(self.directory)
        self._entries = [e for e in self._entries if e.offset < offset]

    def _append(self, entries: tuple[Entry, ...]) -> None:
        expected = self._entries[-1].offset + 1 if self._entries else (
            self._snapshot.snapshot_id.end_offset if self._snapshot else 0)
        if entries[0].offset != expected:
            raise RaftStoreError(f"append at offset {entries[0].offset}, log ends at {expected}")
        seg = self._segments[-1] if self._segments else None
        if seg is None or seg.end != entries[0].offset:
            seg = self._new_segment(entries[0].offset)
            fsync_dir(self.directory)
        blob = bytearray()
        for entry in entries:
            seg.positions.append(seg.size + len(blob))
            blob += encode_entry(entry)
        with open(seg.path, "ab") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        seg.size += len(blob)
        self._entries.extend(entries)
