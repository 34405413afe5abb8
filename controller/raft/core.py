"""The Raft core: a pure KRaft-shaped state machine (no I/O, no clock, no global random).

Driving it (etcd's raft pattern)::

    core = RaftCore(config, random.Random(seed), durable=recovered_state, now_ms=now)
    loop:
        core.tick(now_ms)              # timers: elections, fetch timeouts, resends
        core.step(message, now_ms)     # every message received from a peer
        core.propose([payload, ...])   # leader only: append to the log
        if core.has_ready():
            rd = core.ready()          # see ``Ready`` for what the shell must do, in order
            ...persist rd, apply rd.committed, then send rd.messages...
            core.advance(rd)
        sleep until core.next_deadline() or a message arrives

Shared rules (every role):
- Epochs never decrease. Any message carrying a higher epoch moves the node to that
  epoch first: Follower if the message names the leader, Unattached otherwise.
- A node votes at most once per epoch: ``voted_for`` is part of the durable
  ``QuorumState`` and is persisted (Ready) before the VoteResponse is sent.
- A log is "at least as up to date" when (last epoch, end offset) compares >=.
- Responses are acted on only if they answer a request the current role still waits for
  (correlation id); late, duplicated and reordered responses are ignored.
- Requests with a stale epoch get FENCED_LEADER_EPOCH, from the future
  UNKNOWN_LEADER_EPOCH; requests to a non-leader get NOT_LEADER_OR_FOLLOWER; each
  response names the leader and epoch the node knows, so the sender can follow it.
- Requests from another cluster id get INCONSISTENT_CLUSTER_ID; votes from or to nodes
  outside the voter set get INCONSISTENT_VOTER_SET.

Per-role rules live in ``controller.raft.roles.*``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from controller.raft import errors
from controller.raft.log import RaftLog
from controller.raft.messages import (
    BeginQuorumEpochRequest,
    BeginQuorumEpochResponse,
    EndQuorumEpochRequest,
    EndQuorumEpochResponse,
    FetchRequest,
    FetchResponse,
    FetchSnapshotRequest,
    FetchSnapshotResponse,
    Message,
    VoteRequest,
    VoteResponse,
)
from controller.raft.roles import candidate, follower, leader, prospective, resigned, unattached
from controller.raft.roles.candidate import CandidateState
from controller.raft.roles.follower import FollowerState
from controller.raft.roles.leader import LeaderState
from controller.raft.roles.prospective import ProspectiveState
from controller.raft.roles.resigned import ResignedState
from controller.raft.roles.unattached import UnattachedState
from controller.raft.types import (
    NO_NODE,
    DurableState,
    Entry,
    OffsetAndEpoch,
    QuorumInfo,
    QuorumState,
    RaftConfig,
    Ready,
    ReplicaInfo,
    Snapshot,
    SnapshotId,
)

RoleState = (
    UnattachedState | ProspectiveState | CandidateState | FollowerState | LeaderState
    | ResignedState
)

LEADER_CHANGE_MAGIC = b"LC1"


def encode_leader_change(leader_id: int, voters: Sequence[int]) -> bytes:
    """Payload of the LeaderChange control entry: ``LC1 <leader> <voter,voter,...>``."""
    return b"%s %d %s" % (LEADER_CHANGE_MAGIC, leader_id,
                          ",".join(str(v) for v in sorted(voters)).encode())


def decode_leader_change(payload: bytes) -> tuple[int, frozenset[int]] | None:
    """(leader, voters) of a LeaderChange payload, None if it is not one."""
    parts = payload.split(b" ")
    if len(parts) != 3 or parts[0] != LEADER_CHANGE_MAGIC:
        return None
    try:
        return int(parts[1]), frozenset(int(v) for v in parts[2].split(b",") if v)
    except ValueError:
        return None


class RaftCore:
    """One node of the quorum. Not thread-safe: drive it from one task."""

    def __init__(
        self,
        config: RaftConfig,
        rng: random.Random,
        durable: DurableState | None = None,
        *,
        now_ms: int = 0,
    ) -> None:
        durable = durable or DurableState()
        self.config = config
        self.node_id = config.node_id
        self.rng = rng
        self.now = now_ms
        snap = durable.snapshot
        self.log = RaftLog(snap.snapshot_id if snap else None, durable.entries)
        self.latest_snapshot: Snapshot | None = snap
        self.high_watermark = self.log.start_offset
        self._committed_upto = self.log.start_offset
        self.persisted_end_offset = self.log.end_offset
        # correlation ids start at a random point so responses addressed to a previous
        # incarnation of this node are not mistaken for answers to this one's requests
        self._next_correlation = rng.randrange(1 << 40) << 16
        # pending Ready contents
        self._messages: list[Message] = []
        self._entries: list[Entry] = []
        self._truncate_to: int | None = None
        self._snapshot: Snapshot | None = None
        self._snapshot_received = False
        self._committed: list[Entry] = []
        self._inflight_ready: Ready | None = None

        qs = durable.quorum_state
        self._durable_qs = qs
        self._qs_dirty = False
        self.state: RoleState
        if qs.epoch < self.log.last_epoch:
            # the log saw a newer epoch than the quorum-state file (crash between writes)
            self.state = UnattachedState(self.log.last_epoch, NO_NODE,
                                         self.random_election_deadline())
        elif qs.leader_id == self.node_id and config.is_voter:
            self.state = ResignedState(qs.epoch, self.node_id, qs.voted_for,
                                       self.random_election_deadline())
        elif qs.leader_id >= 0:
            self.state = FollowerState(qs.epoch, qs.leader_id, qs.voted_for,
                                       now_ms + config.fetch_timeout_ms)
        else:
            self.state = UnattachedState(qs.epoch, qs.voted_for, self.random_election_deadline())
        self._note_quorum_state()
        self._start_role()

    # ---- read-only view ---------------------------------------------------------
    @property
    def role(self) -> str:
        return self.state.role

    @property
    def epoch(self) -> int:
        return self.state.epoch

    @property
    def leader_id(self) -> int:
        return self.state.leader_id

    @property
    def voted_for(self) -> int:
        return self.state.voted_for

    @property
    def is_leader(self) -> bool:
        return isinstance(self.state, LeaderState)

    def quorum_state(self) -> QuorumState:
        return QuorumState(self.epoch, self.leader_id, self.voted_for)

    def other_voters(self) -> list[int]:
        return sorted(v for v in self.config.voters if v != self.node_id)

    def random_election_deadline(self) -> int:
        timeout = self.config.election_timeout_ms
        return self.now + timeout + self.rng.randrange(timeout)

    def next_deadline(self) -> int:
        """The earliest virtual/real time at which ``tick`` has something to do."""
        st = self.state
        if isinstance(st, LeaderState):
            times = [st.check_quorum_deadline]
            times += [expires for _, expires in st.parked.values()]
            times.append(st.begin_resend_at)
            return min(times)
        if isinstance(st, FollowerState):
            nxt = st.inflight_expires if st.inflight is not None else st.next_send_at
            return min(st.fetch_deadline, nxt)
        if isinstance(st, CandidateState):
            return min(st.election_deadline, st.resend_at)
        if isinstance(st, ResignedState):
            return min(st.election_deadline, st.resend_at) if st.unacked else \
                st.election_deadline
        if isinstance(st, UnattachedState) and not self.config.is_voter:
            return st.probe_at
        return st.election_deadline

    def describe_quorum(self) -> QuorumInfo | None:
        """DescribeQuorum data, or None when this node is not the leader."""
        st = self.state
        if not isinstance(st, LeaderState):
            return None

        def info(rid: int, p: leader.ReplicaProgress) -> ReplicaInfo:
            if rid == self.node_id:
                return ReplicaInfo(rid, self.persisted_end_offset, self.now, self.now)
            return ReplicaInfo(rid, p.end_offset, p.last_fetch_ms, p.last_caught_up_ms)

        return QuorumInfo(
            leader_id=self.node_id,
            leader_epoch=st.epoch,
            high_watermark=self.high_watermark,
            current_voters=tuple(info(r, p) for r, p in sorted(st.voters.items())),
            observers=tuple(info(r, p) for r, p in sorted(st.observers.items())),
        )

    # ---- inputs -----------------------------------------------------------------
    def tick(self, now_ms: int) -> None:
        """Advance the clock to ``now_ms`` and fire whatever timers expired."""
        self.now = max(self.now, now_ms)
        st = self.state
        if (self.config.voters == {self.node_id}
                and not isinstance(st, LeaderState | CandidateState)):
            self.become_candidate()  # a one-voter quorum elects itself at once
            return
        if isinstance(st, LeaderState):
            leader.on_tick(self, st)
        elif isinstance(st, FollowerState):
            follower.on_tick(self, st)
        elif isinstance(st, CandidateState):
            candidate.on_tick(self, st)
        elif isinstance(st, ProspectiveState):
            prospective.on_tick(self, st)
        elif isinstance(st, ResignedState):
            resigned.on_tick(self, st)
        else:
            unattached.on_tick(self, st)

    def step(self, msg: Message, now_ms: int | None = None) -> None:
        """Feed one message from a peer. Messages for another node are ignored."""
        if now_ms is not None:
            self.now = max(self.now, now_ms)
        if msg.dst != self.node_id:
            return
        if isinstance(msg, FetchResponse):
            self._on_fetch_response(msg)
        elif isinstance(msg, FetchRequest):
            self._on_fetch_request(msg)
        elif isinstance(msg, VoteRequest):
            self._on_vote_request(msg)
        elif isinstance(msg, VoteResponse):
            self._on_vote_response(msg)
        elif isinstance(msg, BeginQuorumEpochRequest):
            self._on_begin_quorum_epoch(msg)
        elif isinstance(msg, BeginQuorumEpochResponse):
            self._observe(msg.leader_epoch, msg.leader_id)
            if isinstance(self.state, LeaderState):
                leader.on_begin_quorum_epoch_response(self, self.state, msg)
        elif isinstance(msg, EndQuorumEpochRequest):
            self._on_end_quorum_epoch(msg)
        elif isinstance(msg, EndQuorumEpochResponse):
            self._observe(msg.leader_epoch, msg.leader_id)
            if isinstance(self.state, ResignedState):
                resigned.on_end_quorum_epoch_response(self, self.state, msg)
        elif isinstance(msg, FetchSnapshotRequest):
            self._on_fetch_snapshot_request(msg)
        elif isinstance(msg, FetchSnapshotResponse):
            self._observe(msg.leader_epoch, msg.leader_id)
            if isinstance(self.state, FollowerState):
                follower.on_fetch_snapshot_response(self, self.state, msg)
        else:
            raise TypeError(f"not a quorum message: {type(msg).__name__}")

    def propose(self, payloads: Sequence[bytes]) -> int:
        """Append payloads as entries of the current epoch (leader only); returns the
        offset of the last one. Committed once the high watermark passes it."""
        st = self.state
        if not isinstance(st, LeaderState):
            raise errors.NotLeaderError(self.leader_id, self.epoch)
        for payload in payloads:
            self._append(Entry(self.log.end_offset, st.epoch, bytes(payload)))
        leader.complete_parked(self, st)
        return self.log.end_offset - 1

    def resign(self) -> None:
        """Give up leadership (graceful shutdown): EndQuorumEpoch goes to the voters."""
        st = self.state
        if not isinstance(st, LeaderState):
            return
        ends = {v: (self.persisted_end_offset if v == self.node_id else p.end_offset)
                for v, p in st.voters.items()}
        preferred = tuple(sorted(self.other_voters(), key=lambda v: (-ends[v], v)))
        self._set_state(ResignedState(st.epoch, self.node_id, st.voted_for,
                                      self.random_election_deadline(), preferred))

    def snapshot_taken(self, snapshot: Snapshot) -> None:
        """The application serialized its state after applying every committed entry below
        ``snapshot.snapshot_id.end_offset``: keep it for FetchSnapshot, compact the log."""
        sid = snapshot.snapshot_id
        if sid.end_offset > self._committed_upto:
            raise ValueError(f"snapshot end {sid.end_offset} beyond the committed offset "
                             f"{self._committed_upto}")
        if sid.end_offset <= self.log.start_offset:
            return
        expected = self.log.entry(sid.end_offset - 1).epoch
        if sid.epoch != expected:
            raise ValueError(f"snapshot epoch {sid.epoch} != epoch {expected} of entry "
                             f"{sid.end_offset - 1}")
        if self._snapshot_received:
            raise ValueError("a received snapshot is still waiting to be persisted")
        self.log.compact_to(sid)
        self.latest_snapshot = snapshot
        self._snapshot = snapshot

    # ---- Ready / advance --------------------------------------------------------
    def has_ready(self) -> bool:
        if self._inflight_ready is not None:
            return False
        return bool(self._messages or self._entries or self._qs_dirty or self._snapshot
                    or self._truncate_to is not None or self._committed)

    def ready(self) -> Ready:
        """Collect the pending work. Call ``advance`` with it before the next ``ready``."""
        if self._inflight_ready is not None:
            raise RuntimeError("ready() called again before advance()")
        rd = Ready(
            messages=tuple(self._messages),
            quorum_state=self._durable_qs if self._qs_dirty else None,
            snapshot=self._snapshot,
            snapshot_received=self._snapshot_received,
            truncate_to=self._truncate_to,
            entries=tuple(self._entries),
            committed=tuple(self._committed),
            high_watermark=self.high_watermark,
            log_end_offset=self.log.end_offset,
        )
        self._messages, self._entries, self._committed = [], [], []
        self._truncate_to, self._snapshot, self._snapshot_received = None, None, False
        self._qs_dirty = False
        self._inflight_ready = rd
        return rd

    def advance(self, rd: Ready) -> None:
        """The shell persisted ``rd`` (and sent its messages)."""
        if rd is not self._inflight_ready:
            raise RuntimeError("advance() with a Ready that is not the outstanding one")
        self._inflight_ready = None
        self.persisted_end_offset = min(rd.log_end_offset, self.log.end_offset)
        st = self.state
        if isinstance(st, LeaderState):
            leader.maybe_update_high_watermark(self, st)

    # ---- transitions (called by role modules) -----------------------------------
    def become_unattached(self, epoch: int, *, voted_for: int = NO_NODE) -> None:
        self._set_state(UnattachedState(epoch, voted_for, self.random_election_deadline()))

    def become_follower(self, epoch: int, leader_id: int) -> None:
        voted = self.voted_for if epoch == self.epoch else NO_NODE
        self._set_state(FollowerState(epoch, leader_id, voted,
                                      self.now + self.config.fetch_timeout_ms))

    def become_prospective(self) -> None:
        st = self.state
        if isinstance(st, FollowerState):
            leader_id = st.leader_id
        elif isinstance(st, ProspectiveState):
            leader_id = st.last_leader_id
        else:
            leader_id = NO_NODE
        self._set_state(ProspectiveState(st.epoch, leader_id, st.voted_for,
                                         self.random_election_deadline()))

    def become_candidate(self) -> None:
        self._set_state(CandidateState(self.epoch + 1, self.node_id,
                                       self.random_election_deadline()))

    def become_leader(self) -> None:
        st = self.state
        start = self.log.end_offset
        self._set_state(LeaderState(
            st.epoch, self.node_id, self.node_id, start,
            self.now + leader.check_quorum_window(self),
        ), start_role=False)
        self._append(Entry(start, st.epoch,
                           encode_leader_change(self.node_id, sorted(self.config.voters)),
                           control=True))
        self._start_role()

    def _set_state(self, st: RoleState, *, start_role: bool = True) -> None:
        self.state = st
        self._note_quorum_state()
        if start_role:
            self._start_role()

    def _start_role(self) -> None:
        st = self.state
        if isinstance(st, FollowerState):
            follower.start(self, st)
        elif isinstance(st, ProspectiveState):
            prospective.start(self, st)
        elif isinstance(st, CandidateState):
            candidate.start(self, st)
        elif isinstance(st, LeaderState):
            leader.start(self, st)
        elif isinstance(st, ResignedState):
            resigned.start(self, st)

    def _note_quorum_state(self) -> None:
        qs = self.quorum_state()
        if qs != self._durable_qs:
            self._durable_qs = qs
            self._qs_dirty = True

    # ---- log changes (called by role modules) -----------------------------------
    def _append(self, entry: Entry) -> None:
        self.log.append(entry)
        self._entries.append(entry)

    def append_as_follower(self, entries: Sequence[Entry]) -> None:
        for entry in entries:
            if entry.control:
                change = decode_leader_change(entry.payload)
                if change is not None and change[1] != self.config.voters:
                    raise errors.InconsistentVoterSetError(
                        f"node {self.node_id}: the log at offset {entry.offset} was written "
                        f"by leader {change[0]} of a quorum with voters {sorted(change[1])}, "
                        f"but controller.quorum.voters says {sorted(self.config.voters)}")
            self._append(entry)

    def truncate_log(self, offset: int) -> None:
        if offset >= self.log.end_offset:
            return
        self.log.truncate_to(offset)
        self._entries = [e for e in self._entries if e.offset < offset]
        self._truncate_to = offset if self._truncate_to is None else min(self._truncate_to,
                                                                          offset)

    def install_snapshot(self, snapshot: Snapshot) -> None:
        sid = snapshot.snapshot_id
        self.log.reset_to_snapshot(sid)
        self.latest_snapshot = snapshot
        self._entries, self._truncate_to = [], None
        self._snapshot, self._snapshot_received = snapshot, True
        self._committed = []
        self._committed_upto = sid.end_offset
        self.high_watermark = max(self.high_watermark, sid.end_offset)

    def update_high_watermark(self, hw: int) -> None:
        if hw <= self.high_watermark:
            return
        self.high_watermark = hw
        start = max(self._committed_upto, self.log.start_offset)
        self._committed.extend(self.log.slice(start, hw))
        self._committed_upto = max(self._committed_upto, hw)

    # ---- outbound messages (called by role modules) -----------------------------
    def _correlation(self) -> int:
        self._next_correlation += 1
        return self._next_correlation

    def send_vote_request(self, dst: int, epoch: int, *, pre_vote: bool) -> int:
        cid = self._correlation()
        last = self.log.end_offset_and_epoch()
        self._messages.append(VoteRequest(
            self.node_id, dst, cid, self.config.cluster_id, epoch, self.node_id,
            last.epoch, last.offset, pre_vote))
        return cid

    def send_begin_quorum_epoch(self, dst: int, epoch: int) -> int:
        cid = self._correlation()
        self._messages.append(BeginQuorumEpochRequest(
            self.node_id, dst, cid, self.config.cluster_id, self.node_id, epoch))
        return cid

    def send_end_quorum_epoch(self, dst: int, epoch: int, preferred: tuple[int, ...]) -> int:
        cid = self._correlation()
        self._messages.append(EndQuorumEpochRequest(
            self.node_id, dst, cid, self.config.cluster_id, self.node_id, epoch, preferred))
        return cid

    def send_fetch(self, dst: int, epoch: int) -> int:
        cid = self._correlation()
        self._messages.append(FetchRequest(
            self.node_id, dst, cid, self.config.cluster_id, self.node_id,
            self.config.fetch_max_wait_ms, epoch, self.log.end_offset, self.log.last_epoch,
            self.log.start_offset, self.config.fetch_max_bytes, self.high_watermark))
        return cid

    def send_probe_fetch(self) -> None:
        """Observer without a leader: ask a random voter (the answer names the leader)."""
        voters = sorted(self.config.voters)
        self.send_fetch(voters[self.rng.randrange(len(voters))], self.epoch)

    def send_fetch_snapshot(self, dst: int, epoch: int, sid: SnapshotId, position: int) -> int:
        cid = self._correlation()
        self._messages.append(FetchSnapshotRequest(
            self.node_id, dst, cid, self.config.cluster_id, self.node_id,
            self.config.snapshot_chunk_bytes, epoch, sid, position))
        return cid

    def respond_fetch(
        self,
        m: FetchRequest,
        *,
        error: int = errors.NONE,
        records: tuple[Entry, ...] = (),
        diverging: OffsetAndEpoch | None = None,
        snapshot_id: SnapshotId | None = None,
    ) -> None:
        self._messages.append(FetchResponse(
            self.node_id, m.src, m.correlation_id, error,
            self.high_watermark if self.is_leader else -1, self.log.start_offset,
            diverging.epoch if diverging else -1, diverging.offset if diverging else -1,
            self.leader_id, self.epoch, snapshot_id, records))

    def respond_fetch_snapshot(self, m: FetchSnapshotRequest, *, error: int = errors.NONE,
                               size: int = -1, data: bytes = b"") -> None:
        self._messages.append(FetchSnapshotResponse(
            self.node_id, m.src, m.correlation_id, error, m.snapshot_id, self.leader_id,
            self.epoch, size, m.position, data))

    def _vote_response(self, m: VoteRequest, granted: bool, error: int = errors.NONE) -> None:
        self._messages.append(VoteResponse(self.node_id, m.src, m.correlation_id, error,
                                           self.leader_id, self.epoch, granted))

    # ---- shared handlers --------------------------------------------------------
    def _observe(self, epoch: int, leader_id: int) -> None:
        """Apply the epoch rule: a higher epoch or a newly learned leader moves us.
        A leader outside our voter set is not followed (treated as unknown)."""
        if leader_id not in self.config.voters:
            leader_id = NO_NODE
        if epoch > self.epoch:
            if leader_id >= 0 and leader_id != self.node_id:
                self.become_follower(epoch, leader_id)
            else:
                self.become_unattached(epoch)
        elif (epoch == self.epoch and leader_id >= 0 and leader_id != self.node_id
              and isinstance(self.state, UnattachedState | ProspectiveState | CandidateState)):
            self.become_follower(epoch, leader_id)

    def _on_vote_request(self, m: VoteRequest) -> None:
        if m.cluster_id != self.config.cluster_id:
            self._vote_response(m, False, errors.INCONSISTENT_CLUSTER_ID)
            return
        if not self.config.is_voter or m.replica_id not in self.config.voters:
            self._vote_response(m, False, errors.INCONSISTENT_VOTER_SET)
            return
        up_to_date = (OffsetAndEpoch(m.last_offset_epoch, m.last_offset)
                      >= self.log.end_offset_and_epoch())
        if m.pre_vote:
            self._vote_response(m, m.replica_epoch > self.epoch and up_to_date
                                and self._can_grant_pre_vote())
            return
        if m.replica_epoch < self.epoch:
            self._vote_response(m, False)
            return
        if m.replica_epoch > self.epoch:
            self.become_unattached(m.replica_epoch)
        st = self.state
        granted = False
        if (isinstance(st, UnattachedState)
                or (isinstance(st, ProspectiveState) and st.last_leader_id < 0)) and (
                st.voted_for in (NO_NODE, m.replica_id) and up_to_date):
            granted = True
            if isinstance(st, UnattachedState):
                unattached.grant_vote(self, st, m.replica_id)
                self._note_quorum_state()
            else:
                self.become_unattached(st.epoch, voted_for=m.replica_id)
        self._vote_response(m, granted)

    def _can_grant_pre_vote(self) -> bool:
        st = self.state
        if isinstance(st, LeaderState):
            return False
        if isinstance(st, FollowerState):
            return not st.fetched_recently(self.now, self.config.fetch_timeout_ms)
        return True

    def _on_vote_response(self, m: VoteResponse) -> None:
        if m.leader_epoch > self.epoch or not m.vote_granted:
            # a voter that grants has given up on the leader it names: do not follow it
            self._observe(m.leader_epoch, m.leader_id)
        st = self.state
        if isinstance(st, ProspectiveState):
            prospective.on_vote_response(self, st, m)
        elif isinstance(st, CandidateState):
            candidate.on_vote_response(self, st, m)

    def _on_begin_quorum_epoch(self, m: BeginQuorumEpochRequest) -> None:
        def answer(error: int) -> None:
            self._messages.append(BeginQuorumEpochResponse(
                self.node_id, m.src, m.correlation_id, error, self.leader_id, self.epoch))

        if m.cluster_id != self.config.cluster_id:
            answer(errors.INCONSISTENT_CLUSTER_ID)
        elif m.leader_id not in self.config.voters:
            answer(errors.INCONSISTENT_VOTER_SET)
        elif m.leader_epoch < self.epoch:
            answer(errors.FENCED_LEADER_EPOCH)
        else:
            self._observe(m.leader_epoch, m.leader_id)
            answer(errors.NONE)

    def _on_end_quorum_epoch(self, m: EndQuorumEpochRequest) -> None:
        def answer(error: int) -> None:
            self._messages.append(EndQuorumEpochResponse(
                self.node_id, m.src, m.correlation_id, error, self.leader_id, self.epoch))

        if m.cluster_id != self.config.cluster_id:
            answer(errors.INCONSISTENT_CLUSTER_ID)
            return
        if m.leader_epoch < self.epoch:
            answer(errors.FENCED_LEADER_EPOCH)
            return
        self._observe(m.leader_epoch, m.leader_id)
        st = self.state
        if isinstance(st, FollowerState) and st.leader_id == m.leader_id:
            follower.on_end_quorum_epoch(self, st, m.preferred_candidates)
        answer(errors.NONE)

    def _request_epoch_error(self, epoch: int) -> int:
        if epoch < self.epoch:
            return errors.FENCED_LEADER_EPOCH
        if epoch > self.epoch:
            return errors.UNKNOWN_LEADER_EPOCH
        return errors.NONE

    def _leader_request_error(self, m: FetchRequest | FetchSnapshotRequest) -> int:
        """Why this node cannot serve a Fetch/FetchSnapshot as leader; NONE when it can."""
        if m.cluster_id != self.config.cluster_id:
            return errors.INCONSISTENT_CLUSTER_ID
        error = self._request_epoch_error(m.current_leader_epoch)
        if error == errors.NONE and not isinstance(self.state, LeaderState):
            return errors.NOT_LEADER_OR_FOLLOWER
        return error

    def _on_fetch_request(self, m: FetchRequest) -> None:
        error = self._leader_request_error(m)
        st = self.state
        if error != errors.NONE or not isinstance(st, LeaderState):
            self.respond_fetch(m, error=error)
            return
        leader.on_fetch_request(self, st, m)

    def _on_fetch_snapshot_request(self, m: FetchSnapshotRequest) -> None:
        error = self._leader_request_error(m)
        st = self.state
        if error != errors.NONE or not isinstance(st, LeaderState):
            self.respond_fetch_snapshot(m, error=error)
            return
        leader.on_fetch_snapshot_request(self, st, m)

    def _on_fetch_response(self, m: FetchResponse) -> None:
        self._observe(m.leader_epoch, m.leader_id)
        st = self.state
        if isinstance(st, FollowerState) and m.src == st.leader_id:
            follower.on_fetch_response(self, st, m)
