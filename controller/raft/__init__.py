"""Pure KRaft-shaped Raft core: ``RaftCore`` plus the values and messages it speaks.

See ``controller.raft.core`` for how a shell drives it, ``controller.raft.roles`` for the
per-role rules and ``controller.raft.wire`` for the mapping onto Kafka's RPCs.

Where Strom's quorum differs from Apache Kafka's KRaft (all deliberate, all local to
Strom's own nodes — no Kafka controller ever talks to a Strom one):

- Pre-vote requests carry ``replica_epoch`` = the epoch the prospective would campaign in
  (its epoch + 1); a voter grants only if that is above its own epoch, its log is not more
  up to date, and it has not fetched from a live (not resigned) leader within the fetch
  timeout. A granted pre-vote response does not make the prospective follow the leader
  the voter names.
- Fetch carries the follower's high watermark (Fetch v18's tagged ``high_watermark``,
  KIP-1166); the leader does not park a Fetch whose sender lags the high watermark.
- The LeaderChange control entry's payload is ``LC1 <leader> <voters>`` (not Kafka's
  LeaderChangeMessage); followers check its voter list against their configuration.
- The leader re-sends BeginQuorumEpoch every request timeout to voters that have not
  fetched within the fetch timeout, so a voter stranded in a higher epoch (it campaigned
  while cut off) makes the leader move up instead of staying excluded.
- Static voter set only (no KIP-853 reconfiguration, no directory ids).
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
