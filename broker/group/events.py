"""Values that cross the group coordinator's boundary: results of delayed requests
(JoinGroup, SyncGroup), offset commits, the ``OffsetsStore`` port, timer keys and the
log-append error mappings Kafka applies. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from kio.schema.errors import ErrorCode

from broker.group.member import Token
from broker.group.state import GroupState

E = ErrorCode
TopicPartition = tuple[str, int]
KeyValue = tuple[bytes, bytes | None]


class OffsetsStore(Protocol):
    """Port to the ``__consumer_offsets`` log (the shell implements it on storage)."""

    def append(self, partition: int, records: Sequence[KeyValue]) -> ErrorCode: ...

    def is_local(self, partition: int) -> bool:
        """Whether this node leads ``partition`` (and so coordinates its groups)."""
        ...


@dataclass(frozen=True, slots=True)
class JoinResult:
    token: Token
    error: ErrorCode
    member_id: str
    generation_id: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str = ""
    skip_assignment: bool = False
    #: (member id, group instance id, metadata); only the leader gets them
    members: tuple[tuple[str, str | None, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class SyncResult:
    token: Token
    error: ErrorCode
    assignment: bytes = b""
    protocol_type: str | None = None
    protocol_name: str | None = None


@dataclass(frozen=True, slots=True)
class OffsetCommit:
    topic: str
    partition: int
    offset: int
    leader_epoch: int = -1
    metadata: str | None = ""
    #: absolute expiry (OffsetCommit v2-v4 retention_time_ms); None = retention policy
    expire_timestamp: int | None = None


@dataclass(frozen=True, slots=True)
class ListedGroup:
    group_id: str
    protocol_type: str
    state: GroupState


Completion = JoinResult | SyncResult

# timer keys (the coordinator keeps one TimerQueue keyed by these tuples)
HEARTBEAT_TIMER = "hb"  # (HEARTBEAT_TIMER, group id, member id): session / new-member-join timeout
PENDING_TIMER = "pending"  # (PENDING_TIMER, group id, member id): KIP-394 pending member
JOIN_TIMER = "join"  # (JOIN_TIMER, group id): DelayedJoin / InitialDelayedJoin
SYNC_TIMER = "sync"  # (SYNC_TIMER, group id): DelayedSync, members must SyncGroup in time
EXPIRE_TIMER = ("expire",)  # offsets retention check

#: log append errors -> what Kafka answers for SyncGroup (storeGroup)
STORE_GROUP_ERRORS = {
    E.unknown_topic_or_partition: E.coordinator_not_available,
    E.leader_not_available: E.coordinator_not_available,
    E.not_enough_replicas: E.coordinator_not_available,
    E.not_enough_replicas_after_append: E.coordinator_not_available,
    E.request_timed_out: E.coordinator_not_available,
    E.not_leader_or_follower: E.not_coordinator,
    E.kafka_storage_error: E.not_coordinator,
}
#: log append errors -> what Kafka answers for OffsetCommit (storeOffsets)
STORE_OFFSET_ERRORS = {
    E.unknown_topic_or_partition: E.coordinator_not_available,
    E.leader_not_available: E.coordinator_not_available,
    E.not_enough_replicas: E.coordinator_not_available,
    E.not_enough_replicas_after_append: E.coordinator_not_available,
    E.request_timed_out: E.coordinator_not_available,
    E.not_leader_or_follower: E.not_coordinator,
    E.kafka_storage_error: E.not_coordinator,
    E.message_too_large: E.invalid_commit_offset_size,
    E.record_list_too_large: E.invalid_commit_offset_size,
    E.invalid_fetch_size: E.invalid_commit_offset_size,
}


def join_error(token: Token, member_id: str, error: ErrorCode) -> JoinResult:
    return JoinResult(token, error, member_id)
