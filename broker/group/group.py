"""One classic group's membership, generation, protocol and committed offsets.

Mirrors Kafka's GroupMetadata: no timers and no callbacks here, only the data and the
rules that need nothing but the data (protocol selection, leader election, state
transitions). The coordinator drives it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from broker.group.log_format import parse_subscribed_topics
from broker.group.member import Member
from broker.group.state import VALID_PREVIOUS, GroupState, IllegalStateTransition

CONSUMER_PROTOCOL_TYPE = "consumer"


@dataclass(slots=True)
class CommittedOffset:
    offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp: int
    expire_timestamp: int | None = None


@dataclass(frozen=True, slots=True)
class MemberSummary:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    metadata: bytes
    assignment: bytes


@dataclass(frozen=True, slots=True)
class GroupSummary:
    state: GroupState
    protocol_type: str
    protocol_name: str
    members: tuple[MemberSummary, ...]


class ClassicGroup:
    def __init__(self, group_id: str, now_ms: int, state: GroupState = GroupState.EMPTY):
        self.group_id = group_id
        self.state = state
        self.state_timestamp = now_ms
        self.generation_id = 0
        self.protocol_type: str | None = None
        self.protocol_name: str | None = None
        self.leader_id: str | None = None
        self.members: dict[str, Member] = {}
        self.static_members: dict[str, str] = {}  # group.instance.id -> member id
        self.pending_members: set[str] = set()
        #: members of the current generation that have not sent SyncGroup yet
        self.pending_sync: set[str] = set()
        self.new_member_added = False
        self.initial_delay_remaining_ms = 0
        self.in_initial_delay = False
        self.subscribed_topics: set[str] | None = None
        self.offsets: dict[tuple[str, int], CommittedOffset] = {}

    # ------------------------------------------------------------ state
    def is_(self, state: GroupState) -> bool:
        return self.state is state

    def transition_to(self, target: GroupState, now_ms: int) -> None:
        if self.state not in VALID_PREVIOUS[target]:
            raise IllegalStateTransition(
                f"group {self.group_id!r}: {self.state.value} -> {target.value}"
            )
        self.state = target
        self.state_timestamp = now_ms

    def can_rebalance(self) -> bool:
        return self.state in VALID_PREVIOUS[GroupState.PREPARING_REBALANCE]

    # ------------------------------------------------------------ members
    def add(self, member: Member) -> None:
        if not self.members:
            self.protocol_type = member.protocol_type
        self.members[member.member_id] = member
        if self.leader_id is None:
            self.leader_id = member.member_id
        if member.group_instance_id is not None:
            self.static_members[member.group_instance_id] = member.member_id

    def remove(self, member_id: str) -> Member | None:
        member = self.members.pop(member_id, None)
        if member is None:
            return None
        self.pending_sync.discard(member_id)
        if (
            member.group_instance_id is not None
            and self.static_members.get(member.group_instance_id) == member_id
        ):
            del self.static_members[member.group_instance_id]
        if self.leader_id == member_id:
            self.leader_id = next(iter(self.members), None)
        return member

    def has(self, member_id: str) -> bool:
        return member_id in self.members

    def static_member_id(self, instance_id: str | None) -> str | None:
        return None if instance_id is None else self.static_members.get(instance_id)

    def is_static_member_fenced(self, member_id: str, instance_id: str | None) -> bool:
        """A static member whose id no longer maps to this instance id (KIP-345)."""
        if instance_id is None:
            return False
        current = self.static_members.get(instance_id)
        return current is not None and current != member_id

    def replace_static_member(self, old_id: str, new_id: str) -> Member:
        member = self.members.pop(old_id)
        if old_id in self.pending_sync:
            self.pending_sync.discard(old_id)
            self.pending_sync.add(new_id)
        member.member_id = new_id
        member.awaiting_join = None
        member.awaiting_sync = None
        self.members[new_id] = member
        if self.leader_id == old_id:
            self.leader_id = new_id
        assert member.group_instance_id is not None
        self.static_members[member.group_instance_id] = new_id
        return member

    def is_leader(self, member_id: str) -> bool:
        return self.leader_id == member_id

    # ------------------------------------------------------------ rebalance
    def awaiting_join_count(self) -> int:
        return sum(1 for m in self.members.values() if m.awaiting_join is not None)

    def has_all_members_joined(self) -> bool:
        return self.awaiting_join_count() == len(self.members) and not self.pending_members

    def not_yet_rejoined(self) -> list[Member]:
        return [m for m in self.members.values() if m.awaiting_join is None]

    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def maybe_elect_new_joined_leader(self) -> bool:
        """Keep the leader if it rejoined, else pick a member that did. False if none did."""
        if self.leader_id is not None:
            leader = self.members.get(self.leader_id)
            if leader is not None and leader.awaiting_join is not None:
                return True
        for member in self.members.values():
            if member.awaiting_join is not None:
                self.leader_id = member.member_id
                return True
        return False

    def candidate_protocols(self) -> set[str]:
        """Protocols every member supports."""
        counts: Counter[str] = Counter()
        for m in self.members.values():
            counts.update(m.protocol_names())
        return {name for name, n in counts.items() if n == len(self.members)}

    def supports_protocols(self, protocol_type: str, protocols: set[str]) -> bool:
        if not self.members:
            return bool(protocol_type) and bool(protocols)
        return self.protocol_type == protocol_type and bool(self.candidate_protocols() & protocols)

    def select_protocol(self) -> str:
        """Each member votes for its most preferred common protocol; most votes wins
        (ties: the leader's preference order)."""
        candidates = self.candidate_protocols()
        votes: Counter[str] = Counter()
        for m in self.members.values():
            choice = m.vote(candidates)
            if choice is not None:
                votes[choice] += 1
        if not votes:
            raise IllegalStateTransition(f"group {self.group_id!r}: no common protocol")
        best = max(votes.values())
        leader = self.members.get(self.leader_id or "")
        order = [n for n, _ in leader.protocols] if leader else sorted(votes)
        for name in order:
            if votes.get(name) == best:
                return name
        return next(n for n, v in votes.items() if v == best)

    def init_next_generation(self, now_ms: int) -> None:
        self.generation_id += 1
        if self.members:
            self.protocol_name = self.select_protocol()
            self.subscribed_topics = self._compute_subscribed_topics()
            self.transition_to(GroupState.COMPLETING_REBALANCE, now_ms)
        else:
            self.protocol_name = None
            self.subscribed_topics = None
            self.transition_to(GroupState.EMPTY, now_ms)

    def _compute_subscribed_topics(self) -> set[str] | None:
        if self.protocol_type != CONSUMER_PROTOCOL_TYPE:
            return None
        topics: set[str] = set()
        for m in self.members.values():
            parsed = parse_subscribed_topics(m.metadata_for(self.protocol_name))
            if parsed is None:
                return None
            topics |= parsed
        return topics

    def is_subscribed_to(self, topic: str) -> bool:
        """Kafka assumes "subscribed" when the subscriptions could not be parsed."""
        return self.subscribed_topics is None or topic in self.subscribed_topics

    def current_member_metadata(self) -> list[tuple[str, str | None, bytes]]:
        """(member id, instance id, metadata for the selected protocol) for the leader."""
        return [
            (m.member_id, m.group_instance_id, m.metadata_for(self.protocol_name))
            for m in self.members.values()
        ]

    # ------------------------------------------------------------ views
    def summary(self) -> GroupSummary:
        stable = self.state is GroupState.STABLE
        members = tuple(
            MemberSummary(
                m.member_id,
                m.group_instance_id,
                m.client_id,
                m.client_host,
                m.metadata_for(self.protocol_name) if stable else b"",
                m.assignment if stable else b"",
            )
            for m in self.members.values()
        )
        return GroupSummary(
            self.state,
            self.protocol_type or "",
            (self.protocol_name or "") if stable else "",
            members,
        )
