"""Admin APIs: topics (create/delete/partitions), records deletion and configs.

Handler modules (``handlers_*.py``) are collected by ``broker.handlers.collect_handlers``.
Each has an ``answer_*`` function that turns a kio request into a response *dict* (fields of
all versions; ``ctx.build_response`` keeps the ones the version declares) given the topic
registry and the log manager — testable without sockets — and a thin async ``handle``.
The handlers read ``ctx.broker.topics`` (TopicRegistry), ``ctx.broker.logs`` (LogManager)
and ``ctx.broker.config`` (BrokerConfig). Topic changes (CreateTopics, DeleteTopics,
CreatePartitions, topic resources of AlterConfigs/IncrementalAlterConfigs) are answered by
the active controller with the same ``answer_*`` functions over a ``StagingRegistry``
(``broker.cluster``).
"""
