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
the offset after its last record (None while open; -1 while it is being closed by a
reshard: no longer written, read as if open until its end is known). ``consumers`` are
the registered consumers (``n`` name, ``c`` creation ms). ``c``/``x`` of a shard are the
times (ms) it was created and closed (None: with the stream / still open).

Resharding (``split``, ``merge``, ``rescale``) returns the document with the parents
closing (``end`` -1) and the children appended as new partitions; ``close`` then records
each parent's end offset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import orjson

from kinesis.hashing import MAX_HASH_KEY, uniform_ranges

CLOSING = -1

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
    created_ms: int | None = None
    closed_ms: int | None = None

    @property
    def is_open(self) -> bool:
        """Written to (its hash range routes puts)."""
        return self.end_offset is None

    @property
    def read_end(self) -> int | None:
        """The offset readers stop at (None: none yet)."""
        return self.end_offset if self.end_offset is not None and self.end_offset >= 0 \
            else None

    def open_at(self, ts: int) -> bool:
        return (self.created_ms is None or self.created_ms <= ts) and \
            (self.closed_ms is None or self.closed_ms > ts)


@dataclass(frozen=True, slots=True)
class StreamMeta:
    mode: str = PROVISIONED
    created_ms: int = 0
    shards: tuple[ShardMeta, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    #: registered (enhanced fan-out) consumers: (name, creation time ms)
    consumers: tuple[tuple[str, int], ...] = ()

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

    @property
    def resharding(self) -> bool:
        return any(s.end_offset == CLOSING for s in self.shards)

    def _next_partition(self) -> int:
        return max(s.partition for s in self.shards) + 1

    def _closing(self, parents: set[int], now_ms: int) -> tuple[ShardMeta, ...]:
        return tuple(replace(s, end_offset=CLOSING, closed_ms=now_ms)
                     if s.partition in parents else s for s in self.shards)

    def split(self, partition: int, new_start: int, now_ms: int) -> StreamMeta:
        """Shard ``partition`` -> [lo, new_start - 1] and [new_start, hi]; ValueError
        unless it is open and ``lo < new_start <= hi``."""
        s = self.shard(partition)
        if s is None or not s.is_open:
            raise ValueError(f"shard {partition} is not open")
        if not s.start_hash < new_start <= s.end_hash:
            raise ValueError(f"NewStartingHashKey {new_start} is not inside the shard's "
                             f"range ({s.start_hash}, {s.end_hash}]")
        n = self._next_partition()
        children = (ShardMeta(n, s.start_hash, new_start - 1, partition, created_ms=now_ms),
                    ShardMeta(n + 1, new_start, s.end_hash, partition, created_ms=now_ms))
        return replace(self, shards=self._closing({partition}, now_ms) + children)

    def merge(self, partition: int, adjacent: int, now_ms: int) -> StreamMeta:
        """One shard over two open adjacent shards' ranges; ValueError otherwise."""
        a, b = self.shard(partition), self.shard(adjacent)
        if a is None or b is None or not a.is_open or not b.is_open or a == b:
            raise ValueError("both shards must be open and different")
        if a.end_hash + 1 != b.start_hash and b.end_hash + 1 != a.start_hash:
            raise ValueError("the shards are not adjacent")
        child = ShardMeta(self._next_partition(), min(a.start_hash, b.start_hash),
                          max(a.end_hash, b.end_hash), partition, adjacent,
                          created_ms=now_ms)
        return replace(self, shards=self._closing({partition, adjacent}, now_ms) + (child,))

    def rescale(self, target: int, now_ms: int) -> StreamMeta:
        """Replace every open shard by ``target`` shards splitting the space uniformly;
        each child's parents are the (at most two) old shards its range overlaps, the
        one holding its start first. ValueError when a child would overlap more."""
        old = sorted(self.open_shards(), key=lambda s: s.start_hash)
        n = self._next_partition()
        children = []
        for i, (lo, hi) in enumerate(uniform_ranges(target)):
            over = [s for s in old if s.start_hash <= hi and s.end_hash >= lo]
            if len(over) > 2:
                raise ValueError(f"a new shard would have {len(over)} parents")
            children.append(ShardMeta(n + i, lo, hi, over[0].partition,
                                      over[1].partition if len(over) == 2 else None,
                                      created_ms=now_ms))
        return replace(self, shards=self._closing({s.partition for s in old}, now_ms)
                       + tuple(children))

    def close(self, ends: dict[int, int]) -> StreamMeta:
        """The closing shards in ``ends`` get their end offsets."""
        return replace(self, shards=tuple(
            replace(s, end_offset=max(ends[s.partition], s.start_offset))
            if s.partition in ends and s.end_offset == CLOSING else s for s in self.shards))

    def to_json(self) -> str:
        return orjson.dumps({
            "v": 1, "mode": self.mode, "created_ms": self.created_ms, "tags": self.tags,
            "consumers": [{"n": n, "c": c} for n, c in self.consumers],
            "shards": [{"p": s.partition, "lo": str(s.start_hash), "hi": str(s.end_hash),
                        "parent": s.parent, "adjacent": s.adjacent_parent,
                        "start": s.start_offset, "end": s.end_offset,
                        "c": s.created_ms, "x": s.closed_ms}
                       for s in self.shards]}).decode()

    @staticmethod
    def from_json(text: str) -> StreamMeta:
        """Parse the document; ValueError when it is not one."""
        try:
            doc = orjson.loads(text)
            shards = tuple(ShardMeta(int(s["p"]), int(s["lo"]), int(s["hi"]),
                                     s.get("parent"), s.get("adjacent"),
                                     int(s.get("start", 0)), s.get("end"), s.get("c"),
                                     s.get("x"))
                           for s in doc["shards"])
            meta = StreamMeta(str(doc.get("mode", PROVISIONED)), int(doc.get("created_ms", 0)),
                              shards, {str(k): str(v) for k, v in doc.get("tags", {}).items()},
                              tuple((str(c["n"]), int(c["c"]))
                                    for c in doc.get("consumers", [])))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a kinesis.stream document: {exc}") from None
        if not shards or any(not 0 <= s.start_hash <= s.end_hash <= MAX_HASH_KEY
                             for s in shards):
            raise ValueError("not a kinesis.stream document: bad shard ranges")
        return meta
