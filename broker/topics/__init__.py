"""Topics of one node: names, ids, partition counts and per-topic configs.

Modules, pure ones first: ``names`` (Kafka's topic name rules), ``config_types`` (config
parsing and validators), ``config_defs`` (every topic config key), ``broker_defaults`` (the
broker's static and runtime layers of topic defaults), ``configs`` (overrides, effective
values, incremental operations, describe, LogConfig mapping), ``model`` (TopicInfo and the
``__strom_topics.json`` format), ``rules`` (admission of creates and growth); then the I/O:
``store`` (atomic, fsync'd table file) and ``registry`` (TopicRegistry: the API the server,
admin handlers and group coordinator use — usage at the top of registry.py).
"""

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
