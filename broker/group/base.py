"""State and plumbing shared by the coordinator's parts (membership, offsets, admin,
loading): groups, the timer queue, completions, validation, the log port. Pure."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from kio.schema.errors import ErrorCode

from broker.group.config import GroupConfig
from broker.group.events import (
    HEARTBEAT_TIMER,
    Completion,
    KeyValue,
    OffsetsStore,
)
from broker.group.group import ClassicGroup
from broker.group.member import Member
from broker.group.partitioner import partition_for
from broker.group.state import GroupState
from broker.group.timers import TimerQueue

E = ErrorCode


class CoordinatorBase:
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
        if not self.store.is_local(self.partition_for(group_id)):
            return E.not_coordinator  # another node leads this group's partition
        return None

    def _complete(self, result: Completion) -> None:
        self._completions.append(result)

    def _append(self, group_id: str, records: Sequence[KeyValue]) -> ErrorCode:
        try:
            return self.store.append(self.partition_for(group_id), records)
        except Exception:  # the port must not take the coordinator down
            return E.unknown_server_error

    def _schedule_heartbeat(self, group: ClassicGroup, member: Member, now_ms: int) -> None:
        timeout = (
            self.config.new_member_join_timeout_ms if member.is_new else member.session_timeout_ms
        )
        self._timers.schedule((HEARTBEAT_TIMER, group.group_id, member.member_id), now_ms + timeout)

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

    def tick(self, now_ms: int) -> None:
        """Fire every timer due at ``now_ms`` (implemented by GroupCoordinator)."""
        raise NotImplementedError
