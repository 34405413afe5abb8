"""The Kinesis operations over ``replication.ReplicaManager`` (appends and reads) and a
``StreamCluster`` (topics and their configs in the metadata image).

Each operation takes a request checked by ``validation.check`` and returns the response
as plain values (``codec`` encodes them) or raises ``KinesisError``.

- Streams: one topic per stream; its ``kinesis.stream`` config holds the stream document
  (``metadata``); a topic without one is a PROVISIONED stream over its partitions.
  Internal topics (names starting ``__``) are not streams.
- Puts: records are grouped by shard (MD5 hash-key ranges of the open shards) into one
  Kafka batch per shard (split at ``BATCH_BYTES``) and appended with acks=all; a record's
  sequence number is ``sequence.encode(partition, offset)``.
- A shard led by another broker: PutRecord, GetShardIterator and GetRecords raise
  ``Forward(leader)`` (the HTTP shell relays the request to that broker's Kinesis
  listener); PutRecords appends the local shards' records and sends the others, grouped
  by leader, as PutRecords to their leaders (``forward_json``), merging the answers in
  request order. A request that was itself forwarded is never forwarded again: a shard
  not led here then is ``InternalFailureException`` (SDKs retry it).
- Iterators carry an offset; GetRecords fetches from it (consumer fetch, up to the high
  watermark) and hands out the next one. An offset below the log start (deleted by
  retention) continues at the log start, as Kinesis' trim horizon moves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from kinesis.cluster import StreamCluster
from kinesis.core import (  # noqa: F401 - the service's public names
    DOCUMENT_WRITERS,
    FORWARDED,
    JSON_WIRE,
    Forward,
    ForwardFn,
    KinesisSettings,
    Subscription,
)
from kinesis.ops_consumers import ConsumerOps
from kinesis.ops_records import RecordOps
from kinesis.ops_reshard import ReshardOps
from kinesis.ops_streams import StreamOps
from kinesis.throttle import ShardWriteLimits
from replication.replica_manager import ReplicaManager


class KinesisService(StreamOps, ReshardOps, ConsumerOps, RecordOps):
    """Every supported operation by name (``operations``), over one broker's replica
    manager and the cluster's metadata."""

    def __init__(self, replicas: ReplicaManager, cluster: StreamCluster,
                 settings: KinesisSettings) -> None:
        self.replicas = replicas
        self.cluster = cluster
        self.settings = settings
        self.forward_json: ForwardFn | None = None
        self.operations: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
            "CreateStream": self.create_stream,
            "DeleteStream": self.delete_stream,
            "ListStreams": self.list_streams,
            "DescribeStream": self.describe_stream,
            "DescribeStreamSummary": self.describe_stream_summary,
            "ListShards": self.list_shards,
            "PutRecord": self.put_record,
            "PutRecords": self.put_records,
            "GetShardIterator": self.get_shard_iterator,
            "GetRecords": self.get_records,
            "AddTagsToStream": self.add_tags,
            "RemoveTagsFromStream": self.remove_tags,
            "ListTagsForStream": self.list_tags,
            "IncreaseStreamRetentionPeriod": self.increase_retention,
            "DecreaseStreamRetentionPeriod": self.decrease_retention,
            "DescribeLimits": self.describe_limits,
            "UpdateStreamMode": self.update_stream_mode,
            "SplitShard": self.split_shard,
            "MergeShards": self.merge_shards,
            "UpdateShardCount": self.update_shard_count,
            "RegisterStreamConsumer": self.register_consumer,
            "DescribeStreamConsumer": self.describe_consumer,
            "ListStreamConsumers": self.list_consumers,
            "DeregisterStreamConsumer": self.deregister_consumer,
        }
        self._resharding: set[str] = set()
        self.write_limits = ShardWriteLimits(settings.shard_write_records_per_s,
                                             settings.shard_write_bytes_per_s)
        self._locks: dict[str, asyncio.Lock] = {}
        for op in DOCUMENT_WRITERS:
            self.operations[op] = self._serialized(self.operations[op])

