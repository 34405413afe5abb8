"""JoinGroup, SyncGroup, Heartbeat, LeaveGroup and the rebalance they drive, as in
Kafka's classic GroupCoordinator: MEMBER_ID_REQUIRED (KIP-394), static members (KIP-345,
KIP-814), the initial rebalance delay, the rebalance timeout (DelayedJoin), the pending
SyncGroup timeout (DelayedSync) and session timeouts (DelayedHeartbeat). Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kio.schema.errors import ErrorCode

from broker.group.base import CoordinatorBase
from broker.group.events import (
    HEARTBEAT_TIMER,
    JOIN_TIMER,
    PENDING_TIMER,
    STORE_GROUP_ERRORS,
    SYNC_TIMER,
    JoinResult,
    SyncResult,
    join_error,
)
from broker.group.group import ClassicGroup
from broker.group.log_format import (
    GroupKey,
    GroupValue,
    MemberValue,
    encode_group_key,
    encode_group_value,
)
from broker.group.member import Member, Token
from broker.group.state import GroupState

E = ErrorCode


@dataclass(frozen=True, slots=True)
class Joining:
    """What a JoinGroup says about the joining member (its id aside)."""

    token: Token
    version: int
    instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: list[tuple[str, bytes]]


class MembershipMixin(CoordinatorBase):
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
            self._complete(join_error(token, member_id, error))
            self.tick(now_ms)
            return
        is_unknown = member_id == ""
        group = self.groups.get(group_id)
        if group is None:
            if not is_unknown:
                self._complete(join_error(token, member_id, E.unknown_member_id))
                self.tick(now_ms)
                return
            group = ClassicGroup(group_id, now_ms)
            self.groups[group_id] = group
        if not self._accept_joining_member(group, member_id):
            self._complete(join_error(token, member_id, E.group_max_size_reached))
        else:
            joining = Joining(token, version, group_instance_id, client_id, client_host,
                              session_timeout_ms, rebalance_timeout_ms, protocol_type, protos)
            if is_unknown:
                self._join_new_member(group, joining, now_ms, require_known_member_id)
            else:
                self._join_known_member(group, joining, now_ms, member_id)
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

    def _refuse_join(self, group: ClassicGroup, j: Joining, member_id: str) -> bool:
        """Answer (and return True) a join the group cannot take at all."""
        if group.is_(GroupState.DEAD):
            self._complete(join_error(j.token, member_id, E.coordinator_not_available))
            return True
        if not group.supports_protocols(j.protocol_type, {n for n, _ in j.protocols}):
            self._complete(join_error(j.token, member_id, E.inconsistent_group_protocol))
            return True
        return False

    def _join_new_member(self, group: ClassicGroup, j: Joining, now_ms: int,
                         require_known_member_id: bool) -> None:
        if self._refuse_join(group, j, ""):
            return
        instance_id = j.instance_id
        new_id = self.new_member_id(instance_id if instance_id is not None else j.client_id)
        if instance_id is not None and group.static_member_id(instance_id) is not None:
            self._replace_static_member(group, j, now_ms, new_id, instance_id)
        elif instance_id is None and require_known_member_id:
            group.pending_members.add(new_id)
            self._timers.schedule(
                (PENDING_TIMER, group.group_id, new_id), now_ms + j.session_timeout_ms
            )
            self._complete(join_error(j.token, new_id, E.member_id_required))
        else:
            self._add_member_and_rebalance(group, j, now_ms, new_id)

    def _join_known_member(self, group: ClassicGroup, j: Joining, now_ms: int,
                           member_id: str) -> None:
        if self._refuse_join(group, j, member_id):
            return
        token, instance_id, protocols = j.token, j.instance_id, j.protocols
        if member_id in group.pending_members:
            if instance_id is not None:  # a pending member is never static
                self._complete(join_error(token, member_id, E.unknown_member_id))
                return
            self._timers.cancel((PENDING_TIMER, group.group_id, member_id))
            self._add_member_and_rebalance(group, j, now_ms, member_id)
            return
        if group.is_static_member_fenced(member_id, instance_id):
            self._complete(join_error(token, member_id, E.fenced_instance_id))
            return
        if not group.has(member_id) or (
            instance_id is not None and group.static_member_id(instance_id) is None
        ):
            self._complete(join_error(token, member_id, E.unknown_member_id))
            return
        member = group.members[member_id]
        member.join_version = j.version
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
            self._complete(join_error(token, member_id, E.unknown_member_id))

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

    def _replace_static_member(self, group: ClassicGroup, j: Joining, now_ms: int,
                               new_id: str, instance_id: str) -> None:
        """KIP-345: a static member rejoining with an unknown member id takes over its old
        member's slot (and assignment); the old id is fenced."""
        token, version, protocols = j.token, j.version, j.protocols
        old_id = group.static_members[instance_id]
        old = group.members[old_id]
        if old.awaiting_join is not None:
            self._complete(join_error(old.awaiting_join, old_id, E.fenced_instance_id))
        if old.awaiting_sync is not None:
            self._complete(SyncResult(old.awaiting_sync, E.fenced_instance_id))
        old_leader = group.leader_id
        old_fields = (
            old.client_id,
            old.client_host,
            old.session_timeout_ms,
            old.rebalance_timeout_ms,
        )
        self._timers.cancel((HEARTBEAT_TIMER, group.group_id, old_id))
        member = group.replace_static_member(old_id, new_id)
        member.client_id, member.client_host = j.client_id, j.client_host
        member.session_timeout_ms = j.session_timeout_ms
        member.rebalance_timeout_ms = j.rebalance_timeout_ms
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
                self._timers.cancel((HEARTBEAT_TIMER, group.group_id, new_id))
                self._schedule_heartbeat(group, member, now_ms)
                self._complete(join_error(token, "", error))
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

    def _add_member_and_rebalance(self, group: ClassicGroup, j: Joining, now_ms: int,
                                  member_id: str) -> None:
        member = Member(
            member_id,
            j.instance_id,
            j.client_id,
            j.client_host,
            j.rebalance_timeout_ms,
            j.session_timeout_ms,
            j.protocol_type,
            j.protocols,
            awaiting_join=j.token,
            is_new=True,
            join_version=j.version,
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
                join_error(member.awaiting_join, member.member_id, E.rebalance_in_progress)
            )
        member.awaiting_join = token
        self._maybe_prepare_rebalance(group, now_ms)

    def _maybe_prepare_rebalance(self, group: ClassicGroup, now_ms: int) -> None:
        if group.can_rebalance():
            self._prepare_rebalance(group, now_ms)

    def _prepare_rebalance(self, group: ClassicGroup, now_ms: int) -> None:
        group.pending_sync.clear()
        self._timers.cancel((SYNC_TIMER, group.group_id))
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
        self._timers.schedule((JOIN_TIMER, group.group_id), deadline)
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
                self._timers.schedule((JOIN_TIMER, group.group_id), now_ms + delay)
                return
            group.in_initial_delay = False
        self._complete_join(group, now_ms)

    def _complete_join(self, group: ClassicGroup, now_ms: int) -> None:
        self._timers.cancel((JOIN_TIMER, group.group_id))
        group.new_member_added = False
        for member in group.not_yet_rejoined():
            if not member.is_static:
                group.remove(member.member_id)
                self._timers.cancel((HEARTBEAT_TIMER, group.group_id, member.member_id))
        if group.is_(GroupState.DEAD):
            return
        if not group.maybe_elect_new_joined_leader() and group.members:
            # nobody rejoined: wait another rebalance timeout for session expiry to act
            self._timers.schedule(
                (JOIN_TIMER, group.group_id), now_ms + group.rebalance_timeout_ms()
            )
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
        self._timers.schedule((SYNC_TIMER, group.group_id), now_ms + group.rebalance_timeout_ms())

    def _received_sync(self, group: ClassicGroup, member_id: str) -> None:
        group.pending_sync.discard(member_id)
        if not group.pending_sync:
            self._timers.cancel((SYNC_TIMER, group.group_id))

    def _on_sync_timer(self, group: ClassicGroup, now_ms: int) -> None:
        """Kafka's DelayedSync: members that joined but never sent SyncGroup (e.g. a
        leader that keeps heartbeating without assigning) are removed, then rebalance."""
        if group.state not in (GroupState.COMPLETING_REBALANCE, GroupState.STABLE):
            return
        late = [group.members[m] for m in group.pending_sync if m in group.members]
        group.pending_sync.clear()
        for member in late:
            if member.awaiting_join is not None:
                self._complete(join_error(member.awaiting_join, "", E.unknown_member_id))
                member.awaiting_join = None
            if member.awaiting_sync is not None:
                self._complete(SyncResult(member.awaiting_sync, E.unknown_member_id))
                member.awaiting_sync = None
            group.remove(member.member_id)
            self._timers.cancel((HEARTBEAT_TIMER, group.group_id, member.member_id))
        if late:
            self._maybe_prepare_rebalance(group, now_ms)

    def _remove_member_and_update_group(
        self, group: ClassicGroup, member: Member, now_ms: int
    ) -> None:
        if member.awaiting_join is not None:
            self._complete(join_error(member.awaiting_join, "", E.unknown_member_id))
            member.awaiting_join = None
        if member.awaiting_sync is not None:
            self._complete(SyncResult(member.awaiting_sync, E.unknown_member_id))
            member.awaiting_sync = None
        group.remove(member.member_id)
        self._timers.cancel((HEARTBEAT_TIMER, group.group_id, member.member_id))
        if group.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
            self._maybe_prepare_rebalance(group, now_ms)
        elif group.is_(GroupState.PREPARING_REBALANCE):
            self._try_complete_join(group, now_ms)

    def _remove_pending_member(self, group: ClassicGroup, member_id: str, now_ms: int) -> None:
        group.pending_members.discard(member_id)
        self._timers.cancel((PENDING_TIMER, group.group_id, member_id))
        if group.is_(GroupState.PREPARING_REBALANCE):
            self._try_complete_join(group, now_ms)
        self._forget_if_unused(group)

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
        error = self._member_error(group, generation_id, member_id, instance_id)
        if error is not None:
            return error
        assert group is not None
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
        return STORE_GROUP_ERRORS.get(error, E.unknown_server_error)

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

    @staticmethod
    def _member_error(group: ClassicGroup | None, generation_id: int, member_id: str,
                      instance_id: str | None) -> ErrorCode | None:
        """Kafka's checks, in Kafka's order, that a request comes from a current member of
        the group's current generation (SyncGroup, Heartbeat); None when it does."""
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
        return None

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
        error = self._member_error(group, generation_id, member_id, instance_id)
        if error is not None:
            return error
        assert group is not None
        if group.is_(GroupState.EMPTY):
            return E.unknown_member_id
        self._schedule_heartbeat(group, group.members[member_id], now_ms)
        if group.is_(GroupState.PREPARING_REBALANCE):
            return E.rebalance_in_progress
        return E.none

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
