"""The cluster's metadata as an immutable value, and ``apply(image, record) -> image``.

``MetadataImage`` is what every broker and controller derives by applying the committed
records of ``__cluster_metadata`` in order (Kafka's ``MetadataImage``). It is never
mutated: ``apply`` returns a new image sharing every part that did not change, so a
reader holding an image sees one consistent version of the cluster.

Apply rules (a record that contradicts the image raises ``MetadataError``; the active
controller only writes records that apply cleanly, so this signals a bug or a damaged log):
- RegisterBrokerRecord replaces the broker's registration (a restart re-registers with a
  new incarnation and a higher broker epoch); UnregisterBrokerRecord removes it.
- Fence/UnfenceBrokerRecord flip ``fenced`` when the broker epoch matches.
- TopicRecord adds a topic (name and id must be new); RemoveTopicRecord removes it with
  its partitions and topic configs.
- PartitionRecord adds a partition to a known topic; PartitionChangeRecord changes ISR,
  leader, replicas or the in-progress reassignment (``adding_replicas`` /
  ``removing_replicas``, KIP-455), bumping ``partition_epoch`` (and ``leader_epoch`` when
  the leader changes). Replicas are non-empty and distinct, the ISR within them; the
  adding and removing replicas are disjoint and within the replicas.
- ConfigRecord sets (value) or deletes (None) one config key of a resource.
- ProducerIdsRecord moves ``next_producer_id`` (the cluster's first producer id not yet
  handed out in a block) forward; a value not above the current one is refused.
- AccessControlEntryRecord adds an ACL under a new id; RemoveAccessControlEntryRecord
  removes an existing one (``acls``: id -> ``common.security.acl.AclBinding``).
- UserScramCredentialRecord sets or replaces a user's credential for one mechanism;
  RemoveUserScramCredentialRecord removes an existing one (``scram``: (user, mechanism
  id) -> ``common.security.scram.ScramCredential``).
- ClientQuotaRecord sets or removes one key of an entity's quotas (``quotas``: entity ->
  {key: value}; an entity left without keys is dropped).

Snapshots (``encode_image`` / ``decode_image``) are the records that rebuild the image
(brokers, topics with partitions, configs, a ProducerIdsRecord with broker id and epoch -1
when ``next_producer_id`` > 0, ACLs, SCRAM credentials and quotas), encoded as one batch after a
small header::

    magic b"SMDI" | version u16 (0) | last applied offset i64 | batch (see codec)
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from common.security.acl import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourceType,
)
from common.security.scram import ScramCredential
from controller.metadata.codec import MetadataDecodeError, decode_batch, encode_batch
from controller.metadata.records import (
    NO_LEADER_CHANGE,
    RESOURCE_TOPIC,
    AccessControlEntryRecord,
    ClientQuotaRecord,
    ConfigRecord,
    Endpoint,
    FenceBrokerRecord,
    MetadataRecord,
    PartitionChangeRecord,
    PartitionRecord,
    ProducerIdsRecord,
    RegisterBrokerRecord,
    RemoveAccessControlEntryRecord,
    RemoveTopicRecord,
    RemoveUserScramCredentialRecord,
    TopicRecord,
    UnfenceBrokerRecord,
    UnregisterBrokerRecord,
    UserScramCredentialRecord,
)


class MetadataError(ValueError):
    """A record does not apply to the image (names the record and the conflict)."""


def _frozen(d: dict) -> Mapping:
    return MappingProxyType(d)


_EMPTY: Mapping = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class BrokerRegistration:
    """A registered broker; ``log_dirs`` are the directory ids of its data directories
    (empty = unknown: registered before directory ids existed)."""

    broker_id: int
    incarnation_id: uuid.UUID
    broker_epoch: int
    endpoints: tuple[Endpoint, ...]
    rack: str | None
    fenced: bool
    log_dirs: tuple[uuid.UUID, ...] = ()

    def endpoint(self, listener: str) -> Endpoint | None:
        return next((e for e in self.endpoints if e.name == listener), None)


@dataclass(frozen=True, slots=True)
class PartitionRegistration:
    """One partition. During a reassignment (``controller.metadata.reassignment``)
    ``replicas`` is the target followed by the replicas being removed;
    ``adding_replicas`` are the target replicas that were not replicas before (they join
    the ISR once caught up), ``removing_replicas`` those that leave when it completes."""

    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int
    partition_epoch: int
    adding_replicas: tuple[int, ...] = ()
    removing_replicas: tuple[int, ...] = ()

    @property
    def reassigning(self) -> bool:
        """Whether a reassignment is in progress."""
        return bool(self.adding_replicas or self.removing_replicas)


@dataclass(frozen=True, slots=True)
class TopicImage:
    name: str
    topic_id: uuid.UUID
    partitions: Mapping[int, PartitionRegistration] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class MetadataImage:
    """Topics (by id, with a name index), brokers, configs; ``offset`` is the log offset
    of the last entry applied (-1 for the empty image); ``next_producer_id`` the first
    producer id no broker has been given yet (ids below it belong to allocated blocks)."""

    topics: Mapping[uuid.UUID, TopicImage] = field(default_factory=lambda: _EMPTY)
    topic_ids: Mapping[str, uuid.UUID] = field(default_factory=lambda: _EMPTY)
    brokers: Mapping[int, BrokerRegistration] = field(default_factory=lambda: _EMPTY)
    configs: Mapping[tuple[int, str], Mapping[str, str]] = field(default_factory=lambda: _EMPTY)
    offset: int = -1
    next_producer_id: int = 0
    #: ACL id -> ACL (every broker authorizes against these)
    acls: Mapping[uuid.UUID, AclBinding] = field(default_factory=lambda: _EMPTY)
    #: (user name, SCRAM mechanism id) -> credential
    scram: Mapping[tuple[str, int], ScramCredential] = field(default_factory=lambda: _EMPTY)
    #: client quota entity (``common.security.quotas.Entity``) -> {key: value}
    quotas: Mapping[tuple[tuple[str, str | None], ...], Mapping[str, float]] = field(
        default_factory=lambda: _EMPTY)

    def topic(self, name: str) -> TopicImage | None:
        tid = self.topic_ids.get(name)
        return self.topics[tid] if tid is not None else None

    def partition(self, name: str, index: int) -> PartitionRegistration | None:
        topic = self.topic(name)
        return topic.partitions.get(index) if topic else None

    def unfenced_brokers(self) -> list[BrokerRegistration]:
        return [b for _, b in sorted(self.brokers.items()) if not b.fenced]

    def topic_config(self, name: str) -> Mapping[str, str]:
        return self.configs.get((RESOURCE_TOPIC, name), _EMPTY)

    def partitions_led_by(self, broker_id: int) -> list[tuple[str, int]]:
        return sorted((t.name, i) for t in self.topics.values()
                      for i, p in t.partitions.items() if p.leader == broker_id)


def _put(mapping: Mapping, key: object, value: object) -> Mapping:
    d = dict(mapping)
    d[key] = value
    return _frozen(d)


def _drop(mapping: Mapping, key: object) -> Mapping:
    d = dict(mapping)
    d.pop(key, None)
    return _frozen(d)


def apply(image: MetadataImage, record: MetadataRecord, offset: int | None = None
          ) -> MetadataImage:
    """The image after ``record``; ``offset`` (the log offset it came from) is recorded."""
    new = _apply(image, record)
    return new if offset is None else replace(new, offset=offset)


def apply_all(image: MetadataImage, records: list[MetadataRecord], offset: int | None = None
              ) -> MetadataImage:
    for record in records:
        image = _apply(image, record)
    return image if offset is None else replace(image, offset=offset)


def _apply(image: MetadataImage, r: MetadataRecord) -> MetadataImage:
    if isinstance(r, RegisterBrokerRecord):
        old = image.brokers.get(r.broker_id)
        if old is not None and r.broker_epoch <= old.broker_epoch:
            raise MetadataError(f"{r}: broker epoch not above the registered "
                                f"{old.broker_epoch}")
        reg = BrokerRegistration(r.broker_id, r.incarnation_id, r.broker_epoch,
                                 tuple(r.endpoints), r.rack, r.fenced, tuple(r.log_dirs))
        return replace(image, brokers=_put(image.brokers, r.broker_id, reg))
    if isinstance(r, UnregisterBrokerRecord):
        _broker(image, r.broker_id, r.broker_epoch, r)
        return replace(image, brokers=_drop(image.brokers, r.broker_id))
    if isinstance(r, FenceBrokerRecord | UnfenceBrokerRecord):
        reg = _broker(image, r.broker_id, r.broker_epoch, r)
        reg = replace(reg, fenced=isinstance(r, FenceBrokerRecord))
        return replace(image, brokers=_put(image.brokers, r.broker_id, reg))
    if isinstance(r, TopicRecord):
        if r.name in image.topic_ids or r.topic_id in image.topics:
            raise MetadataError(f"{r}: topic name or id already exists")
        return replace(image, topics=_put(image.topics, r.topic_id,
                                          TopicImage(r.name, r.topic_id)),
                       topic_ids=_put(image.topic_ids, r.name, r.topic_id))
    if isinstance(r, RemoveTopicRecord):
        topic = _topic(image, r.topic_id, r)
        return replace(image, topics=_drop(image.topics, r.topic_id),
                       topic_ids=_drop(image.topic_ids, topic.name),
                       configs=_drop(image.configs, (RESOURCE_TOPIC, topic.name)))
    if isinstance(r, PartitionRecord):
        topic = _topic(image, r.topic_id, r)
        if r.partition_id in topic.partitions or r.partition_id < 0:
            raise MetadataError(f"{r}: partition already exists or is negative")
        _check_replicas(r, r.replicas, r.isr, r.adding_replicas, r.removing_replicas)
        part = PartitionRegistration(tuple(r.replicas), tuple(r.isr), r.leader,
                                     r.leader_epoch, r.partition_epoch,
                                     tuple(r.adding_replicas), tuple(r.removing_replicas))
        return _with_partition(image, topic, r.partition_id, part)
    if isinstance(r, PartitionChangeRecord):
        topic = _topic(image, r.topic_id, r)
        part = topic.partitions.get(r.partition_id)
        if part is None:
            raise MetadataError(f"{r}: unknown partition")
        replicas = part.replicas if r.replicas is None else tuple(r.replicas)
        isr = part.isr if r.isr is None else tuple(r.isr)
        adding = part.adding_replicas if r.adding_replicas is None \
            else tuple(r.adding_replicas)
        removing = part.removing_replicas if r.removing_replicas is None \
            else tuple(r.removing_replicas)
        _check_replicas(r, replicas, isr, adding, removing)
        leader, leader_epoch = part.leader, part.leader_epoch
        if r.leader != NO_LEADER_CHANGE:
            leader, leader_epoch = r.leader, part.leader_epoch + 1
        new = PartitionRegistration(replicas, isr, leader, leader_epoch,
                                    part.partition_epoch + 1, adding, removing)
        return _with_partition(image, topic, r.partition_id, new)
    if isinstance(r, ConfigRecord):
        key = (r.resource_type, r.resource_name)
        current = image.configs.get(key, _EMPTY)
        updated = _drop(current, r.name) if r.value is None else _put(current, r.name, r.value)
        configs = _drop(image.configs, key) if not updated else _put(image.configs, key, updated)
        return replace(image, configs=configs)
    if isinstance(r, ProducerIdsRecord):
        if r.next_producer_id <= image.next_producer_id:
            raise MetadataError(f"{r}: next producer id not above the current "
                                f"{image.next_producer_id}")
        return replace(image, next_producer_id=r.next_producer_id)
    if isinstance(r, AccessControlEntryRecord):
        if r.id in image.acls:
            raise MetadataError(f"{r}: an ACL with this id exists")
        try:
            binding = AclBinding(ResourceType(r.resource_type), r.resource_name,
                                 PatternType(r.pattern_type), r.principal, r.host,
                                 AclOperation(r.operation),
                                 AclPermissionType(r.permission_type))
        except ValueError as exc:
            raise MetadataError(f"{r}: {exc}") from None
        return replace(image, acls=_put(image.acls, r.id, binding))
    if isinstance(r, RemoveAccessControlEntryRecord):
        if r.id not in image.acls:
            raise MetadataError(f"{r}: no ACL with this id")
        return replace(image, acls=_drop(image.acls, r.id))
    if isinstance(r, UserScramCredentialRecord):
        cred = ScramCredential(r.mechanism, r.salt, r.stored_key, r.server_key, r.iterations)
        return replace(image, scram=_put(image.scram, (r.name, r.mechanism), cred))
    if isinstance(r, RemoveUserScramCredentialRecord):
        if (r.name, r.mechanism) not in image.scram:
            raise MetadataError(f"{r}: no such credential")
        return replace(image, scram=_drop(image.scram, (r.name, r.mechanism)))
    if isinstance(r, ClientQuotaRecord):
        key = tuple(r.entity)
        current = image.quotas.get(key, _EMPTY)
        values = _drop(current, r.key) if r.remove else _put(current, r.key, r.value)
        quotas = _put(image.quotas, key, values) if values else _drop(image.quotas, key)
        return replace(image, quotas=quotas)
    raise MetadataError(f"not a metadata record: {r!r}")


def _broker(image: MetadataImage, broker_id: int, epoch: int, r: object) -> BrokerRegistration:
    reg = image.brokers.get(broker_id)
    if reg is None or reg.broker_epoch != epoch:
        raise MetadataError(f"{r}: no broker {broker_id} with epoch {epoch}")
    return reg


def _topic(image: MetadataImage, topic_id: uuid.UUID, r: object) -> TopicImage:
    topic = image.topics.get(topic_id)
    if topic is None:
        raise MetadataError(f"{r}: unknown topic id {topic_id}")
    return topic


def _check_replicas(r: object, replicas: tuple[int, ...], isr: tuple[int, ...],
                    adding: tuple[int, ...] = (), removing: tuple[int, ...] = ()) -> None:
    if not replicas or len(set(replicas)) != len(replicas):
        raise MetadataError(f"{r}: replicas must be non-empty and distinct")
    if not set(isr) <= set(replicas):
        raise MetadataError(f"{r}: ISR {list(isr)} not within replicas {list(replicas)}")
    if not set(adding) | set(removing) <= set(replicas) or set(adding) & set(removing) \
            or len(set(adding)) != len(adding) or len(set(removing)) != len(removing):
        raise MetadataError(f"{r}: adding {list(adding)} and removing {list(removing)} "
                            f"replicas must be distinct, disjoint and within replicas "
                            f"{list(replicas)}")


def _with_partition(image: MetadataImage, topic: TopicImage, index: int,
                    part: PartitionRegistration) -> MetadataImage:
    new_topic = replace(topic, partitions=_put(topic.partitions, index, part))
    return replace(image, topics=_put(image.topics, topic.topic_id, new_topic))


# ---- snapshots -------------------------------------------------------------------
_SNAP_HEAD = struct.Struct(">4sHq")
_SNAP_MAGIC = b"SMDI"


def image_records(image: MetadataImage) -> list[MetadataRecord]:
    """Records that rebuild ``image`` from the empty image."""
    out: list[MetadataRecord] = []
    for bid, b in sorted(image.brokers.items()):
        out.append(RegisterBrokerRecord(bid, b.incarnation_id, b.broker_epoch, b.endpoints,
                                        b.rack, b.fenced, b.log_dirs))
    for topic in sorted(image.topics.values(), key=lambda t: t.name):
        out.append(TopicRecord(topic.name, topic.topic_id))
        for index, p in sorted(topic.partitions.items()):
            out.append(PartitionRecord(index, topic.topic_id, p.replicas, p.isr, p.leader,
                                       p.leader_epoch, p.partition_epoch,
                                       p.removing_replicas, p.adding_replicas))
    for (rtype, rname), values in sorted(image.configs.items()):
        for name, value in sorted(values.items()):
            out.append(ConfigRecord(rtype, rname, name, value))
    if image.next_producer_id > 0:
        out.append(ProducerIdsRecord(-1, -1, image.next_producer_id))
    for acl_id, b in sorted(image.acls.items()):
        out.append(AccessControlEntryRecord(acl_id, int(b.resource_type), b.resource_name,
                                            int(b.pattern_type), b.principal, b.host,
                                            int(b.operation), int(b.permission)))
    for (name, mech), c in sorted(image.scram.items()):
        out.append(UserScramCredentialRecord(name, mech, c.salt, c.stored_key, c.server_key,
                                             c.iterations))
    for quota_entity, values in sorted(image.quotas.items(), key=lambda kv: repr(kv[0])):
        for key, value in sorted(values.items()):
            out.append(ClientQuotaRecord(quota_entity, key, value))
    return out


def encode_image(image: MetadataImage) -> bytes:
    return _SNAP_HEAD.pack(_SNAP_MAGIC, 0, image.offset) + encode_batch(image_records(image))


def decode_image(data: bytes) -> MetadataImage:
    if len(data) < _SNAP_HEAD.size:
        raise MetadataDecodeError("metadata snapshot shorter than its header")
    magic, version, offset = _SNAP_HEAD.unpack_from(data)
    if magic != _SNAP_MAGIC or version != 0:
        raise MetadataDecodeError(f"not a metadata snapshot (magic {magic!r}, version "
                                  f"{version})")
    records = decode_batch(memoryview(data)[_SNAP_HEAD.size:])
    try:
        return apply_all(MetadataImage(), records, offset)
    except MetadataError as exc:
        raise MetadataDecodeError(f"metadata snapshot is inconsistent: {exc}") from exc
