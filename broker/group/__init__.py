"""Consumer group coordinator (Kafka's classic group protocol).

Pure core (no asyncio, no I/O, no clock): ``config``, ``state``, ``member``, ``group``,
``timers``, ``partitioner``, ``log_format``, ``coordinator``.  Thin asyncio shell:
``persistence`` (``__consumer_offsets`` through storage), ``service`` (futures, timer
task) and ``handlers`` (kio requests in, kio responses out).
"""
