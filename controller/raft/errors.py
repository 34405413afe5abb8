"""Kafka error codes the quorum RPCs use (values from Kafka's ``Errors`` enum), and the
exceptions the core raises to its callers."""

from __future__ import annotations

NONE = 0
OFFSET_OUT_OF_RANGE = 1
NOT_LEADER_OR_FOLLOWER = 6
INVALID_REQUEST = 42
FENCED_LEADER_EPOCH = 74
UNKNOWN_LEADER_EPOCH = 75
INCONSISTENT_VOTER_SET = 81
INCONSISTENT_CLUSTER_ID = 104
SNAPSHOT_NOT_FOUND = 98
POSITION_OUT_OF_RANGE = 99

NAMES = {
    NONE: "NONE",
    OFFSET_OUT_OF_RANGE: "OFFSET_OUT_OF_RANGE",
    NOT_LEADER_OR_FOLLOWER: "NOT_LEADER_OR_FOLLOWER",
    INVALID_REQUEST: "INVALID_REQUEST",
    FENCED_LEADER_EPOCH: "FENCED_LEADER_EPOCH",
    UNKNOWN_LEADER_EPOCH: "UNKNOWN_LEADER_EPOCH",
    INCONSISTENT_VOTER_SET: "INCONSISTENT_VOTER_SET",
    INCONSISTENT_CLUSTER_ID: "INCONSISTENT_CLUSTER_ID",
    SNAPSHOT_NOT_FOUND: "SNAPSHOT_NOT_FOUND",
    POSITION_OUT_OF_RANGE: "POSITION_OUT_OF_RANGE",
}


class NotLeaderError(Exception):
    """A proposal was made on a node that is not the leader; ``leader_id``/``epoch`` say
    where to go (leader_id -1 when unknown). Maps to NOT_LEADER_OR_FOLLOWER / NOT_CONTROLLER."""

    def __init__(self, leader_id: int, epoch: int) -> None:
        super().__init__(f"not the leader (leader {leader_id}, epoch {epoch})")
        self.leader_id = leader_id
        self.epoch = epoch


class InconsistentVoterSetError(Exception):
    """The log this node is replicating was written by a quorum with a different voter
    set than ``controller.quorum.voters`` says: the node must stop (it would otherwise
    join with a different view of the quorum). Raised from ``RaftCore.step``."""
