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

from broker.group.events import (
    EXPIRE_TIMER,
    HEARTBEAT_TIMER,
    JOIN_TIMER,
    PENDING_TIMER,
    SYNC_TIMER,
    Completion,
    JoinResult,
    ListedGroup,
    OffsetCommit,
    OffsetsStore,
    SyncResult,
)
from broker.group.group_admin import GroupAdminMixin
from broker.group.loading import LoadingMixin
from broker.group.membership import MembershipMixin
from broker.group.offsets import OffsetsMixin
from broker.group.state import GroupState
from broker.group.txn_offsets import TxnOffsetsMixin

__all__ = [
    "Completion",
    "GroupCoordinator",
    "JoinResult",
    "ListedGroup",
    "OffsetCommit",
    "OffsetsStore",
    "SyncResult",
]


class GroupCoordinator(MembershipMixin, OffsetsMixin, GroupAdminMixin, LoadingMixin,
                       TxnOffsetsMixin):
    """The whole coordinator: membership (membership.py), offsets (offsets.py), group
    admin (group_admin.py), loading (loading.py) and transactional offsets
    (txn_offsets.py) over shared state (base.py)."""

    def tick(self, now_ms: int) -> None:
        """Fire every timer due at ``now_ms``."""
        while True:
            key = self._timers.pop_expired(now_ms)
            if key is None:
                return
            kind = key[0]
            if kind == HEARTBEAT_TIMER:
                self._on_heartbeat_expired(key[1], key[2], now_ms)
            elif kind == PENDING_TIMER:
                group = self.groups.get(key[1])
                if group is not None:
                    self._remove_pending_member(group, key[2], now_ms)
            elif kind == JOIN_TIMER:
                group = self.groups.get(key[1])
                if group is not None and group.is_(GroupState.PREPARING_REBALANCE):
                    self._on_join_timer(group, now_ms)
            elif kind == SYNC_TIMER:
                group = self.groups.get(key[1])
                if group is not None:
                    self._on_sync_timer(group, now_ms)
            elif key == EXPIRE_TIMER:
                self.expire_offsets(now_ms)
                self._timers.schedule(
                    EXPIRE_TIMER, now_ms + self.config.offsets_retention_check_interval_ms
                )
