"""Pure KRaft-shaped Raft core: ``RaftCore`` plus the values and messages it speaks.

See ``controller.raft.core`` for how a shell drives it and ``controller.raft.roles`` for
the per-role rules.
"""

from controller.raft.core import RaftCore, decode_leader_change, encode_leader_change
from controller.raft.errors import InconsistentVoterSetError, NotLeaderError
from controller.raft.types import (
    DurableState,
    Entry,
    OffsetAndEpoch,
    QuorumInfo,
    QuorumState,
    RaftConfig,
    Ready,
    ReplicaInfo,
    Snapshot,
    SnapshotId,
)

__all__ = [
    "DurableState",
    "Entry",
    "InconsistentVoterSetError",
    "NotLeaderError",
    "OffsetAndEpoch",
    "QuorumInfo",
    "QuorumState",
    "RaftConfig",
    "RaftCore",
    "Ready",
    "ReplicaInfo",
    "Snapshot",
    "SnapshotId",
    "decode_leader_change",
    "encode_leader_change",
]
