"""Typed consumer-group administration over ``KafkaClient`` (blocking; for tools).

``Groups(client)``: ``list()`` asks every broker (each knows only the groups it
coordinates), ``describe(group)`` returns members with their decoded assignments,
``committed(group)`` the committed offsets, ``commit(group, offsets)`` a simple commit
(generation -1, no member id: Kafka accepts it only while the group has no members, as
``kafka-consumer-groups.sh --reset-offsets`` requires), ``delete(groups)``.

``decode_assignment(bytes)`` reads the consumer protocol's assignment (pure):
``int16 version, [string topic, [int32 partition]], bytes user_data``.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from net.kafka_client import KafkaClient, error_name
from net.session import ClientError, KafkaApiError

OFFSET_COMMIT = 8
OFFSET_FETCH = 9
DESCRIBE_GROUPS = 15
LIST_GROUPS = 16
DELETE_GROUPS = 42


@dataclass(frozen=True, slots=True)
class GroupListing:
    group_id: str
    protocol_type: str
    state: str
    coordinator: int


@dataclass(frozen=True, slots=True)
class GroupMember:
    member_id: str
    instance_id: str | None
    client_id: str
    client_host: str
    assignment: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class GroupDescription:
    group_id: str
    state: str
    protocol_type: str
    protocol: str
    members: tuple[GroupMember, ...]


def decode_assignment(data: bytes | None) -> tuple[tuple[str, int], ...]:
    """(topic, partition) pairs of a consumer-protocol assignment; () for empty or
    non-consumer data (it is opaque outside protocol type "consumer")."""
    if not data or len(data) < 6:
        return ()
    try:
        pos = 2
        (count,) = struct.unpack_from(">i", data, pos)
        pos += 4
        out = []
        for _ in range(max(count, 0)):
            (size,) = struct.unpack_from(">h", data, pos)
            pos += 2
            topic = data[pos:pos + size].decode()
            pos += size
            (n,) = struct.unpack_from(">i", data, pos)
            pos += 4
            for _ in range(max(n, 0)):
                (partition,) = struct.unpack_from(">i", data, pos)
                pos += 4
                out.append((topic, partition))
        return tuple(sorted(out))
    except (struct.error, UnicodeDecodeError):
        return ()


def _check(code: object, what: str) -> None:
    if int(code) != 0:  # type: ignore[call-overload]
        name = error_name(code)
        raise KafkaApiError(int(code), name, f"{what}: {name}")  # type: ignore[call-overload]


class Groups:
    """See the module doc."""

    def __init__(self, client: KafkaClient) -> None:
        self.client = client

    def list(self) -> list[GroupListing]:
        metadata = self.client.metadata([])
        found: dict[str, GroupListing] = {}
        for node_id in sorted(metadata.brokers):
            try:
                response = self.client.session(node_id).call(
                    LIST_GROUPS, {"states_filter": [], "types_filter": []}, highest=4)
            except ClientError:
                continue  # an unreachable broker's groups are not listed
            _check(response.error_code, f"ListGroups on broker {node_id}")
            for g in response.groups:
                found[g.group_id] = GroupListing(g.group_id, g.protocol_type,
                                                 getattr(g, "group_state", ""), node_id)
        return sorted(found.values(), key=lambda g: g.group_id)

    def describe(self, group: str) -> GroupDescription:
        response = self.client.coordinator(group).call(DESCRIBE_GROUPS, {
            "groups": [group], "include_authorized_operations": False}, highest=5)
        g = response.groups[0]
        _check(g.error_code, f"cannot describe group {group!r}")
        consumer = g.protocol_type in ("consumer", "")
        members = tuple(GroupMember(
            m.member_id, getattr(m, "group_instance_id", None), m.client_id, m.client_host,
            decode_assignment(m.member_assignment) if consumer else ()) for m in g.members)
        return GroupDescription(g.group_id, g.group_state, g.protocol_type, g.protocol_data,
                                members)

    def committed(self, group: str) -> dict[tuple[str, int], int]:
        """Committed offsets of every partition the group has one for."""
        response = self.client.coordinator(group).call(OFFSET_FETCH, {
            "group_id": group, "topics": None, "require_stable": False,
            "groups": [{"group_id": group, "topics": None}]}, highest=8, lowest=2)
        if hasattr(response, "groups"):
            entry = response.groups[0]
            _check(entry.error_code, f"cannot fetch offsets of group {group!r}")
            topics = entry.topics
        else:
            _check(response.error_code, f"cannot fetch offsets of group {group!r}")
            topics = response.topics
        out = {}
        for t in topics:
            for p in t.partitions:
                _check(p.error_code, f"offset of {t.name}-{p.partition_index}")
                if p.committed_offset >= 0:
                    out[(t.name, p.partition_index)] = p.committed_offset
        return out

    def commit(self, group: str, offsets: Mapping[tuple[str, int], int]) -> None:
        by_topic: dict[str, list[dict[str, object]]] = {}
        for (topic, partition), offset in sorted(offsets.items()):
            by_topic.setdefault(topic, []).append({
                "partition_index": partition, "committed_offset": offset,
                "committed_leader_epoch": -1, "committed_metadata": ""})
        response = self.client.coordinator(group).call(OFFSET_COMMIT, {
            "group_id": group, "generation_id_or_member_epoch": -1, "generation_id": -1,
            "member_id": "", "group_instance_id": None, "retention_time": -1,
            "topics": [{"name": t, "partitions": ps} for t, ps in by_topic.items()]},
            highest=8, lowest=2)
        for t in response.topics:
            for p in t.partitions:
                if int(p.error_code) != 0:
                    name = error_name(p.error_code)
                    hint = (": the group has active members; stop its consumers first"
                            if name in ("UNKNOWN_MEMBER_ID", "ILLEGAL_GENERATION",
                                        "REBALANCE_IN_PROGRESS") else "")
                    raise KafkaApiError(int(p.error_code), name,
                                        f"cannot commit {t.name}-{p.partition_index} for "
                                        f"group {group!r}: {name}{hint}")

    def delete(self, groups: Sequence[str]) -> None:
        for group in groups:
            response = self.client.coordinator(group).call(
                DELETE_GROUPS, {"groups_names": [group]}, highest=2)
            for r in response.results:
                _check(r.error_code, f"cannot delete group {r.group_id!r}")
