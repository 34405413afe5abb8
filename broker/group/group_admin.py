"""DescribeGroups, ListGroups and DeleteGroups on the coordinator's groups. Pure."""

from __future__ import annotations

from collections.abc import Iterable

from kio.schema.errors import ErrorCode

from broker.group.base import CoordinatorBase
from broker.group.events import (
    PENDING_TIMER,
    STORE_OFFSET_ERRORS,
    KeyValue,
    ListedGroup,
)
from broker.group.group import GroupSummary
from broker.group.log_format import (
    GroupKey,
    OffsetKey,
    encode_group_key,
    encode_offset_key,
)
from broker.group.state import GroupState

E = ErrorCode


class GroupAdminMixin(CoordinatorBase):
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
            if (wanted is None or g.state in wanted)
            and self.store.is_local(self.partition_for(g.group_id))
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
                result[group_id] = STORE_OFFSET_ERRORS.get(append_error, append_error)
                continue
            for pending in list(group.pending_members):
                self._timers.cancel((PENDING_TIMER, group_id, pending))
            group.transition_to(GroupState.DEAD, now_ms)
            del self.groups[group_id]
            result[group_id] = E.none
        self.tick(now_ms)
        return result
