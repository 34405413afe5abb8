"""Kafka's ``TransactionState``: the states of one transactional id, their ids in
``__transaction_state`` (the ``TransactionStatus`` int8 of TransactionLogValue), the
names DescribeTransactions/ListTransactions report, and which transitions are legal
(Kafka's ``validPreviousStates``). Pure.

    Empty --AddPartitions--> Ongoing --EndTxn(commit)--> PrepareCommit --markers--> CompleteCommit
    Ongoing --EndTxn(abort) or timeout--> PrepareAbort --markers--> CompleteAbort
    Ongoing --InitProducerId of a new incarnation--> PrepareEpochFence --> PrepareAbort
    CompleteCommit / CompleteAbort --InitProducerId--> Empty;  idle --expiry--> (removed)
"""

from __future__ import annotations

import enum


class TransactionState(enum.IntEnum):
    """Values are Kafka's on-disk ids."""

    EMPTY = 0
    ONGOING = 1
    PREPARE_COMMIT = 2
    PREPARE_ABORT = 3
    COMPLETE_COMMIT = 4
    COMPLETE_ABORT = 5
    DEAD = 6
    PREPARE_EPOCH_FENCE = 7

    @property
    def kafka_name(self) -> str:
        """The name Kafka's admin APIs report (``Ongoing``, ``PrepareCommit``, ...)."""
        return _NAMES[self]

    @classmethod
    def from_kafka_name(cls, name: str) -> TransactionState | None:
        """The state named ``name`` (ListTransactions state filters), None if unknown."""
        for state, text in _NAMES.items():
            if text == name:
                return state
        return None

    @property
    def is_complete(self) -> bool:
        return self in (TransactionState.COMPLETE_COMMIT, TransactionState.COMPLETE_ABORT)

    @property
    def is_prepare(self) -> bool:
        return self in (TransactionState.PREPARE_COMMIT, TransactionState.PREPARE_ABORT)


_NAMES = {
    TransactionState.EMPTY: "Empty",
    TransactionState.ONGOING: "Ongoing",
    TransactionState.PREPARE_COMMIT: "PrepareCommit",
    TransactionState.PREPARE_ABORT: "PrepareAbort",
    TransactionState.COMPLETE_COMMIT: "CompleteCommit",
    TransactionState.COMPLETE_ABORT: "CompleteAbort",
    TransactionState.DEAD: "Dead",
    TransactionState.PREPARE_EPOCH_FENCE: "PrepareEpochFence",
}

S = TransactionState

#: state -> the states it may be entered from (Kafka's ``validPreviousStates``)
VALID_PREVIOUS: dict[TransactionState, frozenset[TransactionState]] = {
    S.EMPTY: frozenset({S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT}),
    S.ONGOING: frozenset({S.ONGOING, S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT}),
    S.PREPARE_COMMIT: frozenset({S.ONGOING}),
    S.PREPARE_ABORT: frozenset({S.ONGOING, S.PREPARE_EPOCH_FENCE}),
    S.COMPLETE_COMMIT: frozenset({S.PREPARE_COMMIT}),
    S.COMPLETE_ABORT: frozenset({S.PREPARE_ABORT}),
    S.DEAD: frozenset({S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT}),
    S.PREPARE_EPOCH_FENCE: frozenset({S.ONGOING}),
}


def can_transition(current: TransactionState, target: TransactionState) -> bool:
    """Whether ``current -> target`` is one of Kafka's legal transitions."""
    return current in VALID_PREVIOUS[target]
