"""Deterministic simulation of a KRaft-shaped quorum of pure ``RaftCore`` nodes.

Everything runs on virtual time from one seeded ``random.Random``: a seed fully determines
the run, so a failing seed replays exactly.

Model
- Network: every message gets a random delay; it may be dropped, duplicated (the copy gets
  its own delay, so copies also reorder) or blocked by a partition (nodes are split into
  groups; only messages inside a group pass). ``heal()`` removes partitions.
- Disk: a node's Ready is written after a random "fsync delay"; until then its contents
  (and the messages it holds back — persist before send) exist only in memory. A crash
  throws away the core and that pending Ready — half the time after tearing it (a
  random prefix of its steps and entries reached the disk); a restart rebuilds the core
  from the disk image (quorum state, snapshot, entries) and the state machine from the snapshot.
- State machine: the list of committed entries; each node snapshots it every
  ``snapshot_every`` applied entries (so lagging nodes need FetchSnapshot).

Invariants, checked after every event (``InvariantViolation`` names the broken one):
- at most one leader per epoch, over the whole run;
- a node's epoch never decreases while it runs, and its durable epoch never decreases;
- a node's high watermark never decreases while it runs;
- committed entries never change: every node applies exactly the same entry at each
  offset, contiguously, and snapshots agree with them;
- a node never votes for two candidates in one epoch (checked on its durable state, which
  is persisted before any vote is sent), and never forgets a vote it cast;
- liveness (``check_liveness``): after healing every fault, a leader is elected and a new
  proposal is applied by every node within a bounded virtual time.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from typing import Any

from controller.raft import (
    DurableState,
    Entry,
    NotLeaderError,
    QuorumState,
    RaftConfig,
    RaftCore,
    Ready,
    Snapshot,
    SnapshotId,
)


class InvariantViolation(AssertionError):
    pass


@dataclass
class SimParams:
    nodes: int = 3  # voters
    observers: int = 0  # non-voting followers (brokers following the metadata log)
    election_timeout_ms: int = 100
    fetch_timeout_ms: int = 200
    request_timeout_ms: int = 60
    fetch_max_wait_ms: int = 50
    snapshot_chunk_bytes: int = 256
    snapshot_every: int = 40
    min_delay_ms: int = 1
    max_delay_ms: int = 12
    drop_rate: float = 0.05
    dup_rate: float = 0.03
    max_fsync_ms: int = 4


@dataclass
class Disk:
    """The durable image of one node."""

    quorum_state: QuorumState = QuorumState()
    snapshot: Snapshot | None = None
    entries: list[Entry] = field(default_factory=list)

    def durable_state(self) -> DurableState:
        return DurableState(self.quorum_state, self.snapshot, tuple(self.entries))

    def write(self, rd: Ready, torn: random.Random | None = None) -> bool:
        """Apply ``rd`` in the Ready order; with ``torn``, stop after a random number of
        steps and keep only a random prefix of the entries (a crash mid-write). Returns
        whether the quorum state was written."""
        steps = torn.randint(0, 4) if torn else 4
        wrote_qs = False
        if steps >= 1 and rd.snapshot is not None:
            end = rd.snapshot.snapshot_id.end_offset
            self.snapshot = rd.snapshot
            if rd.snapshot_received:
                self.entries = []
            else:
                self.entries = [e for e in self.entries if e.offset >= end]
        if steps >= 2 and rd.quorum_state is not None:
            self.quorum_state = rd.quorum_state
            wrote_qs = True
        if steps >= 3 and rd.truncate_to is not None:
            self.entries = [e for e in self.entries if e.offset < rd.truncate_to]
        if steps >= 4 and rd.entries:
            start = self.snapshot.snapshot_id.end_offset if self.snapshot else 0
            expect = self.entries[-1].offset + 1 if self.entries else start
            if rd.entries[0].offset != expect:
                raise InvariantViolation(
                    f"non-contiguous append: {rd.entries[0].offset} after {expect}")
            keep = torn.randint(0, len(rd.entries)) if torn else len(rd.entries)
            self.entries.extend(rd.entries[:keep])
        return wrote_qs


def encode_state(applied: list[tuple[int, bytes]]) -> bytes:
    return b"\n".join(b"%d:%s" % (epoch, payload.hex().encode()) for epoch, payload in applied)


def decode_state(data: bytes) -> list[tuple[int, bytes]]:
    if not data:
        return []
    out = []
    for line in data.split(b"\n"):
        epoch, hexed = line.split(b":")
        out.append((int(epoch), bytes.fromhex(hexed.decode())))
    return out


@dataclass
class SimNode:
    node_id: int
    disk: Disk = field(default_factory=Disk)
    core: RaftCore | None = None
    incarnation: int = 0
    pending: Ready | None = None
    applied: list[tuple[int, bytes]] = field(default_factory=list)  # offset = index
    last_epoch: int = 0
    last_hw: int = 0
    next_tick: int | None = None

    @property
    def alive(self) -> bool:
        return self.core is not None


class Simulation:
    def __init__(self, seed: int, params: SimParams | None = None, *, trace: bool = False,
                 disk_factory: Any = None):
        self.seed = seed
        self.p = params or SimParams()
        self.rng = random.Random(seed)
        self.now = 0
        self._events: list[tuple[int, int, str, Any]] = []
        self._seq = 0
        self.voters = frozenset(range(1, self.p.nodes + 1))
        ids = range(1, self.p.nodes + self.p.observers + 1)
        self.nodes = {i: SimNode(i, disk_factory(i) if disk_factory else Disk()) for i in ids}
        self.groups: dict[int, int] = {}  # node -> partition group; empty = healed
        self.drop_rate = self.p.drop_rate
        self.dup_rate = self.p.dup_rate
        self.committed: dict[int, tuple[int, bytes]] = {}
        self.leaders: dict[int, int] = {}  # epoch -> leader
        self.votes: dict[tuple[int, int], int] = {}  # (node, epoch) -> candidate
        self.durable_epoch: dict[int, int] = {}
        self.proposals = 0
        self.trace_enabled = trace
        self.trace: list[str] = []
        self.history: list[str] = []  # last events, for failure reports
        for node in self.nodes.values():
            self._start(node)

    # ---- plumbing ---------------------------------------------------------------
    def config(self, node_id: int) -> RaftConfig:
        p = self.p
        return RaftConfig(
            node_id=node_id, voters=self.voters, cluster_id="sim",
            election_timeout_ms=p.election_timeout_ms, fetch_timeout_ms=p.fetch_timeout_ms,
            request_timeout_ms=p.request_timeout_ms, fetch_max_wait_ms=p.fetch_max_wait_ms,
            snapshot_chunk_bytes=p.snapshot_chunk_bytes, fetch_max_bytes=512,
        )

    def _push(self, at: int, kind: str, data: Any) -> None:
        self._seq += 1
        heapq.heappush(self._events, (at, self._seq, kind, data))

    def _note(self, text: str) -> None:
        line = f"t={self.now} {text}"
        self.history.append(line)
        if len(self.history) > 60:
            del self.history[:20]
        if self.trace_enabled:
            self.trace.append(line)

    def _start(self, node: SimNode) -> None:
        node.incarnation += 1
        rng = random.Random(self.rng.getrandbits(64))
        durable = node.disk.durable_state()
        node.core = RaftCore(self.config(node.node_id), rng, durable, now_ms=self.now)
        node.pending = None
        snap = durable.snapshot
        node.applied = decode_state(snap.data) if snap else []
        self._check_snapshot(node, node.applied)
        node.last_epoch = node.core.epoch
        node.last_hw = node.core.high_watermark
        node.next_tick = None
        self._drain(node)

    def _schedule_tick(self, node: SimNode) -> None:
        assert node.core is not None
        at = max(node.core.next_deadline(), self.now)
        if node.next_tick is None or at < node.next_tick or node.next_tick < self.now:
            node.next_tick = at
            self._push(at, "tick", (node.node_id, node.incarnation))

    def _drain(self, node: SimNode) -> None:
        core = node.core
        assert core is not None
        if node.pending is None and core.has_ready():
            node.pending = core.ready()
            delay = self.rng.randint(0, self.p.max_fsync_ms)
            if delay == 0:
                self._flush(node)
                return
            self._push(self.now + delay, "flush", (node.node_id, node.incarnation))
        self._schedule_tick(node)

    def _flush(self, node: SimNode) -> None:
        rd, core = node.pending, node.core
        assert rd is not None and core is not None
        node.disk.write(rd)
        if rd.truncate_to is not None:
            self._note(f"n{node.node_id} truncated log to {rd.truncate_to}")
        if rd.quorum_state is not None:
            self._check_vote(node.node_id, rd.quorum_state)
        if rd.snapshot is not None and rd.snapshot_received:
            node.applied = decode_state(rd.snapshot.data)
            self._check_snapshot(node, node.applied)
            self._note(f"n{node.node_id} installed snapshot "
                       f"end={rd.snapshot.snapshot_id.end_offset}")
        for entry in rd.committed:
            self._apply(node, entry)
        for msg in rd.messages:
            self._send(msg)
        node.pending = None
        core.advance(rd)
        self._maybe_snapshot(node)
        self._drain(node)

    def _maybe_snapshot(self, node: SimNode) -> None:
        core = node.core
        assert core is not None
        start = core.log.start_offset
        end = len(node.applied)
        if end - start >= self.p.snapshot_every and core.has_ready() is False:
            core.snapshot_taken(Snapshot(SnapshotId(end, node.applied[-1][0]),
                                         encode_state(node.applied)))

    def _send(self, msg: Any) -> None:
        if self.groups and self.groups.get(msg.src) != self.groups.get(msg.dst):
            return
        if self.rng.random() < self.drop_rate:
            return
        copies = 2 if self.rng.random() < self.dup_rate else 1
        for _ in range(copies):
            delay = self.rng.randint(self.p.min_delay_ms, self.p.max_delay_ms)
            self._push(self.now + delay, "deliver", msg)

    # ---- invariants -------------------------------------------------------------
    def _apply(self, node: SimNode, entry: Entry) -> None:
        if entry.offset != len(node.applied):
            raise InvariantViolation(
                f"n{node.node_id} applied offset {entry.offset}, expected {len(node.applied)}")
        value = (entry.epoch, entry.payload)
        known = self.committed.setdefault(entry.offset, value)
        if known != value:
            raise InvariantViolation(
                f"committed entry changed at offset {entry.offset}: {known} vs {value} "
                f"on n{node.node_id}")
        node.applied.append(value)

    def _check_snapshot(self, node: SimNode, applied: list[tuple[int, bytes]]) -> None:
        for offset, value in enumerate(applied):
            known = self.committed.setdefault(offset, value)
            if known != value:
                raise InvariantViolation(
                    f"snapshot on n{node.node_id} disagrees at offset {offset}")

    def _check_vote(self, node_id: int, qs: QuorumState) -> None:
        prev_epoch = self.durable_epoch.get(node_id, 0)
        if qs.epoch < prev_epoch:
            raise InvariantViolation(f"n{node_id} durable epoch went {prev_epoch}->{qs.epoch}")
        self.durable_epoch[node_id] = qs.epoch
        key = (node_id, qs.epoch)
        before = self.votes.get(key, -1)
        if before >= 0 and qs.voted_for != before:
            raise InvariantViolation(
                f"n{node_id} voted for {before} and then {qs.voted_for} in epoch {qs.epoch}")
        if qs.voted_for >= 0:
            self.votes[key] = qs.voted_for

    def check_invariants(self) -> None:
        for node in self.nodes.values():
            core = node.core
            if core is None:
                continue
            if core.epoch < node.last_epoch:
                raise InvariantViolation(
                    f"n{node.node_id} epoch went back {node.last_epoch}->{core.epoch}")
            node.last_epoch = core.epoch
            if core.high_watermark < node.last_hw:
                raise InvariantViolation(
                    f"n{node.node_id} high watermark went back "
                    f"{node.last_hw}->{core.high_watermark}")
            node.last_hw = core.high_watermark
            if core.role == "leader":
                other = self.leaders.setdefault(core.epoch, node.node_id)
                if other != node.node_id:
                    raise InvariantViolation(
                        f"two leaders in epoch {core.epoch}: n{other} and n{node.node_id}")

    # ---- the event loop ---------------------------------------------------------
    def run_until(self, until: int) -> None:
        try:
            while self._events and self._events[0][0] <= until:
                at, _, kind, data = heapq.heappop(self._events)
                self.now = at
                self._dispatch(kind, data)
                self.check_invariants()
        except InvariantViolation as exc:
            exc.history = [*self.history, f"t={self.now} state: {self.describe()}"]
            raise
        self.now = max(self.now, until)

    def _dispatch(self, kind: str, data: Any) -> None:
        if kind == "deliver":
            node = self.nodes[data.dst]
            if node.core is None:
                return
            if self.groups and self.groups.get(data.src) != self.groups.get(data.dst):
                return  # partitioned while in flight
            before = (node.core.role, node.core.epoch)
            node.core.step(data, self.now)
            self._role_change(node, before)
            self._drain(node)
        elif kind == "tick":
            node_id, inc = data
            node = self.nodes[node_id]
            if node.core is None or inc != node.incarnation:
                return
            node.next_tick = None
            before = (node.core.role, node.core.epoch)
            node.core.tick(self.now)
            self._role_change(node, before)
            self._drain(node)
        elif kind == "flush":
            node_id, inc = data
            node = self.nodes[node_id]
            if node.core is None or inc != node.incarnation or node.pending is None:
                return
            self._flush(node)
        elif kind == "call":
            data()
        else:
            raise ValueError(kind)

    def _role_change(self, node: SimNode, before: tuple[str, int]) -> None:
        core = node.core
        assert core is not None
        if (core.role, core.epoch) != before:
            extra = f" leader={core.leader_id}" if core.role == "follower" else ""
            self._note(f"n{node.node_id} {core.role} epoch={core.epoch}{extra}")

    # ---- faults and workload ----------------------------------------------------
    def at(self, when: int, fn: Any) -> None:
        self._push(when, "call", fn)

    def leader(self) -> SimNode | None:
        best = None
        for node in self.nodes.values():
            if node.core is not None and node.core.role == "leader" and (
                    best is None or node.core.epoch > best.core.epoch):
                best = node
        return best

    def propose(self, payload: bytes | None = None) -> int | None:
        node = self.leader()
        if node is None:
            return None
        self.proposals += 1
        payload = payload or b"p%d" % self.proposals
        try:
            offset = node.core.propose([payload])
        except NotLeaderError:
            return None
        self._note(f"n{node.node_id} propose {payload.decode()} at {offset}")
        self._drain(node)
        return offset

    def crash(self, node_id: int) -> None:
        node = self.nodes[node_id]
        if node.core is None:
            return
        torn = node.pending is not None and self.rng.random() < 0.5
        # a torn crash: a prefix of the write in progress reached the disk
        if torn and node.disk.write(node.pending, torn=self.rng):
            self._check_vote(node_id, node.pending.quorum_state)
        node.core = None
        node.pending = None  # the rest of the unflushed writes is lost
        self._note(f"n{node_id} crashed")

    def restart(self, node_id: int) -> None:
        node = self.nodes[node_id]
        if node.core is not None:
            return
        self._start(node)
        self._note(f"n{node_id} restarted as {node.core.role} epoch={node.core.epoch}")

    def partition(self, *groups: set[int]) -> None:
        self.groups = {n: i for i, g in enumerate(groups) for n in g}
        for n in self.nodes:
            self.groups.setdefault(n, len(groups) + n)  # unlisted nodes are isolated
        self._note("partition " + " | ".join(
            ",".join(f"n{n}" for n in sorted(g)) for g in groups))

    def heal(self) -> None:
        self.groups = {}
        self._note("heal")

    def resign(self) -> None:
        node = self.leader()
        if node is not None:
            node.core.resign()
            self._note(f"n{node.node_id} resigns")
            self._drain(node)

    # ---- scenarios --------------------------------------------------------------
    def random_faults(self, duration: int) -> None:
        """Schedule random proposals and faults over ``[now, now + duration)``."""
        rng = self.rng
        t = self.now
        while t < self.now + duration:
            t += rng.randint(15, 45)
            self.at(t, self.propose)
        t = self.now
        ids = sorted(self.nodes)
        while True:
            t += rng.randint(80, 400)
            if t >= self.now + duration:
                break
            kind = rng.random()
            if kind < 0.25:
                victim = rng.choice(ids)
                self.at(t, lambda v=victim: self.crash(v))
                self.at(t + rng.randint(20, 400), lambda v=victim: self.restart(v))
            elif kind < 0.55:
                shuffled = ids[:]
                rng.shuffle(shuffled)
                cut = rng.randint(1, len(ids) - 1)
                a, b = set(shuffled[:cut]), set(shuffled[cut:])
                self.at(t, lambda a=a, b=b: self.partition(a, b))
                self.at(t + rng.randint(50, 600), self.heal)
            elif kind < 0.65:
                self.at(t, self.resign)
            elif kind < 0.8:
                self.at(t, lambda: setattr(self, "drop_rate", 0.3))
                self.at(t + rng.randint(50, 300), lambda: setattr(self, "drop_rate",
                                                                   self.p.drop_rate))

    def heal_everything(self) -> None:
        self.heal()
        self.drop_rate = 0.0
        self.dup_rate = 0.0
        for node_id in sorted(self.nodes):
            self.restart(node_id)

    def check_liveness(self, bound_ms: int) -> int:
        """After ``heal_everything``: a leader must be elected and a fresh proposal applied
        by every node within ``bound_ms``. Returns the virtual time it took."""
        start = self.now
        marker_offset: int | None = None
        marker_epoch = -1
        deadline = start + bound_ms
        step = 10
        while self.now < deadline:
            self.run_until(self.now + step)
            node = self.leader()
            if node is None:
                continue
            if marker_offset is None or marker_epoch != node.core.epoch:
                marker_offset = self.propose(b"liveness-%d" % self.now)
                marker_epoch = node.core.epoch
                continue
            if all(len(n.applied) > marker_offset for n in self.nodes.values()):
                return self.now - start
        exc = InvariantViolation(
            f"liveness: no leader/commit within {bound_ms} ms after heal "
            f"(roles: {self.describe()})")
        exc.history = list(self.history)
        raise exc

    def describe(self) -> str:
        parts = []
        for n in self.nodes.values():
            c = n.core
            parts.append(f"n{n.node_id}=dead" if c is None else
                         f"n{n.node_id}={c.role}/e{c.epoch}/hw{c.high_watermark}"
                         f"/leo{c.log.end_offset}")
        return " ".join(parts)


def run_random(seed: int, nodes: int, chaos_ms: int = 1500, liveness_ms: int = 3000) -> int:
    """One randomized run: chaos, then heal and check liveness. Returns events handled."""
    sim = Simulation(seed, SimParams(nodes=nodes))
    sim.random_faults(chaos_ms)
    sim.run_until(chaos_ms)
    sim.heal_everything()
    sim.run_until(sim.now + 1)
    sim.check_liveness(liveness_ms)
    return sim.proposals
