"""The broker process: configuration, CLI, the asyncio (uvloop) Kafka server, request
handlers (``broker.handlers`` plus the admin/group extension packages), the replica
manager and fetch purgatory, producer ids. See ``broker.server`` and ``broker.handlers``.
"""
