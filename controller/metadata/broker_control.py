"""The active controller's broker decisions as pure functions plus a heartbeat tracker
(Kafka's ClusterControlManager and BrokerHeartbeatManager).

Rules
- BrokerRegistration: a broker registers with its id, a fresh incarnation id per process
  start, its listeners and rack. The registration record's log offset becomes the
  broker epoch (``next_offset``: the offset the entry will get). A broker registers
  fenced. Re-registering the same incarnation is idempotent; a different incarnation is
  refused (DUPLICATE_BROKER_REGISTRATION) while the old one still heartbeats. Accepting a
  new incarnation of an unfenced broker also takes the old one out of ISRs and
  leaderships (as fencing does): its process is gone, whatever its session says.
- Lost data (KIP-858, ``controller.metadata.dir_control``): a broker registers with the
  ``directory.id`` of each data directory. A new incarnation whose directory ids lack one
  registered before (the disk was wiped or replaced) leaves the ISR of every partition,
  even as the last member, and leads nothing (leader -1 unless unclean election is
  allowed, which elects another live replica): its empty log must never be elected.
  Unknown ids (empty, on either side) or the same ids keep the rules above.
- BrokerHeartbeat: unknown broker -> BROKER_ID_NOT_REGISTERED; wrong epoch ->
  STALE_BROKER_EPOCH. A fenced broker is unfenced once its metadata offset reached its
  own registration (it has caught up with the log) and it does not ask to stay fenced;
  leaderless partitions it can lead get it as leader.
- Liveness: a broker that has not heartbeated for ``broker.session.timeout.ms`` is fenced;
  so is one asking for controlled shutdown. Fencing moves leadership to another ISR
  member where there is one, otherwise the partition is left without a leader
  (LEADER_NOT_AVAILABLE), never elected uncleanly unless the topic's
  ``unclean.leader.election.enable`` (else the broker default ``unclean``) allows it; then
  the first live replica leads (also when a broker returns and a leaderless partition
  still has no live ISR member).
- Reassignment: a partition change of fencing or unfencing that completes a partition's
  reassignment (``controller.metadata.reassignment.complete_all``) completes it in the
  same record.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from controller.metadata.dir_control import lost_directories, on_data_lost
from controller.metadata.elect_leaders import unclean_enabled
from controller.metadata.election import on_broker_fenced, on_broker_unfenced
from controller.metadata.image import MetadataImage, apply_all
from controller.metadata.reassignment import complete_all
from controller.metadata.records import (
    Endpoint,
    FenceBrokerRecord,
    MetadataRecord,
    PartitionChangeRecord,
    RegisterBrokerRecord,
    UnfenceBrokerRecord,
)
from protocol.errors import ErrorCode

NONE = 0


@dataclass(frozen=True, slots=True)
class RegistrationResult:
    records: tuple[MetadataRecord, ...]
    error_code: int
    broker_epoch: int = -1
    message: str | None = None
    #: directory ids registered before that this registration lacks (their data is gone)
    lost_dirs: tuple[uuid.UUID, ...] = ()


@dataclass(frozen=True, slots=True)
class HeartbeatResult:
    records: tuple[MetadataRecord, ...]
    error_code: int
    is_caught_up: bool = False
    is_fenced: bool = True
    should_shut_down: bool = False


class BrokerHeartbeats:
    """Soft state of the active controller: when each broker last heartbeated. Rebuilt
    (everyone gets a fresh session) whenever a controller becomes active."""

    def __init__(self, session_timeout_ms: int) -> None:
        self.session_timeout_ms = session_timeout_ms
        self._last: dict[int, int] = {}

    def touch(self, broker_id: int, now_ms: int) -> None:
        self._last[broker_id] = now_ms

    def forget(self, broker_id: int) -> None:
        self._last.pop(broker_id, None)

    def alive(self, broker_id: int, now_ms: int) -> bool:
        last = self._last.get(broker_id)
        return last is not None and now_ms - last < self.session_timeout_ms

    def expired(self, broker_ids: Iterable[int], now_ms: int) -> list[int]:
        """Brokers among ``broker_ids`` whose session ran out (unknown ones start now)."""
        out = []
        for b in broker_ids:
            self._last.setdefault(b, now_ms)
            if not self.alive(b, now_ms):
                out.append(b)
        return sorted(out)

    def next_expiry(self) -> int | None:
        return min(self._last.values()) + self.session_timeout_ms if self._last else None


def register_broker(
    image: MetadataImage,
    heartbeats: BrokerHeartbeats,
    *,
    broker_id: int,
    incarnation_id: uuid.UUID,
    endpoints: tuple[Endpoint, ...],
    rack: str | None,
    next_offset: int,
    now_ms: int,
    log_dirs: tuple[uuid.UUID, ...] = (),
    unclean: bool = False,
) -> RegistrationResult:
    if broker_id < 0:
        return RegistrationResult((), int(ErrorCode.invalid_request.value),
                                  message=f"invalid broker id {broker_id}")
    old = image.brokers.get(broker_id)
    if old is not None and old.incarnation_id == incarnation_id:
        heartbeats.touch(broker_id, now_ms)
        return RegistrationResult((), NONE, old.broker_epoch)
    if old is not None and not old.fenced and heartbeats.alive(broker_id, now_ms):
        return RegistrationResult(
            (), int(ErrorCode.duplicate_broker_registration.value),
            message=f"broker {broker_id} is registered by another live process")
    heartbeats.touch(broker_id, now_ms)
    # the old incarnation is gone: it leaves ISRs and leaderships as if fenced, so the
    # partitions it led get a new leader (and epoch) before the new process serves
    moved: tuple[MetadataRecord, ...] = ()
    if old is not None and not old.fenced:
        moved = fence_broker(image, broker_id, unclean=unclean)[1:]
    lost = lost_directories(old.log_dirs, log_dirs) if old is not None else ()
    if lost:
        moved = (*moved, *on_data_lost(apply_all(image, list(moved)), broker_id,
                                       unclean=unclean))
    record = RegisterBrokerRecord(broker_id, incarnation_id, next_offset, tuple(endpoints),
                                  rack, fenced=True, log_dirs=tuple(log_dirs))
    return RegistrationResult((*moved, record), NONE, next_offset, lost_dirs=lost)


def heartbeat(
    image: MetadataImage,
    heartbeats: BrokerHeartbeats,
    *,
    broker_id: int,
    broker_epoch: int,
    current_metadata_offset: int,
    want_fence: bool,
    want_shut_down: bool,
    now_ms: int,
    unclean: bool = False,
) -> HeartbeatResult:
    reg = image.brokers.get(broker_id)
    if reg is None:
        return HeartbeatResult((), int(ErrorCode.broker_id_not_registered.value))
    if reg.broker_epoch != broker_epoch:
        return HeartbeatResult((), int(ErrorCode.stale_broker_epoch.value))
    heartbeats.touch(broker_id, now_ms)
    caught_up = current_metadata_offset >= reg.broker_epoch
    if want_shut_down:
        records = fence_broker(image, broker_id, unclean=unclean) if not reg.fenced else ()
        return HeartbeatResult(records, NONE, caught_up, True,
                               should_shut_down=not _leads_anything(image, broker_id, records))
    if reg.fenced and caught_up and not want_fence:
        return HeartbeatResult(unfence_broker(image, broker_id, unclean=unclean), NONE, True,
                               False)
    if not reg.fenced and want_fence:
        return HeartbeatResult(fence_broker(image, broker_id, unclean=unclean), NONE,
                               caught_up, True)
    return HeartbeatResult((), NONE, caught_up, reg.fenced)


def _leads_anything(image: MetadataImage, broker_id: int,
                    records: tuple[MetadataRecord, ...]) -> bool:
    moved = {(r.topic_id, r.partition_id) for r in records
             if isinstance(r, PartitionChangeRecord) and r.leader != -2}
    return any(p.leader == broker_id and (t.topic_id, i) not in moved
               for t in image.topics.values() for i, p in t.partitions.items())


def fence_broker(image: MetadataImage, broker_id: int, *, unclean: bool = False
                 ) -> tuple[MetadataRecord, ...]:
    """FenceBrokerRecord plus the partition changes that take the broker out of ISRs
    and leadership. ``unclean`` is the broker default of ``unclean.leader.election.enable``;
    a topic's own setting in the image wins (``elect_leaders.unclean_enabled``)."""
    reg = image.brokers[broker_id]
    live = {b.broker_id for b in image.unfenced_brokers()} - {broker_id}
    records: list[MetadataRecord] = [FenceBrokerRecord(broker_id, reg.broker_epoch)]
    for topic in sorted(image.topics.values(), key=lambda t: t.name):
        for index, part in sorted(topic.partitions.items()):
            change = on_broker_fenced(topic.topic_id, index, part, broker_id, live,
                                      unclean=unclean_enabled(image, topic.name, unclean))
            if change is not None:
                records.append(change)
    return complete_all(image, records, live)


def unfence_broker(image: MetadataImage, broker_id: int, *, unclean: bool = False
                   ) -> tuple[MetadataRecord, ...]:
    """UnfenceBrokerRecord plus leaders for leaderless partitions: a live ISR member, or,
    where the topic allows unclean election (``unclean`` is the broker default), the
    first live replica."""
    reg = image.brokers[broker_id]
    live = {b.broker_id for b in image.unfenced_brokers()} | {broker_id}
    records: list[MetadataRecord] = [UnfenceBrokerRecord(broker_id, reg.broker_epoch)]
    for topic in sorted(image.topics.values(), key=lambda t: t.name):
        for index, part in sorted(topic.partitions.items()):
            change = on_broker_unfenced(topic.topic_id, index, part, live,
                                        unclean=unclean_enabled(image, topic.name, unclean))
            if change is not None:
                records.append(change)
    return complete_all(image, records, live)


def fence_expired(image: MetadataImage, heartbeats: BrokerHeartbeats, now_ms: int, *,
                  unclean: bool = False) -> tuple[MetadataRecord, ...]:
    """Fence every unfenced broker whose session expired (one at a time, so each
    fencing's elections see the earlier ones)."""
    records: list[MetadataRecord] = []
    current = image
    unfenced = [b.broker_id for b in image.unfenced_brokers()]
    for broker_id in heartbeats.expired(unfenced, now_ms):
        batch = fence_broker(current, broker_id, unclean=unclean)
        records.extend(batch)
        current = apply_all(current, list(batch))
    return tuple(records)
