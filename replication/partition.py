"""The replication state of one partition on one broker, as a pure value machine.

No I/O, no clock, no asyncio: callers pass ``now_ms`` and the log's offsets in, and act on
what the methods return (``ReplicaManager`` is the shell; ``tests/sim`` drives this class
on a simulated network). Kafka's vocabulary and rules (``Partition.scala``, KIP-101,
KIP-497, KIP-966):

- **Assignment** (from the metadata image): leader, leader epoch, partition epoch,
  replicas, ISR. ``apply_assignment`` turns it into a role: LEADER when the image names
  this broker leader, FOLLOWER when it is another replica of a partition with a leader,
  NONE otherwise (not a replica, or no leader: nothing to fetch from, nothing to serve).
- **Follower state** (leader only): per other replica, its log end offset (the offset of
  its last fetch; -1 until it fetched in this leader epoch), the time it was last caught
  up (its fetch offset reached the leader's log end offset of that fetch, or of the fetch
  before), and the leader's log end offset at its previous fetch.
- **High watermark** (leader): the smallest log end offset over the *maximal* ISR (the
  committed ISR plus replicas of a pending expansion, so a replica being added counts as
  soon as it is proposed), advancing only while the committed ISR holds at least
  ``min_insync_replicas`` members (KIP-966: the last replica standing cannot commit
  alone; a minimum above the replica count counts as the replica count). It never moves
  backwards on a leader. A replica whose log end offset is unknown holds the high
  watermark where it is.
- **ISR changes** (leader): a follower in the ISR that has not been caught up for
  ``replica.lag.time.max.ms`` is proposed for removal (``isr_to_shrink``); a follower out
  of the ISR whose log end offset reached both the high watermark and the start offset of
  the current leader epoch, on a broker that may join (``eligible``), is proposed for
  addition (``isr_to_expand``). One proposal is pending at a time; it ends when an
  assignment with a newer partition epoch arrives, or when the controller certainly did
  not apply it (``alter_failed``; never on a timeout or a stale-epoch answer).
- **Produce** (leader): acks=-1 is refused up front when the committed ISR is below
  ``min_insync_replicas`` (NOT_ENOUGH_REPLICAS); a delayed produce for ``required_offset``
  (its last offset + 1) completes with NONE when the high watermark reaches it, with
  NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR shrank below the minimum meanwhile, and
  with NOT_LEADER_OR_FOLLOWER when this broker stopped leading.
- **Replica fetch** (leader): ``check_replica_fetch`` answers FENCED_LEADER_EPOCH for an
  older current leader epoch, UNKNOWN_LEADER_EPOCH for a newer one and
  NOT_LEADER_OR_FOLLOWER for a replica id that is not an assigned replica.
- **Follower**: the high watermark it learns from each fetch response is capped by its own
  log end offset; it bounds what the follower serves to consumers (KIP-392), so they
  never read past what the leader said is committed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from protocol.errors import ErrorCode

NONE = 0
NOT_LEADER_OR_FOLLOWER = int(ErrorCode.not_leader_or_follower)
FENCED_LEADER_EPOCH = int(ErrorCode.fenced_leader_epoch)
UNKNOWN_LEADER_EPOCH = int(ErrorCode.unknown_leader_epoch)
NOT_ENOUGH_REPLICAS = int(ErrorCode.not_enough_replicas)
NOT_ENOUGH_REPLICAS_AFTER_APPEND = int(ErrorCode.not_enough_replicas_after_append)


class Role(enum.Enum):
    LEADER = "leader"
    FOLLOWER = "follower"
    NONE = "none"


class Transition(enum.Enum):
    """What ``apply_assignment`` changed."""

    UNCHANGED = "unchanged"
    BECAME_LEADER = "became_leader"
    BECAME_FOLLOWER = "became_follower"  # also: a new leader or leader epoch to follow
    STOPPED = "stopped"  # no longer leader or follower
    UPDATED = "updated"  # same role and epoch; ISR/replicas/partition epoch changed


@dataclass(frozen=True, slots=True)
class Assignment:
    """A partition as the metadata image has it."""

    leader: int
    leader_epoch: int
    partition_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


@dataclass(slots=True)
class FollowerState:
    log_end_offset: int = -1
    #: the log start offset its last fetch reported (-1: unknown); KIP-392 candidates
    log_start_offset: int = -1
    last_caught_up_ms: int = 0
    last_fetch_ms: int = 0
    last_fetch_leader_leo: int = -1
    #: the high watermark the leader last answered it with (-1: none yet); the shell
    #: answers its long poll when this is behind (KIP-392: followers serving consumers)
    last_sent_high_watermark: int = -1


@dataclass(frozen=True, slots=True)
class IsrProposal:
    """An AlterPartition item: the ISR the leader asks for, against its epochs."""

    leader_epoch: int
    partition_epoch: int
    isr: tuple[int, ...]


@dataclass(slots=True)
class Partition:
    topic: str
    index: int
    node_id: int
    min_insync_replicas: int = 1
    role: Role = Role.NONE
    leader_id: int = -1
    leader_epoch: int = -1
    partition_epoch: int = -1
    replicas: tuple[int, ...] = ()
    isr: tuple[int, ...] = ()
    #: ISR asked of the controller and not yet seen in an assignment
    pending_isr: tuple[int, ...] | None = None
    high_watermark: int = 0
    #: leader: log end offset when this leader epoch began
    epoch_start_offset: int = 0
    leader_log_end_offset: int = 0
    followers: dict[int, FollowerState] = field(default_factory=dict)

    # ---- assignment ------------------------------------------------------------------
    def apply_assignment(self, a: Assignment, *, log_end_offset: int, high_watermark: int,
                         now_ms: int) -> Transition:
        """Adopt the image's view. ``log_end_offset`` / ``high_watermark`` are the local
        log's (used when this broker becomes leader)."""
        if a.leader == self.node_id:
            if self.role is Role.LEADER and a.leader_epoch == self.leader_epoch:
                return self._update(a, now_ms)
            self.role = Role.LEADER
            self.leader_id = a.leader
            self.leader_epoch = a.leader_epoch
            self.partition_epoch = a.partition_epoch
            self.replicas, self.isr = a.replicas, a.isr
            self.pending_isr = None
            self.epoch_start_offset = self.leader_log_end_offset = log_end_offset
            self.high_watermark = min(high_watermark, log_end_offset)
            # ISR members start caught up: they get a full lag period to fetch
            self.followers = {r: FollowerState(last_caught_up_ms=now_ms if r in a.isr else 0)
                              for r in a.replicas if r != self.node_id}
            self.maybe_advance_high_watermark()
            return Transition.BECAME_LEADER
        if self.node_id in a.replicas and a.leader >= 0:
            same = (self.role is Role.FOLLOWER and self.leader_id == a.leader
                    and self.leader_epoch == a.leader_epoch)
            self.role = Role.FOLLOWER
            self.leader_id, self.leader_epoch = a.leader, a.leader_epoch
            self.partition_epoch = a.partition_epoch
            self.replicas, self.isr = a.replicas, a.isr
            self.pending_isr = None
            self.followers = {}
            self.high_watermark = min(high_watermark, log_end_offset)
            return Transition.UPDATED if same else Transition.BECAME_FOLLOWER
        was = self.role
        self.role = Role.NONE
        self.leader_id, self.leader_epoch = a.leader, a.leader_epoch
        self.partition_epoch = a.partition_epoch
        self.replicas, self.isr = a.replicas, a.isr
        self.pending_isr = None
        self.followers = {}
        return Transition.UNCHANGED if was is Role.NONE else Transition.STOPPED

    def _update(self, a: Assignment, now_ms: int) -> Transition:
        if (a.partition_epoch, a.replicas, a.isr) == (self.partition_epoch, self.replicas,
                                                       self.isr):
            return Transition.UNCHANGED
        self.partition_epoch = a.partition_epoch
        self.replicas, self.isr = a.replicas, a.isr
        self.pending_isr = None
        for r in a.replicas:
            if r != self.node_id and r not in self.followers:
                self.followers[r] = FollowerState()
        for r in list(self.followers):
            if r not in a.replicas:
                del self.followers[r]
        self.maybe_advance_high_watermark()
        return Transition.UPDATED

    # ---- leader: high watermark ------------------------------------------------------
    @property
    def maximal_isr(self) -> tuple[int, ...]:
        if self.pending_isr is None:
            return self.isr
        return self.isr + tuple(r for r in self.pending_isr if r not in self.isr)

    def maybe_advance_high_watermark(self) -> bool:
        """Recompute the leader's high watermark; True if it moved."""
        # a minimum above the replica count could never be met: acks=-1 is refused
        # (``check_produce``), but acks=0/1 records still become visible
        if self.role is not Role.LEADER \
                or len(self.isr) < min(self.min_insync_replicas, len(self.replicas)):
            return False
        candidate = self.leader_log_end_offset
        for r in self.maximal_isr:
            if r == self.node_id:
                continue
            state = self.followers.get(r)
            if state is None or state.log_end_offset < 0:
                return False
            candidate = min(candidate, state.log_end_offset)
        if candidate > self.high_watermark:
            self.high_watermark = candidate
            return True
        return False

    def on_leader_append(self, log_end_offset: int) -> bool:
        """The leader's log grew to ``log_end_offset``; True if the high watermark moved."""
        self.leader_log_end_offset = log_end_offset
        return self.maybe_advance_high_watermark()

    # ---- leader: replica fetches ------------------------------------------------------
    def check_replica_fetch(self, replica_id: int, current_leader_epoch: int) -> int:
        if self.role is not Role.LEADER:
            return NOT_LEADER_OR_FOLLOWER
        if current_leader_epoch >= 0 and current_leader_epoch < self.leader_epoch:
            return FENCED_LEADER_EPOCH
        if current_leader_epoch > self.leader_epoch:
            return UNKNOWN_LEADER_EPOCH
        if replica_id not in self.followers:
            return NOT_LEADER_OR_FOLLOWER
        return NONE

    def on_follower_fetch(self, replica_id: int, fetch_offset: int, now_ms: int, *,
                          log_start_offset: int = -1) -> bool:
        """Record a follower's fetch at ``fetch_offset`` (its log end offset) and, when
        given (>= 0), its log start offset; True if the high watermark moved. Call only
        after ``check_replica_fetch`` returned NONE."""
        state = self.followers[replica_id]
        if log_start_offset >= 0:
            state.log_start_offset = log_start_offset
        leo = self.leader_log_end_offset
        if fetch_offset >= leo:
            state.last_caught_up_ms = now_ms
        elif fetch_offset >= state.last_fetch_leader_leo >= 0:
            state.last_caught_up_ms = max(state.last_caught_up_ms, state.last_fetch_ms)
        state.log_end_offset = fetch_offset
        state.last_fetch_leader_leo = leo
        state.last_fetch_ms = now_ms
        return self.maybe_advance_high_watermark()

    # ---- leader: ISR changes ----------------------------------------------------------
    def isr_to_shrink(self, now_ms: int, lag_time_max_ms: int) -> IsrProposal | None:
        """Drop followers in the ISR not caught up within ``lag_time_max_ms``."""
        if self.role is not Role.LEADER or self.pending_isr is not None:
            return None
        lagging = {r for r in self.isr if r != self.node_id and (
            r not in self.followers
            or now_ms - self.followers[r].last_caught_up_ms > lag_time_max_ms)}
        if not lagging:
            return None
        return self._propose(tuple(r for r in self.isr if r not in lagging))

    def isr_to_expand(self, eligible: set[int] | frozenset[int]) -> IsrProposal | None:
        """Add followers out of the ISR that caught up (see the module doc)."""
        if self.role is not Role.LEADER or self.pending_isr is not None:
            return None
        joining = tuple(
            r for r in self.replicas
            if r != self.node_id and r not in self.isr and r in eligible
            and (s := self.followers.get(r)) is not None
            and s.log_end_offset >= self.high_watermark
            and s.log_end_offset >= self.epoch_start_offset)
        if not joining:
            return None
        return self._propose(self.isr + joining)

    def _propose(self, isr: tuple[int, ...]) -> IsrProposal:
        self.pending_isr = isr
        return IsrProposal(self.leader_epoch, self.partition_epoch, isr)

    def alter_failed(self) -> None:
        """The controller certainly did not apply the pending proposal (INELIGIBLE_REPLICA,
        INVALID_REQUEST, STALE_BROKER_EPOCH): forget it.

        Not on a timeout, a lost answer, FENCED_LEADER_EPOCH or INVALID_UPDATE_VERSION: an
        earlier copy may have been applied, and a leader that forgets an expansion the
        controller made advances the high watermark without a replica the controller can
        elect (committed records lost; ``tests/sim/replication_sim`` ``naive_alter``).
        Re-send the proposal, or keep it pending until a newer assignment ends it (as
        Kafka's ``Partition.handleAlterPartitionError`` does)."""
        self.pending_isr = None

    # ---- leader: produce -----------------------------------------------------------------
    def check_produce(self, acks: int) -> int:
        if self.role is not Role.LEADER:
            return NOT_LEADER_OR_FOLLOWER
        if acks == -1 and len(self.isr) < self.min_insync_replicas:
            return NOT_ENOUGH_REPLICAS
        return NONE

    def produce_status(self, required_offset: int) -> tuple[bool, int]:
        """(done, error) of an acks=-1 produce waiting for ``required_offset``."""
        if self.role is not Role.LEADER:
            return True, NOT_LEADER_OR_FOLLOWER
        if self.high_watermark >= required_offset:
            return True, NONE
        if len(self.isr) < self.min_insync_replicas:
            return True, NOT_ENOUGH_REPLICAS_AFTER_APPEND
        return False, NONE

    # ---- follower ------------------------------------------------------------------------
    def on_leader_high_watermark(self, leader_high_watermark: int, log_end_offset: int) -> None:
        """A fetch response from the leader: adopt its high watermark, capped by ours."""
        if self.role is Role.FOLLOWER:
            self.high_watermark = max(0, min(leader_high_watermark, log_end_offset))
