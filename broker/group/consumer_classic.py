"""Classic-protocol members inside a KIP-848 consumer group (Kafka 4's "a classic member
may join a consumer group through JoinGroup"). Pure.

A consumer on the classic protocol (JoinGroup/SyncGroup/Heartbeat/LeaveGroup, protocol
type ``consumer``) that joins a consumer group with members becomes one of its members:

- JoinGroup: its subscription is read from the metadata of its preferred protocol that
  every other classic member also supports (ConsumerProtocolSubscription v0-3; none in
  common: INCONSISTENT_GROUP_PROTOCOL); its owned partitions from the subscription (v1+,
  cooperative clients) — an eager client has revoked everything before it joins. The
  member is reconciled like any other (revocation before assignment) and answered at once:
  generation = its member epoch, no leader (the broker assigns), the chosen protocol.
  v4+ dynamic members first get MEMBER_ID_REQUIRED, as from a classic group.
- SyncGroup: its current assignment as a ConsumerProtocolAssignment (v0 layout).
- Heartbeat: REBALANCE_IN_PROGRESS while the member is not at the group's assignment
  epoch in a stable state, so the client rejoins to be reconciled; ILLEGAL_GENERATION
  for another generation. Its session timeout is its own (JoinGroup's).
- LeaveGroup: the member is removed (a new group epoch and target for the others).
- Online upgrade (``convert_classic_group``): a *Stable* classic group of protocol type
  ``consumer`` that a ConsumerGroupHeartbeat joins becomes a consumer group: each member
  keeps its assignment (parsed from its ConsumerProtocolAssignment) at member epoch =
  the generation, the group and assignment epochs start at the generation. Its members
  then go on as classic members of the consumer group; the new member's join bumps the
  epoch, so they rejoin (REBALANCE_IN_PROGRESS) and are reconciled.

Errors are Kafka's (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, FENCED_INSTANCE_ID,
INCONSISTENT_GROUP_PROTOCOL, INVALID_SESSION_TIMEOUT, GROUP_MAX_SIZE_REACHED).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kio.schema.errors import ErrorCode

from broker.group.consumer_group import (
    ConsumerGroup,
    ConsumerMember,
    MemberState,
    Partitions,
    subscription_metadata,
)
from broker.group.events import STORE_GROUP_ERRORS, JoinResult, SyncResult
from broker.group.group import ClassicGroup
from broker.group.log_format import LogFormatError, _Reader
from broker.group.member import Token

if TYPE_CHECKING:
    from broker.group.consumer_coordinator import ConsumerGroupCoordinator
    from broker.group.consumer_records import TopicMetadata

E = ErrorCode
PROTOCOL_TYPE = "consumer"
_H = struct.Struct(">h")
_I = struct.Struct(">i")


@dataclass(frozen=True, slots=True)
class Subscription:
    version: int
    topics: tuple[str, ...]
    #: topic name -> partitions the member owns (v1+); empty for v0
    owned: dict[str, frozenset[int]]


def parse_subscription(metadata: bytes) -> Subscription | None:
    """ConsumerProtocolSubscription: version:int16 topics:[string] user_data:bytes?
    [owned_partitions:[topic:string partitions:[int32]] (v1+)] [generation:int32 (v2+)]
    [rack_id:string? (v3+)]. None when the bytes are not one."""
    try:
        r = _Reader(metadata, "ConsumerProtocolSubscription")
        version = r.i16()
        if version < 0:
            return None
        n = r.i32()
        if n < 0 or n > len(metadata):
            return None
        topics = tuple(r.req_string() for _ in range(n))
        owned: dict[str, frozenset[int]] = {}
        if r.pos < len(metadata):
            r.bytes_()  # user data
        if version >= 1 and r.pos < len(metadata):
            for _ in range(r.array_len()):
                topic = r.req_string()
                owned[topic] = frozenset(r.i32() for _ in range(r.array_len()))
        return Subscription(version, topics, owned)
    except LogFormatError:
        return None


def parse_assignment(raw: bytes) -> dict[str, frozenset[int]] | None:
    """ConsumerProtocolAssignment (v0-3 share the layout): version:int16
    [topic:string [partition:int32]] user_data:bytes?; empty bytes = nothing assigned."""
    if not raw:
        return {}
    try:
        r = _Reader(raw, "ConsumerProtocolAssignment")
        if r.i16() < 0:
            return None
        out: dict[str, frozenset[int]] = {}
        for _ in range(r.array_len()):
            topic = r.req_string()
            out[topic] = frozenset(r.i32() for _ in range(r.array_len()))
        return out
    except LogFormatError:
        return None


def convert_classic_group(
    classic: ClassicGroup, topics: dict[str, TopicMetadata], max_size: int
) -> ConsumerGroup | None:
    """The consumer group a Stable classic consumer group becomes (Kafka's online
    upgrade), or None when it cannot be converted (not Stable, not protocol type
    ``consumer``, too large, a subscription or assignment that does not parse)."""
    from broker.group.state import GroupState

    if (not classic.is_(GroupState.STABLE) or classic.protocol_type != PROTOCOL_TYPE
            or not classic.members or len(classic.members) > max_size
            or classic.pending_members):
        return None
    generation = classic.generation_id
    group = ConsumerGroup(classic.group_id, group_epoch=generation,
                          assignment_epoch=generation)
    for m in classic.members.values():
        subscription = parse_subscription(m.metadata_for(classic.protocol_name))
        assignment = parse_assignment(m.assignment)
        if subscription is None or assignment is None:
            return None
        assigned = {topics[t].topic_id: ps for t, ps in assignment.items()
                    if t in topics and ps}
        member = ConsumerMember(
            m.member_id, m.group_instance_id, None, m.client_id, m.client_host,
            tuple(sorted(set(subscription.topics))), None, m.rebalance_timeout_ms, None,
            generation, generation, MemberState.STABLE, assigned, {},
            m.session_timeout_ms, tuple((n, bytes(md)) for n, md in m.protocols))
        group.put_member(member)
        group.target[m.member_id] = dict(assigned)
    group.subscription_metadata = subscription_metadata(group.members, topics)
    return group


def encode_assignment(partitions: dict[str, Sequence[int]]) -> bytes:
    """ConsumerProtocolAssignment v0: version:int16 [topic:string [partition:int32]]
    user_data:bytes (null)."""
    out = [_H.pack(0), _I.pack(len(partitions))]
    for topic in sorted(partitions):
        raw = topic.encode()
        ps = sorted(partitions[topic])
        out += [_H.pack(len(raw)), raw, _I.pack(len(ps))] + [_I.pack(p) for p in ps]
    out.append(_I.pack(-1))
    return b"".join(out)


def chosen_protocol(group: ConsumerGroup, member: ConsumerMember) -> str | None:
    """The member's most preferred protocol that every other classic member supports."""
    return _choose(group, member.member_id, member.classic_protocols or ())


def _choose(group: ConsumerGroup, member_id: str,
            protocols: Sequence[tuple[str, bytes]]) -> str | None:
    others = [{n for n, _ in m.classic_protocols or ()}
              for m in group.members.values()
              if m.uses_classic_protocol and m.member_id != member_id]
    for name, _ in protocols:
        if all(name in o for o in others):
            return name
    return None


def _ids(coord: ConsumerGroupCoordinator, owned: dict[str, frozenset[int]]) -> Partitions:
    out: Partitions = {}
    for name, ps in owned.items():
        meta = coord.topic_metadata.get(name)
        if meta is not None and ps:
            out[meta.topic_id] = ps
    return out


def topic_names_of(coord: ConsumerGroupCoordinator, assigned: Partitions) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for topic_id, ps in assigned.items():
        name = coord.topic_name(topic_id)
        if name is not None:
            out[name] = sorted(ps)
    return out


def classic_join(
    coord: ConsumerGroupCoordinator, token: Token, now_ms: int, group: ConsumerGroup, *,
    group_id: str, member_id: str, group_instance_id: str | None, client_id: str,
    client_host: str, session_timeout_ms: int, rebalance_timeout_ms: int, protocol_type: str,
    protocols: Sequence[tuple[str, bytes]], require_known_member_id: bool, version: int = 9,
) -> JoinResult:
    def fail(error: ErrorCode, mid: str = member_id) -> JoinResult:
        return JoinResult(token, error, mid)

    cfg = coord.config
    if not cfg.min_session_timeout_ms <= session_timeout_ms <= cfg.max_session_timeout_ms:
        return fail(E.invalid_session_timeout)
    if protocol_type != PROTOCOL_TYPE or not protocols or (
        _choose(group, member_id, protocols) is None
    ):
        return fail(E.inconsistent_group_protocol)
    if rebalance_timeout_ms < 0:
        rebalance_timeout_ms = session_timeout_ms  # JoinGroup v0
    if not member_id:
        new_id = coord.new_member_id(client_id or "consumer")
        if group_instance_id is None and require_known_member_id:
            return JoinResult(token, E.member_id_required, new_id)  # KIP-394
        member_id = new_id
    old = group.members.get(member_id)
    replaced: ConsumerMember | None = None
    if old is not None and not old.uses_classic_protocol:
        return fail(E.unknown_member_id)  # that id speaks ConsumerGroupHeartbeat
    if group_instance_id is not None:
        previous_id = group.static_members.get(group_instance_id)
        if previous_id is not None and previous_id != member_id:
            previous = group.members[previous_id]
            if not previous.uses_classic_protocol:
                return fail(E.fenced_instance_id)
            replaced = previous  # a restarted static member takes over its assignment
    if old is None and replaced is None and len(group.members) >= coord.consumer_config.max_size:
        return fail(E.group_max_size_reached)
    base = (old or replaced or ConsumerMember(member_id)).copy()
    base.member_id = member_id
    base.instance_id = group_instance_id
    base.client_id, base.client_host = client_id, client_host
    base.rebalance_timeout_ms = rebalance_timeout_ms
    base.classic_session_timeout_ms = session_timeout_ms
    base.classic_protocols = tuple((n, bytes(m)) for n, m in protocols)
    name = chosen_protocol(group, base)
    if name is None:
        return fail(E.inconsistent_group_protocol)
    subscription = parse_subscription(dict(protocols)[name])
    if subscription is None:
        return fail(E.inconsistent_group_protocol)
    base.subscribed_topic_names = tuple(sorted(set(subscription.topics)))
    base.subscribed_topic_regex = None
    reported: Partitions = _ids(coord, subscription.owned) if old is not None else {}
    if old is None and replaced is not None:
        base.member_epoch = base.previous_member_epoch = 0
        base.state = MemberState.STABLE
    error, updated = coord._cg_commit_member(now_ms, group, False, old, base, replaced,
                                             reported)
    if error is not E.none:
        return fail(STORE_GROUP_ERRORS.get(error, error))
    assert updated is not None
    return JoinResult(token, E.none, member_id, updated.member_epoch, PROTOCOL_TYPE, name, "")


def _member_error(group: ConsumerGroup, member_id: str, instance_id: str | None,
                  generation_id: int | None) -> ErrorCode | None:
    if instance_id is not None:
        current = group.static_members.get(instance_id)
        if current is not None and current != member_id:
            return E.fenced_instance_id
    member = group.members.get(member_id)
    if member is None or not member.uses_classic_protocol:
        return E.unknown_member_id
    if generation_id is not None and generation_id != member.member_epoch:
        return E.illegal_generation
    return None


def classic_sync(
    coord: ConsumerGroupCoordinator, token: Token, now_ms: int, group: ConsumerGroup, *,
    generation_id: int, member_id: str, group_instance_id: str | None,
    protocol_type: str | None, protocol_name: str | None,
) -> SyncResult:
    error = _member_error(group, member_id, group_instance_id, generation_id)
    if error is not None:
        return SyncResult(token, error)
    member = group.members[member_id]
    name = chosen_protocol(group, member)
    if (protocol_type is not None and protocol_type != PROTOCOL_TYPE) or (
        protocol_name is not None and protocol_name != name
    ):
        return SyncResult(token, E.inconsistent_group_protocol)
    coord._arm_session(group.group_id, member_id, now_ms)
    return SyncResult(token, E.none, encode_assignment(topic_names_of(coord, member.assigned)),
                      PROTOCOL_TYPE, name)


def classic_heartbeat(
    coord: ConsumerGroupCoordinator, now_ms: int, group: ConsumerGroup, *,
    generation_id: int, member_id: str, group_instance_id: str | None,
) -> ErrorCode:
    error = _member_error(group, member_id, group_instance_id, generation_id)
    if error is not None:
        return error
    member = group.members[member_id]
    coord._arm_session(group.group_id, member_id, now_ms)
    if member.state is not MemberState.STABLE or member.member_epoch != group.assignment_epoch:
        return E.rebalance_in_progress  # rejoin to be reconciled
    return E.none


def classic_leave(
    coord: ConsumerGroupCoordinator, now_ms: int, group: ConsumerGroup,
    members: Sequence[tuple[str, str | None]],
) -> tuple[ErrorCode, list[tuple[str, str | None, ErrorCode]]]:
    out: list[tuple[str, str | None, ErrorCode]] = []
    for member_id, instance_id in members:
        target = member_id
        if instance_id is not None:
            current = group.static_members.get(instance_id)
            if current is None:
                out.append((member_id, instance_id, E.unknown_member_id))
                continue
            if member_id and current != member_id:
                out.append((member_id, instance_id, E.fenced_instance_id))
                continue
            target = current
        member = group.members.get(target)
        if member is None or not member.uses_classic_protocol:
            out.append((member_id, instance_id, E.unknown_member_id))
            continue
        error = coord._remove_members(group, [target], now_ms)
        out.append((member_id, instance_id, STORE_GROUP_ERRORS.get(error, error)))
    return E.none, out
