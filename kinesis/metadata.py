"""The stream document: what Kinesis knows about a stream that Kafka has no place for
(hash-key ranges per shard, shard lineage, stream mode, tags, creation time).

It is kept in the cluster metadata as the topic config ``kinesis.stream`` (a
``ConfigRecord`` of the metadata log): created atomically with the topic by CreateTopics,
replicated to every broker by the metadata log, gone with the topic. A topic without it
(created by a Kafka client) is a PROVISIONED stream whose partitions split the hash-key
space uniformly (``StreamMeta.default``).

JSON form (hash keys as decimal strings, since they exceed 64 bits)::

    {"v": 1, "mode": "PROVISIONED", "created_ms": 1700000000000, "tags": {"k": "v"},
     "shards": [{"p": 0, "lo": "0", "hi": "1701...", "parent": null, "adjacent": null,
                 "start": 0, "end": null}]}

``start``/``end`` are partition offsets: the shard's first offset, and for a closed shard
the offset after its last record (None while open).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import orjson

from kinesis.hashing import MAX_HASH_KEY, uniform_ranges

CONFIG_KEY = "kinesis.stream"
PROVISIONED = "PROVISIONED"
ON_DEMAND = "ON_DEMAND"
#: shards of a new on-demand stream (Kinesis starts them with 4)
ON_DEMAND_SHARDS = 4
_SHARD_ID = re.compile(r"(?:shardId-)?(\d{1,12})")


def shard_id(partition: int) -> str:
    return f"shardId-{partition:012d}"


def parse_shard_id(text: str) -> int | None:
    """The partition of ``shardId-000000000003`` (or ``3``); None if not a shard id."""
    m = _SHARD_ID.fullmatch(text)
    return int(m.group(1)) if m else None


@dataclass(frozen=True, slots=True)
class ShardMeta:
    partition: int
    start_hash: int
    end_hash: int
    parent: int | None = None
    adjacent_parent: int | None = None
    start_offset: int = 0
    end_offset: int | None = None

    @property
    def is_open(self) -> bool:
        return self.end_offset is None


@dataclass(frozen=True, slots=True)
class StreamMeta:
    mode: str = PROVISIONED
    created_ms: int = 0
    shards: tuple[ShardMeta, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def new(shard_count: int, mode: str, created_ms: int,
            tags: dict[str, str] | None = None) -> StreamMeta:
        shards = tuple(ShardMeta(i, lo, hi)
                       for i, (lo, hi) in enumerate(uniform_ranges(shard_count)))
        return StreamMeta(mode, created_ms, shards, dict(tags or {}))

    @staticmethod
    def default(partitions: int) -> StreamMeta:
        """A Kafka-made topic seen as a stream."""
        return StreamMeta.new(max(partitions, 1), PROVISIONED, 0)

    def shard(self, partition: int) -> ShardMeta | None:
        for s in self.shards:
            if s.partition == partition:
                return s
        return None

    def open_shards(self) -> list[ShardMeta]:
        return [s for s in self.shards if s.is_open]

    def open_ranges(self) -> list[tuple[int, tuple[int, int]]]:
        return [(s.partition, (s.start_hash, s.end_hash)) for s in self.open_shards()]

    def children(self, partition: int) -> list[ShardMeta]:
        return [s for s in self.shards
                if partition in (s.parent, s.adjacent_parent)]

    def with_tags(self, tags: dict[str, str]) -> StreamMeta:
        return replace(self, tags=dict(tags))

    def to_json(self) -> str:
        return orjson.dumps({
            "v": 1, "mode": self.mode, "created_ms": self.created_ms, "tags": self.tags,
            "shards": [{"p": s.partition, "lo": str(s.start_hash), "hi": str(s.end_hash),
                        "parent": s.parent, "adjacent": s.adjacent_parent,
                        "start": s.start_offset, "end": s.end_offset}
                       for s in self.shards]}).decode()

    @staticmethod
    def from_json(text: str) -> StreamMeta:
        """Parse the document; ValueError when it is not one."""
        try:
            doc = orjson.loads(text)
            shards = tuple(ShardMeta(int(s["p"]), int(s["lo"]), int(s["hi"]),
                                     s.get("parent"), s.get("adjacent"),
                                     int(s.get("start", 0)), s.get("end"))
                           for s in doc["shards"])
            meta = StreamMeta(str(doc.get("mode", PROVISIONED)), int(doc.get("created_ms", 0)),
                              shards, {str(k): str(v) for k, v in doc.get("tags", {}).items()})
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a kinesis.stream document: {exc}") from None
        if not shards or any(not 0 <= s.start_hash <= s.end_hash <= MAX_HASH_KEY
                             for s in shards):
            raise ValueError("not a kinesis.stream document: bad shard ranges")
        return meta
