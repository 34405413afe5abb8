"""Plain values shared by the Raft core and its shells.

Everything here is an immutable value: the core never hands out a reference to its own
mutable state. Offsets and epochs follow Kafka's conventions: an offset is the position of
an entry in the replicated log (the first entry has offset 0); ``end_offset`` always means
"one past the last entry"; an epoch is KRaft's leader epoch (Raft's term); -1 means none.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NO_EPOCH = -1
NO_NODE = -1


@dataclass(frozen=True, slots=True)
class Entry:
    """One log entry: its offset, the epoch of the leader that appended it, and a payload.

    ``control`` marks entries written by the quorum itself (the LeaderChange entry a new
    leader appends); state machines see them in the committed stream and may ignore them.
    """

    offset: int
    epoch: int
    payload: bytes
    control: bool = False


@dataclass(frozen=True, slots=True, order=True)
class OffsetAndEpoch:
    """A log position (end offset) and the epoch of the entry just before it.

    Ordered by (epoch, offset), the order Raft uses to decide which log is more up to date.
    """

    epoch: int
    offset: int


@dataclass(frozen=True, slots=True)
class SnapshotId:
    """Identifies a snapshot: it contains every entry with offset < ``end_offset``; ``epoch``
    is the epoch of the entry at ``end_offset - 1`` (Kafka's ``SnapshotId``)."""

    end_offset: int
    epoch: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A snapshot id plus the application's opaque serialized state at that point."""

    snapshot_id: SnapshotId
    data: bytes


@dataclass(frozen=True, slots=True)
class QuorumState:
    """The durable election state (KRaft's ``quorum-state`` file).

    ``epoch``: the latest epoch this node has seen; ``leader_id``: the leader of that epoch
    if known (-1 otherwise); ``voted_for``: the candidate this node voted for in ``epoch``
    (-1 if none). A node must persist this before it sends anything that depends on it:
    a vote must be durable before the VoteResponse leaves, or the node could vote twice.
    """

    epoch: int = 0
    leader_id: int = NO_NODE
    voted_for: int = NO_NODE


@dataclass(frozen=True, slots=True)
class DurableState:
    """What a node recovered from disk at start-up: quorum state, latest snapshot (or None)
    and the log entries after it (contiguous offsets starting at the snapshot end or 0)."""

    quorum_state: QuorumState = QuorumState()
    snapshot: Snapshot | None = None
    entries: tuple[Entry, ...] = ()


@dataclass(frozen=True, slots=True)
class RaftConfig:
    """Static configuration of one node. Times are milliseconds (Kafka's defaults).

    ``voters`` is the static voter set (``controller.quorum.voters``); a node whose id is not
    in it is an *observer*: it follows the leader's log but never votes or campaigns.
    """

    node_id: int
    voters: frozenset[int]
    cluster_id: str = "strom"
    election_timeout_ms: int = 1000  # controller.quorum.election.timeout.ms
    fetch_timeout_ms: int = 2000  # controller.quorum.fetch.timeout.ms
    request_timeout_ms: int = 2000  # controller.quorum.request.timeout.ms
    fetch_max_wait_ms: int = 500  # how long the leader parks an empty Fetch
    fetch_max_bytes: int = 1 << 20  # partition_max_bytes asked for by followers
    snapshot_chunk_bytes: int = 1 << 20  # max_bytes asked for by FetchSnapshot

    def __post_init__(self) -> None:
        if not self.voters:
            raise ValueError("the voter set is empty")
        if min(self.voters) < 0:
            raise ValueError(f"voter ids must be >= 0: {sorted(self.voters)}")
        if self.election_timeout_ms <= 0 or self.fetch_timeout_ms <= 0:
            raise ValueError("election and fetch timeouts must be positive")

    @property
    def majority(self) -> int:
        """Votes (or replicas) needed for a quorum: more than half the voters."""
        return len(self.voters) // 2 + 1

    @property
    def is_voter(self) -> bool:
        return self.node_id in self.voters


@dataclass(frozen=True, slots=True)
class ReplicaInfo:
    """One replica as the leader sees it (DescribeQuorum's ``ReplicaState``)."""

    replica_id: int
    log_end_offset: int
    last_fetch_timestamp: int
    last_caught_up_timestamp: int


@dataclass(frozen=True, slots=True)
class QuorumInfo:
    """DescribeQuorum data: answered only by the leader (others return NOT_LEADER)."""

    leader_id: int
    leader_epoch: int
    high_watermark: int
    current_voters: tuple[ReplicaInfo, ...]
    observers: tuple[ReplicaInfo, ...]


@dataclass(frozen=True, slots=True)
class Ready:
    """Work the core hands to its shell. The shell must, in this order:

    1. ``snapshot``: if set, write it durably. If ``snapshot_received`` it came from the
       leader: the log is replaced (every entry removed, the log now starts at
       ``snapshot.snapshot_id.end_offset``) and the state machine loads it. Otherwise the
       application produced it locally (``RaftCore.snapshot_taken``) and entries below its
       end offset may be deleted.
    2. ``quorum_state``: if set, write it durably (atomic replace).
    3. ``truncate_to``: if set, remove every log entry with offset >= it.
    4. ``entries``: append them (offsets are contiguous with the log), then fsync.
    5. ``committed``: apply them to the state machine (all have offset < ``high_watermark``).
    6. ``messages``: send them — only now, after 1-4 are durable ("persist before send").
    7. call ``RaftCore.advance(ready)``.
    """

    messages: tuple = ()
    quorum_state: QuorumState | None = None
    snapshot: Snapshot | None = None
    snapshot_received: bool = False
    truncate_to: int | None = None
    entries: tuple[Entry, ...] = ()
    committed: tuple[Entry, ...] = ()
    high_watermark: int = 0
    log_end_offset: int = field(default=0, repr=False)

    def is_empty(self) -> bool:
        return not (
            self.messages
            or self.quorum_state
            or self.snapshot
            or self.truncate_to is not None
            or self.entries
            or self.committed
        )
