"""Topics of one node: names, ids, partition counts and per-topic configs (see registry.py)."""

from broker.topics.configs import (
    TOPIC_CONFIGS,
    BrokerDefaults,
    ConfigSource,
    ConfigType,
    DescribedConfig,
    InvalidConfig,
)
from broker.topics.model import TopicInfo
from broker.topics.names import InvalidTopicName, validate_topic_name
from broker.topics.registry import NewTopicRequest, TopicRegistry
from broker.topics.rules import TopicError

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
