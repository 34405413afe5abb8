"""Metadata records: the entries of the ``__cluster_metadata`` log (KRaft's record types,
with Kafka's type ids). Each record is an immutable value; ``controller.metadata.codec``
turns them into bytes and back, ``controller.metadata.image.apply`` folds them into a
``MetadataImage``.

Conventions (Kafka's): broker ids and replica ids are int32; -1 means "no leader";
``PartitionChangeRecord.leader`` uses -2 for "leader unchanged"; ``None`` in an optional
field of a change record means "unchanged".
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

NO_LEADER = -1
NO_LEADER_CHANGE = -2

# ConfigRecord.resource_type values (Kafka's ConfigResource.Type ids)
RESOURCE_TOPIC = 2
RESOURCE_BROKER = 4


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A listener a broker serves clients on (``advertised.listeners``)."""

    name: str  # listener name, e.g. "PLAINTEXT"
    host: str
    port: int
    security_protocol: int = 0  # 0 PLAINTEXT, 1 SSL, 2 SASL_PLAINTEXT, 3 SASL_SSL


@dataclass(frozen=True, slots=True)
class RegisterBrokerRecord:
    """A broker registered (or re-registered after a restart, with a new incarnation and
    a new broker epoch). New registrations start fenced until the broker catches up.
    ``log_dirs``: the ``directory.id`` of each of the broker's data directories (KIP-858);
    empty = unknown (a record written before directory ids existed)."""

    TYPE = 0
    broker_id: int
    incarnation_id: uuid.UUID
    broker_epoch: int
    endpoints: tuple[Endpoint, ...]
    rack: str | None = None
    fenced: bool = True
    log_dirs: tuple[uuid.UUID, ...] = ()


@dataclass(frozen=True, slots=True)
class UnregisterBrokerRecord:
    TYPE = 1
    broker_id: int
    broker_epoch: int


@dataclass(frozen=True, slots=True)
class TopicRecord:
    TYPE = 2
    name: str
    topic_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class PartitionRecord:
    """A new partition with its full state. ``replicas`` is the assignment in preference
    order (the first is the preferred leader); ``isr`` the in-sync replicas.
    ``removing_replicas`` / ``adding_replicas``: the replicas an in-progress reassignment
    (KIP-455) removes / adds, both within ``replicas`` (empty: none in progress; a
    snapshot carries them)."""

    TYPE = 3
    partition_id: int
    topic_id: uuid.UUID
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int = 0
    partition_epoch: int = 0
    removing_replicas: tuple[int, ...] = ()
    adding_replicas: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class ConfigRecord:
    """Set (``value`` given) or delete (``value`` None) one config of a topic or broker."""

    TYPE = 4
    resource_type: int
    resource_name: str
    name: str
    value: str | None


@dataclass(frozen=True, slots=True)
class PartitionChangeRecord:
    """A change to a partition. Applying it bumps ``partition_epoch``; a leader change
    (``leader`` != -2) also bumps ``leader_epoch``. ``removing_replicas`` /
    ``adding_replicas`` set the in-progress reassignment (``()`` clears it, None leaves
    it unchanged)."""

    TYPE = 5
    partition_id: int
    topic_id: uuid.UUID
    isr: tuple[int, ...] | None = None
    leader: int = NO_LEADER_CHANGE
    replicas: tuple[int, ...] | None = None
    removing_replicas: tuple[int, ...] | None = None
    adding_replicas: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class FenceBrokerRecord:
    """The broker stopped heartbeating (or shut down): it leads and serves nothing."""

    TYPE = 7
    broker_id: int
    broker_epoch: int


@dataclass(frozen=True, slots=True)
class UnfenceBrokerRecord:
    TYPE = 8
    broker_id: int
    broker_epoch: int


@dataclass(frozen=True, slots=True)
class RemoveTopicRecord:
    TYPE = 9
    topic_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class ProducerIdsRecord:
    """The controller handed broker ``broker_id`` (at ``broker_epoch``) the producer ids
    below ``next_producer_id`` not handed out before: the cluster's next free producer id
    moves to ``next_producer_id`` (Kafka's type 15, KIP-730). ``next_producer_id`` only
    grows; a snapshot carries the current value with broker id and epoch -1."""

    TYPE = 15
    broker_id: int
    broker_epoch: int
    next_producer_id: int


@dataclass(frozen=True, slots=True)
class AccessControlEntryRecord:
    """An ACL added (Kafka's type 6); ids are unique. Enum fields carry the wire codes of
    ``common.security.acl`` (resource type, pattern type, operation, permission)."""

    TYPE = 6
    id: uuid.UUID
    resource_type: int
    resource_name: str
    pattern_type: int
    principal: str
    host: str
    operation: int
    permission_type: int


@dataclass(frozen=True, slots=True)
class RemoveAccessControlEntryRecord:
    """The ACL with this id removed (Kafka's RemoveAccessControlEntryRecord)."""

    TYPE = 16
    id: uuid.UUID


@dataclass(frozen=True, slots=True)
class UserScramCredentialRecord:
    """A user's SCRAM credential for one mechanism, set or replaced (Kafka's type 11;
    ``mechanism`` is Kafka's ScramMechanism id: 1 SHA-256, 2 SHA-512). Salt, stored key,
    server key and iterations: never the password (``common.security.scram``)."""

    TYPE = 11
    name: str
    mechanism: int
    salt: bytes
    stored_key: bytes
    server_key: bytes
    iterations: int


@dataclass(frozen=True, slots=True)
class RemoveUserScramCredentialRecord:
    """A user's SCRAM credential for one mechanism removed."""

    TYPE = 22
    name: str
    mechanism: int


@dataclass(frozen=True, slots=True)
class ClientQuotaRecord:
    """A client quota set (``remove`` False) or removed, Kafka's type 14. ``entity``: the
    (entity type, name) pairs sorted by type, name None = the type's default
    (``common.security.quotas``); ``value`` is ignored when removing."""

    TYPE = 14
    entity: tuple[tuple[str, str | None], ...]
    key: str
    value: float
    remove: bool = False


MetadataRecord = (
    RegisterBrokerRecord
    | UnregisterBrokerRecord
    | TopicRecord
    | PartitionRecord
    | ConfigRecord
    | PartitionChangeRecord
    | FenceBrokerRecord
    | UnfenceBrokerRecord
    | RemoveTopicRecord
    | ProducerIdsRecord
    | AccessControlEntryRecord
    | RemoveAccessControlEntryRecord
    | UserScramCredentialRecord
    | RemoveUserScramCredentialRecord
    | ClientQuotaRecord
)

RECORD_TYPES: dict[int, type] = {
    cls.TYPE: cls
    for cls in (RegisterBrokerRecord, UnregisterBrokerRecord, TopicRecord, PartitionRecord,
                ConfigRecord, PartitionChangeRecord, FenceBrokerRecord, UnfenceBrokerRecord,
                RemoveTopicRecord, ProducerIdsRecord, AccessControlEntryRecord,
                RemoveAccessControlEntryRecord, UserScramCredentialRecord,
                RemoveUserScramCredentialRecord, ClientQuotaRecord)
}
