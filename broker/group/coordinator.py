"""The classic group coordinator as a pure state machine.

Rules of this module (sans-I/O, in the style of h11):

- No asyncio, sockets, clock or randomness. Every event carries ``now_ms``; new member ids
  come from the injected ``new_member_id(prefix)``.
- Events in: ``join_group``, ``sync_group``, ``heartbeat``, ``leave_group``,
  ``commit_offsets``, ``fetch_offsets``, ``describe_group``, ``list_groups``,
  ``delete_groups``, ``delete_offsets``, ``tick`` (time passed), ``load_record`` /
  ``complete_load`` (replay of ``__consumer_offsets`` at startup).
- Out: immediate answers are return values. JoinGroup and SyncGroup answers may be
  delayed (Kafka's join purgatory): the caller passes a ``token`` and collects finished
  answers with ``drain_completions()`` after *any* event, because one member's event (or
  a timer) can complete other members' requests. ``next_deadline()`` is the one timer the
  shell must arm; ``tick(now_ms)`` fires whatever is due (every event also does).
- Records to persist go out through the ``OffsetsStore`` port (``append(partition,
  [(key, value|None)]) -> ErrorCode``), synchronously and before the in-memory state that
  depends on them changes, as Kafka waits for its log append before answering.

Behaviour and error codes follow Apache Kafka's GroupCoordinator (classic protocol):
KIP-394 MEMBER_ID_REQUIRED, KIP-345 static membership and FENCED_INSTANCE_ID, KIP-814
skip_assignment, group.initial.rebalance.delay.ms (InitialDelayedJoin), rebalance timeout
(DelayedJoin), session timeouts (DelayedHeartbeat), offsets retention (KIP-211).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from kio.schema.errors import ErrorCode

from broker.group.config import GroupConfig
from broker.group.group import ClassicGroup, CommittedOffset, GroupSummary
from broker.group.log_format import (
    GroupKey,
    GroupValue,
    MemberValue,
    OffsetKey,
    OffsetValue,
    decode_group_value,
    decode_key,
    decode_offset_value,
    encode_group_key,
    encode_group_value,
    encode_offset_key,
    encode_offset_value,
)
from broker.group.member import Member, Token
from broker.group.partitioner import partition_for
from broker.group.state import GroupState
from broker.group.timers import TimerQueue

E = ErrorCode
TopicPartition = tuple[str, int]
KeyValue = tuple[bytes, bytes | None]


class OffsetsStore(Protocol):
    """Port to the ``__consumer_offsets`` log (the shell implements it on storage)."""

    def append(self, partition: int, records: Sequence[KeyValue]) -> ErrorCode: ...


@dataclass(frozen=True, slots=True)
class JoinResult:
    token: Token
    error: ErrorCode
    member_id: str
    generation_id: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str = ""
    skip_assignment: bool = False
    #: (member id, group instance id, metadata); only the leader gets them
    members: tuple[tuple[str, str | None, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class SyncResult:
    token: Token
    error: ErrorCode
    assignment: bytes = b""
    protocol_type: str | None = None
    protocol_name: str | None = None


@dataclass(frozen=True, slots=True)
class OffsetCommit:
    topic: str
    partition: int
    offset: int
    leader_epoch: int = -1
    metadata: str | None = ""
    #: absolute expiry (OffsetCommit v2-v4 retention_time_ms); None = retention policy
    expire_timestamp: int | None = None


@dataclass(frozen=True, slots=True)
class ListedGroup:
    group_id: str
    protocol_type: str
    state: GroupState


Completion = JoinResult | SyncResult

# timer keys
_HB = "hb"  # (_HB, group id, member id): session / new-member-join timeout
_PENDING = "pending"  # (_PENDING, group id, member id): KIP-394 pending member
_JOIN = "join"  # (_JOIN, group id): DelayedJoin / InitialDelayedJoin
_SYNC = "sync"  # (_SYNC, group id): DelayedSync, members must SyncGroup in time
_EXPIRE = ("expire",)  # offsets retention check

#: log append errors -> what Kafka answers for SyncGroup (storeGroup)
_STORE_GROUP_ERRORS = {
    E.unknown_topic_or_partition: E.coordinator_not_available,
    E.not_enough_replicas: E.coordinator_not_available,
    E.not_enough_replicas_after_append: E.coordinator_not_available,
    E.request_timed_out: E.coordinator_not_available,
    E.not_leader_or_follower: E.not_coordinator,
    E.kafka_storage_error: E.not_coordinator,
}
#: log append errors -> what Kafka answers for OffsetCommit (storeOffsets)
_STORE_OFFSET_ERRORS = {
    E.unknown_topic_or_partition: E.coordinator_not_available,
    E.not_enough_replicas: E.coordinator_not_available,
    E.not_enough_replicas_after_append: E.coordinator_not_available,
    E.request_timed_out: E.coordinator_not_available,
    E.not_leader_or_follower: E.not_coordinator,
    E.kafka_storage_error: E.not_coordinator,
    E.message_too_large: E.invalid_commit_offset_size,
    E.record_list_too_large: E.invalid_commit_offset_size,
    E.invalid_fetch_size: E.invalid_commit_offset_size,
}


def _join_error(token: Token, member_id: str, error: ErrorCode) -> JoinResult:
    return JoinResult(token, error, member_id)


class GroupCoordinator:
    def __init__(
        self,
        config: GroupConfig,
        store: OffsetsStore,
        *,
        new_member_id: Callable[[str], str],
    ) -> None:
        self.config = config
        self.store = store
        self.new_member_id = new_member_id
        self.groups: dict[str, ClassicGroup] = {}
        self.active = False
        self.loading = False
        self._timers = TimerQueue()
        self._completions: list[Completion] = []

    # ================================================================ plumbing
    def drain_completions(self) -> list[Completion]:
        out, self._completions = self._completions, []
        return out

    def next_deadline(self) -> int | None:
        return self._timers.next_deadline()

    def partition_for(self, group_id: str) -> int:
        return partition_for(group_id, self.config.offsets_topic_num_partitions)

    def _validate(self, group_id: str | None, *, allow_empty: bool) -> ErrorCode | None:
        if group_id is None or (not group_id and not allow_empty):
            return E.invalid_group_id
        if not self.active:
            return E.coordinator_not_available
        if self.loading:
            return E.coordinator_load_in_progress
        return None

    def _complete(self, result: Completion) -> None:
        self._completions.append(result)

    def _append(self, group_id: str, records: Sequence[KeyValue]) -> ErrorCode:
        try:
            return self.store.append(self.partition_for(group_id), records)
        except Exception:  # the port must not take the coordinator down
            return E.unknown_server_error

    # ================================================================ timers
    def tick(self, now_ms: int) -> None:
        """Fire every timer due at ``now_ms``."""
        while True:
            key = self._timers.pop_expired(now_ms)
            if key is None:
                return
            kind = key[0]
            if kind == _HB:
                self._on_heartbeat_expired(key[1], key[2], now_ms)
            elif kind == _PENDING:
                group = self.groups.get(key[1])
                if group is not None:
                    self._remove_pending_member(group, key[2], now_ms)
            elif kind == _JOIN:
                group = self.groups.get(key[1])
                if group is not None and group.is_(GroupState.PREPARING_REBALANCE):
                    self._on_join_timer(group, now_ms)
            elif kind == _SYNC:
                group = self.groups.get(key[1])
                if group is not None:
                    self._on_sync_timer(group, now_ms)
            elif key == _EXPIRE:
                self.expire_offsets(now_ms)
                self._timers.schedule(
                    _EXPIRE, now_ms + self.config.offsets_retention_check_interval_ms
                )

    def _schedule_heartbeat(self, group: ClassicGroup, member: Member, now_ms: int) -> None:
        timeout = (
            self.config.new_member_join_timeout_ms if member.is_new else member.session_timeout_ms
        )
        self._timers.schedule((_HB, group.group_id, member.member_id), now_ms + timeout)

    def _on_heartbeat_expired(self, group_id: str, member_id: str, now_ms: int) -> None:
        group = self.groups.get(group_id)
        if group is None:
            return
        member = group.members.get(member_id)
        if member is None:
            return
        if member.awaiting_join is not None and not member.is_new:
            # rejoining members are bounded by the rebalance timeout instead
            self._schedule_heartbeat(group, member, now_ms)
            return
        if member.awaiting_sync is not None:
            self._schedule_heartbeat(group, member, now_ms)
            return
        self._remove_member_and_update_group(group, member, now_ms)

    # ================================================================ JoinGroup
    def join_group(
        self,
        token: Token,
        now_ms: int,
        *,
        group_id: str,
        member_id: str,
        group_instance_id: str | None,
        client_id: str,
        client_host: str,
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        protocol_type: str,
        protocols: Sequence[tuple[str, bytes]],
        require_known_member_id: bool,
        version: int = 9,
    ) -> None:
        """Handle a JoinGroup; the answer arrives through ``drain_completions``."""
        protos = list(protocols)
        if rebalance_timeout_ms < 0:
            rebalance_timeout_ms = session_timeout_ms  # JoinGroup v0
        error = self._validate(group_id, allow_empty=False)
        if error is None and not (
            self.config.min_session_timeout_ms
            <= session_timeout_ms
            <= self.config.max_session_timeout_ms
        ):
            error = E.invalid_session_timeout
        if error is not None:
            self._complete(_join_error(token, member_id, error))
            self.tick(now_ms)
            return
        is_unknown = member_id == ""
        group = self.groups.get(group_id)
        if group is None:
            if not is_unknown:
                self._complete(_join_error(token, member_id, E.unknown_member_id))
                self.tick(now_ms)
                return
            group = ClassicGroup(group_id, now_ms)
            self.groups[group_id] = group
        if not self._accept_joining_member(group, member_id):
            self._complete(_join_error(token, member_id, E.group_max_size_reached))
        else:
            args = (
                group_instance_id,
                client_id,
                client_host,
                session_timeout_ms,
                rebalance_timeout_ms,
                protocol_type,
                protos,
            )
            if is_unknown:
                self._join_new_member(group, token, now_ms, require_known_member_id, version, *args)
            else:
                self._join_known_member(group, token, now_ms, member_id, version, *args)
            if group.is_(GroupState.PREPARING_REBALANCE):
                self._try_complete_join(group, now_ms)
        self._forget_if_unused(group)
        self.tick(now_ms)

    def _accept_joining_member(self, group: ClassicGroup, member_id: str) -> bool:
        limit = self.config.max_size
        if group.state in (GroupState.EMPTY, GroupState.DEAD):
            return True
        member = group.members.get(member_id)
        if group.is_(GroupState.PREPARING_REBALANCE):
            return (member is not None and member.awaiting_join is not None) or (
                group.awaiting_join_count() < limit
            )
        return member is not None or len(group.members) < limit

    def _forget_if_unused(self, group: ClassicGroup) -> None:
        """A group created by a failed join (never persisted) is dropped again."""
        if (
            group.is_(GroupState.EMPTY)
            and group.generation_id == 0
            and not group.members
            and not group.pending_members
            and not group.offsets
            and self.groups.get(group.group_id) is group
        ):
            del self.groups[group.group_id]

    def _join_new_member(
        self,
        group: ClassicGroup,
        token: Token,
        now_ms: int,
        require_known_member_id: bool,
        version: int,
        instance_id: str | None,
        client_id: str,
        client_host: str,
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        protocol_type: str,
        protocols: list[tuple[str, bytes]],
    ) -> None:
        if group.is_(GroupState.DEAD):
            self._complete(_join_error(token, "", E.coordinator_not_available))
            return
        if not group.supports_protocols(protocol_type, {n for n, _ in protocols}):
            self._complete(_join_error(token, "", E.inconsistent_group_protocol))
            return
        new_id = self.new_member_id(instance_id if instance_id is not None else client_id)
        if instance_id is not None and group.static_member_id(instance_id) is not None:
            self._replace_static_member(
                group,
                token,
                now_ms,
                version,
                new_id,
                instance_id,
                client_id,
                client_host,
                session_timeout_ms,
                rebalance_timeout_ms,
                protocols,
            )
        elif instance_id is None and require_known_member_id:
            group.pending_members.add(new_id)
            self._timers.schedule((_PENDING, group.group_id, new_id), now_ms + session_timeout_ms)
            self._complete(_join_error(token, new_id, E.member_id_required))
        else:
            self._add_member_and_rebalance(
                group,
                token,
                now_ms,
                version,
                new_id,
                instance_id,
                client_id,
                client_host,
                session_timeout_ms,
                rebalance_timeout_ms,
                protocol_type,
                protocols,
            )

    def _join_known_member(
        self,
        group: ClassicGroup,
        token: Token,
        now_ms: int,
        member_id: str,
        version: int,
        instance_id: str | None,
        client_id: str,
        client_host: str,
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        protocol_type: str,
        protocols: list[tuple[str, bytes]],
    ) -> None:
        if group.is_(GroupState.DEAD):
            self._complete(_join_error(token, member_id, E.coordinator_not_available))
            return
        if not group.supports_protocols(protocol_type, {n for n, _ in protocols}):
            self._complete(_join_error(token, member_id, E.inconsistent_group_protocol))
            return
        if member_id in group.pending_members:
            if instance_id is not None:  # a pending member is never static
                self._complete(_join_error(token, member_id, E.unknown_member_id))
                return
            self._timers.cancel((_PENDING, group.group_id, member_id))
            self._add_member_and_rebalance(
                group,
                token,
                now_ms,
                version,
                member_id,
                None,
                client_id,
                client_host,
                session_timeout_ms,
                rebalance_timeout_ms,
                protocol_type,
                protocols,
            )
            return
        if group.is_static_member_fenced(member_id, instance_id):
            self._complete(_join_error(token, member_id, E.fenced_instance_id))
            return
        if not group.has(member_id) or (
            instance_id is not None and group.static_member_id(instance_id) is None
        ):
            self._complete(_join_error(token, member_id, E.unknown_member_id))
            return
        member = group.members[member_id]
        member.join_version = version
        state = group.state
        if state is GroupState.PREPARING_REBALANCE:
            self._update_member_and_rebalance(group, member, token, protocols, now_ms)
        elif state is GroupState.COMPLETING_REBALANCE:
            if member.matches(protocols):
                # lost its JoinGroup response: answer again for the current generation
                self._complete(self._join_result(group, member, token))
            else:
                self._update_member_and_rebalance(group, member, token, protocols, now_ms)
        elif state is GroupState.STABLE:
            if group.is_leader(member_id) or not member.matches(protocols):
                # the leader may rejoin to force a rebalance (e.g. topic metadata changed)
                self._update_member_and_rebalance(group, member, token, protocols, now_ms)
            else:
                self._complete(
                    JoinResult(
                        token,
                        E.none,
                        member_id,
                        group.generation_id,
                        group.protocol_type,
                        group.protocol_name,
                        group.leader_id or "",
                    )
                )
        else:  # Empty
            self._complete(_join_error(token, member_id, E.unknown_member_id))

    def _join_result(self, group: ClassicGroup, member: Member, token: Token) -> JoinResult:
        leader = group.is_leader(member.member_id)
        return JoinResult(
            token,
            E.none,
            member.member_id,
            group.generation_id,
            group.protocol_type,
            group.protocol_name,
            group.leader_id or "",
            False,
            tuple(group.current_member_metadata()) if leader else (),
        )

    def _replace_static_member(
        self,
        group: ClassicGroup,
        token: Token,
        now_ms: int,
        version: int,
        new_id: str,
        instance_id: str,
        client_id: str,
        client_host: str,
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        protocols: list[tuple[str, bytes]],
    ) -> None:
        """KIP-345: a static member rejoining with an unknown member id takes over its old
        member's slot (and assignment); the old id is fenced."""
        old_id = group.static_members[instance_id]
        old = group.members[old_id]
        if old.awaiting_join is not None:
            self._complete(_join_error(old.awaiting_join, old_id, E.fenced_instance_id))
        if old.awaiting_sync is not None:
            self._complete(SyncResult(old.awaiting_sync, E.fenced_instance_id))
        old_leader = group.leader_id
        old_fields = (
            old.client_id,
            old.client_host,
            old.session_timeout_ms,
            old.rebalance_timeout_ms,
        )
        self._timers.cancel((_HB, group.group_id, old_id))
        member = group.replace_static_member(old_id, new_id)
        member.client_id, member.client_host = client_id, client_host
        member.session_timeout_ms = session_timeout_ms
        member.rebalance_timeout_ms = rebalance_timeout_ms
        member.join_version = version
        self._schedule_heartbeat(group, member, now_ms)
        state = group.state
        selected = group.protocol_name
        same_selected = selected is not None and any(
            name == selected and meta == member.metadata_for(selected) for name, meta in protocols
        )
        if state is GroupState.STABLE and same_selected:
            member.protocols = protocols
            error = self._store_group(
                group, {m.member_id: m.assignment for m in group.members.values()}, now_ms
            )
            if error is not E.none:
                # undo: the old member id stays the owner of the instance id
                member = group.replace_static_member(new_id, old_id)
                (
                    member.client_id,
                    member.client_host,
                    member.session_timeout_ms,
                    member.rebalance_timeout_ms,
                ) = old_fields
                self._timers.cancel((_HB, group.group_id, new_id))
                self._schedule_heartbeat(group, member, now_ms)
                self._complete(_join_error(token, "", error))
                return
            is_leader = group.is_leader(new_id)
            skip = is_leader and version >= 9
            self._complete(
                JoinResult(
                    token,
                    E.none,
                    new_id,
                    group.generation_id,
                    group.protocol_type,
                    group.protocol_name,
                    # pre-KIP-814 clients get the old leader id so that a restarted static
                    # leader does not compute an assignment a stable group would ignore
                    new_id if skip else (old_leader or ""),
                    skip,
                    tuple(group.current_member_metadata()) if skip else (),
                )
            )
        elif state is GroupState.PREPARING_REBALANCE:
            member.protocols = protocols
            member.awaiting_join = token
        else:
            self._update_member_and_rebalance(group, member, token, protocols, now_ms)

    def _add_member_and_rebalance(
        self,
        group: ClassicGroup,
        token: Token,
        now_ms: int,
        version: int,
        member_id: str,
        instance_id: str | None,
        client_id: str,
        client_host: str,
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        protocol_type: str,
        protocols: list[tuple[str, bytes]],
    ) -> None:
        member = Member(
            member_id,
            instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            protocol_type,
            protocols,
            awaiting_join=token,
            is_new=True,
            join_version=version,
        )
        if group.is_(GroupState.PREPARING_REBALANCE) and group.generation_id == 0:
            group.new_member_added = True
        group.add(member)
        group.pending_members.discard(member_id)
        # new members cannot heartbeat yet: they get the new-member join timeout
        self._schedule_heartbeat(group, member, now_ms)
        self._maybe_prepare_rebalance(group, now_ms)

    def _update_member_and_rebalance(
        self,
        group: ClassicGroup,
        member: Member,
        token: Token,
        protocols: list[tuple[str, bytes]],
        now_ms: int,
    ) -> None:
        member.protocols = protocols
        if member.awaiting_join is not None and member.awaiting_join != token:
            # a duplicate JoinGroup supersedes the earlier one (Kafka overwrites the callback)
            self._complete(
                _join_error(member.awaiting_join, member.member_id, E.rebalance_in_progress)
            )
        member.awaiting_join = token
        self._maybe_prepare_rebalance(group, now_ms)

    # ================================================================ rebalance
    def _maybe_prepare_rebalance(self, group: ClassicGroup, now_ms: int) -> None:
        if group.can_rebalance():
            self._prepare_rebalance(group, now_ms)

    def _prepare_rebalance(self, group: ClassicGroup, now_ms: int) -> None:
        group.pending_sync.clear()
        self._timers.cancel((_SYNC, group.group_id))
        if group.is_(GroupState.COMPLETING_REBALANCE):
            self._reset_and_propagate_assignment_error(group, E.rebalance_in_progress, now_ms)
        delay = self.config.initial_rebalance_delay_ms
        if group.is_(GroupState.EMPTY):
            group.in_initial_delay = True
            group.initial_delay_remaining_ms = max(group.rebalance_timeout_ms() - delay, 0)
            deadline = now_ms + delay
        else:
            group.in_initial_delay = False
            deadline = now_ms + group.rebalance_timeout_ms()
        group.transition_to(GroupState.PREPARING_REBALANCE, now_ms)
        self._timers.schedule((_JOIN, group.group_id), deadline)
        self._try_complete_join(group, now_ms)

    def _try_complete_join(self, group: ClassicGroup, now_ms: int) -> None:
        """DelayedJoin.tryComplete: done early once every member (and no pending one) has
        rejoined. The initial delay never completes early."""
        if (
            group.is_(GroupState.PREPARING_REBALANCE)
            and not group.in_initial_delay
            and group.has_all_members_joined()
        ):
            self._complete_join(group, now_ms)

    def _on_join_timer(self, group: ClassicGroup, now_ms: int) -> None:
        if group.in_initial_delay:
            remaining = group.initial_delay_remaining_ms
            if group.new_member_added and remaining != 0:
                group.new_member_added = False
                delay = min(self.config.initial_rebalance_delay_ms, remaining)
                group.initial_delay_remaining_ms = max(
                    remaining - self.config.initial_rebalance_delay_ms, 0
                )
                self._timers.schedule((_JOIN, group.group_id), now_ms + delay)
                return
            group.in_initial_delay = False
        self._complete_join(group, now_ms)

    def _complete_join(self, group: ClassicGroup, now_ms: int) -> None:
        self._timers.cancel((_JOIN, group.group_id))
        group.new_member_added = False
        for member in group.not_yet_rejoined():
            if not member.is_static:
                group.remove(member.member_id)
                self._timers.cancel((_HB, group.group_id, member.member_id))
        if group.is_(GroupState.DEAD):
            return
        if not group.maybe_elect_new_joined_leader() and group.members:
            # nobody rejoined: wait another rebalance timeout for session expiry to act
            self._timers.schedule((_JOIN, group.group_id), now_ms + group.rebalance_timeout_ms())
            return
        group.init_next_generation(now_ms)
        if group.is_(GroupState.EMPTY):
            # a failed write is tolerable: an empty generation has nobody to confuse
            self._store_group(group, {}, now_ms)
            return
        for member in group.members.values():
            if member.awaiting_join is not None:
                token = member.awaiting_join
                member.awaiting_join = None
                self._complete(self._join_result(group, member, token))
            member.is_new = False
            self._schedule_heartbeat(group, member, now_ms)
        # every member must follow up with SyncGroup within the rebalance timeout
        group.pending_sync = set(group.members)
        self._timers.schedule((_SYNC, group.group_id), now_ms + group.rebalance_timeout_ms())

    def _received_sync(self, group: ClassicGroup, member_id: str) -> None:
        group.pending_sync.discard(member_id)
        if not group.pending_sync:
            self._timers.cancel((_SYNC, group.group_id))

    def _on_sync_timer(self, group: ClassicGroup, now_ms: int) -> None:
        """Kafka's DelayedSync: members that joined but never sent SyncGroup (e.g. a
        leader that keeps heartbeating without assigning) are removed, then rebalance."""
        if group.state not in (GroupState.COMPLETING_REBALANCE, GroupState.STABLE):
            return
        late = [group.members[m] for m in group.pending_sync if m in group.members]
        group.pending_sync.clear()
        for member in late:
            if member.awaiting_join is not None:
                self._complete(_join_error(member.awaiting_join, "", E.unknown_member_id))
                member.awaiting_join = None
            if member.awaiting_sync is not None:
                self._complete(SyncResult(member.awaiting_sync, E.unknown_member_id))
                member.awaiting_sync = None
            group.remove(member.member_id)
            self._timers.cancel((_HB, group.group_id, member.member_id))
        if late:
            self._maybe_prepare_rebalance(group, now_ms)

    def _remove_member_and_update_group(
        self, group: ClassicGroup, member: Member, now_ms: int
    ) -> None:
        if member.awaiting_join is not None:
            self._complete(_join_error(member.awaiting_join, "", E.unknown_member_id))
            member.awaiting_join = None
        if member.awaiting_sync is not None:
            self._complete(SyncResult(member.awaiting_sync, E.unknown_member_id))
            member.awaiting_sync = None
        group.remove(member.member_id)
        self._timers.cancel((_HB, group.group_id, member.member_id))
        if group.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
            self._maybe_prepare_rebalance(group, now_ms)
        elif group.is_(GroupState.PREPARING_REBALANCE):
            self._try_complete_join(group, now_ms)

    def _remove_pending_member(self, group: ClassicGroup, member_id: str, now_ms: int) -> None:
        group.pending_members.discard(member_id)
        self._timers.cancel((_PENDING, group.group_id, member_id))
        if group.is_(GroupState.PREPARING_REBALANCE):
            self._try_complete_join(group, now_ms)
        self._forget_if_unused(group)

    # ================================================================ SyncGroup
    def sync_group(
        self,
        token: Token,
        now_ms: int,
        *,
        group_id: str,
        generation_id: int,
        member_id: str,
        group_instance_id: str | None,
        protocol_type: str | None,
        protocol_name: str | None,
        assignments: dict[str, bytes],
    ) -> None:
        """Handle a SyncGroup; the answer arrives through ``drain_completions``."""
        error = self._sync_group(
            token,
            now_ms,
            group_id,
            generation_id,
            member_id,
            group_instance_id,
            protocol_type,
            protocol_name,
            assignments,
        )
        if error is not None:
            self._complete(SyncResult(token, error))
        self.tick(now_ms)

    def _sync_group(
        self,
        token: Token,
        now_ms: int,
        group_id: str,
        generation_id: int,
        member_id: str,
        instance_id: str | None,
        protocol_type: str | None,
        protocol_name: str | None,
        assignments: dict[str, bytes],
    ) -> ErrorCode | None:
        error = self._validate(group_id, allow_empty=False)
        if error is E.coordinator_load_in_progress:
            return E.rebalance_in_progress  # older clients do not expect LOAD_IN_PROGRESS
        if error is not None:
            return error
        group = self.groups.get(group_id)
        if group is None:
            return E.unknown_member_id
        if group.is_(GroupState.DEAD):
            return E.coordinator_not_available
        if group.is_static_member_fenced(member_id, instance_id):
            return E.fenced_instance_id
        if not group.has(member_id):
            return E.unknown_member_id
        if generation_id != group.generation_id:
            return E.illegal_generation
        if protocol_type is not None and protocol_type != group.protocol_type:
            return E.inconsistent_group_protocol
        if protocol_name is not None and protocol_name != group.protocol_name:
            return E.inconsistent_group_protocol
        member = group.members[member_id]
        state = group.state
        if state is GroupState.EMPTY:
            return E.unknown_member_id
        if state is GroupState.PREPARING_REBALANCE:
            return E.rebalance_in_progress
        self._received_sync(group, member_id)
        if state is GroupState.STABLE:
            self._complete(
                SyncResult(
                    token, E.none, member.assignment, group.protocol_type, group.protocol_name
                )
            )
            self._schedule_heartbeat(group, member, now_ms)
            return None
        # CompletingRebalance: wait for the leader's assignment
        if member.awaiting_sync is not None:
            self._complete(SyncResult(member.awaiting_sync, E.rebalance_in_progress))
        member.awaiting_sync = token
        if group.is_leader(member_id):
            assignment = {mid: assignments.get(mid, b"") for mid in group.members}
            generation = group.generation_id
            store_error = self._store_group(group, assignment, now_ms)
            if group.is_(GroupState.COMPLETING_REBALANCE) and generation == group.generation_id:
                if store_error is not E.none:
                    self._reset_and_propagate_assignment_error(group, store_error, now_ms)
                    self._maybe_prepare_rebalance(group, now_ms)
                else:
                    self._set_and_propagate_assignment(group, assignment, now_ms)
                    group.transition_to(GroupState.STABLE, now_ms)
        return None

    def _set_and_propagate_assignment(
        self, group: ClassicGroup, assignment: dict[str, bytes], now_ms: int
    ) -> None:
        for member in group.members.values():
            member.assignment = assignment.get(member.member_id, b"")
        self._propagate_assignment(group, E.none, now_ms)

    def _reset_and_propagate_assignment_error(
        self, group: ClassicGroup, error: ErrorCode, now_ms: int
    ) -> None:
        for member in group.members.values():
            member.assignment = b""
        self._propagate_assignment(group, error, now_ms)

    def _propagate_assignment(self, group: ClassicGroup, error: ErrorCode, now_ms: int) -> None:
        for member in group.members.values():
            if member.awaiting_sync is not None:
                self._complete(
                    SyncResult(
                        member.awaiting_sync,
                        error,
                        member.assignment,
                        group.protocol_type,
                        group.protocol_name,
                    )
                )
                member.awaiting_sync = None
                # expirations ignored while awaiting sync restart from here
                self._schedule_heartbeat(group, member, now_ms)

    def _store_group(
        self, group: ClassicGroup, assignment: dict[str, bytes], now_ms: int
    ) -> ErrorCode:
        value = GroupValue(
            group.protocol_type or "",
            group.generation_id,
            group.protocol_name,
            group.leader_id,
            group.state_timestamp,
            tuple(
                MemberValue(
                    m.member_id,
                    m.group_instance_id,
                    m.client_id,
                    m.client_host,
                    m.rebalance_timeout_ms,
                    m.session_timeout_ms,
                    m.metadata_for(group.protocol_name),
                    assignment.get(m.member_id, b""),
                )
                for m in group.members.values()
            ),
        )
        try:
            record = (encode_group_key(GroupKey(group.group_id)), encode_group_value(value))
        except ValueError:
            return E.unknown_server_error
        error = self._append(group.group_id, [record])
        if error is E.none:
            return error
        return _STORE_GROUP_ERRORS.get(error, E.unknown_server_error)

    # ================================================================ Heartbeat
    def heartbeat(
        self,
        now_ms: int,
        *,
        group_id: str,
        generation_id: int,
        member_id: str,
        group_instance_id: str | None,
    ) -> ErrorCode:
        error = self._heartbeat(now_ms, group_id, generation_id, member_id, group_instance_id)
        self.tick(now_ms)
        return error

    def _heartbeat(
        self,
        now_ms: int,
        group_id: str,
        generation_id: int,
        member_id: str,
        instance_id: str | None,
    ) -> ErrorCode:
        error = self._validate(group_id, allow_empty=False)
        if error is E.coordinator_load_in_progress:
            return E.none
        if error is not None:
            return error
        group = self.groups.get(group_id)
        if group is None:
            return E.unknown_member_id
        if group.is_(GroupState.DEAD):
            return E.coordinator_not_available
        if group.is_static_member_fenced(member_id, instance_id):
            return E.fenced_instance_id
        if not group.has(member_id):
            return E.unknown_member_id
        if generation_id != group.generation_id:
            return E.illegal_generation
        if group.is_(GroupState.EMPTY):
            return E.unknown_member_id
        self._schedule_heartbeat(group, group.members[member_id], now_ms)
        if group.is_(GroupState.PREPARING_REBALANCE):
            return E.rebalance_in_progress
        return E.none

    # ================================================================ LeaveGroup
    def leave_group(
        self,
        now_ms: int,
        *,
        group_id: str,
        members: Sequence[tuple[str, str | None]],
    ) -> tuple[ErrorCode, list[tuple[str, str | None, ErrorCode]]]:
        """(member id, group instance id) pairs leave. Returns the top-level error and one
        (member id, instance id, error) per member (LeaveGroup v3+ batch form)."""
        result = self._leave_group(now_ms, group_id, members)
        self.tick(now_ms)
        return result

    def _leave_group(
        self, now_ms: int, group_id: str, members: Sequence[tuple[str, str | None]]
    ) -> tuple[ErrorCode, list[tuple[str, str | None, ErrorCode]]]:
        error = self._validate(group_id, allow_empty=False)
        if error is not None:
            return error, []
        group = self.groups.get(group_id)
        if group is None:
            return E.none, [(m, i, E.unknown_member_id) for m, i in members]
        if group.is_(GroupState.DEAD):
            return E.coordinator_not_available, []
        out: list[tuple[str, str | None, ErrorCode]] = []
        for member_id, instance_id in members:
            if member_id and group.is_static_member_fenced(member_id, instance_id):
                out.append((member_id, instance_id, E.fenced_instance_id))
            elif member_id in group.pending_members:
                self._remove_pending_member(group, member_id, now_ms)
                out.append((member_id, instance_id, E.none))
            else:
                target = group.static_member_id(instance_id) or member_id
                member = group.members.get(target)
                if member is None:
                    out.append((member_id, instance_id, E.unknown_member_id))
                else:
                    self._remove_member_and_update_group(group, member, now_ms)
                    out.append((member_id, instance_id, E.none))
        return E.none, out

    # ================================================================ offsets
    def commit_offsets(
        self,
        now_ms: int,
        *,
        group_id: str,
        generation_id: int,
        member_id: str,
        group_instance_id: str | None,
        offsets: Sequence[OffsetCommit],
    ) -> dict[TopicPartition, ErrorCode]:
        """OffsetCommit. generation -1 with an empty member id is a "simple" commit from a
        consumer that does not use group management (allowed while the group is Empty)."""
        result = self._commit_offsets(
            now_ms, group_id, generation_id, member_id, group_instance_id, offsets
        )
        self.tick(now_ms)
        return result

    def _commit_offsets(
        self,
        now_ms: int,
        group_id: str,
        generation_id: int,
        member_id: str,
        instance_id: str | None,
        offsets: Sequence[OffsetCommit],
    ) -> dict[TopicPartition, ErrorCode]:
        def all_(err: ErrorCode) -> dict[TopicPartition, ErrorCode]:
            return {(o.topic, o.partition): err for o in offsets}

        error = self._validate(group_id, allow_empty=True)
        if error is not None:
            return all_(error)
        group = self.groups.get(group_id)
        if group is None:
            if generation_id >= 0:
                return all_(E.illegal_generation)
            group = ClassicGroup(group_id, now_ms)
            self.groups[group_id] = group
            result = self._store_offsets(group, offsets, now_ms)
            self._forget_if_unused(group)
            return result
        if group.is_(GroupState.DEAD):
            return all_(E.coordinator_not_available)
        if group.is_static_member_fenced(member_id, instance_id):
            return all_(E.fenced_instance_id)
        if generation_id < 0 and group.is_(GroupState.EMPTY):
            return self._store_offsets(group, offsets, now_ms)
        if (
            group.is_(GroupState.COMPLETING_REBALANCE)
            and group.has(member_id)
            and (generation_id == group.generation_id)
        ):
            return all_(E.rebalance_in_progress)
        if not group.has(member_id):
            return all_(E.unknown_member_id)
        if generation_id != group.generation_id:
            return all_(E.illegal_generation)
        if group.is_(GroupState.EMPTY):
            return all_(E.unknown_member_id)
        # Stable or PreparingRebalance: commits of the current generation are allowed
        self._schedule_heartbeat(group, group.members[member_id], now_ms)
        return self._store_offsets(group, offsets, now_ms)

    def _store_offsets(
        self, group: ClassicGroup, offsets: Sequence[OffsetCommit], now_ms: int
    ) -> dict[TopicPartition, ErrorCode]:
        result: dict[TopicPartition, ErrorCode] = {}
        accepted: dict[TopicPartition, CommittedOffset] = {}
        records: list[KeyValue] = []
        limit = self.config.offset_metadata_max_bytes
        for o in offsets:
            tp = (o.topic, o.partition)
            metadata = o.metadata or ""
            if len(metadata.encode()) > limit:
                result[tp] = E.offset_metadata_too_large
                continue
            committed = CommittedOffset(
                o.offset, o.leader_epoch, metadata, now_ms, o.expire_timestamp
            )
            try:
                key = encode_offset_key(OffsetKey(group.group_id, o.topic, o.partition))
            except ValueError:
                result[tp] = E.invalid_topic_exception
                continue
            accepted[tp] = committed
            records.append(
                (
                    key,
                    encode_offset_value(
                        OffsetValue(o.offset, o.leader_epoch, metadata, now_ms, o.expire_timestamp)
                    ),
                )
            )
        if records:
            error = self._append(group.group_id, records)
            if error is not E.none:
                mapped = _STORE_OFFSET_ERRORS.get(error, error)
                for tp in accepted:
                    result[tp] = mapped
                return result
            group.offsets.update(accepted)
            for tp in accepted:
                result[tp] = E.none
        return result

    def fetch_offsets(
        self, group_id: str, partitions: Iterable[TopicPartition] | None
    ) -> tuple[ErrorCode, dict[TopicPartition, CommittedOffset | None]]:
        """OffsetFetch, regardless of group state. ``partitions=None`` = all committed."""
        error = self._validate(group_id, allow_empty=True)
        if error is not None:
            return error, {}
        group = self.groups.get(group_id)
        offsets = group.offsets if group is not None else {}
        if partitions is None:
            return E.none, dict(offsets)
        return E.none, {tp: offsets.get(tp) for tp in partitions}

    def delete_offsets(
        self, now_ms: int, *, group_id: str, partitions: Sequence[TopicPartition]
    ) -> tuple[ErrorCode, dict[TopicPartition, ErrorCode]]:
        """OffsetDelete (KIP-496): only offsets of topics the group does not consume."""
        error = self._validate(group_id, allow_empty=True)
        if error is not None:
            return error, {}
        group = self.groups.get(group_id)
        if group is None or group.is_(GroupState.DEAD):
            return E.group_id_not_found, {}
        result: dict[TopicPartition, ErrorCode] = {}
        if group.is_(GroupState.EMPTY):
            deletable = list(partitions)
        elif group.protocol_type == "consumer":
            deletable = []
            for tp in partitions:
                if group.is_subscribed_to(tp[0]):
                    result[tp] = E.group_subscribed_to_topic
                else:
                    deletable.append(tp)
        else:
            return E.non_empty_group, {}
        present = [tp for tp in deletable if tp in group.offsets]
        if present:
            records = [
                (encode_offset_key(OffsetKey(group.group_id, t, p)), None) for t, p in present
            ]
            append_error = self._append(group.group_id, records)
            if append_error is not E.none:
                mapped = _STORE_OFFSET_ERRORS.get(append_error, append_error)
                return mapped, {}
            for tp in present:
                del group.offsets[tp]
        for tp in deletable:
            result[tp] = E.none
        self.tick(now_ms)
        return E.none, result

    def expire_offsets(self, now_ms: int) -> int:
        """Kafka's cleanupGroupMetadata: drop expired offsets (empty groups: retention
        counted from when the group became empty; simple groups: from the commit; stable
        consumer groups: offsets of unsubscribed topics), then groups left empty and
        offset-less become Dead. Returns the number of offsets removed."""
        retention = self.config.offsets_retention_ms
        removed = 0
        for group in list(self.groups.values()):
            expired = self._expired_offsets(group, now_ms, retention)
            records: list[KeyValue] = [
                (encode_offset_key(OffsetKey(group.group_id, t, p)), None) for t, p in expired
            ]
            dead = (
                group.is_(GroupState.EMPTY)
                and not group.members
                and (not (group.offsets.keys() - set(expired)))
                and not group.pending_members
            )
            if dead and group.generation_id > 0:
                records.append((encode_group_key(GroupKey(group.group_id)), None))
            if records and self._append(group.group_id, records) is not E.none:
                continue
            for tp in expired:
                del group.offsets[tp]
            removed += len(expired)
            if dead:
                group.transition_to(GroupState.DEAD, now_ms)
                del self.groups[group.group_id]
        return removed

    def delete_topic_offsets(self, now_ms: int, topic: str) -> int:
        """Drop every group's offsets of a deleted topic (tombstones written); returns how
        many were removed."""
        removed = 0
        for group in list(self.groups.values()):
            gone = [tp for tp in group.offsets if tp[0] == topic]
            if not gone:
                continue
            records: list[KeyValue] = [
                (encode_offset_key(OffsetKey(group.group_id, t, p)), None) for t, p in gone
            ]
            if self._append(group.group_id, records) is not E.none:
                continue
            for tp in gone:
                del group.offsets[tp]
            removed += len(gone)
        self.tick(now_ms)
        return removed

    @staticmethod
    def _expired_offsets(group: ClassicGroup, now_ms: int, retention: int) -> list[TopicPartition]:
        def is_expired(c: CommittedOffset, base: int) -> bool:
            if c.expire_timestamp is not None:
                return now_ms >= c.expire_timestamp
            return now_ms - base >= retention

        if group.protocol_type is None or group.protocol_type == "":
            return [tp for tp, c in group.offsets.items() if is_expired(c, c.commit_timestamp)]
        if group.is_(GroupState.EMPTY):
            return [tp for tp, c in group.offsets.items() if is_expired(c, group.state_timestamp)]
        if (
            group.protocol_type == "consumer"
            and group.is_(GroupState.STABLE)
            and group.subscribed_topics is not None
        ):
            return [
                tp
                for tp, c in group.offsets.items()
                if tp[0] not in group.subscribed_topics and is_expired(c, c.commit_timestamp)
            ]
        return []

    # ================================================================ admin
    def describe_group(self, group_id: str) -> tuple[ErrorCode, GroupSummary | None]:
        """(error, summary); summary None = unknown group (Kafka answers a Dead group)."""
        error = self._validate(group_id, allow_empty=True)
        if error is not None:
            return error, None
        group = self.groups.get(group_id)
        return E.none, (group.summary() if group is not None else None)

    def list_groups(
        self, states: Iterable[GroupState] | None = None
    ) -> tuple[ErrorCode, list[ListedGroup]]:
        if not self.active:
            return E.coordinator_not_available, []
        error = E.coordinator_load_in_progress if self.loading else E.none
        wanted = set(states) if states else None
        return error, [
            ListedGroup(g.group_id, g.protocol_type or "", g.state)
            for g in self.groups.values()
            if wanted is None or g.state in wanted
        ]

    def delete_groups(self, now_ms: int, group_ids: Iterable[str]) -> dict[str, ErrorCode]:
        result: dict[str, ErrorCode] = {}
        for group_id in group_ids:
            error = self._validate(group_id, allow_empty=True)
            if error is not None:
                result[group_id] = error
                continue
            group = self.groups.get(group_id)
            if group is None or group.is_(GroupState.DEAD):
                result[group_id] = E.group_id_not_found
                continue
            if not group.is_(GroupState.EMPTY):
                result[group_id] = E.non_empty_group
                continue
            records: list[KeyValue] = [
                (encode_offset_key(OffsetKey(group_id, t, p)), None) for t, p in group.offsets
            ]
            records.append((encode_group_key(GroupKey(group_id)), None))
            append_error = self._append(group_id, records)
            if append_error is not E.none:
                result[group_id] = _STORE_OFFSET_ERRORS.get(append_error, append_error)
                continue
            for pending in list(group.pending_members):
                self._timers.cancel((_PENDING, group_id, pending))
            group.transition_to(GroupState.DEAD, now_ms)
            del self.groups[group_id]
            result[group_id] = E.none
        self.tick(now_ms)
        return result

    # ================================================================ loading
    def begin_load(self) -> None:
        self.loading = True

    def load_record(self, key: bytes | None, value: bytes | None, now_ms: int) -> None:
        """Apply one ``__consumer_offsets`` record in log order (compaction semantics:
        the last value per key wins, a null value deletes). Raises LogFormatError."""
        if key is None:
            return
        decoded = decode_key(key)
        if isinstance(decoded, OffsetKey):
            tp = (decoded.topic, decoded.partition)
            group = self.groups.get(decoded.group_id)
            if value is None:
                if group is not None:
                    group.offsets.pop(tp, None)
                return
            v = decode_offset_value(value)
            if group is None:
                group = self.groups[decoded.group_id] = ClassicGroup(decoded.group_id, now_ms)
            group.offsets[tp] = CommittedOffset(
                v.offset, v.leader_epoch, v.metadata, v.commit_timestamp, v.expire_timestamp
            )
        elif isinstance(decoded, GroupKey):
            gid = decoded.group_id
            if value is None:
                self.groups.pop(gid, None)
                return
            gv = decode_group_value(value)
            old = self.groups.get(gid)
            group = ClassicGroup(
                gid,
                gv.current_state_timestamp if gv.current_state_timestamp >= 0 else now_ms,
                GroupState.STABLE if gv.members else GroupState.EMPTY,
            )
            if old is not None:
                group.offsets = old.offsets
            group.generation_id = gv.generation_id
            group.protocol_type = gv.protocol_type
            group.protocol_name = gv.protocol_name
            for mv in gv.members:
                group.members[mv.member_id] = Member(
                    mv.member_id,
                    mv.group_instance_id,
                    mv.client_id,
                    mv.client_host,
                    mv.rebalance_timeout_ms,
                    mv.session_timeout_ms,
                    gv.protocol_type,
                    [(gv.protocol_name or "", mv.subscription)],
                    assignment=mv.assignment,
                )
                if mv.group_instance_id is not None:
                    group.static_members[mv.group_instance_id] = mv.member_id
            group.leader_id = (
                gv.leader_id if gv.leader_id in group.members else (next(iter(group.members), None))
            )
            group.subscribed_topics = group._compute_subscribed_topics()
            self.groups[gid] = group

    def complete_load(self, now_ms: int) -> None:
        """Loading done: members of loaded groups must heartbeat within their session
        timeout from now; the retention check starts."""
        for group in self.groups.values():
            for member in group.members.values():
                self._schedule_heartbeat(group, member, now_ms)
        self.loading = False
        self.active = True
        if _EXPIRE not in self._timers:
            self._timers.schedule(_EXPIRE, now_ms + self.config.offsets_retention_check_interval_ms)

    def shutdown(self) -> None:
        """Answer every delayed request with NOT_COORDINATOR (Kafka's onGroupUnloaded)."""
        self.active = False
        for group in self.groups.values():
            for member in group.members.values():
                if member.awaiting_join is not None:
                    self._complete(
                        _join_error(member.awaiting_join, member.member_id, E.not_coordinator)
                    )
                    member.awaiting_join = None
                if member.awaiting_sync is not None:
                    self._complete(SyncResult(member.awaiting_sync, E.not_coordinator))
                    member.awaiting_sync = None
