"""Group states and the transitions Kafka allows between them.

Empty ──join──▶ PreparingRebalance ──all joined / timeout──▶ CompletingRebalance
  ▲                    ▲   │                                      │ leader's SyncGroup
  │ last member gone   │   └──(no members left)──▶ Empty          ▼
  └────────────────────┴───────── member change ◀──────────── Stable
any state ──(deleted / offsets expired)──▶ Dead
"""

from __future__ import annotations

import enum


class GroupState(enum.Enum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"

    @classmethod
    def parse(cls, text: str) -> GroupState | None:
        """Case-insensitive lookup by Kafka's state name (ListGroups states_filter)."""
        low = text.lower()
        for state in cls:
            if state.value.lower() == low:
                return state
        return None


#: target state -> states it may be entered from (Kafka's GroupState.validPreviousStates)
VALID_PREVIOUS: dict[GroupState, frozenset[GroupState]] = {
    GroupState.EMPTY: frozenset({GroupState.PREPARING_REBALANCE}),
    GroupState.PREPARING_REBALANCE: frozenset(
        {GroupState.STABLE, GroupState.COMPLETING_REBALANCE, GroupState.EMPTY}
    ),
    GroupState.COMPLETING_REBALANCE: frozenset({GroupState.PREPARING_REBALANCE}),
    GroupState.STABLE: frozenset({GroupState.COMPLETING_REBALANCE}),
    GroupState.DEAD: frozenset(
        {
            GroupState.STABLE,
            GroupState.PREPARING_REBALANCE,
            GroupState.COMPLETING_REBALANCE,
            GroupState.EMPTY,
            GroupState.DEAD,
        }
    ),
}


class IllegalStateTransition(RuntimeError):
    """A transition Kafka's state machine forbids (a bug in the coordinator, never input)."""
