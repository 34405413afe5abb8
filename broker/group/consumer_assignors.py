"""Server-side assignors of KIP-848 consumer groups: ``uniform`` and ``range``. Pure.

Contract (Kafka's ``ConsumerGroupPartitionAssignor``): given every member's subscribed
topic ids, the topics' partition counts and the current target assignment, return the new
target assignment ``member id -> {topic id -> partitions}``. Every partition of a topic
some member subscribes to goes to exactly one member subscribed to it; members subscribed
to nothing get nothing. The result depends only on the input (members are taken in
member-id order), so every coordinator computes the same assignment.

- ``uniform`` (Kafka's UniformAssignor, the default): balanced and sticky. A member keeps
  the partitions it had that are still valid, unowned partitions go to the least loaded
  subscribed member, then partitions move from the most to the least loaded candidate
  while their counts differ by more than one. With identical subscriptions every member
  ends with ``floor(P/N)`` or ``ceil(P/N)`` partitions; it moves no partition it need not.
- ``range`` (Kafka's RangeAssignor): per topic, the subscribed members in member-id order
  take contiguous ranges, the first ``P mod N`` one partition more, so members subscribed
  to co-partitioned topics get the same partition numbers of each.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Set

TopicId = uuid.UUID
#: member id -> topic id -> partitions
TargetAssignment = dict[str, dict[TopicId, frozenset[int]]]
Assignor = Callable[
    [Mapping[str, Set[TopicId]], Mapping[TopicId, int], Mapping[str, Mapping[TopicId, Set[int]]]],
    TargetAssignment,
]


def _freeze(owned: dict[str, dict[TopicId, set[int]]]) -> TargetAssignment:
    return {m: {t: frozenset(ps) for t, ps in topics.items() if ps} for m, topics in owned.items()}


def uniform_assign(
    subscriptions: Mapping[str, Set[TopicId]],
    partition_counts: Mapping[TopicId, int],
    current: Mapping[str, Mapping[TopicId, Set[int]]],
) -> TargetAssignment:
    members = sorted(subscriptions)
    owned: dict[str, dict[TopicId, set[int]]] = {m: {} for m in members}
    load = dict.fromkeys(members, 0)
    owner: dict[tuple[TopicId, int], str] = {}
    candidates: dict[TopicId, list[str]] = {}
    for t in sorted(partition_counts, key=str):
        subs = [m for m in members if t in subscriptions[m]]
        if subs:
            candidates[t] = subs
    # 1. stickiness: keep what is still valid
    for m in members:
        for t, parts in (current.get(m) or {}).items():
            if t not in candidates or t not in subscriptions[m]:
                continue
            for p in sorted(parts):
                if 0 <= p < partition_counts[t] and (t, p) not in owner:
                    owner[(t, p)] = m
                    owned[m].setdefault(t, set()).add(p)
                    load[m] += 1
    # 2. unowned partitions to the least loaded candidate
    for t, subs in candidates.items():
        for p in range(partition_counts[t]):
            if (t, p) in owner:
                continue
            m = min(subs, key=lambda x: (load[x], x))
            owner[(t, p)] = m
            owned[m].setdefault(t, set()).add(p)
            load[m] += 1
    # 3. balance: move a partition from a member to a less loaded candidate while the
    #    difference is above one (each move lowers the sum of squared loads: terminates)
    moved = True
    while moved:
        moved = False
        for m in sorted(members, key=lambda x: (-load[x], x)):
            for t in sorted(owned[m], key=str):
                for p in sorted(owned[m][t], reverse=True):
                    target = min(candidates[t], key=lambda x: (load[x], x))
                    if load[m] - load[target] > 1:
                        owned[m][t].discard(p)
                        owned[target].setdefault(t, set()).add(p)
                        owner[(t, p)] = target
                        load[m] -= 1
                        load[target] += 1
                        moved = True
    return _freeze(owned)


def range_assign(
    subscriptions: Mapping[str, Set[TopicId]],
    partition_counts: Mapping[TopicId, int],
    current: Mapping[str, Mapping[TopicId, Set[int]]],
) -> TargetAssignment:
    members = sorted(subscriptions)
    owned: dict[str, dict[TopicId, set[int]]] = {m: {} for m in members}
    for t in sorted(partition_counts, key=str):
        subs = [m for m in members if t in subscriptions[m]]
        if not subs:
            continue
        count = partition_counts[t]
        base, extra = divmod(count, len(subs))
        start = 0
        for i, m in enumerate(subs):
            n = base + (1 if i < extra else 0)
            if n:
                owned[m][t] = set(range(start, start + n))
            start += n
    return _freeze(owned)


#: short name -> assignor; Kafka's class names map to the same short names
ASSIGNORS: dict[str, Assignor] = {"uniform": uniform_assign, "range": range_assign}
CLASS_NAMES = {
    "org.apache.kafka.coordinator.group.assignor.UniformAssignor": "uniform",
    "org.apache.kafka.coordinator.group.assignor.RangeAssignor": "range",
}


def assignor_name(configured: str) -> str | None:
    """Short name of a ``group.consumer.assignors`` entry (short or class name), or None."""
    name = CLASS_NAMES.get(configured.strip(), configured.strip().lower())
    return name if name in ASSIGNORS else None
