"""A broker that lost its data must not lead with an empty log (log directory ids, KIP-858).

Every data directory has a ``directory.id`` (a random UUID in its ``meta.properties``,
made when the directory is first used); a broker registers with the ids of its
directories. A directory that held data has a new id once it was wiped or replaced, so
the controller can tell a broker that restarted with its log from one that restarted
without it. Rules (pure):

- ``lost_directories(old, new)``: the directories registered before that the new
  registration lacks. When either side is unknown (empty: a broker or a record from before
  directory ids) nothing is lost: the old behaviour is kept.
- ``on_data_lost(image, broker_id)``: when directories were lost, the broker's replicas
  hold none of what was committed, so the broker leaves the ISR of every partition it is
  in, **even as the last member** (unlike fencing, which keeps the last member so it can
  lead again: here its log is exactly what is gone). A partition it led gets the first
  live ISR member as leader; with none, it has no leader (-1, LEADER_NOT_AVAILABLE)
  unless unclean election is enabled for the topic (its ``unclean.leader.election.enable``,
  else the broker default ``unclean``), which elects the first live replica; the broker
  that lost its data is never elected here (it registers fenced, so it is not live).
  Afterwards it catches up like any out-of-sync follower and the leader takes it back into
  the ISR (AlterPartition); a partition left without ISR only gets a leader again through
  unclean election (which may then pick any live replica, this one included: that is
  what enabling it accepts).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from controller.metadata.elect_leaders import unclean_enabled
from controller.metadata.election import choose_leader
from controller.metadata.image import MetadataImage, PartitionRegistration
from controller.metadata.records import NO_LEADER, NO_LEADER_CHANGE, PartitionChangeRecord


def lost_directories(old: Sequence[uuid.UUID], new: Sequence[uuid.UUID]
                     ) -> tuple[uuid.UUID, ...]:
    """Directory ids in ``old`` missing from ``new`` (none when either is empty)."""
    if not old or not new:
        return ()
    kept = set(new)
    return tuple(d for d in old if d not in kept)


def _without(part: PartitionRegistration, broker_id: int, live: set[int], *,
             unclean: bool) -> tuple[tuple[int, ...], int]:
    """(isr, leader) once ``broker_id`` lost its replica of ``part``."""
    isr = tuple(r for r in part.isr if r != broker_id)
    leader = part.leader
    if leader in (broker_id, NO_LEADER):
        shrunk = PartitionRegistration(part.replicas, isr, NO_LEADER, part.leader_epoch,
                                       part.partition_epoch)
        leader, isr = choose_leader(shrunk, live, unclean=unclean)
    return isr, leader


def on_data_lost(image: MetadataImage, broker_id: int, *, unclean: bool = False
                 ) -> tuple[PartitionChangeRecord, ...]:
    """The partition changes taking ``broker_id`` out of every ISR and leadership (see the
    module doc); ``unclean`` is the broker default for topics that do not set it."""
    live = {b.broker_id for b in image.unfenced_brokers()} - {broker_id}
    records: list[PartitionChangeRecord] = []
    for topic in sorted(image.topics.values(), key=lambda t: t.name):
        for index, part in sorted(topic.partitions.items()):
            if broker_id not in part.isr and part.leader != broker_id:
                continue
            isr, leader = _without(part, broker_id, live,
                                   unclean=unclean_enabled(image, topic.name, unclean))
            if isr == part.isr and leader == part.leader:
                continue
            records.append(PartitionChangeRecord(
                index, topic.topic_id, isr=None if isr == part.isr else isr,
                leader=NO_LEADER_CHANGE if leader == part.leader else leader))
    return tuple(records)
