"""Consumer group coordinator (Kafka's classic group protocol) and committed offsets.

Pure core (no asyncio, no I/O, no clock; ``tests/unit/group_log_format_test.py`` checks):
``config`` (Kafka's group.*/offsets.* settings), ``state`` (Empty → PreparingRebalance →
CompletingRebalance → Stable, Dead), ``member``, ``group`` (one group's data and rules),
``timers`` (keyed timer heap), ``partitioner`` (Kafka's group → partition hash),
``log_format`` (``__consumer_offsets`` records byte by byte), ``events`` (what crosses the
coordinator's boundary), ``base`` + ``membership`` + ``offsets`` + ``group_admin`` +
``loading`` composed by ``coordinator.GroupCoordinator``.

Thin asyncio shell: ``persistence`` (the offsets topic on storage, replay), ``service``
(futures for delayed JoinGroup/SyncGroup, one loop timer, shutdown), ``handlers_*`` (kio
requests in, kio responses out; discovered by broker/handlers), ``handler_support``.
"""
