"""The group coordinator with KIP-848 consumer groups beside classic groups. Pure.

``ConsumerGroupCoordinator`` extends the classic ``GroupCoordinator`` (same rules: no
I/O, no clock, every event carries ``now_ms``, records go through the ``OffsetsStore``
port before the in-memory state changes) with:

- ``consumer_group_heartbeat`` (ConsumerGroupHeartbeat v0-1): join (epoch 0), heartbeat
  (current epoch; the previous one is accepted when our last answer was lost), leave
  (-1), static temporary leave (-2, KIP-345 semantics: the assignment is kept for the
  same ``group.instance.id`` until the session times out). Answers are immediate: there
  is no purgatory in this protocol.
- epochs and the target assignment: membership, subscription and subscribed-topic
  changes bump the group epoch; a new target is computed by the server-side assignor
  (``uniform``/``range``) at once; each member reconciles towards it on its heartbeats
  (``consumer_group.reconcile``: revocation before assignment).
- timers in their own queue: session timeout (``group.consumer.session.timeout.ms``, from
  every heartbeat) and rebalance timeout (a member that does not revoke in time is
  removed).
- ``update_topic_metadata``: the shell passes every topic's id and partition count
  whenever a topic changes; subscriptions (names and regexes) are re-resolved and a group
  whose subscribed topics changed gets a new epoch and target.
- persistence: Kafka's records (``consumer_records``) in the group's ``__consumer_offsets``
  partition; ``load_record`` replays them, so a restart or failover keeps every epoch.
- committed offsets of a consumer group live in a classic ``ClassicGroup`` kept Empty in
  ``groups`` (the *offset holder*): classic offset code (commit, fetch, delete, retention,
  transactional offsets) serves both types; this class checks member epochs in front of it
  (STALE_MEMBER_EPOCH, UNKNOWN_MEMBER_ID).
- classic <-> consumer: an empty classic group becomes a consumer group on its first
  ConsumerGroupHeartbeat, an empty consumer group becomes classic on a JoinGroup; a
  JoinGroup to a consumer group with members makes a classic member of it
  (``consumer_classic``: JoinGroup/SyncGroup/Heartbeat/LeaveGroup served from the consumer
  group's assignment); a ConsumerGroupHeartbeat to a Stable classic consumer group with
  members converts it (Kafka's online upgrade: every member keeps its assignment and goes
  on as a classic member), to any other non-empty classic group answers
  GROUP_ID_NOT_FOUND; a consumer group left with JoinGroup members only becomes classic
  again (``_cg_maybe_downgrade``, Kafka's online downgrade).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kio.schema.errors import ErrorCode

from broker.group.config import GroupConfig
from broker.group.consumer_assignors import ASSIGNORS
from broker.group.consumer_classic import (
    PROTOCOL_TYPE,
    chosen_protocol,
    classic_heartbeat,
    classic_join,
    classic_leave,
    classic_sync,
    convert_classic_group,
    encode_assignment,
    topic_names_of,
)
from broker.group.consumer_config import ConsumerGroupConfig
from broker.group.consumer_group import (
    JOIN_EPOCH,
    LEAVE_EPOCH,
    STATIC_LEAVE_EPOCH,
    ConsumerGroup,
    ConsumerGroupState,
    ConsumerMember,
    MemberState,
    Partitions,
    compile_regex,
    epoch_is_valid,
    reconcile,
    subscribed_topic_names,
    subscription_metadata,
)
from broker.group.consumer_records import (
    CONSUMER_TYPES,
    CURRENT_MEMBER_ASSIGNMENT,
    GROUP_METADATA,
    MEMBER_METADATA,
    PARTITION_METADATA,
    TARGET_ASSIGNMENT_MEMBER,
    TARGET_ASSIGNMENT_METADATA,
    ConsumerKey,
    CurrentAssignmentValue,
    MemberMetadataValue,
    TopicMetadata,
    decode_current_assignment,
    decode_epoch_value,
    decode_key,
    decode_member_metadata,
    decode_partition_metadata,
    decode_target_member,
    encode_current_assignment,
    encode_epoch_value,
    encode_key,
    encode_member_metadata,
    encode_partition_metadata,
    encode_target_member,
    record_type,
)
from broker.group.coordinator import GroupCoordinator
from broker.group.events import (
    HEARTBEAT_TIMER,
    JOIN_TIMER,
    PENDING_TIMER,
    STORE_GROUP_ERRORS,
    SYNC_TIMER,
    KeyValue,
    ListedGroup,
    OffsetCommit,
    OffsetsStore,
    TopicPartition,
    join_error,
)
from broker.group.group import ClassicGroup, CommittedOffset, GroupSummary
from broker.group.log_format import (
    GroupKey,
    GroupValue,
    MemberValue,
    encode_group_key,
    encode_group_value,
)
from broker.group.member import Member, Token
from broker.group.state import GroupState
from broker.group.timers import TimerQueue

E = ErrorCode
SESSION_TIMER = "cg-session"  # (SESSION_TIMER, group id, member id)
REVOKE_TIMER = "cg-revoke"  # (REVOKE_TIMER, group id, member id): rebalance timeout


@dataclass(frozen=True, slots=True)
class HeartbeatResult:
    error: ErrorCode
    error_message: str | None = None
    member_id: str | None = None
    member_epoch: int = 0
    heartbeat_interval_ms: int = 0
    #: the member's assigned partitions when the answer carries them, else None
    assignment: Partitions | None = None


@dataclass(frozen=True, slots=True)
class DescribedMember:
    member: ConsumerMember
    target: Partitions


@dataclass(frozen=True, slots=True)
class DescribedConsumerGroup:
    group_id: str
    error: ErrorCode
    error_message: str | None = None
    state: str = ""
    group_epoch: int = 0
    assignment_epoch: int = 0
    assignor_name: str = ""
    members: tuple[DescribedMember, ...] = field(default=())


def _fail(error: ErrorCode, message: str | None = None) -> HeartbeatResult:
    return HeartbeatResult(error, message)


def _norm(partitions: Partitions | None) -> Partitions | None:
    if partitions is None:
        return None
    return {t: frozenset(ps) for t, ps in partitions.items() if ps}


class ConsumerGroupCoordinator(GroupCoordinator):
    def __init__(
        self,
        config: GroupConfig,
        store: OffsetsStore,
        *,
        new_member_id: Callable[[str], str],
        consumer_config: ConsumerGroupConfig | None = None,
    ) -> None:
        super().__init__(config, store, new_member_id=new_member_id)
        self.consumer_config = consumer_config or ConsumerGroupConfig()
        self.consumer_groups: dict[str, ConsumerGroup] = {}
        #: every topic's metadata by name (set by the shell: ``update_topic_metadata``)
        self.topic_metadata: dict[str, TopicMetadata] = {}
        self._cg_timers = TimerQueue()
        #: (group, member) -> member epoch a rebalance-timeout timer was armed for
        self._revoke_epochs: dict[tuple[str, str], int] = {}
        self._topics_known = False

    # ================================================================ timers
    def next_deadline(self) -> int | None:
        deadlines = [d for d in (super().next_deadline(), self._cg_timers.next_deadline())
                     if d is not None]
        return min(deadlines) if deadlines else None

    def tick(self, now_ms: int) -> None:
        while True:
            key = self._cg_timers.pop_expired(now_ms)
            if key is None:
                break
            kind, group_id, member_id = key  # type: ignore[misc]
            group = self.consumer_groups.get(group_id)
            if group is None or member_id not in group.members:
                continue
            if kind == SESSION_TIMER:
                if self._remove_members(group, [member_id], now_ms) is not E.none:
                    self._arm_session(group_id, member_id, now_ms)  # try again later
            elif kind == REVOKE_TIMER:
                member = group.members[member_id]
                epoch = self._revoke_epochs.pop((group_id, member_id), None)
                if member.state is MemberState.UNREVOKED_PARTITIONS and (
                    epoch == member.member_epoch
                ):
                    self._remove_members(group, [member_id], now_ms)
            self._cg_maybe_downgrade(group_id, now_ms)
        super().tick(now_ms)

    def _arm_session(self, group_id: str, member_id: str, now_ms: int) -> None:
        timeout = self.consumer_config.session_timeout_ms
        group = self.consumer_groups.get(group_id)
        member = group.members.get(member_id) if group is not None else None
        if member is not None and member.classic_session_timeout_ms:
            timeout = member.classic_session_timeout_ms  # a JoinGroup member's own
        self._cg_timers.schedule((SESSION_TIMER, group_id, member_id), now_ms + timeout)

    def _cancel_timers(self, group_id: str, member_id: str) -> None:
        self._cg_timers.cancel((SESSION_TIMER, group_id, member_id))
        self._cg_timers.cancel((REVOKE_TIMER, group_id, member_id))
        self._revoke_epochs.pop((group_id, member_id), None)

    def _arm_revocation(self, group_id: str, before: ConsumerMember | None,
                        after: ConsumerMember, now_ms: int) -> None:
        key = (REVOKE_TIMER, group_id, after.member_id)
        if after.state is not MemberState.UNREVOKED_PARTITIONS:
            self._cg_timers.cancel(key)
            self._revoke_epochs.pop((group_id, after.member_id), None)
            return
        if before is not None and before.state is MemberState.UNREVOKED_PARTITIONS and (
            key in self._cg_timers
        ):
            return  # still revoking the same partitions: the deadline stands
        timeout = after.rebalance_timeout_ms if after.rebalance_timeout_ms > 0 else 300_000
        self._cg_timers.schedule(key, now_ms + timeout)
        self._revoke_epochs[(group_id, after.member_id)] = after.member_epoch

    # ================================================================ heartbeat
    def consumer_group_heartbeat(
        self,
        now_ms: int,
        *,
        group_id: str,
        member_id: str,
        member_epoch: int,
        instance_id: str | None = None,
        rack_id: str | None = None,
        rebalance_timeout_ms: int = -1,
        subscribed_topic_names: Sequence[str] | None = None,
        subscribed_topic_regex: str | None = None,
        server_assignor: str | None = None,
        owned: Partitions | None = None,
        client_id: str = "",
        client_host: str = "",
        version: int = 1,
    ) -> HeartbeatResult:
        """ConsumerGroupHeartbeat; request validation and errors as Kafka's
        GroupMetadataManager.consumerGroupHeartbeat."""
        try:
            invalid = self._check_request(group_id, member_id, member_epoch, instance_id,
                                          rack_id, rebalance_timeout_ms,
                                          subscribed_topic_names, subscribed_topic_regex,
                                          server_assignor, owned, version)
            if invalid is not None:
                return invalid
            error = self._validate(group_id, allow_empty=False)
            if error is not None:
                return _fail(error)
            if not member_id:  # v0: the coordinator names the member
                member_id = self.new_member_id(client_id or "consumer")
            if member_epoch in (LEAVE_EPOCH, STATIC_LEAVE_EPOCH):
                return self._cg_leave(now_ms, group_id, member_id, member_epoch, instance_id)
            return self._cg_heartbeat(
                now_ms, group_id, member_id, member_epoch, instance_id, rack_id,
                rebalance_timeout_ms,
                None if subscribed_topic_names is None else tuple(subscribed_topic_names),
                subscribed_topic_regex, server_assignor, _norm(owned), client_id, client_host,
            )
        finally:
            self.tick(now_ms)

    def _check_request(
        self, group_id: str, member_id: str, member_epoch: int, instance_id: str | None,
        rack_id: str | None, rebalance_timeout_ms: int, names: Sequence[str] | None,
        regex: str | None, assignor: str | None, owned: Partitions | None, version: int,
    ) -> HeartbeatResult | None:
        bad = E.invalid_request
        if not group_id:
            return _fail(bad, "GroupId can't be empty.")
        if version >= 1 and not member_id:
            return _fail(bad, "MemberId can't be empty.")
        if version == 0 and member_epoch != JOIN_EPOCH and not member_id:
            return _fail(bad, "MemberId can't be empty.")
        if instance_id is not None and not instance_id:
            return _fail(bad, "InstanceId can't be empty.")
        if rack_id is not None and not rack_id:
            return _fail(bad, "RackId can't be empty.")
        if member_epoch == JOIN_EPOCH:
            if rebalance_timeout_ms == -1:
                return _fail(bad, "RebalanceTimeoutMs must be provided in first request.")
            if owned is None or any(owned.values()):
                return _fail(bad, "TopicPartitions must be empty when (re-)joining.")
            if names is None and regex is None:
                return _fail(bad, "SubscribedTopicNames or SubscribedTopicRegex must be set "
                                  "in first request.")
        elif member_epoch == STATIC_LEAVE_EPOCH:
            if instance_id is None:
                return _fail(bad, "InstanceId can't be null.")
        elif member_epoch < STATIC_LEAVE_EPOCH:
            return _fail(bad, f"MemberEpoch {member_epoch} is invalid.")
        if regex is not None and regex and compile_regex(regex) is None:
            return _fail(E.invalid_regular_expression,
                         f"SubscribedTopicRegex `{regex}` is not a valid regular expression.")
        if assignor is not None and assignor not in self.consumer_config.assignors:
            return _fail(E.unsupported_assignor,
                         f"ServerAssignor {assignor} is not supported. Supported assignors: "
                         f"{', '.join(self.consumer_config.assignors)}.")
        return None

    def _holder_is_empty(self, group_id: str) -> bool:
        """No classic group of that id, or one that is Empty (may be upgraded)."""
        holder = self.groups.get(group_id)
        return holder is None or (
            holder.is_(GroupState.EMPTY) and not holder.members and not holder.pending_members
        )

    def _cg_heartbeat(
        self, now_ms: int, group_id: str, member_id: str, member_epoch: int,
        instance_id: str | None, rack_id: str | None, rebalance_timeout_ms: int,
        names: tuple[str, ...] | None, regex: str | None, assignor: str | None,
        owned: Partitions | None, client_id: str, client_host: str,
    ) -> HeartbeatResult:
        cfg = self.consumer_config
        group = self.consumer_groups.get(group_id)
        new_group = False
        if group is None:
            if member_epoch != JOIN_EPOCH:
                return _fail(E.unknown_member_id,
                             f"Member {member_id} is not a member of group {group_id}.")
            if self._holder_is_empty(group_id):
                group, new_group = ConsumerGroup(group_id), True
            else:  # a classic group with members: Kafka's online upgrade, when it can
                upgraded = self._cg_upgrade(group_id, now_ms)
                if upgraded is None:
                    return _fail(E.group_id_not_found,
                                 f"Group {group_id} is not a consumer group.")
                if isinstance(upgraded, ErrorCode):
                    return _fail(STORE_GROUP_ERRORS.get(upgraded, upgraded))
                group = upgraded
        old: ConsumerMember | None = group.members.get(member_id)
        replaced: ConsumerMember | None = None  # a static member this one takes over
        if member_epoch == JOIN_EPOCH:
            if instance_id is not None:
                previous_id = group.static_members.get(instance_id)
                if previous_id is not None and previous_id != member_id:
                    previous = group.members[previous_id]
                    if previous.member_epoch != STATIC_LEAVE_EPOCH:
                        return _fail(E.unreleased_instance_id,
                                     f"Static member {previous_id} with instance id "
                                     f"{instance_id} is not released yet.")
                    replaced = previous
            if old is None and replaced is None and len(group.members) >= cfg.max_size:
                return _fail(E.group_max_size_reached,
                             f"The consumer group has reached its maximum capacity of "
                             f"{cfg.max_size} members.")
            base = (replaced or old or ConsumerMember(member_id)).copy()
            base.member_id = member_id
            if replaced is not None or old is not None:
                # (re)joining: it owns nothing now; what it held is kept for it
                base.member_epoch = 0
                base.previous_member_epoch = 0
                base.state = MemberState.STABLE
                merged = dict(base.assigned)
                for t, ps in base.pending_revocation.items():
                    merged[t] = merged.get(t, frozenset()) | ps
                base.assigned = merged
                base.pending_revocation = {}
        else:
            if old is None or old.uses_classic_protocol:
                return _fail(E.unknown_member_id,
                             f"Member {member_id} is not a member of group {group_id}.")
            if instance_id is not None and old.instance_id != instance_id:
                return _fail(E.fenced_instance_id,
                             f"Member {member_id} is not the owner of instance id {instance_id}.")
            if old.member_epoch == STATIC_LEAVE_EPOCH or not epoch_is_valid(
                old, member_epoch, owned
            ):
                return _fail(E.fenced_member_epoch,
                             f"The consumer group member has a member epoch {member_epoch} "
                             f"that does not match the expected {old.member_epoch}.")
            base = old.copy()
        member = base
        # a JoinGroup member that rejoins with ConsumerGroupHeartbeat changes protocol
        member.classic_protocols = member.classic_session_timeout_ms = None
        if instance_id is not None:
            member.instance_id = instance_id
        if rack_id is not None:
            member.rack_id = rack_id
        if rebalance_timeout_ms != -1:
            member.rebalance_timeout_ms = rebalance_timeout_ms
        if names is not None:
            member.subscribed_topic_names = names
        if regex is not None:
            member.subscribed_topic_regex = regex or None
        if assignor is not None:
            member.server_assignor = assignor
        member.client_id, member.client_host = client_id, client_host

        reported = {} if member_epoch == JOIN_EPOCH else owned
        error, updated = self._cg_commit_member(now_ms, group, new_group, old, member,
                                                replaced, reported)
        if error is not E.none:
            return _fail(STORE_GROUP_ERRORS.get(error, error))
        assert updated is not None
        send = (
            member_epoch == JOIN_EPOCH
            or old is None
            or updated.assigned != old.assigned
            or updated.member_epoch != old.member_epoch
            or (owned is not None and owned != updated.assigned)
        )
        return HeartbeatResult(
            E.none, None, member_id, updated.member_epoch, cfg.heartbeat_interval_ms,
            dict(updated.assigned) if send else None,
        )

    def _cg_commit_member(
        self, now_ms: int, group: ConsumerGroup, new_group: bool, old: ConsumerMember | None,
        member: ConsumerMember, replaced: ConsumerMember | None, reported: Partitions | None,
    ) -> tuple[ErrorCode, ConsumerMember | None]:
        """Persist and apply a member's new metadata: a new group epoch and target when
        its subscription changed (or it is new), its reconciliation towards the target
        given the partitions it ``reported`` owning; ``replaced`` = a static member it
        takes over. Returns (append error, the member as now stored)."""
        group_id, member_id = group.group_id, member.member_id
        records: list[KeyValue] = []
        if replaced is not None:
            records += self._member_tombstones(group_id, replaced.member_id)
        previous_shape = old or replaced
        subscription_changed = previous_shape is None or (
            (previous_shape.subscribed_topic_names, previous_shape.subscribed_topic_regex,
             previous_shape.server_assignor, previous_shape.rack_id)
            != (member.subscribed_topic_names, member.subscribed_topic_regex,
                member.server_assignor, member.rack_id)
        )
        if old is None or not old.metadata_equals(member):
            records.append(self._member_metadata_record(group_id, member))
        members_after = {k: v for k, v in group.members.items()
                         if replaced is None or k != replaced.member_id}
        members_after[member_id] = member
        target_base = dict(group.target)
        if replaced is not None:
            target_base[member_id] = target_base.pop(replaced.member_id, {})
        plan = self._plan_epoch(group, members_after, bump=subscription_changed,
                                target_base=target_base)
        records += plan.records
        target = plan.target.get(member_id, {})
        if replaced is not None and not plan.target_changed:
            target = target_base.get(member_id, {})
        base_epoch = group.owner_epoch_for(member_id)
        skip = replaced.member_id if replaced is not None else None

        def owner_epoch(t: uuid.UUID, p: int) -> int:
            # a replaced static member's partitions are the new member's own
            if skip is not None and group.owners.get((t, p)) == skip:
                return -1
            return base_epoch(t, p)

        updated = reconcile(member, plan.target_epoch, target, reported, owner_epoch)
        if old is None or replaced is not None or not updated.assignment_equals(old):
            records.append(self._current_assignment_record(group_id, updated))
        if replaced is not None and member_id not in plan.changed:
            records.append((encode_key(ConsumerKey(TARGET_ASSIGNMENT_MEMBER, group_id,
                                                   member_id)), encode_target_member(target)))
        if records:
            error = self._append(group_id, records)
            if error is not E.none:
                return error, None
        # ---- persisted: apply
        if new_group:
            self.consumer_groups[group_id] = group
            self._adopt_holder(group_id, now_ms)
        if replaced is not None:
            group.remove_member(replaced.member_id)
            self._cancel_timers(group_id, replaced.member_id)
        self._apply_plan(group, plan)
        if replaced is not None:
            group.target[member_id] = dict(target)
        group.put_member(updated)
        self._arm_session(group_id, member_id, now_ms)
        self._arm_revocation(group_id, old, updated, now_ms)
        return E.none, updated

    def _cg_upgrade(self, group_id: str, now_ms: int) -> ConsumerGroup | ErrorCode | None:
        """Convert a Stable classic consumer group with members into a consumer group
        (``consumer_classic.convert_classic_group``) and persist it: None when it cannot
        be converted, the append error when it could not be written."""
        holder = self.groups[group_id]
        group = convert_classic_group(holder, self.topic_metadata,
                                      self.consumer_config.max_size)
        if group is None:
            return None
        # the classic record is overwritten by an Empty one, not deleted: a tombstone
        # would drop the group's committed offsets on replay
        records: list[KeyValue] = [(
            encode_group_key(GroupKey(group_id)),
            encode_group_value(GroupValue(PROTOCOL_TYPE, holder.generation_id, None, None,
                                          now_ms, ())),
        )]
        for m in group.members.values():
            records.append(self._member_metadata_record(group_id, m))
            records.append((encode_key(ConsumerKey(TARGET_ASSIGNMENT_MEMBER, group_id,
                                                   m.member_id)),
                            encode_target_member(group.target[m.member_id])))
            records.append(self._current_assignment_record(group_id, m))
        records += [
            (encode_key(ConsumerKey(PARTITION_METADATA, group_id)),
             encode_partition_metadata(group.subscription_metadata)),
            (encode_key(ConsumerKey(GROUP_METADATA, group_id)),
             encode_epoch_value(group.group_epoch)),
            (encode_key(ConsumerKey(TARGET_ASSIGNMENT_METADATA, group_id)),
             encode_epoch_value(group.assignment_epoch)),
        ]
        error = self._append(group_id, records)
        if error is not E.none:
            return error
        for mid in list(holder.members) + list(holder.pending_members):
            self._timers.cancel((HEARTBEAT_TIMER, group_id, mid))
            self._timers.cancel((PENDING_TIMER, group_id, mid))
        self._timers.cancel((JOIN_TIMER, group_id))
        self._timers.cancel((SYNC_TIMER, group_id))
        self.consumer_groups[group_id] = group
        self._adopt_holder(group_id, now_ms)
        for mid in group.members:
            self._arm_session(group_id, mid, now_ms)
        return group

    def _cg_maybe_downgrade(self, group_id: str, now_ms: int) -> None:
        """Kafka's online downgrade: a consumer group whose members all joined with
        JoinGroup becomes a classic group again (same members and assignments, generation
        = group epoch), which at once prepares a rebalance so they rejoin classically."""
        group = self.consumer_groups.get(group_id)
        if group is None or not group.members or not all(
            m.uses_classic_protocol for m in group.members.values()
        ):
            return
        members = [
            Member(m.member_id, m.instance_id, m.client_id, m.client_host,
                   m.rebalance_timeout_ms, m.classic_session_timeout_ms or 0, PROTOCOL_TYPE,
                   list(m.classic_protocols or ()),
                   assignment=encode_assignment(topic_names_of(self, m.assigned)))
            for m in group.members.values()
        ]
        protocol = chosen_protocol(group, next(iter(group.members.values())))
        leader = members[0].member_id
        value = GroupValue(PROTOCOL_TYPE, group.group_epoch, protocol, leader, now_ms, tuple(
            MemberValue(m.member_id, m.group_instance_id, m.client_id, m.client_host,
                        m.rebalance_timeout_ms, m.session_timeout_ms, m.metadata_for(protocol),
                        m.assignment)
            for m in members))
        records = self._group_tombstones(group)
        records.append((encode_group_key(GroupKey(group_id)), encode_group_value(value)))
        if self._append(group_id, records) is not E.none:
            return  # stays a consumer group; serving its classic members as before
        for mid in list(group.members):
            self._cancel_timers(group_id, mid)
        del self.consumer_groups[group_id]
        holder = self._adopt_holder(group_id, now_ms)
        holder.generation_id = group.group_epoch
        holder.protocol_type = PROTOCOL_TYPE
        for member in members:
            holder.add(member)
        holder.leader_id = leader
        holder.protocol_name = protocol
        holder.state = GroupState.STABLE
        holder.state_timestamp = now_ms
        holder.subscribed_topics = holder._compute_subscribed_topics()
        for member in members:
            self._schedule_heartbeat(holder, member, now_ms)
        self._prepare_rebalance(holder, now_ms)

    def _cg_leave(self, now_ms: int, group_id: str, member_id: str, member_epoch: int,
               instance_id: str | None) -> HeartbeatResult:
        group = self.consumer_groups.get(group_id)
        if group is None:
            return _fail(E.group_id_not_found, f"Group {group_id} not found.")
        if instance_id is not None:
            current = group.static_members.get(instance_id)
            if current is None:
                return _fail(E.unknown_member_id,
                             f"Instance id {instance_id} is unknown in group {group_id}.")
            if current != member_id:
                return _fail(E.fenced_instance_id,
                             f"Member {member_id} is not the owner of instance id {instance_id}.")
        member = group.members.get(member_id)
        if member is None:
            return _fail(E.unknown_member_id,
                         f"Member {member_id} is not a member of group {group_id}.")
        if member_epoch == STATIC_LEAVE_EPOCH:
            updated = member.copy()
            updated.member_epoch = STATIC_LEAVE_EPOCH
            error = self._append(group_id, [self._current_assignment_record(group_id, updated)])
            if error is not E.none:
                return _fail(STORE_GROUP_ERRORS.get(error, error))
            group.put_member(updated)
            self._cg_timers.cancel((REVOKE_TIMER, group_id, member_id))
            return HeartbeatResult(E.none, None, member_id, STATIC_LEAVE_EPOCH,
                                   self.consumer_config.heartbeat_interval_ms)
        error = self._remove_members(group, [member_id], now_ms)
        if error is not E.none:
            return _fail(STORE_GROUP_ERRORS.get(error, error))
        self._cg_maybe_downgrade(group_id, now_ms)
        return HeartbeatResult(E.none, None, member_id, LEAVE_EPOCH,
                               self.consumer_config.heartbeat_interval_ms)

    # ================================================================ epochs, targets
    @dataclass(slots=True)
    class _Plan:
        group_epoch: int
        target_epoch: int
        target: dict[str, Partitions]
        metadata: dict[str, TopicMetadata]
        records: list[KeyValue]
        target_changed: bool
        changed: set[str]

    def _plan_epoch(self, group: ConsumerGroup, members: dict[str, ConsumerMember], *,
                    bump: bool, target_base: dict[str, Partitions] | None = None,
                    ) -> ConsumerGroupCoordinator._Plan:
        """Records and values of a possible group-epoch bump and a new target for
        ``members`` (the group's membership after the change); ``target_base`` = the
        current target to stay close to (default: the group's)."""
        gid = group.group_id
        base = group.target if target_base is None else target_base
        metadata = subscription_metadata(members, self.topic_metadata)
        records: list[KeyValue] = []
        if metadata != group.subscription_metadata:
            bump = True
            records.append((encode_key(ConsumerKey(PARTITION_METADATA, gid)),
                            encode_partition_metadata(metadata)))
        epoch = group.group_epoch + 1 if bump else group.group_epoch
        if bump:
            records.append((encode_key(ConsumerKey(GROUP_METADATA, gid)),
                            encode_epoch_value(epoch)))
        if epoch <= group.assignment_epoch:
            return self._Plan(epoch, group.assignment_epoch, group.target, metadata, records,
                              False, set())
        subscriptions = {
            mid: {metadata[n].topic_id for n in subscribed_topic_names(m, metadata)}
            for mid, m in members.items()
        }
        counts = {t.topic_id: t.num_partitions for t in metadata.values()}
        assign = ASSIGNORS[self._preferred_assignor(members)]
        current = {mid: base.get(mid, {}) for mid in members}
        target = assign(subscriptions, counts, current)
        changed = {mid for mid in members if target.get(mid, {}) != group.target.get(mid, {})}
        for mid in sorted(changed):
            records.append((encode_key(ConsumerKey(TARGET_ASSIGNMENT_MEMBER, gid, mid)),
                            encode_target_member(target.get(mid, {}))))
        records.append((encode_key(ConsumerKey(TARGET_ASSIGNMENT_METADATA, gid)),
                        encode_epoch_value(epoch)))
        return self._Plan(epoch, epoch, target, metadata, records, True, changed)

    def _apply_plan(self, group: ConsumerGroup, plan: ConsumerGroupCoordinator._Plan) -> None:
        group.group_epoch = plan.group_epoch
        group.subscription_metadata = plan.metadata
        if plan.target_changed:
            group.target = {m: dict(t) for m, t in plan.target.items()}
            group.assignment_epoch = plan.target_epoch

    def _preferred_assignor(self, members: dict[str, ConsumerMember]) -> str:
        """The server assignor most members ask for (ties: configured order), else the
        first of ``group.consumer.assignors``."""
        votes: dict[str, int] = {}
        for m in members.values():
            if m.server_assignor:
                votes[m.server_assignor] = votes.get(m.server_assignor, 0) + 1
        if not votes:
            return self.consumer_config.default_assignor
        order = self.consumer_config.assignors
        return max(votes, key=lambda a: (votes[a], -order.index(a) if a in order else -99))

    def _remove_members(self, group: ConsumerGroup, member_ids: Iterable[str],
                        now_ms: int) -> ErrorCode:
        """Remove members (leave, session or rebalance timeout): tombstones, a new group
        epoch and target for the others; their partitions are free at once."""
        gone = [m for m in member_ids if m in group.members]
        if not gone:
            return E.none
        records: list[KeyValue] = []
        for mid in gone:
            records += self._member_tombstones(group.group_id, mid)
        remaining = {k: v for k, v in group.members.items() if k not in gone}
        plan = self._plan_epoch(group, remaining, bump=True)
        records += plan.records
        error = self._append(group.group_id, records)
        if error is not E.none:
            return error
        for mid in gone:
            group.remove_member(mid)
            self._cancel_timers(group.group_id, mid)
        self._apply_plan(group, plan)
        if not group.members:
            holder = self.groups.get(group.group_id)
            if holder is not None:
                holder.state_timestamp = now_ms
        return E.none

    def update_topic_metadata(self, now_ms: int, topics: dict[str, TopicMetadata]) -> None:
        """The shell's view of every topic changed: re-resolve subscriptions (names and
        regexes); a group whose subscribed topics changed gets a new epoch and target."""
        self.topic_metadata = dict(topics)
        self._topics_known = True
        self._reevaluate(now_ms)
        self.tick(now_ms)

    def _reevaluate(self, now_ms: int) -> None:
        if not self.active or self.loading or not self._topics_known:
            return
        for group in list(self.consumer_groups.values()):
            if not self.store.is_local(self.partition_for(group.group_id)):
                continue
            metadata = subscription_metadata(group.members, self.topic_metadata)
            if metadata == group.subscription_metadata:
                continue
            plan = self._plan_epoch(group, dict(group.members), bump=True)
            if self._append(group.group_id, plan.records) is E.none:
                self._apply_plan(group, plan)

    # ================================================================ records
    @staticmethod
    def _member_tombstones(group_id: str, member_id: str) -> list[KeyValue]:
        return [
            (encode_key(ConsumerKey(CURRENT_MEMBER_ASSIGNMENT, group_id, member_id)), None),
            (encode_key(ConsumerKey(TARGET_ASSIGNMENT_MEMBER, group_id, member_id)), None),
            (encode_key(ConsumerKey(MEMBER_METADATA, group_id, member_id)), None),
        ]

    @staticmethod
    def _member_metadata_record(group_id: str, m: ConsumerMember) -> KeyValue:
        return (
            encode_key(ConsumerKey(MEMBER_METADATA, group_id, m.member_id)),
            encode_member_metadata(MemberMetadataValue(
                m.instance_id, m.rack_id, m.client_id, m.client_host,
                m.subscribed_topic_names, m.subscribed_topic_regex, m.rebalance_timeout_ms,
                m.server_assignor,
                None if m.classic_protocols is None
                else (m.classic_session_timeout_ms or 0, m.classic_protocols),
            )),
        )

    @staticmethod
    def _current_assignment_record(group_id: str, m: ConsumerMember) -> KeyValue:
        return (
            encode_key(ConsumerKey(CURRENT_MEMBER_ASSIGNMENT, group_id, m.member_id)),
            encode_current_assignment(CurrentAssignmentValue(
                m.member_epoch, m.previous_member_epoch, int(m.state), m.assigned,
                m.pending_revocation,
            )),
        )

    def _group_tombstones(self, group: ConsumerGroup) -> list[KeyValue]:
        gid = group.group_id
        records: list[KeyValue] = []
        for mid in group.members:
            records += self._member_tombstones(gid, mid)
        records += [
            (encode_key(ConsumerKey(TARGET_ASSIGNMENT_METADATA, gid)), None),
            (encode_key(ConsumerKey(PARTITION_METADATA, gid)), None),
            (encode_key(ConsumerKey(GROUP_METADATA, gid)), None),
        ]
        return records

    def _adopt_holder(self, group_id: str, now_ms: int) -> ClassicGroup:
        """The Empty classic group that keeps a consumer group's committed offsets."""
        holder = self.groups.get(group_id)
        if holder is None:
            holder = self.groups[group_id] = ClassicGroup(group_id, now_ms)
        holder.members.clear()
        holder.static_members.clear()
        holder.pending_members.clear()
        holder.pending_sync.clear()
        holder.leader_id = None
        holder.protocol_type = None
        holder.protocol_name = None
        holder.subscribed_topics = None
        holder.state = GroupState.EMPTY
        return holder

    def _drop_consumer_group(self, group: ConsumerGroup) -> ErrorCode:
        """Tombstone every record of an empty consumer group and forget it (its offset
        holder stays, as an Empty classic group)."""
        error = self._append(group.group_id, self._group_tombstones(group))
        if error is not E.none:
            return error
        for mid in list(group.members):
            self._cancel_timers(group.group_id, mid)
        del self.consumer_groups[group.group_id]
        return E.none

    # ================================================================ describe / list
    def group_type(self, group_id: str) -> str | None:
        if group_id in self.consumer_groups:
            return "consumer"
        return "classic" if group_id in self.groups else None

    def describe_consumer_groups(self, group_ids: Iterable[str]) -> list[DescribedConsumerGroup]:
        out = []
        for gid in group_ids:
            error = self._validate(gid, allow_empty=True)
            if error is not None:
                out.append(DescribedConsumerGroup(gid, error))
                continue
            group = self.consumer_groups.get(gid)
            if group is None:
                message = (f"Group {gid} is not a consumer group." if gid in self.groups
                           and not self._holder_is_empty(gid) else f"Group {gid} not found.")
                out.append(DescribedConsumerGroup(gid, E.group_id_not_found, message))
                continue
            out.append(DescribedConsumerGroup(
                gid, E.none, None, group.state.value, group.group_epoch, group.assignment_epoch,
                self._preferred_assignor(group.members),
                tuple(DescribedMember(m, group.target.get(m.member_id, {}))
                      for m in group.members.values()),
            ))
        return out

    def topic_name(self, topic_id: uuid.UUID) -> str | None:
        for t in self.topic_metadata.values():
            if t.topic_id == topic_id:
                return t.name
        return None

    def describe_group(self, group_id: str) -> tuple[ErrorCode, GroupSummary | None]:
        if group_id in self.consumer_groups:
            error = self._validate(group_id, allow_empty=True)
            return (error, None) if error is not None else (E.none, None)
        return super().describe_group(group_id)

    def list_groups(
        self, states: Iterable[GroupState] | None = None
    ) -> tuple[ErrorCode, list[ListedGroup]]:
        error, listed = super().list_groups(states)
        listed = [g for g in listed if g.group_id not in self.consumer_groups]
        if not self.active:
            return error, listed
        for group in self.consumer_groups.values():
            if self.store.is_local(self.partition_for(group.group_id)):
                listed.append(ListedGroup(group.group_id, "consumer", group.state))  # type: ignore[arg-type]
        return error, listed

    # ================================================================ classic entry points
    def join_group(self, token: Token, now_ms: int, **kwargs: Any) -> None:
        group = self.consumer_groups.get(kwargs.get("group_id", ""))
        if group is not None and self._validate(group.group_id, allow_empty=False) is None:
            if group.members:  # a classic member joins the consumer group
                self._complete(classic_join(self, token, now_ms, group, **kwargs))
                self.tick(now_ms)
                return
            error = self._drop_consumer_group(group)  # downgrade: an empty group converts
            if error is not E.none:
                self._complete(join_error(token, kwargs.get("member_id", ""),
                                          STORE_GROUP_ERRORS.get(error, error)))
                return
        super().join_group(token, now_ms, **kwargs)

    def sync_group(self, token: Token, now_ms: int, **kwargs: Any) -> None:
        group = self.consumer_groups.get(kwargs.get("group_id", ""))
        if group is None or self._validate(group.group_id, allow_empty=False) is not None:
            super().sync_group(token, now_ms, **kwargs)
            return
        kwargs.pop("group_id")
        kwargs.pop("assignments", None)  # the broker assigns
        self._complete(classic_sync(self, token, now_ms, group, **kwargs))
        self.tick(now_ms)

    def heartbeat(self, now_ms: int, *, group_id: str, generation_id: int, member_id: str,
                  group_instance_id: str | None) -> ErrorCode:
        group = self.consumer_groups.get(group_id)
        if group is None or self._validate(group_id, allow_empty=False) is not None:
            return super().heartbeat(now_ms, group_id=group_id, generation_id=generation_id,
                                     member_id=member_id, group_instance_id=group_instance_id)
        error = classic_heartbeat(self, now_ms, group, generation_id=generation_id,
                                  member_id=member_id, group_instance_id=group_instance_id)
        self.tick(now_ms)
        return error

    def leave_group(
        self, now_ms: int, *, group_id: str, members: Sequence[tuple[str, str | None]]
    ) -> tuple[ErrorCode, list[tuple[str, str | None, ErrorCode]]]:
        group = self.consumer_groups.get(group_id)
        if group is None or self._validate(group_id, allow_empty=False) is not None:
            return super().leave_group(now_ms, group_id=group_id, members=members)
        result = classic_leave(self, now_ms, group, members)
        self.tick(now_ms)
        return result

    def delete_groups(self, now_ms: int, group_ids: Iterable[str]) -> dict[str, ErrorCode]:
        ids = list(group_ids)
        result: dict[str, ErrorCode] = {}
        classic: list[str] = []
        for gid in ids:
            group = self.consumer_groups.get(gid)
            if group is None:
                classic.append(gid)
                continue
            error = self._validate(gid, allow_empty=True)
            if error is not None:
                result[gid] = error
            elif group.members:
                result[gid] = E.non_empty_group
            else:
                append_error = self._drop_consumer_group(group)
                if append_error is not E.none:
                    result[gid] = STORE_GROUP_ERRORS.get(append_error, append_error)
                elif gid in self.groups:
                    classic.append(gid)
                else:
                    result[gid] = E.none
        if classic:
            result.update(super().delete_groups(now_ms, classic))
        return result

    def commit_offsets(
        self,
        now_ms: int,
        *,
        group_id: str,
        generation_id: int,
        member_id: str,
        group_instance_id: str | None,
        offsets: Sequence[OffsetCommit],
        api_version: int = 9,
    ) -> dict[TopicPartition, ErrorCode]:
        """OffsetCommit to a consumer group: the member's current epoch (Kafka's
        ConsumerGroup.validateOffsetCommit; its members must use v9+); epoch -1 commits
        only while it is empty. v9+ to a group that does not exist: GROUP_ID_NOT_FOUND
        (older versions keep the classic ILLEGAL_GENERATION)."""
        group = self.consumer_groups.get(group_id)
        if group is None:
            if (api_version >= 9 and generation_id >= 0 and group_id not in self.groups
                    and self._validate(group_id, allow_empty=True) is None):
                return {(o.topic, o.partition): E.group_id_not_found for o in offsets}
            return super().commit_offsets(
                now_ms, group_id=group_id, generation_id=generation_id, member_id=member_id,
                group_instance_id=group_instance_id, offsets=offsets)

        def all_(err: ErrorCode) -> dict[TopicPartition, ErrorCode]:
            return {(o.topic, o.partition): err for o in offsets}

        error = self._validate(group_id, allow_empty=True)
        if error is not None:
            return all_(error)
        if not (generation_id < 0 and not group.members):
            member = group.members.get(member_id)
            if member is None:
                return all_(E.unknown_member_id)
            if member.uses_classic_protocol:  # a JoinGroup member: classic rules
                if generation_id != member.member_epoch:
                    return all_(E.illegal_generation)
            elif api_version < 9:
                return all_(E.unsupported_version)
            elif generation_id != member.member_epoch:
                return all_(E.stale_member_epoch)
        result = self._store_offsets(self._adopt_holder(group_id, now_ms), offsets, now_ms)
        self.tick(now_ms)
        return result

    def fetch_offsets(
        self,
        group_id: str,
        partitions: Iterable[TopicPartition] | None,
        member_id: str | None = None,
        member_epoch: int = -1,
    ) -> tuple[ErrorCode, dict[TopicPartition, CommittedOffset | None]]:
        """OffsetFetch; v9 names the member: a consumer group checks it is a member at
        that epoch (no member id and epoch -1: admin clients, always answered)."""
        group = self.consumer_groups.get(group_id)
        if group is not None and not (member_id is None and member_epoch < 0):
            error = self._validate(group_id, allow_empty=True)
            if error is not None:
                return error, {}
            member = group.members.get(member_id or "")
            if member is None:
                return E.unknown_member_id, {}
            if member_epoch != member.member_epoch:
                return E.stale_member_epoch, {}
        return super().fetch_offsets(group_id, partitions)

    def delete_offsets(
        self, now_ms: int, *, group_id: str, partitions: Sequence[TopicPartition]
    ) -> tuple[ErrorCode, dict[TopicPartition, ErrorCode]]:
        """OffsetDelete: a non-empty consumer group keeps offsets of subscribed topics
        (GROUP_SUBSCRIBED_TO_TOPIC)."""
        group = self.consumer_groups.get(group_id)
        if group is None or not group.members:
            return super().delete_offsets(now_ms, group_id=group_id, partitions=partitions)
        subscribed = set(group.subscription_metadata)
        for m in group.members.values():
            subscribed |= set(m.subscribed_topic_names)
        blocked = {tp: E.group_subscribed_to_topic for tp in partitions if tp[0] in subscribed}
        rest = [tp for tp in partitions if tp not in blocked]
        top, per = super().delete_offsets(now_ms, group_id=group_id, partitions=rest)
        if top is not E.none:
            return top, {}
        per.update(blocked)
        return E.none, per

    def expire_offsets(self, now_ms: int) -> int:
        """Retention: offsets of a consumer group with members never expire here (Kafka
        only expires offsets of topics such a group no longer subscribes to)."""
        hidden = {gid: self.groups.pop(gid) for gid, g in self.consumer_groups.items()
                  if g.members and gid in self.groups}
        try:
            return super().expire_offsets(now_ms)
        finally:
            self.groups.update(hidden)

    # ================================================================ loading
    def load_record(self, key: bytes | None, value: bytes | None, now_ms: int) -> None:
        if key is None or record_type(key) not in CONSUMER_TYPES:
            super().load_record(key, value, now_ms)
            return
        decoded = decode_key(key)
        if decoded is None or decoded.record_type not in (
            GROUP_METADATA, PARTITION_METADATA, MEMBER_METADATA, TARGET_ASSIGNMENT_METADATA,
            TARGET_ASSIGNMENT_MEMBER, CURRENT_MEMBER_ASSIGNMENT,
        ):
            return  # resolved regexes (type 16): recomputed from the topic metadata
        gid, kind = decoded.group_id, decoded.record_type
        group = self.consumer_groups.get(gid)
        if kind == GROUP_METADATA and value is None:
            self.consumer_groups.pop(gid, None)
            return
        if group is None:
            if value is None:
                return
            group = self.consumer_groups[gid] = ConsumerGroup(gid)
        mid = decoded.member_id or ""
        if kind == GROUP_METADATA:
            group.group_epoch = decode_epoch_value(value)  # type: ignore[arg-type]
        elif kind == PARTITION_METADATA:
            group.subscription_metadata = (
                decode_partition_metadata(value) if value is not None else {})
        elif kind == TARGET_ASSIGNMENT_METADATA:
            group.assignment_epoch = decode_epoch_value(value) if value is not None else 0
        elif kind == TARGET_ASSIGNMENT_MEMBER:
            if value is None:
                group.target.pop(mid, None)
            else:
                group.target[mid] = decode_target_member(value)
        elif kind == MEMBER_METADATA:
            if value is None:
                group.members.pop(mid, None)
                return
            v = decode_member_metadata(value)
            m = group.members.setdefault(mid, ConsumerMember(mid))
            m.instance_id, m.rack_id = v.instance_id, v.rack_id
            m.client_id, m.client_host = v.client_id, v.client_host
            m.subscribed_topic_names = v.subscribed_topic_names
            m.subscribed_topic_regex = v.subscribed_topic_regex
            m.rebalance_timeout_ms = v.rebalance_timeout_ms
            m.server_assignor = v.server_assignor
            if v.classic is not None:
                m.classic_session_timeout_ms, m.classic_protocols = v.classic
        elif kind == CURRENT_MEMBER_ASSIGNMENT:
            if value is None:
                group.members.pop(mid, None)
                return
            c = decode_current_assignment(value)
            m = group.members.setdefault(mid, ConsumerMember(mid))
            m.member_epoch, m.previous_member_epoch = c.member_epoch, c.previous_member_epoch
            try:
                m.state = MemberState(c.state)
            except ValueError:
                m.state = MemberState.UNKNOWN
            m.assigned, m.pending_revocation = c.assigned, c.pending_revocation

    def _settle_loaded(self, partition: int | None, now_ms: int) -> None:
        for gid, group in self.consumer_groups.items():
            if partition is not None and self.partition_for(gid) != partition:
                continue
            group.reindex()
            self._adopt_holder(gid, now_ms)
            for m in group.members.values():
                self._arm_session(gid, m.member_id, now_ms)
                self._arm_revocation(gid, None, m, now_ms)

    def complete_load(self, now_ms: int) -> None:
        self._settle_loaded(None, now_ms)
        super().complete_load(now_ms)

    def complete_partition_load(self, partition: int, now_ms: int) -> None:
        self._settle_loaded(partition, now_ms)
        super().complete_partition_load(partition, now_ms)
        self._reevaluate(now_ms)

    def unload_partition(self, partition: int) -> int:
        gone = [g for gid, g in self.consumer_groups.items()
                if self.partition_for(gid) == partition]
        for group in gone:
            for mid in list(group.members):
                self._cancel_timers(group.group_id, mid)
            del self.consumer_groups[group.group_id]
        return super().unload_partition(partition) + len(gone)

    def consumer_group_state(self, group_id: str) -> ConsumerGroupState | None:
        group = self.consumer_groups.get(group_id)
        return None if group is None else group.state
