"""Translation between the core's messages and Kafka's quorum RPCs (kio entities).

This is the proof of the "messages map 1:1" claim and the piece a network shell uses:

- ``to_kio(msg)`` -> kio request/response entity (Vote v2, BeginQuorumEpoch v1,
  EndQuorumEpoch v1, Fetch v18, FetchSnapshot v1) for ``__cluster_metadata`` partition 0;
  the envelope (src, dst, correlation id) goes into the request header / connection.
- ``from_kio(entity, src=, dst=, correlation_id=)`` -> the core's message.
- ``entries_to_records`` / ``records_to_entries``: the log entries a Fetch carries, as
  Kafka RecordBatch v2 bytes: one batch per run of entries with the same epoch and kind,
  ``partition_leader_epoch`` = the entries' epoch, one record per entry with the payload
  as value. Control entries (LeaderChange) form control batches whose record key is
  Kafka's control key (version 0, type 2 = LEADER_CHANGE).

Fields Strom does not model get Kafka's defaults (directory ids None, endpoints empty,
throttle 0). ``WireError`` reports a kio entity that cannot be a quorum message (wrong
topic/partition count, malformed records).
"""

from __future__ import annotations

import datetime
import struct
import uuid
from typing import Any

from kio.schema.begin_quorum_epoch.v1 import request as bqe_req
from kio.schema.begin_quorum_epoch.v1 import response as bqe_resp
from kio.schema.describe_quorum.v2 import response as dq_resp
from kio.schema.end_quorum_epoch.v1 import request as eqe_req
from kio.schema.end_quorum_epoch.v1 import response as eqe_resp
from kio.schema.errors import ErrorCode
from kio.schema.fetch.v18 import request as fetch_req
from kio.schema.fetch.v18 import response as fetch_resp
from kio.schema.fetch_snapshot.v1 import request as fs_req
from kio.schema.fetch_snapshot.v1 import response as fs_resp
from kio.schema.vote.v2 import request as vote_req
from kio.schema.vote.v2 import response as vote_resp

from controller.raft.messages import (
    BeginQuorumEpochRequest,
    BeginQuorumEpochResponse,
    EndQuorumEpochRequest,
    EndQuorumEpochResponse,
    FetchRequest,
    FetchResponse,
    FetchSnapshotRequest,
    FetchSnapshotResponse,
    Message,
    VoteRequest,
    VoteResponse,
)
from controller.raft.types import Entry, QuorumInfo, SnapshotId
from protocol.records import (
    InvalidRecordBatch,
    Record,
    build_batch,
    decode_batch_records,
    iter_batches,
)

METADATA_TOPIC = "__cluster_metadata"
METADATA_TOPIC_ID = uuid.UUID(int=1)  # Kafka's Uuid.METADATA_TOPIC_ID
LEADER_CHANGE_KEY = struct.pack(">hh", 0, 2)


class WireError(ValueError):
    pass


def _code(value: int) -> ErrorCode:
    return ErrorCode(value)


def _ms(value: int) -> datetime.timedelta:
    return datetime.timedelta(milliseconds=value)


# ---- records -----------------------------------------------------------------------
def entries_to_records(entries: tuple[Entry, ...]) -> bytes:
    out = bytearray()
    i = 0
    while i < len(entries):
        j = i
        while (j + 1 < len(entries) and entries[j + 1].epoch == entries[i].epoch
               and entries[j + 1].control == entries[i].control):
            j += 1
        run = entries[i : j + 1]
        out += build_batch(
            [Record(e.offset, -1, LEADER_CHANGE_KEY if e.control else None, e.payload, [])
             for e in run],
            base_offset=run[0].offset,
            is_control=run[0].control,
            partition_leader_epoch=run[0].epoch,
        )
        i = j + 1
    return bytes(out)


def records_to_entries(data: bytes | None) -> tuple[Entry, ...]:
    if not data:
        return ()
    out: list[Entry] = []
    try:
        for pos, header in iter_batches(data):
            for rec in decode_batch_records(data, pos):
                out.append(Entry(rec.offset, header.partition_leader_epoch, rec.value or b"",
                                 header.is_control))
    except InvalidRecordBatch as exc:
        raise WireError(f"bad records in a quorum Fetch response: {exc}") from exc
    return tuple(out)


# ---- to kio ------------------------------------------------------------------------
def to_kio(msg: Message) -> Any:  # noqa: C901 - one branch per RPC
    """The kio entity for ``msg`` (a request or a response body)."""
    if isinstance(msg, VoteRequest):
        part = vote_req.PartitionData(
            partition_index=0, replica_epoch=msg.replica_epoch, replica_id=msg.replica_id,
            replica_directory_id=None, voter_directory_id=None,
            last_offset_epoch=msg.last_offset_epoch, last_offset=msg.last_offset,
            pre_vote=msg.pre_vote)
        return vote_req.VoteRequest(
            cluster_id=msg.cluster_id, voter_id=msg.dst,
            topics=(vote_req.TopicData(topic_name=METADATA_TOPIC, partitions=(part,)),))
    if isinstance(msg, VoteResponse):
        part = vote_resp.PartitionData(
            partition_index=0, error_code=_code(msg.error_code), leader_id=msg.leader_id,
            leader_epoch=msg.leader_epoch, vote_granted=msg.vote_granted)
        return vote_resp.VoteResponse(
            error_code=ErrorCode.none,
            topics=(vote_resp.TopicData(topic_name=METADATA_TOPIC, partitions=(part,)),))
    if isinstance(msg, BeginQuorumEpochRequest):
        part = bqe_req.PartitionData(partition_index=0, voter_directory_id=None,
                                     leader_id=msg.leader_id, leader_epoch=msg.leader_epoch)
        return bqe_req.BeginQuorumEpochRequest(
            cluster_id=msg.cluster_id, voter_id=msg.dst,
            topics=(bqe_req.TopicData(topic_name=METADATA_TOPIC, partitions=(part,)),),
            leader_endpoints=())
    if isinstance(msg, BeginQuorumEpochResponse):
        part = bqe_resp.PartitionData(partition_index=0, error_code=_code(msg.error_code),
                                      leader_id=msg.leader_id, leader_epoch=msg.leader_epoch)
        return bqe_resp.BeginQuorumEpochResponse(
            error_code=ErrorCode.none,
            topics=(bqe_resp.TopicData(topic_name=METADATA_TOPIC, partitions=(part,)),))
    if isinstance(msg, EndQuorumEpochRequest):
        part = eqe_req.PartitionData(
            partition_index=0, leader_id=msg.leader_id, leader_epoch=msg.leader_epoch,
            preferred_candidates=tuple(
                eqe_req.ReplicaInfo(candidate_id=c, candidate_directory_id=None)
                for c in msg.preferred_candidates))
        return eqe_req.EndQuorumEpochRequest(
            cluster_id=msg.cluster_id,
            topics=(eqe_req.TopicData(topic_name=METADATA_TOPIC, partitions=(part,)),),
            leader_endpoints=())
    if isinstance(msg, EndQuorumEpochResponse):
        part = eqe_resp.PartitionData(partition_index=0, error_code=_code(msg.error_code),
                                      leader_id=msg.leader_id, leader_epoch=msg.leader_epoch)
        return eqe_resp.EndQuorumEpochResponse(
            error_code=ErrorCode.none,
            topics=(eqe_resp.TopicData(topic_name=METADATA_TOPIC, partitions=(part,)),))
    if isinstance(msg, FetchRequest):
        part = fetch_req.FetchPartition(
            partition=0, current_leader_epoch=msg.current_leader_epoch,
            fetch_offset=msg.fetch_offset, last_fetched_epoch=msg.last_fetched_epoch,
            log_start_offset=msg.log_start_offset,
            partition_max_bytes=msg.partition_max_bytes, replica_directory_id=None,
            high_watermark=msg.high_watermark)
        return fetch_req.FetchRequest(
            cluster_id=msg.cluster_id,
            replica_state=fetch_req.ReplicaState(replica_id=msg.replica_id),
            max_wait=_ms(msg.max_wait_ms), min_bytes=0,
            topics=(fetch_req.FetchTopic(topic_id=METADATA_TOPIC_ID, partitions=(part,)),),
            forgotten_topics_data=())
    if isinstance(msg, FetchResponse):
        sid = msg.snapshot_id
        part = fetch_resp.PartitionData(
            partition_index=0, error_code=_code(msg.error_code),
            high_watermark=msg.high_watermark, log_start_offset=msg.log_start_offset,
            diverging_epoch=fetch_resp.EpochEndOffset(
                epoch=msg.diverging_epoch, end_offset=msg.diverging_end_offset),
            current_leader=fetch_resp.LeaderIdAndEpoch(
                leader_id=msg.leader_id, leader_epoch=msg.leader_epoch),
            snapshot_id=fetch_resp.SnapshotId(
                end_offset=sid.end_offset if sid else -1, epoch=sid.epoch if sid else -1),
            aborted_transactions=None,
            records=entries_to_records(msg.records) if msg.records else None)
        return fetch_resp.FetchResponse(
            throttle_time=_ms(0), error_code=ErrorCode.none,
            responses=(fetch_resp.FetchableTopicResponse(topic_id=METADATA_TOPIC_ID,
                                                          partitions=(part,)),))
    if isinstance(msg, FetchSnapshotRequest):
        part = fs_req.PartitionSnapshot(
            partition=0, current_leader_epoch=msg.current_leader_epoch,
            snapshot_id=fs_req.SnapshotId(end_offset=msg.snapshot_id.end_offset,
                                          epoch=msg.snapshot_id.epoch),
            position=msg.position)
        return fs_req.FetchSnapshotRequest(
            cluster_id=msg.cluster_id, replica_id=msg.replica_id, max_bytes=msg.max_bytes,
            topics=(fs_req.TopicSnapshot(name=METADATA_TOPIC, partitions=(part,)),))
    if isinstance(msg, FetchSnapshotResponse):
        part = fs_resp.PartitionSnapshot(
            index=0, error_code=_code(msg.error_code),
            snapshot_id=fs_resp.SnapshotId(end_offset=msg.snapshot_id.end_offset,
                                           epoch=msg.snapshot_id.epoch),
            current_leader=fs_resp.LeaderIdAndEpoch(leader_id=msg.leader_id,
                                                    leader_epoch=msg.leader_epoch),
            size=msg.size, position=msg.position, unaligned_records=msg.unaligned_records)
        return fs_resp.FetchSnapshotResponse(
            throttle_time=_ms(0), error_code=ErrorCode.none,
            topics=(fs_resp.TopicSnapshot(name=METADATA_TOPIC, partitions=(part,)),))
    raise TypeError(f"not a quorum message: {type(msg).__name__}")


def describe_quorum_response(info: QuorumInfo | None, *, leader_id: int = -1,
                             leader_epoch: int = -1) -> Any:
    """DescribeQuorum v2 response from ``RaftCore.describe_quorum()``; None (this node
    is not the leader) gives NOT_LEADER_OR_FOLLOWER naming the known leader."""
    if info is None:
        part = dq_resp.PartitionData(
            partition_index=0, error_code=ErrorCode.not_leader_or_follower,
            error_message="this node is not the quorum leader", leader_id=leader_id,
            leader_epoch=leader_epoch, high_watermark=-1, current_voters=(), observers=())
    else:
        def state(r: Any) -> Any:
            return dq_resp.ReplicaState(
                replica_id=r.replica_id, replica_directory_id=None,
                log_end_offset=r.log_end_offset, last_fetch_timestamp=r.last_fetch_timestamp,
                last_caught_up_timestamp=r.last_caught_up_timestamp)

        part = dq_resp.PartitionData(
            partition_index=0, error_code=ErrorCode.none, error_message=None,
            leader_id=info.leader_id, leader_epoch=info.leader_epoch,
            high_watermark=info.high_watermark,
            current_voters=tuple(state(r) for r in info.current_voters),
            observers=tuple(state(r) for r in info.observers))
    return dq_resp.DescribeQuorumResponse(
        error_code=ErrorCode.none, error_message=None,
        topics=(dq_resp.TopicData(topic_name=METADATA_TOPIC, partitions=(part,)),), nodes=())


# ---- from kio ----------------------------------------------------------------------
def _only(items: tuple, what: str) -> Any:
    if len(items) != 1:
        raise WireError(f"{what}: expected exactly one topic/partition, got {len(items)}")
    return items[0]


def _partition(entity: Any, topics_attr: str = "topics") -> Any:
    topic = _only(getattr(entity, topics_attr), type(entity).__name__)
    return _only(topic.partitions, type(entity).__name__)


def from_kio(entity: Any, *, src: int, dst: int, correlation_id: int) -> Message:  # noqa: C901
    """The core's message for a kio quorum entity received from ``src``."""
    top_error = getattr(entity, "error_code", ErrorCode.none)
    if isinstance(entity, vote_req.VoteRequest):
        p = _partition(entity)
        return VoteRequest(src, dst, correlation_id, entity.cluster_id or "", p.replica_epoch,
                           p.replica_id, p.last_offset_epoch, p.last_offset, p.pre_vote)
    if isinstance(entity, vote_resp.VoteResponse):
        if top_error != ErrorCode.none or not entity.topics:
            return VoteResponse(src, dst, correlation_id, int(top_error), -1, -1, False)
        p = _partition(entity)
        return VoteResponse(src, dst, correlation_id, int(p.error_code), p.leader_id,
                            p.leader_epoch, p.vote_granted)
    if isinstance(entity, bqe_req.BeginQuorumEpochRequest):
        p = _partition(entity)
        return BeginQuorumEpochRequest(src, dst, correlation_id, entity.cluster_id or "",
                                       p.leader_id, p.leader_epoch)
    if isinstance(entity, bqe_resp.BeginQuorumEpochResponse):
        if top_error != ErrorCode.none or not entity.topics:
            return BeginQuorumEpochResponse(src, dst, correlation_id, int(top_error), -1, -1)
        p = _partition(entity)
        return BeginQuorumEpochResponse(src, dst, correlation_id, int(p.error_code),
                                        p.leader_id, p.leader_epoch)
    if isinstance(entity, eqe_req.EndQuorumEpochRequest):
        p = _partition(entity)
        return EndQuorumEpochRequest(src, dst, correlation_id, entity.cluster_id or "",
                                     p.leader_id, p.leader_epoch,
                                     tuple(c.candidate_id for c in p.preferred_candidates))
    if isinstance(entity, eqe_resp.EndQuorumEpochResponse):
        if top_error != ErrorCode.none or not entity.topics:
            return EndQuorumEpochResponse(src, dst, correlation_id, int(top_error), -1, -1)
        p = _partition(entity)
        return EndQuorumEpochResponse(src, dst, correlation_id, int(p.error_code),
                                      p.leader_id, p.leader_epoch)
    if isinstance(entity, fetch_req.FetchRequest):
        p = _partition(entity)
        return FetchRequest(src, dst, correlation_id, entity.cluster_id or "",
                            entity.replica_state.replica_id,
                            int(entity.max_wait.total_seconds() * 1000),
                            p.current_leader_epoch, p.fetch_offset, p.last_fetched_epoch,
                            p.log_start_offset, p.partition_max_bytes, p.high_watermark)
    if isinstance(entity, fetch_resp.FetchResponse):
        if top_error != ErrorCode.none or not entity.responses:
            return FetchResponse(src, dst, correlation_id, int(top_error), -1, -1, -1, -1,
                                 -1, -1, None, ())
        p = _partition(entity, "responses")
        sid = p.snapshot_id
        return FetchResponse(
            src, dst, correlation_id, int(p.error_code), p.high_watermark, p.log_start_offset,
            p.diverging_epoch.epoch, p.diverging_epoch.end_offset,
            p.current_leader.leader_id, p.current_leader.leader_epoch,
            SnapshotId(sid.end_offset, sid.epoch) if sid.end_offset >= 0 else None,
            records_to_entries(p.records))
    if isinstance(entity, fs_req.FetchSnapshotRequest):
        p = _partition(entity)
        return FetchSnapshotRequest(src, dst, correlation_id, entity.cluster_id or "",
                                    entity.replica_id, entity.max_bytes,
                                    p.current_leader_epoch,
                                    SnapshotId(p.snapshot_id.end_offset, p.snapshot_id.epoch),
                                    p.position)
    if isinstance(entity, fs_resp.FetchSnapshotResponse):
        if top_error != ErrorCode.none or not entity.topics:
            return FetchSnapshotResponse(src, dst, correlation_id, int(top_error),
                                         SnapshotId(-1, -1), -1, -1, -1, -1, b"")
        p = _partition(entity)
        return FetchSnapshotResponse(
            src, dst, correlation_id, int(p.error_code),
            SnapshotId(p.snapshot_id.end_offset, p.snapshot_id.epoch),
            p.current_leader.leader_id, p.current_leader.leader_epoch, p.size, p.position,
            bytes(p.unaligned_records))
    raise WireError(f"not a quorum RPC: {type(entity).__name__}")
