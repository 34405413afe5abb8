"""Shared parts of the Kinesis operations: settings, limits, the ``Forward`` signal, the
stream lookups (stream document, shard ids, status), leadership checks and document
writes (serialized per stream on the leader of its first partition).
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from common.logging import get_logger
from kinesis import iterators, sequence
from kinesis.cluster import StreamCluster, TopicView
from kinesis.errors import KinesisError, invalid, not_found, stream_not_found
from kinesis.metadata import (
    CONFIG_KEY,
    ON_DEMAND,
    StreamMeta,
    parse_shard_id,
    shard_id,
)
from kinesis.throttle import ShardWriteLimits
from kinesis.validation import CONSUMER_ARN, stream_name
from protocol.errors import ErrorCode, error_name
from replication.replica_manager import ReplicaManager

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
    #: per-shard write limits (``kinesis.throttle``); 0 = not enforced
    shard_write_records_per_s: int = 0
    shard_write_bytes_per_s: int = 0


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
#: key a shell sets in a checked request whose answer goes out as AWS JSON 1.1: GetRecords
#: then answers its Records already encoded (an ``orjson.Fragment``)
JSON_WIRE = "_json_wire"


def now_ms() -> int:
    return time.time_ns() // 1_000_000




class StreamsCore:
    """State and lookups the operation mixins share (``KinesisService`` sets them)."""

    replicas: ReplicaManager
    cluster: StreamCluster
    settings: KinesisSettings
    forward_json: ForwardFn | None
    operations: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]]
    _resharding: set[str]
    write_limits: ShardWriteLimits
    _locks: dict[str, asyncio.Lock]

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


    async def _write_meta(self, topic: TopicView, meta: StreamMeta) -> None:
        await self._alter(topic.name, {CONFIG_KEY: meta.to_json()})

    async def _alter(self, name: str, changes: dict[str, str | None]) -> None:
        code, message = await self.cluster.alter_topic_configs(name, changes)
        if code == int(ErrorCode.unknown_topic_or_partition):
            raise stream_not_found(name, self.settings.account)
        if code:
            raise KinesisError("InternalFailureException",
                               f"Cannot update stream {name}: {message or error_name(code)}")


    # ---- leadership -----------------------------------------------------------------------
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
                                                   offset), now_ms())



def next_token(doc: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(doc)).decode("ascii")


def read_token(token: str) -> dict[str, Any]:
    try:
        doc = orjson.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (ValueError, UnicodeEncodeError, orjson.JSONDecodeError):
        raise invalid("Invalid NextToken.") from None
    if not isinstance(doc, dict):
        raise invalid("Invalid NextToken.")
    return doc
