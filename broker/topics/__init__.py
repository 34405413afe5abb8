"""A broker's topics: the registry the server, admin handlers and group coordinator use.

The pure topic rules (names, config types and definitions, broker defaults, configs,
model, admission rules) live in ``common.topics`` and are re-exported here; this package
holds the I/O: ``store`` (the atomic, fsync'd ``__strom_topics.json``, which keeps the
dynamic broker configs) and ``registry`` (TopicRegistry: the read interface and dynamic
broker configs; topics themselves come from the metadata image through its subclass
``broker.cluster.registry.ClusterTopicRegistry`` — usage at the top of registry.py).
"""

from broker.topics.registry import NewTopicRequest, TopicRegistry
from common.topics.configs import (
    TOPIC_CONFIGS,
    BrokerDefaults,
    ConfigSource,
    ConfigType,
    DescribedConfig,
    InvalidConfig,
)
from common.topics.model import TopicInfo
from common.topics.names import InvalidTopicName, validate_topic_name
from common.topics.rules import TopicError

__all__ = [
    "TOPIC_CONFIGS",
    "BrokerDefaults",
    "ConfigSource",
    "ConfigType",
    "DescribedConfig",
    "InvalidConfig",
    "InvalidTopicName",
    "NewTopicRequest",
    "TopicError",
    "TopicInfo",
    "TopicRegistry",
    "validate_topic_name",
]
