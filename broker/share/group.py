"""Share groups' membership (KIP-932's ShareGroupHeartbeat and ShareGroupDescribe). Pure.

A share group is a set of members, each subscribed to topic names; the coordinator
assigns topic-partitions with Kafka's *simple* assignor (below) and members consume
every partition they are assigned through ShareFetch on the partition's leader. Unlike
consumer groups there is no revocation: a member's assignment is replaced at once and
its member epoch becomes the group's epoch (a partition may be fetched by several
members at the same time; the share-partition locks each record for one of them).

Heartbeat rules, as Kafka 4.2's ``GroupMetadataManager.shareGroupHeartbeat``:

- ``member_epoch`` 0 joins (the member generates its id; an empty id is INVALID_REQUEST;
  the first heartbeat must name its subscribed topics), -1 leaves (answered with epoch
  -1); any other epoch must be the member's current one (FENCED_MEMBER_EPOCH) of a known
  member (UNKNOWN_MEMBER_ID).
- ``subscribed_topic_names`` null means unchanged. A change of members, subscriptions or
  the subscribed topics' partition counts bumps the group epoch and recomputes the
  target assignment; the answer carries the member's assignment when it changed (or on
  join), else null.
- A member that does not heartbeat within ``group.share.session.timeout.ms`` is removed.
- ``group.share.max.size`` members at most (GROUP_MAX_SIZE_REACHED).
- A group id used by a classic or consumer group is refused: GROUP_ID_NOT_FOUND "Group g
  is not a share group."

Simple assignor (Kafka's ``SimpleAssignor``, sticky variant): per subscribed topic with
``P`` partitions and ``N`` subscribed members, when ``N <= P`` each partition goes to one
member (F's ``uniform`` assignor, so members keep what they had and loads differ by at
most one); when ``N > P`` every member gets one partition, partition ``i mod P`` for the
``i``-th member in member-id order, so each partition is shared by ``N/P`` members or
one more. Deterministic: it depends only on the members, subscriptions and topics.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from broker.group.consumer_assignors import uniform_assign
from broker.group.consumer_records import TopicMetadata
from broker.share.config import ShareGroupConfig

TopicId = uuid.UUID
Assignment = dict[TopicId, frozenset[int]]

NONE = 0
UNKNOWN_MEMBER_ID = 25
INVALID_REQUEST = 42
NOT_COORDINATOR = 16
GROUP_ID_NOT_FOUND = 69
GROUP_MAX_SIZE_REACHED = 81
FENCED_MEMBER_EPOCH = 110

LEAVE_EPOCH = -1
STATE_EMPTY, STATE_STABLE, STATE_DEAD = "Empty", "Stable", "Dead"
ASSIGNOR_NAME = "simple"


@dataclass(slots=True)
class ShareMember:
    member_id: str
    member_epoch: int
    rack_id: str | None
    client_id: str
    client_host: str
    subscribed_topic_names: tuple[str, ...]
    assigned: Assignment = field(default_factory=dict)
    session_deadline: int = 0


@dataclass(slots=True)
class ShareGroup:
    group_id: str
    group_epoch: int = 0
    assignment_epoch: int = 0
    members: dict[str, ShareMember] = field(default_factory=dict)
    target: dict[str, Assignment] = field(default_factory=dict)
    #: partition counts of the subscribed topics the target was computed from
    topics_seen: dict[str, tuple[TopicId, int]] = field(default_factory=dict)

    @property
    def state(self) -> str:
        return STATE_STABLE if self.members else STATE_EMPTY

    def subscribed_topics(self) -> set[str]:
        return {t for m in self.members.values() for t in m.subscribed_topic_names}


@dataclass(frozen=True, slots=True)
class HeartbeatResult:
    error: int
    error_message: str | None = None
    member_id: str | None = None
    member_epoch: int = 0
    heartbeat_interval_ms: int = 0
    #: the member's new assignment, or None when unchanged
    assignment: Assignment | None = None


@dataclass(frozen=True, slots=True)
class DescribedShareGroup:
    group_id: str
    error: int = NONE
    error_message: str | None = None
    group: ShareGroup | None = None


def simple_assign(
    subscriptions: Mapping[str, Iterable[TopicId]],
    partition_counts: Mapping[TopicId, int],
    current: Mapping[str, Mapping[TopicId, frozenset[int]]],
) -> dict[str, Assignment]:
    """The simple assignor (module doc): member id -> topic id -> partitions."""
    subs = {m: set(ts) for m, ts in subscriptions.items()}
    out: dict[str, dict[TopicId, frozenset[int]]] = {m: {} for m in subs}
    for topic, count in sorted(partition_counts.items(), key=lambda kv: str(kv[0])):
        members = sorted(m for m, ts in subs.items() if topic in ts)
        if not members or count <= 0:
            continue
        if len(members) <= count:
            one = uniform_assign(
                {m: {topic} for m in members}, {topic: count},
                {m: {topic: set((current.get(m) or {}).get(topic, ()))} for m in members})
            for m, parts in one.items():
                if parts.get(topic):
                    out[m][topic] = parts[topic]
        else:
            for i, m in enumerate(members):
                out[m][topic] = frozenset({i % count})
    return out


class ShareGroupCoordinator:
    """Share groups of one broker; time is ``now_ms`` passed in. ``is_local(group_id)``:
    this node coordinates the group; ``other_group_type(group_id)``: "classic" or
    "consumer" when a group of another type holds the id, else None."""

    def __init__(self, config: ShareGroupConfig, *,
                 is_local: Callable[[str], bool] = lambda _g: True,
                 other_group_type: Callable[[str], str | None] = lambda _g: None) -> None:
        self.config = config
        self.is_local = is_local
        self.other_group_type = other_group_type
        self.groups: dict[str, ShareGroup] = {}
        self.topics: dict[str, TopicMetadata] = {}
        #: ids of groups with stored share-partition state: they exist (empty) after a
        #: restart, once this node coordinates them
        self.stored: set[str] = set()

    def _revive(self) -> None:
        for gid in self.stored:
            if gid not in self.groups and self.is_local(gid):
                self.groups[gid] = ShareGroup(gid)

    # ------------------------------------------------------------------ topics
    def update_topic_metadata(self, now_ms: int, topics: Mapping[str, TopicMetadata]) -> None:
        self.topics = dict(topics)
        for group in self.groups.values():
            if self._topics_changed(group):
                self._bump(group)

    def topic_name(self, topic_id: TopicId) -> str | None:
        for meta in self.topics.values():
            if meta.topic_id == topic_id:
                return meta.name
        return None

    def _subscribed_metadata(self, group: ShareGroup) -> dict[str, tuple[TopicId, int]]:
        out = {}
        for name in group.subscribed_topics():
            meta = self.topics.get(name)
            if meta is not None:
                out[name] = (meta.topic_id, meta.num_partitions)
        return out

    def _topics_changed(self, group: ShareGroup) -> bool:
        return self._subscribed_metadata(group) != group.topics_seen

    # ------------------------------------------------------------------ heartbeat
    def _validate(self, group_id: str) -> tuple[int, str | None] | None:
        if not group_id:
            return INVALID_REQUEST, "GroupId can't be empty."
        if not self.is_local(group_id):
            return NOT_COORDINATOR, None
        if group_id in self.stored:
            self._revive()
        if group_id not in self.groups and self.other_group_type(group_id) is not None:
            return GROUP_ID_NOT_FOUND, f"Group {group_id} is not a share group."
        return None

    def heartbeat(self, now_ms: int, *, group_id: str, member_id: str, member_epoch: int,
                  rack_id: str | None, subscribed_topic_names: list[str] | None,
                  client_id: str = "", client_host: str = "") -> HeartbeatResult:
        interval = self.config.heartbeat_interval_ms
        bad = self._validate(group_id)
        if bad is not None:
            return HeartbeatResult(bad[0], bad[1], heartbeat_interval_ms=interval)
        if not member_id:
            return HeartbeatResult(INVALID_REQUEST, "MemberId can't be empty.")
        if member_epoch < LEAVE_EPOCH:
            return HeartbeatResult(INVALID_REQUEST, f"MemberEpoch is {member_epoch}.")
        group = self.groups.get(group_id)
        member = group.members.get(member_id) if group is not None else None
        if member_epoch == LEAVE_EPOCH:
            if member is not None and group is not None:
                self._remove(group, member_id)
            return HeartbeatResult(NONE, None, member_id, LEAVE_EPOCH, interval)
        if member_epoch == 0:
            if subscribed_topic_names is None or not subscribed_topic_names:
                return HeartbeatResult(
                    INVALID_REQUEST, "SubscribedTopicNames must be set in first request.")
            if group is None:
                group = self.groups[group_id] = ShareGroup(group_id)
            if member is None and len(group.members) >= self.config.max_size:
                return HeartbeatResult(
                    GROUP_MAX_SIZE_REACHED,
                    f"The share group has reached its maximum capacity of "
                    f"{self.config.max_size} members.")
        else:
            if member is None or group is None:
                return HeartbeatResult(
                    UNKNOWN_MEMBER_ID, f"Member {member_id} is not a member of group {group_id}.")
            if member_epoch != member.member_epoch:
                return HeartbeatResult(
                    FENCED_MEMBER_EPOCH,
                    f"The share group member has a smaller member epoch ({member_epoch}) than "
                    f"the one known by the group coordinator ({member.member_epoch}).")
        assert group is not None
        changed = False
        if member is None:
            member = ShareMember(member_id, 0, rack_id, client_id, client_host,
                                 tuple(subscribed_topic_names or ()))
            group.members[member_id] = member
            changed = True
        else:
            if subscribed_topic_names is not None and \
                    tuple(sorted(subscribed_topic_names)) != \
                    tuple(sorted(member.subscribed_topic_names)):
                member.subscribed_topic_names = tuple(subscribed_topic_names)
                changed = True
            member.rack_id = rack_id if rack_id is not None else member.rack_id
        member.client_id, member.client_host = client_id or member.client_id, \
            client_host or member.client_host
        member.session_deadline = now_ms + self.config.session_timeout_ms
        if changed or self._topics_changed(group):
            self._bump(group)
        target = group.target.get(member_id, {})
        send: Assignment | None = None
        if member_epoch == 0 or target != member.assigned or \
                member.member_epoch != group.assignment_epoch:
            member.assigned = dict(target)
            member.member_epoch = group.assignment_epoch
            send = member.assigned
        return HeartbeatResult(NONE, None, member_id, member.member_epoch, interval, send)

    def _bump(self, group: ShareGroup) -> None:
        group.group_epoch += 1
        group.topics_seen = self._subscribed_metadata(group)
        by_name = group.topics_seen
        subscriptions = {
            m.member_id: [by_name[t][0] for t in m.subscribed_topic_names if t in by_name]
            for m in group.members.values()
        }
        counts = {tid: n for tid, n in by_name.values()}
        group.target = simple_assign(subscriptions, counts,
                                     {m.member_id: m.assigned for m in group.members.values()})
        group.assignment_epoch = group.group_epoch

    def _remove(self, group: ShareGroup, member_id: str) -> None:
        group.members.pop(member_id, None)
        group.target.pop(member_id, None)
        self._bump(group)

    # ------------------------------------------------------------------ timers
    def tick(self, now_ms: int) -> list[tuple[str, str]]:
        """Remove members whose session expired; returns (group id, member id) of each."""
        gone = []
        for group in self.groups.values():
            for member in list(group.members.values()):
                if member.session_deadline <= now_ms:
                    gone.append((group.group_id, member.member_id))
                    self._remove(group, member.member_id)
        return gone

    def next_deadline(self) -> int | None:
        deadlines = [m.session_deadline for g in self.groups.values()
                     for m in g.members.values()]
        return min(deadlines) if deadlines else None

    # ------------------------------------------------------------------ admin views
    def describe(self, group_ids: Iterable[str]) -> list[DescribedShareGroup]:
        out = []
        for gid in group_ids:
            bad = self._validate(gid)
            if bad is not None:
                out.append(DescribedShareGroup(gid, bad[0], bad[1]))
                continue
            group = self.groups.get(gid)
            if group is None:
                out.append(DescribedShareGroup(gid, GROUP_ID_NOT_FOUND,
                                               f"Group {gid} not found."))
            else:
                out.append(DescribedShareGroup(gid, NONE, None, group))
        return out

    def list_groups(self) -> list[ShareGroup]:
        self._revive()
        return [g for g in self.groups.values() if self.is_local(g.group_id)]

    def ensure_group(self, group_id: str) -> tuple[int, str | None]:
        """Make ``group_id`` a (possibly empty) share group, as AlterShareGroupOffsets does
        for a group that does not exist yet; NONE or the error."""
        bad = self._validate(group_id)
        if bad is not None:
            return bad
        self.groups.setdefault(group_id, ShareGroup(group_id))
        return NONE, None

    def delete_group(self, group_id: str) -> int:
        group = self.groups.get(group_id)
        if group is None:
            return GROUP_ID_NOT_FOUND
        if group.members:
            return 68  # NON_EMPTY_GROUP
        del self.groups[group_id]
        return NONE
