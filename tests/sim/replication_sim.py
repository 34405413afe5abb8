"""Deterministic simulation of one partition replicated by pure ``replication.Partition``
state machines on a seeded virtual network, with a controller that fences, elects
(``controller.metadata.election``) and answers AlterPartition.

A seed fully determines a run (one ``random.Random``, a virtual clock, a heap of events),
so a failing seed replays exactly: ``python -m tests.sim.replication_sim --seed N -v``.

Model
- Network: node 0 is the controller, 1..RF the brokers. Every message gets a random delay
  (so messages reorder), may be dropped or duplicated (each copy with its own delay), and
  is blocked by cut links (partitions cut the links between groups; a message in flight
  over a link that is cut meanwhile is lost).
- Broker log: records ``(offset, leader epoch, payload id)`` with offsets 0.. (no
  retention), an epoch cache (epoch -> start offset, Kafka's ``LeaderEpochFileCache``: an
  entry drops the entries that start at or after it; with
  ``SimParams.assign_epoch_on_takeover`` a new leader enters its epoch at its log end
  before any record, as Kafka does), ``end_offset_for_epoch`` (the largest epoch <= the
  requested one and the start of the next epoch, or the log end) and ``truncate_to``
  (which also drops cache entries at the log end when nothing is truncated, as Kafka's
  ``UnifiedLog.truncateTo``). Each log has a flushed prefix, flushed at random
  points; a crash keeps only the flushed prefix (and the high-watermark checkpoint taken
  with the last flush) and throws the broker's memory (its ``Partition``) away.
- Controller (never crashes): the partition's registration (leader, leader epoch,
  partition epoch, replicas, ISR) and per broker: incarnation, broker epoch, fenced,
  last heartbeat. Brokers heartbeat; a new incarnation registers (refused while the old
  session is alive, as ``broker_control.register_broker``), fenced, and is unfenced a
  random delay later; a broker silent for the session timeout is fenced. Fencing and
  unfencing use ``election.on_broker_fenced`` / ``on_broker_unfenced`` (the leader moves
  to the first live ISR member, the ISR keeps its last member) and bump the epochs like
  the image does. AlterPartition follows ``isr_control``: the requester must lead with
  the image's leader epoch (else FENCED_LEADER_EPOCH) and partition epoch (else
  INVALID_UPDATE_VERSION); an added replica must be unfenced with the broker epoch the
  leader names for it (else INELIGIBLE_REPLICA).
- Metadata propagation: every heartbeat response (and AlterPartition answer) carries the
  controller's current registration, every registered broker's epoch and the unfenced
  set, with a version; a broker applies it (``apply_assignment``) only if newer, so
  brokers learn changes late and in order. As ``ReplicaManager`` does, a broker that the
  metadata does not show registered and unfenced sees no leader (leads and follows
  nothing), and a leader resets the follower state of a replica whose broker epoch
  changed (a new process must fetch again); AlterPartition names added replicas with the
  broker epochs of the leader's metadata, as ``broker/cluster/node.py`` does. (node.py
  passes only the unfenced brokers' epochs, which hides every restart:
  ``SimParams.restarts_seen_while_fenced=False`` models that; ``kafka_shell`` switches to
  Kafka's choices: epochs from the follower's fetch, fenced brokers still serve.)
- Leader: a client appends 1-3 records to a random broker that acts as leader (so stale
  leaders get writes too): ``check_produce``, append with its leader epoch,
  ``on_leader_append``; acks=all waits for ``produce_status`` (and fails when the leader
  epoch changed: a delayed produce belongs to one leadership), acks=1 succeeds at once.
  Every 25 ms it proposes ``isr_to_shrink``; after fetches ``isr_to_expand``. A pending
  proposal is re-sent on timeout and kept on FENCED_LEADER_EPOCH / INVALID_UPDATE_VERSION
  (an earlier copy may have been applied: Kafka keeps the pending state until the
  metadata arrives); ``alter_failed`` on INELIGIBLE_REPLICA. ``SimParams.naive_alter``
  instead calls ``alter_failed`` on every refusal and timeout.
- Followers: one fetch in flight to the leader they know (fetch offset = log end offset,
  last fetched epoch = latest epoch in the cache, current leader epoch, broker epoch).
  The leader answers ``check_replica_fetch`` errors, a diverging epoch (when the end
  offset of the follower's last epoch on the leader is below the fetch offset or ends a
  different epoch), or records from the fetch offset plus its high watermark after
  ``on_follower_fetch``. The follower truncates on a diverging epoch to min(leader's end
  offset, its own end offset for that epoch), appends records keeping offsets and epochs
  and calls ``on_leader_high_watermark``; it never truncates to its high watermark.

Failure bound. ``f = RF - min.insync.replicas``. A crash happens only while fewer than
``f`` other brokers are *impaired*: down, fenced by the controller, or *recovering* (its
last crash lost records; it stays recovering until an AlterPartition puts its new
incarnation back into the ISR, which needs it to have fetched up to the high watermark).
A crash loses unflushed records only while fewer than ``min_isr - 1`` other brokers are
recovering (a record acked under acks=all is on ``min_isr`` logs); otherwise it is a
process crash whose page cache survives (so RF 3 / min ISR 1 runs never lose data in a
crash). The one situation the real system cannot survive is every member of the
controller's ISR being recovering: the ISR keeps its last member, which comes back
without the records it lost and leads again (KIP-966's unclean-shutdown case; partitions
and lag can shrink the ISR to that member without any second crash). A run that gets
there is marked ``beyond_bound`` and the durability checks (1, the committed-prefix part
of 2, 3) stop; ``SimParams.strict`` keeps them, and then such runs do lose acked records.

Invariants, checked after every event (``InvariantViolation`` names seed and event):
1. ISR agreement: every live, non-recovering member of the controller's ISR holds the
   same records as each acting leader up to that leader's high watermark.
2. A leader's high watermark never moves back within one leadership (incarnation and
   leader epoch); and what any leader exposes below its high watermark (the "committed"
   prefix) never changes later; what a follower exposes below its high watermark (it
   serves consumers too, KIP-392) is committed.
3. Every record acknowledged under acks=all is in the committed prefix and, when it is
   acknowledged, on at least min.insync.replicas logs (a down or recovering broker counts
   as a holder: it may have lost it within the bound); the controller's leader, once it
   acts in the controller's epoch, holds the whole committed prefix (so every acked
   record, at its offset with its payload).
4. At most one broker appends as leader in any leader epoch.
5. When a follower accepts a (non-diverging) fetch response, its log up to the fetch
   offset equals the leader's: it keeps no record that leader does not have.
Liveness (``check_convergence``): after healing every fault, all replicas are back in
the ISR, their logs are equal, and the high watermark is the log end.
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import random
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controller.metadata.election import on_broker_fenced, on_broker_unfenced
from controller.metadata.image import PartitionRegistration
from controller.metadata.records import NO_LEADER, NO_LEADER_CHANGE, PartitionChangeRecord
from protocol.errors import ErrorCode
from replication.partition import (
    NONE,
    NOT_ENOUGH_REPLICAS,
    NOT_LEADER_OR_FOLLOWER,
    Assignment,
    FollowerState,
    IsrProposal,
    Partition,
    Role,
    Transition,
)

CONTROLLER = 0
TOPIC_ID = uuid.UUID(int=1)
FENCED_LEADER_EPOCH = int(ErrorCode.fenced_leader_epoch)
INVALID_UPDATE_VERSION = int(ErrorCode.invalid_update_version)
INELIGIBLE_REPLICA = int(ErrorCode.ineligible_replica)
INVALID_REQUEST = int(ErrorCode.invalid_request)
STALE_BROKER_EPOCH = int(ErrorCode.stale_broker_epoch)
REQUEST_TIMED_OUT = int(ErrorCode.request_timed_out)


def _name(code: int) -> str:
    return ErrorCode(code).name if code else "NONE"


class InvariantViolation(AssertionError):
    """An invariant broke; ``history`` holds the last events."""

    history: list[str]


@dataclass
class SimParams:
    """Cluster shape, timings (virtual ms), fault rates and modelling choices."""

    replicas: int = 3
    min_isr: int = 2
    min_delay_ms: int = 1
    max_delay_ms: int = 10
    drop_rate: float = 0.03
    dup_rate: float = 0.02
    heartbeat_ms: int = 20
    session_timeout_ms: int = 150
    unfence_delay_ms: tuple[int, int] = (20, 80)
    lag_time_ms: int = 150
    shrink_check_ms: int = 25
    fetch_backoff_ms: tuple[int, int] = (3, 15)
    request_timeout_ms: int = 60
    alter_timeout_ms: int = 80
    produce_timeout_ms: int = 600
    flush_every_ms: tuple[int, int] = (5, 80)
    max_fetch_records: int = 8
    acks_one_rate: float = 0.2
    #: Kafka's makeLeader: the new leader's epoch enters its epoch cache at its log end
    #: before any record (storage.PartitionLog only records epochs of appended batches)
    assign_epoch_on_takeover: bool = False
    #: ReplicaManager: a broker leads or follows only while its metadata shows it
    #: registered (its broker epoch) and unfenced
    serve_only_unfenced: bool = True
    #: AlterPartition names an added replica's broker epoch as seen in its fetch (KIP-903);
    #: False: from the leader's metadata, as broker/cluster/node.py does, with
    #: ReplicaManager's reset of a follower whose broker epoch changed in the metadata
    alter_epochs_from_fetch: bool = False
    #: the leader notices a follower's new broker epoch while that broker is still fenced
    #: (the epochs of every registered broker). False is what broker/cluster/node.py
    #: passes today (unfenced brokers' epochs only): a restart always passes through
    #: fenced, so the leader keeps the old process's follower state, and puts the new
    #: process back into the ISR on the strength of fetches it never made
    restarts_seen_while_fenced: bool = True
    #: drop the pending ISR (``alter_failed``) on every refusal and on timeout, instead of
    #: re-sending / waiting for metadata: the old ``alter_failed`` docstring's reading and
    #: ReplicaManager._alter_loop's policy today; breaks ISR agreement
    naive_alter: bool = False
    #: keep checking durability even when the failure bound is exceeded
    strict: bool = False
    #: ignore the crash budget (targeted scenarios)
    unbounded_crashes: bool = False


# ---- the log ---------------------------------------------------------------------------
class Log:
    """One broker's partition log: parallel lists indexed by offset, a hash chain for O(1)
    prefix comparison, the epoch cache and the flushed prefix."""

    __slots__ = ("epochs", "pids", "chain", "cache", "flushed", "hw_checkpoint")

    def __init__(self) -> None:
        self.epochs: list[int] = []
        self.pids: list[int] = []
        self.chain: list[int] = []  # chain[i] identifies records 0..i
        self.cache: list[tuple[int, int]] = []  # (epoch, start offset), ascending
        self.flushed = 0
        self.hw_checkpoint = 0

    @property
    def end_offset(self) -> int:
        return len(self.pids)

    def prefix_id(self, n: int) -> int:
        """Identity of records [0, n)."""
        return self.chain[n - 1] if n > 0 else 0

    def latest_epoch(self) -> int:
        return self.cache[-1][0] if self.cache else -1

    def _cache_add(self, epoch: int, start: int) -> None:
        while self.cache and (self.cache[-1][1] >= start or self.cache[-1][0] >= epoch):
            self.cache.pop()
        self.cache.append((epoch, start))

    def assign_epoch(self, epoch: int) -> None:
        """A new leader's epoch starts at its log end (Kafka assigns it on takeover)."""
        if epoch > self.latest_epoch():
            self._cache_add(epoch, self.end_offset)

    def append(self, epoch: int, pid: int) -> None:
        if epoch > self.latest_epoch():
            self._cache_add(epoch, self.end_offset)
        elif epoch < self.latest_epoch():
            raise InvariantViolation(
                f"append of epoch {epoch} after epoch {self.latest_epoch()}")
        prev = self.chain[-1] if self.chain else 0
        self.epochs.append(epoch)
        self.pids.append(pid)
        self.chain.append(hash((prev, epoch, pid)))

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        """(largest epoch <= ``epoch``, the start of the next epoch or the log end), as
        ``storage.PartitionLog`` answers; (epoch, first start) when ``epoch`` is older than
        every cached one (Kafka's ``endOffsetFor``); (-1, -1) for an undefined epoch or an
        empty cache."""
        cache = self.cache
        if epoch < 0 or not cache:
            return -1, -1
        for i, (e, _start) in enumerate(cache):
            if e > epoch:
                if i == 0:
                    return epoch, cache[0][1]
                return cache[i - 1][0], cache[i][1]
        return cache[-1][0], self.end_offset

    def truncate_to(self, offset: int) -> None:
        if offset >= self.end_offset:
            # Kafka's UnifiedLog.truncateTo: the cache is truncated even then, or an epoch
            # this broker assigned as leader without appending stays its latest epoch
            # and every fetch diverges again without truncating anything
            while self.cache and self.cache[-1][1] >= self.end_offset:
                self.cache.pop()
            return
        del self.epochs[offset:], self.pids[offset:], self.chain[offset:]
        while self.cache and self.cache[-1][1] >= offset:
            self.cache.pop()
        self.flushed = min(self.flushed, offset)
        self.hw_checkpoint = min(self.hw_checkpoint, offset)

    def crash(self) -> int:
        """Lose everything after the flushed prefix; returns the new log end."""
        keep = self.flushed
        del self.epochs[keep:], self.pids[keep:], self.chain[keep:]
        self.cache = []
        for offset, epoch in enumerate(self.epochs):
            if not self.cache or self.cache[-1][0] != epoch:
                self.cache.append((epoch, offset))
        return keep


# ---- brokers and controller -------------------------------------------------------------
@dataclass
class Broker:
    bid: int
    log: Log = field(default_factory=Log)
    alive: bool = True
    incarnation: int = 0
    part: Partition | None = None
    broker_epoch: int = -1
    known_version: int = -1
    unfenced: frozenset[int] = frozenset()
    #: unfenced broker -> broker epoch, from the last metadata
    epochs: dict[int, int] = field(default_factory=dict)
    fetch_id: int = 0  # outstanding fetch request id (0 = none)
    #: leader only: the broker epoch each follower fetched with last
    follower_epochs: dict[int, int] = field(default_factory=dict)
    alter: tuple[IsrProposal, tuple[tuple[int, int], ...], int, int] | None = None
    recovering: bool = False


@dataclass
class BrokerReg:
    incarnation: int = -1
    broker_epoch: int = -1
    fenced: bool = True
    last_heartbeat: int = -(10**9)
    unfence_at: int = 0


@dataclass
class PendingProduce:
    broker: int
    incarnation: int
    epoch: int
    first: int
    pids: tuple[int, ...]
    deadline: int


@dataclass
class Stats:
    events: int = 0
    produced: int = 0
    acked_all: int = 0
    acked_one: int = 0
    not_enough_replicas: int = 0
    crashes: int = 0
    lossy_crashes: int = 0
    elections: int = 0
    truncations: int = 0
    shrinks: int = 0
    expands: int = 0
    alter_refused: int = 0


class Simulation:
    """One partition on ``SimParams.replicas`` brokers plus a controller; ``run_until``
    advances virtual time, checking every invariant after every event."""

    def __init__(self, seed: int, params: SimParams | None = None, *,
                 verbose: bool = False, auto_flush: bool = True) -> None:
        self.seed = seed
        self.p = p = params or SimParams()
        self.rng = random.Random(seed)
        self.now = 0
        self.verbose = verbose
        self.auto_flush = auto_flush
        self._events: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = 0
        self._workload: set[int] = set()
        self.ids = tuple(range(1, p.replicas + 1))
        self.brokers = {b: Broker(b) for b in self.ids}
        self.cut: set[frozenset[int]] = set()
        self.drop_rate = p.drop_rate
        self.dup_rate = p.dup_rate
        self.extra_meta_delay = 0
        # controller
        self.reg = PartitionRegistration(self.ids, self.ids, self.ids[0], 0, 0)
        self.version = 0
        self.breg = {b: BrokerReg() for b in self.ids}
        self.next_broker_epoch = 100
        # oracle
        self.committed_chain: list[int] = []
        self.committed_pids: list[int] = []
        self.acked: dict[int, int] = {}  # offset -> payload id (acks=all)
        self.epoch_writer: dict[int, tuple[int, int]] = {}  # epoch -> (broker, incarnation)
        self.leader_hw: dict[int, tuple[int, int, int]] = {}  # broker -> (inc, epoch, hw)
        self.pending: list[PendingProduce] = []
        #: first payload id of each acks=all produce -> its outcome (error code)
        self.produce_results: dict[int, int] = {}
        self.next_pid = 1
        self.last_pids: tuple[int, ...] = ()
        self.next_request = 1
        self.beyond_bound = False
        self.beyond_bound_at: int | None = None
        self.stats = Stats()
        self.history: list[str] = []
        self.trace: list[str] = []
        self.event_index = 0
        for b in self.ids:
            self._start(self.brokers[b], first=True)
        self._every(10, self._controller_tick)

    # ---- plumbing --------------------------------------------------------------------
    def at(self, when: int, fn: Callable[[], None], *, workload: bool = False) -> None:
        """Schedule ``fn``; ``workload`` marks client writes and faults (dropped by
        ``stop_workload``)."""
        self._seq += 1
        if workload:
            self._workload.add(self._seq)
        heapq.heappush(self._events, (max(when, self.now), self._seq, fn))

    def stop_workload(self) -> None:
        """Forget every scheduled write and fault."""
        self._events = [e for e in self._events if e[1] not in self._workload]
        heapq.heapify(self._events)
        self._workload.clear()

    def _every(self, period: int, fn: Callable[[], None]) -> None:
        def loop() -> None:
            fn()
            self.at(self.now + period, loop)
        self.at(self.now + period, loop)

    def note(self, text: str) -> None:
        line = f"#{self.event_index} t={self.now} {text}"
        self.history.append(line)
        if len(self.history) > 200:
            del self.history[:100]
        if self.verbose:
            self.trace.append(line)
            print(line)

    def send(self, src: int, dst: int, handler: Callable[..., None], *args: Any) -> None:
        link = frozenset((src, dst))
        if link in self.cut or self.rng.random() < self.drop_rate:
            return

        def deliver() -> None:
            if link in self.cut:
                return
            if dst != CONTROLLER and not self.brokers[dst].alive:
                return
            handler(*args)
        copies = 2 if self.rng.random() < self.dup_rate else 1
        for _ in range(copies):  # a copy gets its own delay: copies reorder too
            delay = self.rng.randint(self.p.min_delay_ms, self.p.max_delay_ms)
            if src == CONTROLLER:
                delay += self.extra_meta_delay
            self.at(self.now + delay, deliver)

    def _timer(self, broker: Broker, delay: int, fn: Callable[[], None]) -> None:
        inc = broker.incarnation

        def fire() -> None:
            if broker.alive and broker.incarnation == inc:
                fn()
        self.at(self.now + delay, fire)

    # ---- broker lifecycle ------------------------------------------------------------
    def _start(self, b: Broker, first: bool = False) -> None:
        b.alive = True
        b.incarnation += 1
        b.part = Partition("t", 0, b.bid, min_insync_replicas=self.p.min_isr)
        b.broker_epoch = -1
        b.known_version = -1
        b.unfenced = frozenset()
        b.epochs = {}
        b.fetch_id = 0
        b.follower_epochs = {}
        b.alter = None
        self._heartbeat_loop(b)
        self._timer(b, self.rng.randint(0, self.p.shrink_check_ms),
                    lambda: self._leader_loop(b))
        if self.auto_flush:
            self._timer(b, self.rng.randint(*self.p.flush_every_ms), lambda: self._flush_loop(b))

    def impaired(self, bid: int) -> bool:
        """Down, recovering from a crash that lost records, or fenced by the controller:
        a replica the failure bound counts as failed."""
        b = self.brokers[bid]
        return not b.alive or b.recovering or self.breg[bid].fenced

    def crash(self, bid: int, *, force: bool = False) -> bool:
        """Crash ``bid`` (its log keeps the flushed prefix) unless the failure bound
        forbids it (``force`` / ``unbounded_crashes`` ignore the bound); True if it
        crashed."""
        b = self.brokers[bid]
        if not b.alive:
            return False
        budget = self.p.replicas - self.p.min_isr
        others = sum(1 for o in self.ids if o != bid and self.impaired(o))
        if not (force or self.p.unbounded_crashes) and others >= budget:
            self.note(f"b{bid} crash skipped (failure budget {budget} used)")
            return False
        before = b.log.end_offset
        recovering = sum(1 for o in self.ids if o != bid and self.brokers[o].recovering)
        if recovering >= self.p.min_isr - 1 and not (force or self.p.unbounded_crashes):
            # a record acked under acks=all is on min.insync.replicas logs: at most
            # min_isr - 1 of them may lose unflushed data; this one is a process crash
            # whose page cache survives
            b.log.flushed = before
        keep = b.log.crash()
        self.stats.crashes += 1
        if keep < before:
            b.recovering = True
            self.stats.lossy_crashes += 1
        b.alive = False
        b.part = None
        self.pending = [p for p in self.pending if p.broker != bid]
        self.note(f"b{bid} crashed: log {before} -> {keep} (flushed)"
                  + (" (lost records: recovering)" if b.recovering else ""))
        return True

    def restart(self, bid: int) -> None:
        """Start a new incarnation of a crashed broker (it registers fenced)."""
        b = self.brokers[bid]
        if b.alive:
            return
        self._start(b)
        self.note(f"b{bid} restarted (incarnation {b.incarnation}, log {b.log.end_offset})")

    def _flush_loop(self, b: Broker) -> None:
        self.flush(b.bid)
        self._timer(b, self.rng.randint(*self.p.flush_every_ms), lambda: self._flush_loop(b))

    def flush(self, bid: int) -> None:
        """Make ``bid``'s whole log (and its high watermark checkpoint) durable."""
        b = self.brokers[bid]
        if b.alive and b.part is not None:
            b.log.flushed = b.log.end_offset
            b.log.hw_checkpoint = min(b.part.high_watermark, b.log.end_offset)

    # ---- heartbeats and metadata ---------------------------------------------------------
    def _heartbeat_loop(self, b: Broker) -> None:
        self.send(b.bid, CONTROLLER, self._on_heartbeat, b.bid, b.incarnation)
        self._timer(b, self.p.heartbeat_ms, lambda: self._heartbeat_loop(b))

    def _on_heartbeat(self, bid: int, inc: int) -> None:
        r = self.breg[bid]
        if r.incarnation != inc:
            if inc < r.incarnation:
                return
            if r.incarnation >= 0 and not r.fenced and \
                    self.now - r.last_heartbeat <= self.p.session_timeout_ms:
                return  # DUPLICATE_BROKER_REGISTRATION while the old session lives
            if r.incarnation >= 0 and not r.fenced:
                self._fence(bid, "re-registered")
            r.incarnation = inc
            r.broker_epoch = self.next_broker_epoch
            self.next_broker_epoch += 1
            r.fenced = True
            r.unfence_at = self.now + self.rng.randint(*self.p.unfence_delay_ms)
            self.note(f"ctrl: b{bid} registered, broker epoch {r.broker_epoch} (fenced)")
        r.last_heartbeat = self.now
        if r.fenced and self.now >= r.unfence_at:
            self._unfence(bid)
        self._send_metadata(bid, inc)

    def _send_metadata(self, bid: int, inc: int) -> None:
        r = self.breg[bid]
        self.send(CONTROLLER, bid, self._on_metadata, bid, inc, r.broker_epoch,
                  self.version, self.assignment(), self.brokers_view())

    def assignment(self) -> Assignment:
        """The controller's registration as brokers receive it."""
        g = self.reg
        return Assignment(g.leader, g.leader_epoch, g.partition_epoch, g.replicas, g.isr)

    def unfenced(self) -> frozenset[int]:
        """Brokers the controller has unfenced."""
        return frozenset(b for b, r in self.breg.items() if not r.fenced)

    def brokers_view(self) -> tuple[dict[int, int], frozenset[int]]:
        """(registered broker -> broker epoch, unfenced brokers), as the image has them."""
        return ({b: r.broker_epoch for b, r in self.breg.items() if r.broker_epoch >= 0},
                self.unfenced())

    def _on_metadata(self, bid: int, inc: int, broker_epoch: int, version: int,
                     a: Assignment, view: tuple[dict[int, int], frozenset[int]]) -> None:
        b = self.brokers[bid]
        if b.incarnation != inc or b.part is None:
            return
        b.broker_epoch = broker_epoch
        if version <= b.known_version:
            return
        b.known_version = version
        epochs, unfenced = view
        old_epochs, old_unfenced = b.epochs, b.unfenced
        b.epochs, b.unfenced = epochs, unfenced
        part = b.part
        if self.p.serve_only_unfenced and (bid not in unfenced
                                           or epochs.get(bid, -1) != broker_epoch):
            a = Assignment(-1, a.leader_epoch, a.partition_epoch, a.replicas, a.isr)
        if part.role is Role.LEADER and not self.p.alter_epochs_from_fetch:
            if not self.p.restarts_seen_while_fenced:  # node.py: unfenced brokers only
                old_epochs = {r: e for r, e in old_epochs.items() if r in old_unfenced}
                epochs = {r: e for r, e in epochs.items() if r in unfenced}
            for r, e in epochs.items():
                if r in part.followers and old_epochs.get(r, e) != e:
                    part.followers[r] = FollowerState()  # a new process: must fetch again
        before = (part.role, part.leader_epoch)
        t = part.apply_assignment(a, log_end_offset=b.log.end_offset,
                                  high_watermark=min(part.high_watermark if before[1] >= 0
                                                     else b.log.hw_checkpoint,
                                                     b.log.end_offset),
                                  now_ms=self.now)
        if t is Transition.UNCHANGED:
            return
        if part.pending_isr is None:
            b.alter = None
        self.note(f"b{bid} {t.value}: leader b{a.leader} epoch {a.leader_epoch} "
                  f"pe {a.partition_epoch} isr {list(a.isr)} (hw {part.high_watermark})")
        if t is Transition.BECAME_LEADER and self.p.assign_epoch_on_takeover:
            b.log.assign_epoch(part.leader_epoch)
            b.follower_epochs = {}
        if t in (Transition.BECAME_FOLLOWER, Transition.STOPPED, Transition.BECAME_LEADER):
            b.fetch_id = 0
            if t is Transition.BECAME_FOLLOWER:
                self._fetch(b)

    # ---- controller --------------------------------------------------------------------
    def _apply_change(self, rec: PartitionChangeRecord, why: str) -> None:
        g = self.reg
        isr = g.isr if rec.isr is None else tuple(rec.isr)
        leader, leader_epoch = g.leader, g.leader_epoch
        if rec.leader != NO_LEADER_CHANGE:
            leader, leader_epoch = rec.leader, g.leader_epoch + 1
            self.stats.elections += 1
        self.reg = PartitionRegistration(g.replicas, isr, leader, leader_epoch,
                                         g.partition_epoch + 1)
        self.version += 1
        self.note(f"ctrl: {why}: leader b{leader} epoch {leader_epoch} "
                  f"pe {g.partition_epoch + 1} isr {list(isr)}")

    def _fence(self, bid: int, why: str) -> None:
        r = self.breg[bid]
        live = self.unfenced() - {bid}
        r.fenced = True
        change = on_broker_fenced(TOPIC_ID, 0, self.reg, bid, live)
        self.version += 1
        if change is not None:
            self._apply_change(change, f"fenced b{bid} ({why})")
        else:
            self.note(f"ctrl: fenced b{bid} ({why})")

    def _unfence(self, bid: int) -> None:
        self.breg[bid].fenced = False
        self.version += 1
        change = on_broker_unfenced(TOPIC_ID, 0, self.reg, self.unfenced())
        if change is not None:
            self._apply_change(change, f"unfenced b{bid}")
        else:
            self.note(f"ctrl: unfenced b{bid}")

    def _controller_tick(self) -> None:
        for bid, r in self.breg.items():
            if not r.fenced and self.now - r.last_heartbeat > self.p.session_timeout_ms:
                self._fence(bid, "session expired")
                break  # one at a time, like fence_expired

    def _on_alter(self, bid: int, broker_epoch: int, prop: IsrProposal,
                  new_isr: tuple[tuple[int, int], ...], req: int) -> None:
        err = self._check_alter(bid, broker_epoch, prop, new_isr)
        if err == NONE and prop.isr != self.reg.isr:
            for m in set(prop.isr) - set(self.reg.isr):
                mb = self.brokers[m]
                if mb.recovering and mb.alive and mb.incarnation == self.breg[m].incarnation:
                    mb.recovering = False  # back in the ISR after fetching as itself again
            self._apply_change(PartitionChangeRecord(0, TOPIC_ID, isr=prop.isr),
                               f"AlterPartition from b{bid}")
        if err != NONE:
            self.note(f"ctrl: AlterPartition {list(prop.isr)} from b{bid} refused ({_name(err)})")
        r = self.breg[bid]
        self.send(CONTROLLER, bid, self._on_alter_response, bid, r.incarnation, req, err,
                  self.version, self.assignment(), self.brokers_view(), r.broker_epoch)

    def _check_alter(self, bid: int, broker_epoch: int, prop: IsrProposal,
                     new_isr: tuple[tuple[int, int], ...]) -> int:
        r = self.breg[bid]
        if r.broker_epoch != broker_epoch:
            return STALE_BROKER_EPOCH
        g = self.reg
        if g.leader != bid or g.leader_epoch != prop.leader_epoch:
            return FENCED_LEADER_EPOCH
        if g.partition_epoch != prop.partition_epoch:
            return INVALID_UPDATE_VERSION
        isr = [m for m, _ in new_isr]
        if not isr or len(set(isr)) != len(isr) or bid not in isr \
                or not set(isr) <= set(g.replicas):
            return INVALID_REQUEST
        for m, epoch in new_isr:
            if m in g.isr or m == bid:
                continue
            mr = self.breg[m]
            if mr.fenced or (epoch >= 0 and epoch != mr.broker_epoch):
                return INELIGIBLE_REPLICA
        return NONE

    # ---- leader --------------------------------------------------------------------------
    def _leader_loop(self, b: Broker) -> None:
        part = b.part
        assert part is not None
        if part.role is Role.LEADER:
            if b.alter is not None and part.pending_isr is not None and \
                    self.now - b.alter[3] > self.p.alter_timeout_ms:
                if self.p.naive_alter:
                    self.note(f"b{b.bid} AlterPartition timed out: alter_failed")
                    part.alter_failed()
                    b.alter = None
                else:
                    self._send_alter(b, b.alter[0], b.alter[1])
            prop = part.isr_to_shrink(self.now, self.p.lag_time_ms)
            if prop is not None:
                self.stats.shrinks += 1
                self.note(f"b{b.bid} proposes shrink to {list(prop.isr)}")
                self._send_alter(b, prop, tuple((m, -1) for m in prop.isr))
        self._timer(b, self.p.shrink_check_ms, lambda: self._leader_loop(b))

    def _send_alter(self, b: Broker, prop: IsrProposal,
                    new_isr: tuple[tuple[int, int], ...]) -> None:
        req = self.next_request
        self.next_request += 1
        b.alter = (prop, new_isr, req, self.now)
        self.send(b.bid, CONTROLLER, self._on_alter, b.bid, b.broker_epoch, prop, new_isr, req)

    def _on_alter_response(self, bid: int, inc: int, req: int, err: int, version: int,
                           a: Assignment, view: tuple[dict[int, int], frozenset[int]],
                           broker_epoch: int) -> None:
        b = self.brokers[bid]
        if b.incarnation != inc or b.part is None:
            return
        self._on_metadata(bid, inc, broker_epoch, version, a, view)
        if b.alter is None or b.alter[2] != req or b.part.pending_isr is None:
            return
        if err == NONE:
            return  # the metadata (applied above, or on its way) ends the proposal
        self.stats.alter_refused += 1
        if self.p.naive_alter or err in (INELIGIBLE_REPLICA, INVALID_REQUEST,
                                         STALE_BROKER_EPOCH):
            self.note(f"b{bid} AlterPartition refused ({_name(err)}): alter_failed")
            b.part.alter_failed()
            b.alter = None
        # FENCED_LEADER_EPOCH / INVALID_UPDATE_VERSION: keep pending until metadata

    def produce(self, acks: int | None = None, count: int | None = None,
                broker: int | None = None) -> int | None:
        """A client write to a broker acting as leader; returns the error code (None: no
        broker leads)."""
        if broker is None:
            leaders = [b for b in self.brokers.values()
                       if b.alive and b.part is not None and b.part.role is Role.LEADER]
            if not leaders:
                return None
            b = self.rng.choice(leaders)
        else:
            b = self.brokers[broker]
            if not b.alive or b.part is None:
                return None
        part = b.part
        assert part is not None
        if acks is None:
            acks = 1 if self.rng.random() < self.p.acks_one_rate else -1
        count = count or self.rng.randint(1, 3)
        err = part.check_produce(acks)
        if err != NONE:
            if err == NOT_ENOUGH_REPLICAS:
                self.stats.not_enough_replicas += 1
            self.note(f"b{b.bid} produce acks={acks} refused ({_name(err)})")
            return err
        epoch = part.leader_epoch
        writer = self.epoch_writer.setdefault(epoch, (b.bid, b.incarnation))
        if writer != (b.bid, b.incarnation):
            self.fail(f"(4) two writers in leader epoch {epoch}: b{writer[0]} "
                      f"(incarnation {writer[1]}) and b{b.bid} (incarnation {b.incarnation})")
        first = b.log.end_offset
        pids = tuple(range(self.next_pid, self.next_pid + count))
        self.next_pid += count
        self.last_pids = pids
        for pid in pids:
            b.log.append(epoch, pid)
        part.on_leader_append(b.log.end_offset)
        self.stats.produced += count
        self.note(f"b{b.bid} appends {list(pids)} at {first} epoch {epoch} acks={acks}")
        if acks == 1:
            self.stats.acked_one += count
        else:
            self.pending.append(PendingProduce(b.bid, b.incarnation, epoch, first, pids,
                                               self.now + self.p.produce_timeout_ms))
        return NONE

    def _complete_produces(self) -> None:
        if not self.pending:
            return
        keep = []
        for pp in self.pending:
            b = self.brokers[pp.broker]
            part = b.part
            if not b.alive or b.incarnation != pp.incarnation or part is None:
                continue
            required = pp.first + len(pp.pids)
            if part.leader_epoch != pp.epoch:
                self.note(f"b{b.bid} produce {list(pp.pids)} fails: leadership changed")
                self.produce_results[pp.pids[0]] = NOT_LEADER_OR_FOLLOWER
                continue
            done, err = part.produce_status(required)
            if not done:
                if self.now >= pp.deadline:
                    self.note(f"b{b.bid} produce {list(pp.pids)} timed out")
                    self.produce_results[pp.pids[0]] = REQUEST_TIMED_OUT
                    continue
                keep.append(pp)
                continue
            self.produce_results[pp.pids[0]] = err
            if err != NONE:
                self.note(f"b{b.bid} produce {list(pp.pids)} fails ({_name(err)})")
                continue
            for i, pid in enumerate(pp.pids):
                off = pp.first + i
                if b.log.end_offset <= off or b.log.pids[off] != pid:
                    self.fail(f"(3) acked record {pid} at {off} is not in b{b.bid}'s log")
                if not self.beyond_bound and (len(self.committed_pids) <= off
                                              or self.committed_pids[off] != pid):
                    self.fail(f"(3) acked record {pid} at {off} is not committed")
                self.acked[off] = pid
                holders = sum(1 for o in self.brokers.values()
                              if not o.alive or o.recovering
                              or (o.log.end_offset > off and o.log.pids[off] == pid))
                if holders < self.p.min_isr:
                    self.fail(f"(3) acked record {pid} at {off} is on {holders} replicas "
                              f"(counting failed ones), below min.insync.replicas")
            self.stats.acked_all += len(pp.pids)
            self.note(f"b{b.bid} acks=all produce {list(pp.pids)} done (hw "
                      f"{part.high_watermark})")
        self.pending = keep

    # ---- replica fetch -----------------------------------------------------------------
    def _fetch(self, b: Broker) -> None:
        part = b.part
        assert part is not None
        if part.role is not Role.FOLLOWER or b.fetch_id:
            return
        req = self.next_request
        self.next_request += 1
        b.fetch_id = req
        leo, last_epoch = b.log.end_offset, b.log.latest_epoch()
        self.send(b.bid, part.leader_id, self._on_fetch, part.leader_id, b.bid, b.incarnation,
                  b.broker_epoch, part.leader_epoch, leo, last_epoch, req)

        def timeout() -> None:
            if b.fetch_id == req:
                b.fetch_id = 0
                self._fetch(b)
        self._timer(b, self.p.request_timeout_ms, timeout)

    def _on_fetch(self, lid: int, fid: int, finc: int, f_broker_epoch: int, epoch: int,
                  offset: int, last_epoch: int, req: int) -> None:
        leader = self.brokers[lid]
        part = leader.part
        if part is None:
            return
        err = part.check_replica_fetch(fid, epoch)
        log = leader.log
        reply: tuple[Any, ...]
        if err != NONE:
            reply = ("error", err)
        else:
            diverging = None
            if last_epoch >= 0:
                e, end = log.end_offset_for_epoch(last_epoch)
                if e < 0:  # the leader's log is empty
                    diverging = (-1, 0) if offset > 0 else None
                elif e != last_epoch or end < offset:
                    diverging = (e, end)
            elif offset > log.end_offset:
                diverging = (-1, 0)
            if diverging is not None:
                reply = ("diverging", diverging)
            else:
                part.on_follower_fetch(fid, offset, self.now)
                leader.follower_epochs[fid] = f_broker_epoch
                end = min(log.end_offset, offset + self.p.max_fetch_records)
                records = tuple(zip(log.epochs[offset:end], log.pids[offset:end], strict=True))
                reply = ("records", records, part.high_watermark, log.prefix_id(offset),
                         part.leader_epoch)
                self._maybe_expand(leader)
        self.send(lid, fid, self._on_fetch_response, fid, finc, lid, epoch, offset, req, reply)

    def _maybe_expand(self, leader: Broker) -> None:
        part = leader.part
        assert part is not None
        if self.p.alter_epochs_from_fetch:
            seen = leader.follower_epochs
            eligible = {r for r in leader.unfenced if seen.get(r, -1) >= 0}
        else:
            seen = leader.epochs
            eligible = set(leader.unfenced)
        prop = part.isr_to_expand(eligible)
        if prop is None:
            return
        self.stats.expands += 1
        self.note(f"b{leader.bid} proposes expand to {list(prop.isr)}")
        new_isr = tuple((m, -1 if m in part.isr else seen[m]) for m in prop.isr)
        self._send_alter(leader, prop, new_isr)

    def _on_fetch_response(self, fid: int, finc: int, lid: int, epoch: int, offset: int,
                           req: int, reply: tuple[Any, ...]) -> None:
        b = self.brokers[fid]
        part = b.part
        if b.incarnation != finc or part is None or b.fetch_id != req:
            return
        b.fetch_id = 0
        if part.role is not Role.FOLLOWER or part.leader_id != lid or \
                part.leader_epoch != epoch or b.log.end_offset != offset:
            self._fetch(b)
            return
        kind = reply[0]
        backoff = 1
        if kind == "error":
            backoff = self.rng.randint(*self.p.fetch_backoff_ms)
        elif kind == "diverging":
            d_epoch, d_end = reply[1]
            own_epoch, own_end = b.log.end_offset_for_epoch(d_epoch)
            target = d_end if own_epoch < 0 else min(d_end, own_end)
            if target < b.log.end_offset:
                self.stats.truncations += 1
                self.note(f"b{fid} truncates {b.log.end_offset} -> {target} (diverging "
                          f"epoch {d_epoch} end {d_end} from b{lid})")
            b.log.truncate_to(target)
        else:
            records, hw, prefix, _leader_epoch = reply[1:]
            if b.log.prefix_id(offset) != prefix:
                self.fail(f"(5) b{fid} accepted a fetch from b{lid} at {offset} but its "
                          f"log differs from the leader's below that offset")
            for e, pid in records:
                b.log.append(e, pid)
            part.on_leader_high_watermark(hw, b.log.end_offset)
            if not records:
                backoff = self.rng.randint(*self.p.fetch_backoff_ms)
        self._timer(b, backoff, lambda: self._fetch(b))

    # ---- invariants ----------------------------------------------------------------------
    def fail(self, msg: str) -> None:
        exc = InvariantViolation(f"seed {self.seed} event #{self.event_index} t={self.now}: "
                                 f"{msg}")
        exc.history = [*self.history[-40:], f"state: {self.describe()}"]
        raise exc

    def check_invariants(self) -> None:
        """Invariants 1, 2 and the leader part of 3 (4 and 5 are checked where writes
        and fetch answers happen); also notices the run leaving the failure bound."""
        cchain = self.committed_chain
        live_leaders = []
        for b in self.brokers.values():
            part = b.part
            if not b.alive or part is None:
                continue
            if part.role is not Role.LEADER:
                # KIP-392: followers serve consumers up to their high watermark too
                n = min(part.high_watermark, b.log.end_offset)
                if n and (not self.beyond_bound or self.p.strict) and (
                        n > len(cchain) or b.log.chain[n - 1] != cchain[n - 1]):
                    self.fail(f"(2) follower b{b.bid} exposes records below its high "
                              f"watermark {part.high_watermark} that were not committed "
                              f"(committed {len(cchain)})")
                continue
            live_leaders.append(b)
            hw = part.high_watermark
            key = (b.incarnation, part.leader_epoch)
            last = self.leader_hw.get(b.bid)
            if last is not None and last[:2] == key and hw < last[2]:
                self.fail(f"(2) b{b.bid}'s high watermark went back {last[2]} -> {hw} "
                          f"in leader epoch {part.leader_epoch}")
            self.leader_hw[b.bid] = (*key, hw)
            if hw > b.log.end_offset:
                self.fail(f"(2) b{b.bid}'s high watermark {hw} is past its log end")
            durable = not self.beyond_bound or self.p.strict
            n = min(hw, len(cchain))
            if durable and n and b.log.chain[n - 1] != cchain[n - 1]:
                self.fail(f"(2) leader b{b.bid} (epoch {part.leader_epoch}) exposes a "
                          f"different record below its high watermark {hw} than was "
                          f"committed before")
            if hw > len(cchain):
                cchain.extend(b.log.chain[len(cchain):hw])
                self.committed_pids.extend(b.log.pids[len(self.committed_pids):hw])
        g = self.reg
        if g.isr and all(self.brokers[m].recovering for m in g.isr) \
                and not self.beyond_bound:
            self.beyond_bound = True
            self.beyond_bound_at = self.event_index
            self.note(f"BEYOND THE FAILURE BOUND: every ISR member {list(g.isr)} lost "
                      f"committed records")
        if self.beyond_bound and not self.p.strict:
            return
        for lb in live_leaders:
            lpart = lb.part
            assert lpart is not None
            hw = lpart.high_watermark
            if hw == 0:
                continue
            want = lb.log.chain[hw - 1]
            for m in g.isr:
                mb = self.brokers[m]
                if m == lb.bid or not mb.alive or mb.recovering:
                    continue
                if mb.log.end_offset < hw or mb.log.chain[hw - 1] != want:
                    self.fail(f"(1) ISR member b{m} (log end {mb.log.end_offset}) disagrees "
                              f"with leader b{lb.bid} (epoch {lpart.leader_epoch}) below "
                              f"its high watermark {hw}")
        if g.leader != NO_LEADER and cchain:
            lb = self.brokers[g.leader]
            lpart = lb.part
            if lb.alive and lpart is not None and lpart.role is Role.LEADER and \
                    lpart.leader_epoch == g.leader_epoch:
                n = len(cchain)
                if lb.log.end_offset < n or lb.log.chain[n - 1] != cchain[n - 1]:
                    lost = [o for o, pid in self.acked.items()
                            if o >= lb.log.end_offset or lb.log.pids[o] != pid]
                    self.fail(f"(3) leader b{lb.bid} (epoch {g.leader_epoch}) lacks "
                              f"committed records below {n}; acked records lost at "
                              f"offsets {sorted(lost)[:10]}")

    # ---- running -----------------------------------------------------------------------
    def run_until(self, until: int, max_events: int | None = None) -> None:
        """Handle events up to virtual time ``until`` (at most ``max_events``)."""
        count = 0
        while self._events and self._events[0][0] <= until:
            at, _, fn = heapq.heappop(self._events)
            self.now = at
            self.event_index += 1
            fn()
            self.check_invariants()
            self._complete_produces()
            count += 1
            if max_events is not None and count >= max_events:
                break
        else:
            self.now = max(self.now, until)
        self.stats.events = self.event_index

    def partition(self, *groups: set[int]) -> None:
        """Cut every link between different groups (node 0 is the controller; a node in
        no group is cut from everyone)."""
        where = {n: i for i, g in enumerate(groups) for n in g}
        nodes = (CONTROLLER, *self.ids)
        self.cut = {frozenset((a, b)) for a in nodes for b in nodes
                    if a < b and where.get(a, -1 - a) != where.get(b, -1 - b)}
        self.note("partition " + " | ".join(
            ",".join("ctrl" if n == CONTROLLER else f"b{n}" for n in sorted(g))
            for g in groups))

    def cut_links(self, *pairs: tuple[int, int]) -> None:
        """Cut single links (node 0 is the controller)."""
        for a, b in pairs:
            self.cut.add(frozenset((a, b)))
        self.note("cut " + " ".join(f"{a}-{b}" for a, b in pairs))

    def heal(self) -> None:
        """Restore every link."""
        self.cut = set()
        self.note("heal")

    def set_drop(self, rate: float) -> None:
        """Message loss rate from now on."""
        self.drop_rate = rate
        self.note(f"drop rate {rate}")

    def set_meta_delay(self, ms: int) -> None:
        """Extra delay of every controller message (slow metadata propagation)."""
        self.extra_meta_delay = ms
        self.note(f"metadata delay +{ms} ms")

    def random_workload(self, duration: int) -> None:
        """Schedule writes (every 8-30 ms) and faults (every 60-300 ms: crash and
        restart, partition, cut links, lossy network, slow metadata) over ``duration``."""
        rng = self.rng
        end = self.now + duration
        t = self.now
        while t < end:
            t += rng.randint(8, 30)
            self.at(t, self.produce, workload=True)
        t = self.now + 100
        nodes = (CONTROLLER, *self.ids)
        while True:
            t += rng.randint(60, 300)
            if t >= end:
                break
            kind = rng.random()
            if kind < 0.3:
                v = rng.choice(self.ids)
                self.at(t, lambda v=v: self.crash(v), workload=True)
                self.at(t + rng.randint(20, 500), lambda v=v: self.restart(v), workload=True)
            elif kind < 0.6:
                shuffled = list(nodes)
                rng.shuffle(shuffled)
                cut = rng.randint(1, len(nodes) - 1)
                a, b = set(shuffled[:cut]), set(shuffled[cut:])
                self.at(t, lambda a=a, b=b: self.partition(a, b), workload=True)
                self.at(t + rng.randint(50, 600), self.heal, workload=True)
            elif kind < 0.72:
                pairs = [(x, y) for x in nodes for y in nodes if x < y]
                chosen = rng.sample(pairs, rng.randint(1, 2))
                self.at(t, lambda c=chosen: self.cut_links(*c), workload=True)
                self.at(t + rng.randint(50, 600), self.heal, workload=True)
            elif kind < 0.86:
                self.at(t, lambda: self.set_drop(0.3), workload=True)
                self.at(t + rng.randint(50, 300), lambda: self.set_drop(self.p.drop_rate),
                        workload=True)
            else:
                extra = rng.randint(20, 120)
                self.at(t, lambda d=extra: self.set_meta_delay(d), workload=True)
                self.at(t + rng.randint(50, 400), lambda: self.set_meta_delay(0), workload=True)

    def heal_everything(self) -> None:
        """Heal links, stop losses and delays, restart every crashed broker."""
        self.heal()
        self.set_drop(0.0)
        self.dup_rate = 0.0
        self.set_meta_delay(0)
        for bid in self.ids:
            self.restart(bid)

    def check_convergence(self, bound_ms: int) -> int:
        """After ``heal_everything`` (and no more writes): within ``bound_ms`` every
        replica is in the ISR, has the leader's log and the high watermark is the log
        end. Returns the virtual time it took."""
        start = self.now
        while self.now < start + bound_ms:
            self.run_until(self.now + 10)
            g = self.reg
            if g.leader == NO_LEADER or set(g.isr) != set(self.ids):
                continue
            lb = self.brokers[g.leader]
            lpart = lb.part
            if lpart is None or lpart.role is not Role.LEADER or \
                    lpart.leader_epoch != g.leader_epoch:
                continue
            end = lb.log.end_offset
            if lpart.high_watermark != end:
                continue
            if all(self.brokers[b].log.end_offset == end and
                   self.brokers[b].log.prefix_id(end) == lb.log.prefix_id(end)
                   for b in self.ids):
                return self.now - start
        self.fail(f"liveness: no full ISR with equal logs within {bound_ms} ms after "
                  f"healing")
        raise AssertionError("unreachable")

    def describe(self) -> str:
        """One line of controller and broker state, for failure reports."""
        g = self.reg
        parts = [f"ctrl: leader b{g.leader} epoch {g.leader_epoch} pe {g.partition_epoch} "
                 f"isr {list(g.isr)} fenced {sorted(set(self.ids) - self.unfenced())}"]
        for b in self.brokers.values():
            if not b.alive or b.part is None:
                parts.append(f"b{b.bid}=down(log {b.log.end_offset})")
                continue
            p = b.part
            parts.append(f"b{b.bid}={p.role.value}/e{p.leader_epoch}/hw{p.high_watermark}"
                         f"/leo{b.log.end_offset}/isr{list(p.isr)}"
                         + ("/recovering" if b.recovering else ""))
        parts.append(f"committed {len(self.committed_chain)} acked {len(self.acked)}")
        return "; ".join(parts)


# ---- randomized runs --------------------------------------------------------------------
def kafka_shell(p: SimParams) -> SimParams:
    """``p`` with Kafka's shell choices instead of Strom's: the new leader's epoch enters
    its cache on takeover, AlterPartition carries the broker epochs followers fetched with
    (KIP-903), and a fenced broker still leads and follows."""
    return dataclasses.replace(p, assign_epoch_on_takeover=True, alter_epochs_from_fetch=True,
                               serve_only_unfenced=False)


CHAOS_MS = 3000  # the tests' values: a replay reproduces a test's run exactly
MAX_EVENTS = 5000
CONVERGE_MS = 3000


def run_seed(seed: int, replicas: int = 3, min_isr: int = 2, *, verbose: bool = False,
             chaos_ms: int = CHAOS_MS, max_events: int = MAX_EVENTS,
             params: SimParams | None = None) -> Simulation:
    """One randomized run: ``chaos_ms`` of faults and writes (at most ``max_events``),
    then heal everything and check convergence."""
    p = params or SimParams(replicas=replicas, min_isr=min_isr)
    sim = Simulation(seed, p, verbose=verbose)
    sim.random_workload(chaos_ms)
    sim.run_until(chaos_ms, max_events=max_events)
    sim.stop_workload()
    sim.heal_everything()
    sim.check_convergence(CONVERGE_MS)
    return sim


def main(argv: list[str] | None = None) -> int:
    """Replay one seed (``-v`` prints every event); exit status 1 on a violation."""
    ap = argparse.ArgumentParser(description="replay one replication simulation seed")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--rf", type=int, default=3)
    ap.add_argument("--min-isr", type=int, default=2)
    ap.add_argument("--naive-alter", action="store_true")
    ap.add_argument("--kafka", action="store_true",
                    help="Kafka's shell: takeover epochs, fetch broker epochs, fenced serving")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every event")
    args = ap.parse_args(argv)
    params = SimParams(replicas=args.rf, min_isr=args.min_isr, naive_alter=args.naive_alter)
    if args.kafka:
        params = kafka_shell(params)
    try:
        sim = run_seed(args.seed, verbose=args.verbose, params=params)
    except InvariantViolation as exc:
        print(f"VIOLATION: {exc}")
        if not args.verbose:
            print("\n".join(exc.history))
        return 1
    print(f"seed {args.seed} ok: {sim.stats}" + (
        f" (beyond the failure bound from event #{sim.beyond_bound_at})"
        if sim.beyond_bound else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
