"""Cluster metadata: records, their encoding, the immutable image and pure decisions
(replica placement, leader election, ISR changes, partition reassignment) the active
controller makes."""

from controller.metadata.codec import (
    MetadataDecodeError,
    decode_batch,
    decode_record,
    encode_batch,
    encode_record,
)
from controller.metadata.image import (
    BrokerRegistration,
    MetadataError,
    MetadataImage,
    PartitionRegistration,
    TopicImage,
    apply,
    apply_all,
    decode_image,
    encode_image,
    image_records,
)
from controller.metadata.records import (
    NO_LEADER,
    NO_LEADER_CHANGE,
    RESOURCE_BROKER,
    RESOURCE_TOPIC,
    ConfigRecord,
    Endpoint,
    FenceBrokerRecord,
    MetadataRecord,
    PartitionChangeRecord,
    PartitionRecord,
    ProducerIdsRecord,
    RegisterBrokerRecord,
    RemoveTopicRecord,
    TopicRecord,
    UnfenceBrokerRecord,
    UnregisterBrokerRecord,
)

__all__ = [
    "NO_LEADER", "NO_LEADER_CHANGE", "RESOURCE_BROKER", "RESOURCE_TOPIC",
    "BrokerRegistration", "ConfigRecord", "Endpoint", "FenceBrokerRecord",
    "MetadataDecodeError", "MetadataError", "MetadataImage", "MetadataRecord",
    "PartitionChangeRecord", "PartitionRecord", "PartitionRegistration", "ProducerIdsRecord",
    "RegisterBrokerRecord", "RemoveTopicRecord", "TopicImage", "TopicRecord",
    "UnfenceBrokerRecord", "UnregisterBrokerRecord", "apply", "apply_all", "decode_batch",
    "decode_image", "decode_record", "encode_batch", "encode_image", "encode_record",
    "image_records",
]
