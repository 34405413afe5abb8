"""Rebuilding groups from ``__consumer_offsets`` records (log order, last value per key
wins, null = delete), and unloading: at shutdown, or per partition when this node stops
leading a ``__consumer_offsets`` partition (Kafka's group emigration/immigration). Pure."""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from broker.group.base import CoordinatorBase
from broker.group.events import (
    EXPIRE_TIMER,
    HEARTBEAT_TIMER,
    JOIN_TIMER,
    PENDING_TIMER,
    SYNC_TIMER,
    SyncResult,
    join_error,
)
from broker.group.group import ClassicGroup, CommittedOffset
from broker.group.log_format import (
    GroupKey,
    OffsetKey,
    decode_group_value,
    decode_key,
    decode_offset_value,
)
from broker.group.member import Member
from broker.group.state import GroupState

E = ErrorCode


class LoadingMixin(CoordinatorBase):
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
        if EXPIRE_TIMER not in self._timers:
            self._timers.schedule(
                EXPIRE_TIMER, now_ms + self.config.offsets_retention_check_interval_ms
            )

    def shutdown(self) -> None:
        """Answer every delayed request with NOT_COORDINATOR (Kafka's onGroupUnloaded)."""
        self.active = False
        for group in self.groups.values():
            for member in group.members.values():
                if member.awaiting_join is not None:
                    self._complete(
                        join_error(member.awaiting_join, member.member_id, E.not_coordinator)
                    )
                    member.awaiting_join = None
                if member.awaiting_sync is not None:
                    self._complete(SyncResult(member.awaiting_sync, E.not_coordinator))
                    member.awaiting_sync = None

    def complete_partition_load(self, partition: int, now_ms: int) -> None:
        """A partition this node now leads was replayed (``load_record``): its members
        must heartbeat within their session timeout from now."""
        for group in self.groups.values():
            if self.partition_for(group.group_id) == partition:
                for member in group.members.values():
                    self._schedule_heartbeat(group, member, now_ms)
        self.tick(now_ms)

    def unload_partition(self, partition: int) -> int:
        """This node no longer leads ``partition``: forget its groups (their waiting
        requests answer NOT_COORDINATOR, so clients find the new coordinator). Returns
        how many groups were unloaded."""
        gone = [g for gid, g in self.groups.items() if self.partition_for(gid) == partition]
        for group in gone:
            gid = group.group_id
            for member in group.members.values():
                if member.awaiting_join is not None:
                    self._complete(
                        join_error(member.awaiting_join, member.member_id, E.not_coordinator)
                    )
                    member.awaiting_join = None
                if member.awaiting_sync is not None:
                    self._complete(SyncResult(member.awaiting_sync, E.not_coordinator))
                    member.awaiting_sync = None
                self._timers.cancel((HEARTBEAT_TIMER, gid, member.member_id))
            for pending in group.pending_members:
                self._timers.cancel((PENDING_TIMER, gid, pending))
            self._timers.cancel((JOIN_TIMER, gid))
            self._timers.cancel((SYNC_TIMER, gid))
            del self.groups[gid]
        return len(gone)
