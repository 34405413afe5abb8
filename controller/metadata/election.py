"""Partition leader election and ISR maintenance as pure functions that return the
``PartitionChangeRecord`` the active controller should write (or None: nothing to do).

Rules
- The leader is the first replica in assignment order that is in the ISR and on an
  unfenced broker (so the preferred leader wins whenever it is eligible).
- Unclean election (``unclean=True``, ``unclean.leader.election.enable``): when no ISR
  member is eligible, the first live replica becomes leader and the ISR shrinks to it —
  this can lose committed data, so it never happens unless configured.
- Otherwise, with no eligible ISR member, the partition has no leader (-1): clients get
  LEADER_NOT_AVAILABLE and nothing is silently lost.
- A fenced broker leaves the ISR of every partition, except that the ISR is never
  emptied: the last member stays so it can lead again when it returns (its log is the
  one that holds every committed record).
- An unfenced broker that is in the ISR of a leaderless partition becomes its leader;
  with unclean election allowed, a leaderless partition whose ISR has no live member gets
  the first live replica (so a returning out-of-sync replica can lead).
"""

from __future__ import annotations

import uuid
from collections.abc import Set

from controller.metadata.image import PartitionRegistration
from controller.metadata.records import NO_LEADER, NO_LEADER_CHANGE, PartitionChangeRecord


def choose_leader(part: PartitionRegistration, live: Set[int], *, unclean: bool = False
                  ) -> tuple[int, tuple[int, ...]]:
    """(leader, isr) after an election over ``live`` (unfenced) brokers."""
    for replica in part.replicas:
        if replica in part.isr and replica in live:
            return replica, part.isr
    if unclean:
        for replica in part.replicas:
            if replica in live:
                return replica, (replica,)
    return NO_LEADER, part.isr


def elect(topic_id: uuid.UUID, index: int, part: PartitionRegistration, live: Set[int],
          *, unclean: bool = False) -> PartitionChangeRecord | None:
    """Re-elect if the current leader is not live (or there is none)."""
    if part.leader in live:
        return None
    leader, isr = choose_leader(part, live, unclean=unclean)
    if leader == part.leader and isr == part.isr:
        return None
    return PartitionChangeRecord(index, topic_id, isr=None if isr == part.isr else isr,
                                 leader=leader if leader != part.leader else NO_LEADER_CHANGE)


def on_broker_fenced(topic_id: uuid.UUID, index: int, part: PartitionRegistration,
                     broker_id: int, live: Set[int], *, unclean: bool = False
                     ) -> PartitionChangeRecord | None:
    """The change for one partition when ``broker_id`` is fenced (``live`` excludes it)."""
    if broker_id not in part.replicas:
        return None
    isr = part.isr
    if broker_id in isr and len(isr) > 1:
        isr = tuple(r for r in isr if r != broker_id)
    shrunk = PartitionRegistration(part.replicas, isr, part.leader, part.leader_epoch,
                                   part.partition_epoch)
    leader = part.leader
    if leader == broker_id or leader not in live:
        leader, isr = choose_leader(shrunk, live, unclean=unclean)
    if isr == part.isr and leader == part.leader:
        return None
    return PartitionChangeRecord(index, topic_id, isr=None if isr == part.isr else isr,
                                 leader=NO_LEADER_CHANGE if leader == part.leader else leader)


def on_broker_unfenced(topic_id: uuid.UUID, index: int, part: PartitionRegistration,
                       live: Set[int], *, unclean: bool = False
                       ) -> PartitionChangeRecord | None:
    """A broker came back: give leaderless partitions a leader if one is now eligible
    (with ``unclean``, any live replica when no ISR member is live)."""
    if part.leader != NO_LEADER:
        return None
    return elect(topic_id, index, part, live, unclean=unclean)
