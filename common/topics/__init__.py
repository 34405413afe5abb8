"""Kafka's topic rules as pure values and functions, shared by every layer.

Modules: ``names`` (Kafka's topic name rules), ``config_types`` (config parsing and
validators), ``config_defs`` (every topic config key), ``broker_defaults`` (the broker's
static and runtime layers of topic defaults), ``configs`` (overrides, effective values,
incremental operations, describe, LogConfig mapping), ``model`` (TopicInfo and the
``__strom_topics.json`` format), ``rules`` (admission of creates and growth, TopicError).
No I/O, no clock: the broker (``broker.topics``) and the controller
(``controller.metadata.topic_control``) both decide with these.
"""
