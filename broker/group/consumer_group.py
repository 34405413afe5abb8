"""One KIP-848 consumer group: members, epochs, target assignment, and the reconciliation
rule that moves a member from its current assignment towards its target. Pure.

Vocabulary (Kafka's):

- *group epoch*: bumped whenever membership, a subscription or the subscribed topics'
  metadata change. *Assignment epoch*: the group epoch the target assignment was
  computed for (group epoch > assignment epoch = a new target is due).
- *member epoch*: the epoch of the member's current assignment; it reaches the
  assignment epoch once the member holds its target (or all of it that is free).
- Revocation before assignment: a partition of member B's target that member A still
  holds (assigned or pending revocation) is not given to B until A has reported it
  revoked (heartbeats list the partitions a member owns). A keeps its epoch while it
  revokes (``UNREVOKED_PARTITIONS``); B moves to the new epoch with what is free and
  waits for the rest (``UNRELEASED_PARTITIONS``).

Group states: Empty (no members), Assigning (group epoch > assignment epoch),
Reconciling (some member is not at the assignment epoch or not stable), Stable.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from broker.group.consumer_records import TopicMetadata

TopicId = uuid.UUID
Partitions = dict[TopicId, frozenset[int]]

#: member epochs with a meaning in ConsumerGroupHeartbeat
JOIN_EPOCH = 0
LEAVE_EPOCH = -1
STATIC_LEAVE_EPOCH = -2

#: Kafka's internal topics, never matched by a subscription regex
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state", "__share_group_state"})


class MemberState(enum.IntEnum):
    """Kafka's MemberState (the byte persisted in CurrentMemberAssignment)."""

    STABLE = 0
    UNREVOKED_PARTITIONS = 1
    UNRELEASED_PARTITIONS = 2
    UNKNOWN = 127


class ConsumerGroupState(enum.Enum):
    EMPTY = "Empty"
    ASSIGNING = "Assigning"
    RECONCILING = "Reconciling"
    STABLE = "Stable"
    DEAD = "Dead"


@dataclass(slots=True, eq=False)
class ConsumerMember:
    member_id: str
    instance_id: str | None = None
    rack_id: str | None = None
    client_id: str = ""
    client_host: str = ""
    subscribed_topic_names: tuple[str, ...] = ()
    subscribed_topic_regex: str | None = None
    rebalance_timeout_ms: int = -1
    server_assignor: str | None = None
    member_epoch: int = 0
    previous_member_epoch: int = 0
    state: MemberState = MemberState.STABLE
    assigned: Partitions = field(default_factory=dict)
    pending_revocation: Partitions = field(default_factory=dict)
    #: a member that joined with JoinGroup (classic protocol): its session timeout and
    #: (protocol name, metadata) list; None for ConsumerGroupHeartbeat members
    classic_session_timeout_ms: int | None = None
    classic_protocols: tuple[tuple[str, bytes], ...] | None = None

    @property
    def uses_classic_protocol(self) -> bool:
        return self.classic_protocols is not None

    def copy(self) -> ConsumerMember:
        return dataclasses.replace(self, assigned=dict(self.assigned),
                                   pending_revocation=dict(self.pending_revocation))

    def metadata_equals(self, other: ConsumerMember) -> bool:
        return (
            self.instance_id, self.rack_id, self.client_id, self.client_host,
            self.subscribed_topic_names, self.subscribed_topic_regex,
            self.rebalance_timeout_ms, self.server_assignor,
            self.classic_session_timeout_ms, self.classic_protocols,
        ) == (
            other.instance_id, other.rack_id, other.client_id, other.client_host,
            other.subscribed_topic_names, other.subscribed_topic_regex,
            other.rebalance_timeout_ms, other.server_assignor,
            other.classic_session_timeout_ms, other.classic_protocols,
        )

    def assignment_equals(self, other: ConsumerMember) -> bool:
        return (
            self.member_epoch, self.previous_member_epoch, self.state,
            self.assigned, self.pending_revocation,
        ) == (
            other.member_epoch, other.previous_member_epoch, other.state,
            other.assigned, other.pending_revocation,
        )

    def owned_partitions(self) -> set[tuple[TopicId, int]]:
        """Partitions this member holds: assigned plus pending revocation."""
        out = {(t, p) for t, ps in self.assigned.items() for p in ps}
        out |= {(t, p) for t, ps in self.pending_revocation.items() for p in ps}
        return out


@dataclass(slots=True, eq=False)
class ConsumerGroup:
    group_id: str
    group_epoch: int = 0
    assignment_epoch: int = 0
    members: dict[str, ConsumerMember] = field(default_factory=dict)
    #: group.instance.id -> member id
    static_members: dict[str, str] = field(default_factory=dict)
    #: member id -> target partitions
    target: dict[str, Partitions] = field(default_factory=dict)
    #: subscribed topic name -> metadata (what the target assignment was computed from)
    subscription_metadata: dict[str, TopicMetadata] = field(default_factory=dict)
    #: (topic id, partition) -> member id holding it (assigned or pending revocation)
    owners: dict[tuple[TopicId, int], str] = field(default_factory=dict)

    @property
    def state(self) -> ConsumerGroupState:
        if not self.members:
            return ConsumerGroupState.EMPTY
        if self.group_epoch > self.assignment_epoch:
            return ConsumerGroupState.ASSIGNING
        for m in self.members.values():
            if m.member_epoch != self.assignment_epoch or m.state is not MemberState.STABLE:
                return ConsumerGroupState.RECONCILING
        return ConsumerGroupState.STABLE

    def put_member(self, member: ConsumerMember) -> None:
        """Insert or replace ``member`` and re-index the partitions it holds."""
        old = self.members.get(member.member_id)
        if old is not None:
            self._unindex(old)
            if old.instance_id is not None and self.static_members.get(old.instance_id) == (
                old.member_id
            ):
                del self.static_members[old.instance_id]
        self.members[member.member_id] = member
        if member.instance_id is not None:
            self.static_members[member.instance_id] = member.member_id
        for tp in member.owned_partitions():
            self.owners[tp] = member.member_id

    def remove_member(self, member_id: str) -> ConsumerMember | None:
        member = self.members.pop(member_id, None)
        if member is None:
            return None
        self._unindex(member)
        if member.instance_id is not None and self.static_members.get(member.instance_id) == (
            member_id
        ):
            del self.static_members[member.instance_id]
        self.target.pop(member_id, None)
        return member

    def _unindex(self, member: ConsumerMember) -> None:
        for tp in member.owned_partitions():
            if self.owners.get(tp) == member.member_id:
                del self.owners[tp]

    def reindex(self) -> None:
        self.owners = {}
        self.static_members = {}
        for m in self.members.values():
            for tp in m.owned_partitions():
                self.owners[tp] = m.member_id
            if m.instance_id is not None:
                self.static_members[m.instance_id] = m.member_id

    def owner_epoch_for(self, member_id: str) -> Callable[[TopicId, int], int]:
        """Kafka's currentPartitionEpoch as seen by ``member_id``: the epoch of another
        member holding the partition, -1 when it is free (or held by ``member_id``)."""

        def epoch(topic_id: TopicId, partition: int) -> int:
            holder = self.owners.get((topic_id, partition))
            if holder is None or holder == member_id:
                return -1
            other = self.members.get(holder)
            return -1 if other is None else max(other.member_epoch, 0)

        return epoch


# ---------------------------------------------------------------- subscriptions


def compile_regex(pattern: str) -> re.Pattern[str] | None:
    """The member's SubscribedTopicRegex (Kafka uses RE2/J; Python's ``re`` accepts the
    same common syntax); None when it does not compile (INVALID_REGULAR_EXPRESSION)."""
    try:
        return re.compile(pattern)
    except (re.error, RecursionError, OverflowError):
        return None


def subscribed_topic_names(member: ConsumerMember, topics: Mapping[str, TopicMetadata]) -> set[str]:
    """Existing topics the member subscribes to: its names plus regex matches (full match,
    internal topics excluded), as Kafka resolves them."""
    names = {n for n in member.subscribed_topic_names if n in topics}
    if member.subscribed_topic_regex:
        rx = compile_regex(member.subscribed_topic_regex)
        if rx is not None:
            names |= {n for n in topics if n not in INTERNAL_TOPICS and rx.fullmatch(n)}
    return names


def subscription_metadata(
    members: Mapping[str, ConsumerMember], topics: Mapping[str, TopicMetadata]
) -> dict[str, TopicMetadata]:
    names: set[str] = set()
    for m in members.values():
        names |= subscribed_topic_names(m, topics)
    return {n: topics[n] for n in sorted(names)}


# ---------------------------------------------------------------- reconciliation


def _is_subset(owned: Partitions | None, assigned: Partitions) -> bool:
    if owned is None:
        return True
    return all(ps <= assigned.get(t, frozenset()) for t, ps in owned.items())


def epoch_is_valid(member: ConsumerMember, received: int, owned: Partitions | None) -> bool:
    """Kafka's throwIfMemberEpochIsInvalid: the current epoch, or the previous one when the
    member lost our last answer (and owns nothing it was not given) -- else fenced."""
    if received == member.member_epoch:
        return True
    if received > member.member_epoch:
        return False
    return received == member.previous_member_epoch and _is_subset(owned, member.assigned)


def reconcile(
    member: ConsumerMember,
    target_epoch: int,
    target: Partitions,
    owned: Partitions | None,
    owner_epoch: Callable[[TopicId, int], int],
) -> ConsumerMember:
    """Kafka's CurrentAssignmentBuilder: the member's next state towards ``target`` at
    ``target_epoch``. ``owned`` = partitions the member reported in this heartbeat (None =
    not reported); ``owner_epoch(t, p)`` = -1 if no *other* member holds the partition."""
    if member.state is MemberState.STABLE:
        if member.member_epoch == target_epoch:
            return member
        return _next_assignment(member, target_epoch, target, owned, owner_epoch)
    if member.state is MemberState.UNREVOKED_PARTITIONS:
        if owned is None or _owns_any(owned, member.pending_revocation):
            return member
        return _next_assignment(member, target_epoch, target, owned, owner_epoch)
    return _next_assignment(member, target_epoch, target, owned, owner_epoch)


def _owns_any(owned: Partitions | None, partitions: Partitions) -> bool:
    """Whether the member (by its report) still owns any of ``partitions``; a member that
    did not report is assumed to own them."""
    if owned is None:
        return True
    return any(ps & owned.get(t, frozenset()) for t, ps in partitions.items())


def _next_assignment(
    member: ConsumerMember,
    target_epoch: int,
    target: Partitions,
    owned: Partitions | None,
    owner_epoch: Callable[[TopicId, int], int],
) -> ConsumerMember:
    current = member.assigned
    kept: Partitions = {}
    revoke: Partitions = {}
    assign: Partitions = {}
    unreleased = False
    for t in set(target) | set(current):
        tgt = target.get(t, frozenset())
        cur = current.get(t, frozenset())
        keep = cur & tgt
        gone = cur - tgt
        free = set()
        for p in tgt - keep:
            if owner_epoch(t, p) == -1:
                free.add(p)
            else:
                unreleased = True
        if keep:
            kept[t] = frozenset(keep)
        if gone:
            revoke[t] = frozenset(gone)
        if free:
            assign[t] = frozenset(free)
    out = member.copy()
    if revoke and _owns_any(owned, revoke):
        # revoke first: keep the epoch, give nothing new until the member reports them gone
        out.state = MemberState.UNREVOKED_PARTITIONS
        out.assigned = kept
        out.pending_revocation = revoke
        return out
    if member.member_epoch != target_epoch:
        out.previous_member_epoch = member.member_epoch
    out.member_epoch = target_epoch
    merged = dict(kept)
    for t, ps in assign.items():
        merged[t] = merged.get(t, frozenset()) | ps
    out.assigned = merged
    out.pending_revocation = {}
    out.state = MemberState.UNRELEASED_PARTITIONS if unreleased else MemberState.STABLE
    return out
