"""Strom storage: Kafka-shaped segmented partition logs (synchronous file I/O only).

Modules, each with one job:

- ``log_config``     LogConfig: Kafka topic configs with Kafka's defaults
- ``errors``         StorageError and friends, each with its Kafka ``error_code``
- ``file_cache``     bounded LRU of descriptors shared by all segments (ulimit-safe)
- ``index``          sparse .index / .timeindex, in memory, persisted append-only
- ``segment``        LogSegment: one .log + its indexes; append, scan, recover, truncate
- ``producer_state`` idempotent/transactional producer state and its snapshots
- ``checkpoint``     atomic small-file writes (temp, fsync, rename, fsync dir)
- ``partition_log``  PartitionLog: the segments of a partition, offsets, recovery, flush
- ``cleaner``        compaction (cleanup.policy=compact)
- ``log_manager``    LogManager: every partition of a log directory

Record batches stay opaque bytes here; protocol/records.py parses their headers.
"""
