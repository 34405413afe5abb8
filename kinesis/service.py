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
import base64
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import orjson

from common.logging import get_logger
from kinesis import hashing, iterators, sequence
from kinesis import records as krecords
from kinesis.cluster import StreamCluster, TopicView
from kinesis.codec import Timestamp
from kinesis.errors import KinesisError, in_use, invalid, limit, not_found, stream_not_found
from kinesis.metadata import (
    CLOSING,
    CONFIG_KEY,
    ON_DEMAND,
    ON_DEMAND_SHARDS,
    PROVISIONED,
    StreamMeta,
    parse_shard_id,
    shard_id,
)
from kinesis.validation import CONSUMER_ARN, stream_name
from protocol.errors import ErrorCode, error_name
from replication.replica_manager import FetchPartition, ReplicaManager

log = get_logger("strom.kinesis")

#: a shard's records are appended in batches of at most this many bytes of data
BATCH_BYTES = 1 << 20
#: what one GetRecords returns at most (Kinesis: 10 MiB)
GET_RECORDS_BYTES = 10 << 20
#: Kinesis' default retention for a stream it creates (24 h)
DEFAULT_RETENTION_MS = 86_400_000
HOUR_MS = 3_600_000
MAX_RETENTION_HOURS = 8760
MIN_RETENTION_HOURS = 24
MAX_TAGS = 50
MAX_CONSUMERS = 20


@dataclass(frozen=True, slots=True)
class KinesisSettings:
    iterator_key: bytes
    max_record_bytes: int = 10 << 20
    region: str = "us-east-1"
    account: str = "000000000000"
    #: most open shards of all streams together (CreateStream beyond it:
    #: LimitExceededException), and most on-demand streams; DescribeLimits reports both
    shard_limit: int = 1000
    on_demand_stream_limit: int = 50
    put_timeout_ms: int = 30_000


#: operations that rewrite the stream document (``KinesisService._serialized``)
DOCUMENT_WRITERS = ("AddTagsToStream", "RemoveTagsFromStream", "UpdateStreamMode",
                    "SplitShard", "MergeShards", "UpdateShardCount", "RegisterStreamConsumer",
                    "DeregisterStreamConsumer")
#: how long one SubscribeToShard streams (Kinesis: 5 minutes)
SUBSCRIPTION_S = 300.0


@dataclass(frozen=True, slots=True)
class Subscription:
    stream: str
    topic_id: uuid.UUID
    partition: int
    offset: int
    consumer: str


class Forward(Exception):  # noqa: N818 - a control-flow signal, not an error
    """The request belongs to broker ``leader`` (it leads the shard)."""

    def __init__(self, leader: int) -> None:
        super().__init__(f"forward to broker {leader}")
        self.leader = leader


#: (leader broker id, operation, JSON request body) -> its JSON answer; KinesisError when
#: the leader answered an error or could not be reached
ForwardFn = Callable[[int, str, dict[str, Any]], Awaitable[dict[str, Any]]]
#: key a shell sets in a checked request that another broker forwarded
FORWARDED = "_forwarded"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class KinesisService:
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
        self._locks: dict[str, asyncio.Lock] = {}
        for op in DOCUMENT_WRITERS:
            self.operations[op] = self._serialized(self.operations[op])

    # ---- stream document writers -------------------------------------------------------------
    def _document_stream(self, req: Mapping[str, Any]) -> str:
        arn = req.get("ConsumerARN")
        if arn is not None:
            m = CONSUMER_ARN.fullmatch(arn)
            if m is None:
                raise invalid(f"Invalid ConsumerARN {arn}.")
            return stream_name({"StreamARN": m.group(1)})
        return stream_name(req)

    def _serialized(self, handler: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
                    ) -> Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]:
        """Operations that rewrite a stream's document run on one broker, the leader of
        the stream's first partition (forwarded there), one at a time per stream, each
        reading the document after the previous one wrote it: concurrent changes from
        different clients do not undo each other (short of that leader changing)."""
        async def run(req: dict[str, Any]) -> dict[str, Any]:
            name = self._document_stream(req)
            topic = None if name.startswith("__") else self.cluster.topic(name)
            if topic is not None and topic.leaders:
                first = min(topic.leaders)
                if self.replicas.log(name, first) is None:
                    leader = self._leader_elsewhere(topic, first, req)
                    if leader is not None:
                        raise Forward(leader)
            lock = self._locks.setdefault(name, asyncio.Lock())
            async with lock:
                return await handler(req)
        return run

    # ---- lookups ---------------------------------------------------------------------------
    def arn(self, name: str) -> str:
        s = self.settings
        return f"arn:aws:kinesis:{s.region}:{s.account}:stream/{name}"

    def _stream(self, name: str) -> tuple[TopicView, StreamMeta]:
        topic = None if name.startswith("__") else self.cluster.topic(name)
        if topic is None:
            raise stream_not_found(name, self.settings.account)
        return topic, self.meta(topic)

    @staticmethod
    def meta(topic: TopicView) -> StreamMeta:
        doc = topic.configs.get(CONFIG_KEY)
        if doc:
            try:
                return StreamMeta.from_json(doc)
            except ValueError:
                log.warning("kinesis_metadata_unreadable", topic=topic.name)
        return StreamMeta.default(len(topic.leaders))

    def _shard(self, topic: TopicView, meta: StreamMeta, text: str) -> int:
        partition = parse_shard_id(text)
        if partition is None or meta.shard(partition) is None \
                or partition not in topic.leaders:
            raise not_found(f"Shard {text} in stream {topic.name} under account "
                            f"{self.settings.account} does not exist")
        return partition

    @staticmethod
    def _status(topic: TopicView, meta: StreamMeta) -> str:
        if meta.resharding:
            return "UPDATING"
        return "ACTIVE" if all(leader >= 0 for leader in topic.leaders.values()) \
            else "CREATING"

    def _retention_hours(self, topic: TopicView) -> int:
        ms = topic.retention_ms
        return MAX_RETENTION_HOURS if ms < 0 else max(ms // HOUR_MS, 0)

    def _shard_entry(self, topic: TopicView, meta: StreamMeta, partition: int
                     ) -> dict[str, Any]:
        s = meta.shard(partition)
        assert s is not None
        entry: dict[str, Any] = {"ShardId": shard_id(partition)}
        if s.parent is not None:
            entry["ParentShardId"] = shard_id(s.parent)
        if s.adjacent_parent is not None:
            entry["AdjacentParentShardId"] = shard_id(s.adjacent_parent)
        entry["HashKeyRange"] = {"StartingHashKey": str(s.start_hash),
                                 "EndingHashKey": str(s.end_hash)}
        rng: dict[str, str] = {"StartingSequenceNumber": sequence.encode(partition,
                                                                         s.start_offset)}
        if s.read_end is not None:
            rng["EndingSequenceNumber"] = sequence.encode(
                partition, max(s.read_end - 1, s.start_offset))
        entry["SequenceNumberRange"] = rng
        return entry

    def _shards(self, topic: TopicView, meta: StreamMeta) -> list[int]:
        return sorted(s.partition for s in meta.shards if s.partition in topic.leaders)

    # ---- streams ---------------------------------------------------------------------------
    async def create_stream(self, req: dict[str, Any]) -> dict[str, Any]:
        name = req["StreamName"]
        mode = req.get("StreamModeDetails", {}).get("StreamMode", PROVISIONED)
        count = req.get("ShardCount")
        if count is None:
            if mode != ON_DEMAND:
                raise invalid("ShardCount is required for a PROVISIONED stream.")
            count = ON_DEMAND_SHARDS
        counts = self._open_counts()
        if mode == ON_DEMAND and counts[1] >= self.settings.on_demand_stream_limit:
            raise limit(f"This request would exceed the on-demand stream limit of "
                        f"{self.settings.on_demand_stream_limit} for the account "
                        f"{self.settings.account}.")
        if counts[0] + count > self.settings.shard_limit:
            raise limit(f"This request would exceed the shard limit for the account "
                        f"{self.settings.account} in {self.settings.region}. Current shard "
                        f"limit for account {self.settings.account} in "
                        f"{self.settings.region} is {self.settings.shard_limit}.")
        if name.startswith("__") or self.cluster.topic(name) is not None:
            raise in_use(f"Stream {name} under account {self.settings.account} "
                         f"already exists.")
        meta = StreamMeta.new(count, mode, _now_ms(), req.get("Tags"))
        configs = {CONFIG_KEY: meta.to_json(), "retention.ms": str(DEFAULT_RETENTION_MS),
                   "max.message.bytes": str(max(self.settings.max_record_bytes, BATCH_BYTES)
                                            + 65_536)}
        code, message = await self.cluster.create_topic(name, count, configs)
        if code == int(ErrorCode.topic_already_exists):
            raise in_use(f"Stream {name} under account {self.settings.account} "
                         f"already exists.")
        if code:
            raise invalid(f"Cannot create stream {name}: {message or error_name(code)}")
        return {}

    async def delete_stream(self, req: dict[str, Any]) -> dict[str, Any]:
        name = stream_name(req)
        _topic, meta = self._stream(name)
        if meta.consumers and not req.get("EnforceConsumerDeletion"):
            raise in_use(f"Stream {name} under account {self.settings.account} has "
                         f"registered consumers; deregister them or set "
                         f"EnforceConsumerDeletion.")
        code, message = await self.cluster.delete_topic(name)
        if code == int(ErrorCode.unknown_topic_or_partition):
            raise stream_not_found(name, self.settings.account)
        if code:
            raise KinesisError("InternalFailureException",
                               f"Cannot delete stream {name}: "
                               f"{message or error_name(code)}")
        return {}

    async def list_streams(self, req: dict[str, Any]) -> dict[str, Any]:
        names = sorted(n for n in self.cluster.topic_names() if not n.startswith("__"))
        after = req.get("ExclusiveStartStreamName")
        token = req.get("NextToken")
        if token is not None:
            if after is not None:
                raise invalid("NextToken and ExclusiveStartStreamName cannot be "
                              "provided together.")
            after = _read_token(token).get("after")
        if after is not None:
            names = [n for n in names if n > after]
        count = req.get("Limit", 100)
        page, more = names[:count], len(names) > count
        summaries = []
        for n in page:
            topic = self.cluster.topic(n)
            if topic is None:
                continue
            meta = self.meta(topic)
            summaries.append({"StreamName": n, "StreamARN": self.arn(n),
                              "StreamStatus": self._status(topic, meta),
                              "StreamModeDetails": {"StreamMode": meta.mode},
                              "StreamCreationTimestamp": Timestamp(meta.created_ms)})
        out: dict[str, Any] = {"StreamNames": page, "HasMoreStreams": more,
                               "StreamSummaries": summaries}
        if more:
            out["NextToken"] = _token({"after": page[-1]})
        return out

    def _description(self, topic: TopicView, meta: StreamMeta) -> dict[str, Any]:
        return {"StreamName": topic.name, "StreamARN": self.arn(topic.name),
                "StreamStatus": self._status(topic, meta),
                "StreamModeDetails": {"StreamMode": meta.mode},
                "RetentionPeriodHours": self._retention_hours(topic),
                "StreamCreationTimestamp": Timestamp(meta.created_ms),
                "EnhancedMonitoring": [{"ShardLevelMetrics": []}],
                "EncryptionType": "NONE"}

    async def describe_stream(self, req: dict[str, Any]) -> dict[str, Any]:
        topic, meta = self._stream(stream_name(req))
        shards = self._shards(topic, meta)
        start = req.get("ExclusiveStartShardId")
        if start is not None:
            after = parse_shard_id(start)
            shards = [p for p in shards if after is None or p > after]
        count = req.get("Limit", 100)
        page = shards[:count]
        desc = self._description(topic, meta)
        desc["Shards"] = [self._shard_entry(topic, meta, p) for p in page]
        desc["HasMoreShards"] = len(shards) > count
        return {"StreamDescription": desc}

    async def describe_stream_summary(self, req: dict[str, Any]) -> dict[str, Any]:
        topic, meta = self._stream(stream_name(req))
        desc = self._description(topic, meta)
        desc["OpenShardCount"] = len([s for s in meta.open_shards()
                                      if s.partition in topic.leaders])
        desc["ConsumerCount"] = len(meta.consumers)
        return {"StreamDescriptionSummary": desc}

    async def list_shards(self, req: dict[str, Any]) -> dict[str, Any]:
        token = req.get("NextToken")
        shard_filter = req.get("ShardFilter")
        after: int | None = None
        if token is not None:
            doc = _read_token(token)
            if _now_ms() - int(doc.get("t", 0)) > iterators.TTL_MS:
                raise KinesisError("ExpiredNextTokenException",
                                   "The timestamp in the NextToken has expired.")
            name, after, shard_filter = doc.get("s", ""), doc.get("after"), doc.get("f")
            # Kinesis refuses NextToken with a StreamName; boto3's paginator sends both,
            # so the same stream is accepted
            if ("StreamName" in req or "StreamARN" in req) and stream_name(req) != name:
                raise invalid("NextToken and StreamName cannot be provided together.")
        else:
            name = stream_name(req)
        topic, meta = self._stream(name)
        shards = self._shards(topic, meta)
        start = req.get("ExclusiveStartShardId")
        if start is not None:
            start_after = parse_shard_id(start)
            after = start_after if start_after is not None else after
        if shard_filter is not None:
            shards = self._filter_shards(topic, meta, shards, shard_filter)
        if after is not None:
            shards = [p for p in shards if p > after]
        count = req.get("MaxResults", 1000)
        page = shards[:count]
        out: dict[str, Any] = {"Shards": [self._shard_entry(topic, meta, p) for p in page]}
        if len(shards) > count:
            out["NextToken"] = _token({"s": name, "after": page[-1], "f": shard_filter,
                                       "t": _now_ms()})
        return out

    @staticmethod
    def _filter_shards(topic: TopicView, meta: StreamMeta, shards: list[int],
                       f: Mapping[str, Any]) -> list[int]:
        """Kinesis' shard filters: AFTER_SHARD_ID; AT_LATEST (open shards); AT_TIMESTAMP /
        AT_TRIM_HORIZON (open at that time / at now - retention); FROM_TIMESTAMP /
        FROM_TRIM_HORIZON (open then or created since)."""
        kind = f.get("Type")
        if kind == "AFTER_SHARD_ID":
            if "ShardId" not in f:
                raise invalid("ShardId must be provided for the AFTER_SHARD_ID filter.")
            after = parse_shard_id(f["ShardId"])
            return [p for p in shards if after is None or p > after]
        if kind in ("AT_TIMESTAMP", "FROM_TIMESTAMP") and "Timestamp" not in f:
            raise invalid(f"Timestamp must be provided for the {kind} filter.")
        if kind == "AT_LATEST":
            return [p for p in shards if (s := meta.shard(p)) is not None and s.is_open]
        if kind in ("AT_TRIM_HORIZON", "FROM_TRIM_HORIZON"):
            ts = _now_ms() - topic.retention_ms if topic.retention_ms >= 0 else 0
        else:
            ts = int(f["Timestamp"])
        ts = max(ts, meta.created_ms)
        if kind.startswith("AT_"):
            return [p for p in shards if (s := meta.shard(p)) is not None and s.open_at(ts)]
        return [p for p in shards if (s := meta.shard(p)) is not None
                and (s.closed_ms is None or s.closed_ms > ts)]

    def _open_counts(self) -> tuple[int, int]:
        """(open shards of every stream, on-demand streams)."""
        shards = on_demand = 0
        for n in self.cluster.topic_names():
            topic = None if n.startswith("__") else self.cluster.topic(n)
            if topic is None:
                continue
            meta = self.meta(topic)
            shards += len(meta.open_shards())
            on_demand += meta.mode == ON_DEMAND
        return shards, on_demand

    async def describe_limits(self, req: dict[str, Any]) -> dict[str, Any]:
        shards, on_demand = self._open_counts()
        return {"ShardLimit": self.settings.shard_limit, "OpenShardCount": shards,
                "OnDemandStreamCount": on_demand,
                "OnDemandStreamCountLimit": self.settings.on_demand_stream_limit}

    async def _write_meta(self, topic: TopicView, meta: StreamMeta) -> None:
        await self._alter(topic.name, {CONFIG_KEY: meta.to_json()})

    async def _alter(self, name: str, changes: dict[str, str | None]) -> None:
        code, message = await self.cluster.alter_topic_configs(name, changes)
        if code == int(ErrorCode.unknown_topic_or_partition):
            raise stream_not_found(name, self.settings.account)
        if code:
            raise KinesisError("InternalFailureException",
                               f"Cannot update stream {name}: {message or error_name(code)}")

    async def update_stream_mode(self, req: dict[str, Any]) -> dict[str, Any]:
        topic, meta = self._stream(stream_name(req))
        mode = req["StreamModeDetails"]["StreamMode"]
        if mode != meta.mode:
            if mode == ON_DEMAND and \
                    self._open_counts()[1] >= self.settings.on_demand_stream_limit:
                raise limit(f"This request would exceed the on-demand stream limit of "
                            f"{self.settings.on_demand_stream_limit}.")
            await self._write_meta(topic, replace(meta, mode=mode))
        return {}

    # ---- resharding ------------------------------------------------------------------------
    async def _reshard(self, topic: TopicView, meta: StreamMeta,
                       change: Callable[[StreamMeta], StreamMeta]) -> StreamMeta:
        """Reshard in Kinesis' lineage: (1) the stream document is written if the topic
        had none (so its ranges do not move with the partition count), (2) the children
        are added as partitions, (3) the document names them and marks the parents
        closing (puts route to the children from then on), (4) each parent's end offset
        (its log end on its leader once (3) is visible there) is recorded."""
        name = topic.name
        if meta.resharding or name in self._resharding:
            raise in_use(f"Stream {name} under account {self.settings.account} is "
                         f"being resharded; try again when it is ACTIVE.")
        try:
            new = change(meta)
        except ValueError as exc:
            raise invalid(str(exc)) from None
        opened = len(new.open_shards()) - len(meta.open_shards())
        if self._open_counts()[0] + opened > self.settings.shard_limit:
            raise limit(f"This request would exceed the shard limit of "
                        f"{self.settings.shard_limit} open shards.")
        self._resharding.add(name)
        try:
            if not topic.configs.get(CONFIG_KEY):
                await self._write_meta(topic, meta)
            total = max(s.partition for s in new.shards) + 1
            code, message = await self.cluster.add_partitions(name, total)
            if code:
                raise KinesisError("InternalFailureException",
                                   f"Cannot add shards to {name}: "
                                   f"{message or error_name(code)}")
            await self._write_meta(topic, new)
            parents = [s.partition for s in new.shards if s.end_offset == CLOSING]
            ends = {p: await self._end_offset(name, p, new) for p in parents}
            closed = new.close(ends)
            await self._write_meta(topic, closed)
            return closed
        finally:
            self._resharding.discard(name)

    async def _end_offset(self, name: str, partition: int, new: StreamMeta) -> int:
        """The log end of a closing shard on its leader (asked over the leader's Kinesis
        API, once it lists the children, when it is another broker)."""
        plog = self.replicas.log(name, partition)
        if plog is not None:
            return plog.log_end_offset
        topic = self.cluster.topic(name)
        leader = topic.leaders.get(partition, -1) if topic is not None else -1
        if leader < 0 or self.forward_json is None:
            raise KinesisError("InternalFailureException",
                               f"Shard {shard_id(partition)} has no leader to close it at; "
                               f"the stream stays UPDATING until a reshard is retried.")
        newest = shard_id(max(s.partition for s in new.shards))
        for _ in range(100):  # until the leader's image has the closing document
            listed = await self.forward_json(leader, "ListShards", {"StreamName": name})
            if any(s.get("ShardId") == newest for s in listed.get("Shards", [])):
                break
            await asyncio.sleep(0.05)
        answer = await self.forward_json(leader, "GetShardIterator", {
            "StreamName": name, "ShardId": shard_id(partition),
            "ShardIteratorType": "LATEST"})
        position = iterators.decode(self.settings.iterator_key, answer["ShardIterator"],
                                    _now_ms())
        return position.offset

    def _open_shard(self, topic: TopicView, meta: StreamMeta, text: str) -> int:
        partition = self._shard(topic, meta, text)
        shard = meta.shard(partition)
        if shard is None or not shard.is_open:
            raise in_use(f"Shard {text} in stream {topic.name} under account "
                         f"{self.settings.account} is not open (it was resharded).")
        return partition

    async def split_shard(self, req: dict[str, Any]) -> dict[str, Any]:
        topic, meta = self._stream(stream_name(req))
        partition = self._open_shard(topic, meta, req["ShardToSplit"])
        start = hashing.parse_hash_key(req["NewStartingHashKey"])
        if start is None:
            raise invalid(f"NewStartingHashKey {req['NewStartingHashKey']} is not a hash key.")
        await self._reshard(topic, meta, lambda m: m.split(partition, start, _now_ms()))
        return {}

    async def merge_shards(self, req: dict[str, Any]) -> dict[str, Any]:
        topic, meta = self._stream(stream_name(req))
        a = self._open_shard(topic, meta, req["ShardToMerge"])
        b = self._open_shard(topic, meta, req["AdjacentShardToMerge"])
        await self._reshard(topic, meta, lambda m: m.merge(a, b, _now_ms()))
        return {}

    async def update_shard_count(self, req: dict[str, Any]) -> dict[str, Any]:
        topic, meta = self._stream(stream_name(req))
        current = len(meta.open_shards())
        target = req["TargetShardCount"]
        if not (current + 1) // 2 <= target <= current * 2:
            raise invalid(f"TargetShardCount {target} must be between half ("
                          f"{(current + 1) // 2}) and double ({current * 2}) of the current "
                          f"open shard count {current}.")
        if target != current:
            await self._reshard(topic, meta, lambda m: m.rescale(target, _now_ms()))
        return {"StreamName": topic.name, "StreamARN": self.arn(topic.name),
                "CurrentShardCount": current, "TargetShardCount": target}

    # ---- consumers -------------------------------------------------------------------------
    def consumer_arn(self, stream: str, name: str, created_ms: int) -> str:
        return f"{self.arn(stream)}/consumer/{name}:{created_ms // 1000}"

    def _consumer(self, stream: str, name: str, created_ms: int,
                  with_stream: bool = False) -> dict[str, Any]:
        out = {"ConsumerName": name, "ConsumerARN": self.consumer_arn(stream, name, created_ms),
               "ConsumerStatus": "ACTIVE", "ConsumerCreationTimestamp": Timestamp(created_ms)}
        if with_stream:
            out["StreamARN"] = self.arn(stream)
        return out

    def _find_consumer(self, req: dict[str, Any]) -> tuple[TopicView, StreamMeta, str, int]:
        arn = req.get("ConsumerARN")
        if arn is not None:
            m = CONSUMER_ARN.fullmatch(arn)
            if m is None:
                raise invalid(f"Invalid ConsumerARN {arn}.")
            stream_arn, name = m.group(1), m.group(2)
        else:
            if "StreamARN" not in req or "ConsumerName" not in req:
                raise invalid("Either ConsumerARN or both StreamARN and ConsumerName "
                              "should be provided.")
            stream_arn, name = req["StreamARN"], req["ConsumerName"]
        topic, meta = self._stream(stream_name({"StreamARN": stream_arn}))
        for n, created in meta.consumers:
            if n == name and (arn is None or arn == self.consumer_arn(topic.name, n, created)):
                return topic, meta, n, created
        raise not_found(f"Consumer {name} under stream {topic.name} under account "
                        f"{self.settings.account} not found.")

    async def register_consumer(self, req: dict[str, Any]) -> dict[str, Any]:
        topic, meta = self._stream(stream_name({"StreamARN": req["StreamARN"]}))
        name = req["ConsumerName"]
        if any(n == name for n, _ in meta.consumers):
            raise in_use(f"Consumer {name} under stream {topic.name} under account "
                         f"{self.settings.account} already exists.")
        if len(meta.consumers) >= MAX_CONSUMERS:
            raise limit(f"Stream {topic.name} already has {MAX_CONSUMERS} registered "
                        f"consumers.")
        created = _now_ms()
        await self._write_meta(topic, replace(meta, consumers=(*meta.consumers,
                                                              (name, created))))
        return {"Consumer": self._consumer(topic.name, name, created)}

    async def describe_consumer(self, req: dict[str, Any]) -> dict[str, Any]:
        topic, _meta, name, created = self._find_consumer(req)
        return {"ConsumerDescription": self._consumer(topic.name, name, created, True)}

    async def deregister_consumer(self, req: dict[str, Any]) -> dict[str, Any]:
        topic, meta, name, _created = self._find_consumer(req)
        await self._write_meta(topic, replace(
            meta, consumers=tuple(c for c in meta.consumers if c[0] != name)))
        return {}

    async def list_consumers(self, req: dict[str, Any]) -> dict[str, Any]:
        topic, meta = self._stream(stream_name({"StreamARN": req["StreamARN"]}))
        consumers = sorted(meta.consumers)
        token = req.get("NextToken")
        if token is not None:
            after = _read_token(token).get("after", "")
            consumers = [c for c in consumers if c[0] > after]
        count = req.get("MaxResults", 100)
        page = consumers[:count]
        out: dict[str, Any] = {"Consumers": [self._consumer(topic.name, n, c)
                                             for n, c in page]}
        if len(consumers) > count:
            out["NextToken"] = _token({"after": page[-1][0]})
        return out

    # ---- tags ------------------------------------------------------------------------------
    async def add_tags(self, req: dict[str, Any]) -> dict[str, Any]:
        topic, meta = self._stream(stream_name(req))
        tags = {**meta.tags, **req["Tags"]}
        if len(tags) > MAX_TAGS:
            raise limit(f"Failed to add tags to stream {topic.name} under account "
                        f"{self.settings.account} because a given stream cannot have more "
                        f"than {MAX_TAGS} tags.")
        await self._write_meta(topic, meta.with_tags(tags))
        return {}

    async def remove_tags(self, req: dict[str, Any]) -> dict[str, Any]:
        topic, meta = self._stream(stream_name(req))
        tags = {k: v for k, v in meta.tags.items() if k not in set(req["TagKeys"])}
        if tags != meta.tags:
            await self._write_meta(topic, meta.with_tags(tags))
        return {}

    async def list_tags(self, req: dict[str, Any]) -> dict[str, Any]:
        _topic, meta = self._stream(stream_name(req))
        keys = sorted(meta.tags)
        start = req.get("ExclusiveStartTagKey")
        if start is not None:
            keys = [k for k in keys if k > start]
        count = req.get("Limit", MAX_TAGS)
        return {"Tags": [{"Key": k, "Value": meta.tags[k]} for k in keys[:count]],
                "HasMoreTags": len(keys) > count}

    # ---- retention -------------------------------------------------------------------------
    async def _retention(self, req: dict[str, Any], increase: bool) -> dict[str, Any]:
        topic, _meta = self._stream(stream_name(req))
        hours = req["RetentionPeriodHours"]
        if hours < MIN_RETENTION_HOURS:
            raise invalid(f"Minimum allowed retention period is {MIN_RETENTION_HOURS} hours. "
                          f"Requested retention period ({hours} hours) is too short.")
        if hours > MAX_RETENTION_HOURS:
            raise invalid(f"Maximum allowed retention period is {MAX_RETENTION_HOURS} hours. "
                          f"Requested retention period ({hours} hours) is too long.")
        current = self._retention_hours(topic)
        if increase and hours < current:
            raise invalid(f"Requested retention period ({hours} hours) for stream "
                          f"{topic.name} can not be shorter than existing retention period "
                          f"({current} hours). Use DecreaseRetentionPeriod API.")
        if not increase and hours > current:
            raise invalid(f"Requested retention period ({hours} hours) for stream "
                          f"{topic.name} can not be longer than existing retention period "
                          f"({current} hours). Use IncreaseRetentionPeriod API.")
        await self._alter(topic.name, {"retention.ms": str(hours * HOUR_MS)})
        return {}

    async def increase_retention(self, req: dict[str, Any]) -> dict[str, Any]:
        return await self._retention(req, True)

    async def decrease_retention(self, req: dict[str, Any]) -> dict[str, Any]:
        return await self._retention(req, False)

    # ---- puts ------------------------------------------------------------------------------
    def _router(self, meta: StreamMeta) -> Callable[[dict[str, Any]], int]:
        """``_route`` with the open ranges computed once (a request's records share
        them); a stream with one open shard sends every valid record there unhashed."""
        ranges = meta.open_ranges()
        if len(ranges) == 1 and ranges[0][1] == (0, hashing.MAX_HASH_KEY):
            only = ranges[0][0]

            def route_one(entry: dict[str, Any]) -> int:
                explicit = entry.get("ExplicitHashKey")
                if explicit is not None and hashing.parse_hash_key(explicit) is None:
                    self._route(meta, entry, ranges)  # raises the exact error
                return only
            return route_one
        return lambda entry: self._route(meta, entry, ranges)

    def _route(self, meta: StreamMeta, entry: dict[str, Any],
               ranges: list[tuple[int, tuple[int, int]]] | None = None) -> int:
        explicit = entry.get("ExplicitHashKey")
        if explicit is not None:
            key = hashing.parse_hash_key(explicit)
            if key is None:
                raise invalid(f"Invalid ExplicitHashKey. ExplicitHashKey must be in the "
                              f"range: [0, {hashing.MAX_HASH_KEY}]. Specified value was "
                              f"{explicit}")
        else:
            key = hashing.partition_key_hash(entry["PartitionKey"])
        shard = hashing.shard_for(key, meta.open_ranges() if ranges is None else ranges)
        if shard is None:
            raise KinesisError("InternalFailureException",
                               f"No open shard covers hash key {key}.")
        return shard

    def _check_size(self, entry: dict[str, Any]) -> None:
        size = len(entry["Data"]) + len(entry["PartitionKey"].encode("utf-8"))
        if size > self.settings.max_record_bytes:
            raise KinesisError(
                "ValidationException",
                f"1 validation error detected: Value at 'data' failed to satisfy "
                f"constraint: Member must have length less than or equal to "
                f"{self.settings.max_record_bytes} (data and partition key together)")

    async def _append(self, topic: TopicView, by_shard: dict[int, list[krecords.PutEntry]]
                      ) -> dict[int, tuple[int, int, str | None]]:
        """Append each shard's entries; per shard (error code, base offset, message)."""
        now = _now_ms()
        entries: list[tuple[tuple[str, int], bytes]] = []
        owners: list[tuple[int, int]] = []  # (shard, records in this batch)
        for shard, puts in by_shard.items():
            chunk: list[krecords.PutEntry] = []
            size = 0
            for put in puts:
                if chunk and size + len(put.data) > BATCH_BYTES:
                    entries.append(((topic.name, shard), krecords.build(chunk, now)))
                    owners.append((shard, len(chunk)))
                    chunk, size = [], 0
                chunk.append(put)
                size += len(put.data)
            entries.append(((topic.name, shard), krecords.build(chunk, now)))
            owners.append((shard, len(chunk)))
        results = await self.replicas.append_records(
            entries, acks=-1, timeout_ms=self.settings.put_timeout_ms, now_ms=now)
        out: dict[int, tuple[int, int, str | None]] = {}
        for (shard, _n), result in zip(owners, results, strict=True):
            if shard in out and out[shard][0]:
                continue  # an earlier batch of this shard failed
            if shard not in out or result.error_code:
                out[shard] = (result.error_code, result.base_offset, result.error_message)
        return out

    @staticmethod
    def _put_error(code: int, message: str | None) -> tuple[str, str]:
        if code == int(ErrorCode.message_too_large) or code == int(ErrorCode.record_list_too_large):
            return "InvalidArgumentException", message or "Record too large for the topic."
        return "InternalFailure", f"Append failed: {message or error_name(code)}"

    async def put_record(self, req: dict[str, Any]) -> dict[str, Any]:
        topic, meta = self._stream(stream_name(req))
        self._check_size(req)
        shard = self._route(meta, req)
        leader = self._leader_elsewhere(topic, shard, req)
        if leader is not None:
            raise Forward(leader)
        put = krecords.PutEntry(req["PartitionKey"], req["Data"], req.get("ExplicitHashKey"))
        code, base, message = (await self._append(topic, {shard: [put]}))[shard]
        if code:
            error, text = self._put_error(code, message)
            if error == "InternalFailure":
                raise KinesisError("InternalFailureException", text)
            raise invalid(text)
        return {"ShardId": shard_id(shard), "SequenceNumber": sequence.encode(shard, base),
                "EncryptionType": "NONE"}

    async def put_records(self, req: dict[str, Any]) -> dict[str, Any]:
        topic, meta = self._stream(stream_name(req))
        for entry in req["Records"]:
            self._check_size(entry)
        route = self._router(meta)
        routed = [route(e) for e in req["Records"]]
        by_shard: dict[int, list[krecords.PutEntry]] = {}
        index_in_shard: list[int] = []
        for entry, shard in zip(req["Records"], routed, strict=True):
            puts = by_shard.setdefault(shard, [])
            index_in_shard.append(len(puts))
            puts.append(krecords.PutEntry(entry["PartitionKey"], entry["Data"],
                                          entry.get("ExplicitHashKey")))
        remote: dict[int, list[int]] = {}  # leader -> shards it leads
        for shard in list(by_shard):
            try:
                leader = self._leader_elsewhere(topic, shard, req)
            except KinesisError:
                continue  # appended below, where it fails per record
            if leader is not None:
                remote.setdefault(leader, []).append(shard)
        local = {s: p for s, p in by_shard.items()
                 if not any(s in shards for shards in remote.values())}
        results = await self._append(topic, local) if local else {}
        answers = {}
        if remote:
            answers = await self._forward_puts(topic.name, by_shard, remote)
        out, failed = [], 0
        ids: dict[int, str] = {}
        for shard, i in zip(routed, index_in_shard, strict=True):
            if shard in answers:
                entry = answers[shard][i]
                failed += "ErrorCode" in entry
                out.append(entry)
                continue
            code, base, message = results[shard]
            if code:
                failed += 1
                error, text = self._put_error(code, message)
                out.append({"ErrorCode": "InternalFailure" if error == "InternalFailure"
                            else error, "ErrorMessage": text})
            else:
                out.append({"SequenceNumber": sequence.encode(shard, base + i),
                            "ShardId": ids.get(shard) or ids.setdefault(shard,
                                                                         shard_id(shard))})
        return {"FailedRecordCount": failed, "Records": out, "EncryptionType": "NONE"}

    async def _forward_puts(self, stream: str, by_shard: dict[int, list[krecords.PutEntry]],
                            remote: dict[int, list[int]]) -> dict[int, list[dict[str, Any]]]:
        """Send each leader its shards' records as one PutRecords (it routes them by the
        same stream document); per shard the answer entries, in order."""
        assert self.forward_json is not None

        async def one(leader: int, shards: list[int]) -> dict[int, list[dict[str, Any]]]:
            meta_shards = [(s, p) for s in shards for p in by_shard[s]]
            body = {"StreamName": stream, "Records": [
                {"Data": p.data, "PartitionKey": p.partition_key}
                | ({"ExplicitHashKey": p.explicit_hash_key} if p.explicit_hash_key else {})
                for _s, p in meta_shards]}
            try:
                answer = (await self.forward_json(leader, "PutRecords", body))["Records"]
                if len(answer) != len(meta_shards):
                    raise KinesisError("InternalFailureException", "short answer")
            except (KinesisError, KeyError, TypeError) as exc:
                text = exc.message if isinstance(exc, KinesisError) else repr(exc)
                answer = [{"ErrorCode": "InternalFailure",
                           "ErrorMessage": f"Forwarding to broker {leader} failed: {text}"}
                          for _ in meta_shards]
            out: dict[int, list[dict[str, Any]]] = {}
            for (s, _p), entry in zip(meta_shards, answer, strict=True):
                out.setdefault(s, []).append(entry)
            return out

        merged: dict[int, list[dict[str, Any]]] = {}
        for part in await asyncio.gather(*(one(leader, s) for leader, s in remote.items())):
            merged.update(part)
        return merged

    # ---- reads -----------------------------------------------------------------------------
    def _leader_elsewhere(self, topic: TopicView, partition: int,
                          req: Mapping[str, Any]) -> int | None:
        """None when this broker leads the shard; the leader to forward to when another
        broker does; InternalFailureException when nobody can serve it from here."""
        if self.replicas.log(topic.name, partition) is not None:
            return None
        leader = topic.leaders.get(partition, -1)
        if leader >= 0 and leader != self.replicas.node_id and not req.get(FORWARDED) \
                and self.forward_json is not None:
            return leader
        why = error_name(self.replicas.missing_error(topic.name, partition))
        raise KinesisError("InternalFailureException",
                           f"Shard {shard_id(partition)} of stream {topic.name} has no "
                           f"leader that can serve it from here ({why}); retry.")

    def _led_log(self, topic: TopicView, partition: int) -> Any:
        plog = self.replicas.log(topic.name, partition)
        if plog is None:
            why = error_name(self.replicas.missing_error(topic.name, partition))
            raise KinesisError("InternalFailureException",
                               f"Shard {shard_id(partition)} of stream {topic.name} has no "
                               f"leader on this broker ({why}); retry.")
        return plog

    def _iterator(self, topic: TopicView, partition: int, offset: int) -> str:
        return iterators.encode(self.settings.iterator_key,
                                iterators.Position(topic.name, topic.topic_id, partition,
                                                   offset), _now_ms())

    def _start_offset(self, topic: TopicView, meta: StreamMeta, partition: int, kind: str,
                      text: str | None, ts: int | None, op: str) -> int:
        """The offset a reader starting at ``kind`` begins at (this broker leads it)."""
        shard = meta.shard(partition)
        assert shard is not None
        plog = self._led_log(topic, partition)
        hw, start = plog.high_watermark, max(plog.log_start_offset, shard.start_offset)
        end = hw if shard.read_end is None else min(hw, shard.read_end)
        if kind == "TRIM_HORIZON":
            return start
        if kind == "LATEST":
            return end
        if kind == "AT_TIMESTAMP":
            if ts is None:
                raise invalid("Must specify timestampInMillis parameter for iterator of type "
                              "AT_TIMESTAMP. Current request has no timestamp parameter.")
            found = plog.offset_for_timestamp(ts)
            return end if found is None else min(max(found[0], start), end)
        if text is None:
            raise invalid(f"StartingSequenceNumber must be provided for "
                          f"ShardIteratorType {kind}.")
        try:
            seq_shard, seq_offset = sequence.decode(text)
        except sequence.BadSequenceNumber:
            raise invalid(f"StartingSequenceNumber {text} used in {op} on "
                          f"shard {shard_id(partition)} in stream {topic.name} under "
                          f"account {self.settings.account} is invalid.") from None
        if seq_shard != partition:
            raise invalid(f"Invalid StartingSequenceNumber. It encodes "
                          f"{shard_id(seq_shard)}, while it was used in a call to a "
                          f"shard with {shard_id(partition)}")
        if seq_offset >= hw or seq_offset < shard.start_offset:
            raise invalid(f"StartingSequenceNumber {text} used in {op} on "
                          f"shard {shard_id(partition)} in stream {topic.name} under "
                          f"account {self.settings.account} is invalid because it did "
                          f"not come from this stream.")
        return max(seq_offset + (kind == "AFTER_SEQUENCE_NUMBER"), start)

    async def get_shard_iterator(self, req: dict[str, Any]) -> dict[str, Any]:
        topic, meta = self._stream(stream_name(req))
        partition = self._shard(topic, meta, req["ShardId"])
        leader = self._leader_elsewhere(topic, partition, req)
        if leader is not None:
            raise Forward(leader)
        offset = self._start_offset(topic, meta, partition, req["ShardIteratorType"],
                                    req.get("StartingSequenceNumber"), req.get("Timestamp"),
                                    "GetShardIterator")
        return {"ShardIterator": self._iterator(topic, partition, offset)}

    def _read(self, topic: TopicView, meta: StreamMeta, partition: int, offset: int,
              wanted: int) -> tuple[dict[str, Any], int, bool]:
        """Up to ``wanted`` records from ``offset`` (at most ``GET_RECORDS_BYTES``):
        (answer with Records, MillisBehindLatest and, at a closed shard's end, ChildShards;
        the next offset; whether the shard's end was reached)."""
        shard = meta.shard(partition)
        assert shard is not None
        out: list[dict[str, Any]] = []
        budget = GET_RECORDS_BYTES
        hw = -1
        last_ts = -1
        key = (topic.name, partition)
        end = shard.read_end
        while len(out) < wanted and budget > 0 and (end is None or offset < end):
            result = self.replicas.fetch_records(
                [(key, FetchPartition(offset, budget))], replica_id=-1, read_committed=False,
                max_bytes=budget, now_ms=_now_ms())
            [(_k, read)] = result.reads
            if read.error_code == int(ErrorCode.offset_out_of_range) \
                    and offset < read.log_start_offset:
                offset = read.log_start_offset  # trimmed by retention: the trim horizon
                continue
            if read.error_code:
                raise KinesisError(
                    "InternalFailureException",
                    f"Cannot read shard {shard_id(partition)} of stream {topic.name}: "
                    f"{error_name(read.error_code)}; retry.")
            hw = read.high_watermark
            if not read.records:
                break
            budget -= len(read.records)
            got, next_offset = krecords.decode(read.records, offset, wanted - len(out))
            for r in got:
                if end is not None and r.offset >= end:
                    next_offset = end
                    break
                out.append({"SequenceNumber": sequence.encode(partition, r.offset),
                            "ApproximateArrivalTimestamp": Timestamp(r.timestamp_ms),
                            "Data": r.data, "PartitionKey": r.partition_key or ""})
                last_ts = r.timestamp_ms
            if next_offset <= offset:
                break
            offset = next_offset
        behind = 0 if hw < 0 or offset >= hw or last_ts < 0 else max(_now_ms() - last_ts, 0)
        answer: dict[str, Any] = {"Records": out, "MillisBehindLatest": behind}
        ended = end is not None and offset >= end
        if ended:
            answer["ChildShards"] = [
                {"ShardId": shard_id(c.partition),
                 "ParentShards": [shard_id(p) for p in (c.parent, c.adjacent_parent)
                                  if p is not None],
                 "HashKeyRange": {"StartingHashKey": str(c.start_hash),
                                  "EndingHashKey": str(c.end_hash)}}
                for c in meta.children(partition)]
        return answer, offset, ended

    async def get_records(self, req: dict[str, Any]) -> dict[str, Any]:
        position = iterators.decode(self.settings.iterator_key, req["ShardIterator"],
                                    _now_ms())
        topic, meta = self._stream(position.stream)
        if topic.topic_id != position.topic_id:
            raise stream_not_found(position.stream, self.settings.account)
        partition = position.shard
        shard = meta.shard(partition)
        if shard is None or partition not in topic.leaders:
            raise not_found(f"Shard {shard_id(partition)} in stream {topic.name} under "
                            f"account {self.settings.account} does not exist")
        leader = self._leader_elsewhere(topic, partition, req)
        if leader is not None:
            raise Forward(leader)
        answer, offset, ended = self._read(topic, meta, partition, position.offset,
                                           req.get("Limit", 10_000))
        if not ended:
            answer["NextShardIterator"] = self._iterator(topic, partition, offset)
        return answer

    # ---- enhanced fan-out ------------------------------------------------------------------
    async def subscribe(self, req: dict[str, Any]) -> Subscription:
        """Check a SubscribeToShard request and resolve its starting position; the shell
        streams ``events(subscription)``."""
        topic, meta, name, _created = self._find_consumer({"ConsumerARN": req["ConsumerARN"]})
        partition = self._shard(topic, meta, req["ShardId"])
        leader = self._leader_elsewhere(topic, partition, req)
        if leader is not None:
            raise Forward(leader)
        pos = req["StartingPosition"]
        offset = self._start_offset(topic, meta, partition, pos["Type"],
                                    pos.get("SequenceNumber"), pos.get("Timestamp"),
                                    "SubscribeToShard")
        return Subscription(topic.name, topic.topic_id, partition, offset, name)

    async def events(self, sub: Subscription, *, lifetime_s: float = SUBSCRIPTION_S,
                     poll_s: float = 0.01, heartbeat_s: float = 1.0
                     ) -> AsyncIterator[dict[str, Any]]:
        """SubscribeToShardEvent bodies: one whenever records arrived (polled every
        ``poll_s``), an empty one every ``heartbeat_s`` otherwise; ends after
        ``lifetime_s`` (Kinesis: 5 minutes), when the shard's end was sent, or when the
        stream, shard or consumer is gone (KinesisError)."""
        loop_end = time.monotonic() + lifetime_s
        offset = sub.offset
        last_sent = 0.0
        while time.monotonic() < loop_end:
            topic, meta = self._stream(sub.stream)
            if topic.topic_id != sub.topic_id or not any(
                    n == sub.consumer for n, _ in meta.consumers):
                raise not_found(f"Consumer {sub.consumer} or stream {sub.stream} is gone.")
            if self.replicas.log(topic.name, sub.partition) is None:
                raise KinesisError("InternalFailureException",
                                   f"Shard {shard_id(sub.partition)} is no longer led by "
                                   f"this broker; subscribe again.")
            answer, offset, ended = self._read(topic, meta, sub.partition, offset, 10_000)
            now = time.monotonic()
            if answer["Records"] or ended or now - last_sent >= heartbeat_s:
                answer["ContinuationSequenceNumber"] = sequence.encode(
                    sub.partition, max(offset - 1, 0))
                last_sent = now
                yield answer
                if ended:
                    return
            if not answer["Records"]:
                await asyncio.sleep(poll_s)


def _token(doc: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(doc)).decode("ascii")


def _read_token(token: str) -> dict[str, Any]:
    try:
        doc = orjson.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (ValueError, UnicodeEncodeError, orjson.JSONDecodeError):
        raise invalid("Invalid NextToken.") from None
    if not isinstance(doc, dict):
        raise invalid("Invalid NextToken.")
    return doc
