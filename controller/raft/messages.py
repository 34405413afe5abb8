"""The quorum's messages: one dataclass per KRaft RPC request and response.

Each class carries exactly the fields of the Kafka RPC it stands for (kio schemas
``kio.schema.vote``, ``begin_quorum_epoch``, ``end_quorum_epoch``, ``fetch``,
``fetch_snapshot``; one topic ``__cluster_metadata``, partition 0, so the topic/partition
nesting is flattened away) plus an envelope that a network shell maps onto the request
header and connection:

- ``src``/``dst``: node ids of sender and receiver;
- ``correlation_id``: chosen by the requester; a response echoes its request's id. The core
  only acts on a response whose id it is still waiting for, which makes duplicated, late
  or reordered responses harmless (Kafka gets the same from its request header).

Directory ids (KIP-853) are not modelled: the voter set is static. Each class names the
kio fields it maps to in its docstring (``voter_id`` is ``dst``; ``current_leader`` is
``leader_id``/``leader_epoch``; ``diverging_epoch`` is ``diverging_epoch`` and
``diverging_end_offset``; Fetch's ``replica_state.replica_id`` is ``replica_id``).

Pre-vote (KIP-996): a prospective node sends ``VoteRequest(pre_vote=True)`` with
``replica_epoch`` = the epoch it would campaign in (its epoch + 1); granting a pre-vote
changes nothing on the voter.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.raft.types import Entry, SnapshotId


@dataclass(frozen=True, slots=True)
class VoteRequest:
    src: int
    dst: int
    correlation_id: int
    cluster_id: str
    replica_epoch: int  # candidate's epoch (pre-vote: the epoch it would campaign in)
    replica_id: int  # the candidate
    last_offset_epoch: int  # epoch of the candidate's last entry
    last_offset: int  # the candidate's log end offset
    pre_vote: bool


@dataclass(frozen=True, slots=True)
class VoteResponse:
    src: int
    dst: int
    correlation_id: int
    error_code: int
    leader_id: int  # the voter's known leader of leader_epoch, -1 if none
    leader_epoch: int  # the voter's current epoch
    vote_granted: bool


@dataclass(frozen=True, slots=True)
class BeginQuorumEpochRequest:
    src: int
    dst: int
    correlation_id: int
    cluster_id: str
    leader_id: int
    leader_epoch: int


@dataclass(frozen=True, slots=True)
class BeginQuorumEpochResponse:
    src: int
    dst: int
    correlation_id: int
    error_code: int
    leader_id: int
    leader_epoch: int


@dataclass(frozen=True, slots=True)
class EndQuorumEpochRequest:
    src: int
    dst: int
    correlation_id: int
    cluster_id: str
    leader_id: int
    leader_epoch: int
    preferred_candidates: tuple[int, ...]  # voters, most caught-up first


@dataclass(frozen=True, slots=True)
class EndQuorumEpochResponse:
    src: int
    dst: int
    correlation_id: int
    error_code: int
    leader_id: int
    leader_epoch: int


@dataclass(frozen=True, slots=True)
class FetchRequest:
    src: int
    dst: int
    correlation_id: int
    cluster_id: str
    replica_id: int
    max_wait_ms: int
    current_leader_epoch: int
    fetch_offset: int
    last_fetched_epoch: int
    log_start_offset: int
    partition_max_bytes: int
    high_watermark: int  # the replica's known HW (FetchPartition.high_watermark, KIP-1166)


@dataclass(frozen=True, slots=True)
class FetchResponse:
    """``diverging_epoch``/``snapshot_id`` use Kafka's defaults (epoch -1 / end_offset -1)
    when absent; ``records`` are whole entries starting at the request's fetch offset."""

    src: int
    dst: int
    correlation_id: int
    error_code: int
    high_watermark: int  # -1 if the leader does not know it yet
    log_start_offset: int
    diverging_epoch: int  # EpochEndOffset.epoch, -1 when the log matched
    diverging_end_offset: int  # EpochEndOffset.end_offset
    leader_id: int  # current_leader.leader_id
    leader_epoch: int  # current_leader.leader_epoch
    snapshot_id: SnapshotId | None  # set when the fetch offset is below the log start
    records: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class FetchSnapshotRequest:
    src: int
    dst: int
    correlation_id: int
    cluster_id: str
    replica_id: int
    max_bytes: int
    current_leader_epoch: int
    snapshot_id: SnapshotId
    position: int


@dataclass(frozen=True, slots=True)
class FetchSnapshotResponse:
    src: int
    dst: int
    correlation_id: int
    error_code: int
    snapshot_id: SnapshotId
    leader_id: int
    leader_epoch: int
    size: int  # total snapshot size in bytes
    position: int  # where unaligned_records starts
    unaligned_records: bytes


Request = (
    VoteRequest
    | BeginQuorumEpochRequest
    | EndQuorumEpochRequest
    | FetchRequest
    | FetchSnapshotRequest
)
Response = (
    VoteResponse
    | BeginQuorumEpochResponse
    | EndQuorumEpochResponse
    | FetchResponse
    | FetchSnapshotResponse
)
Message = Request | Response
