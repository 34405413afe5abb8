"""SplitShard, MergeShards and UpdateShardCount in Kinesis' lineage (see ``_reshard``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from kinesis import hashing, iterators
from kinesis.cluster import TopicView
from kinesis.core import StreamsCore, now_ms
from kinesis.errors import KinesisError, in_use, invalid, limit
from kinesis.metadata import (
    CLOSING,
    CONFIG_KEY,
    StreamMeta,
    shard_id,
)
from kinesis.validation import stream_name
from protocol.errors import error_name


class ReshardOps(StreamsCore):
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
                                    now_ms())
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
        await self._reshard(topic, meta, lambda m: m.split(partition, start, now_ms()))
        return {}

    async def merge_shards(self, req: dict[str, Any]) -> dict[str, Any]:
        topic, meta = self._stream(stream_name(req))
        a = self._open_shard(topic, meta, req["ShardToMerge"])
        b = self._open_shard(topic, meta, req["AdjacentShardToMerge"])
        await self._reshard(topic, meta, lambda m: m.merge(a, b, now_ms()))
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
            await self._reshard(topic, meta, lambda m: m.rescale(target, now_ms()))
        return {"StreamName": topic.name, "StreamARN": self.arn(topic.name),
                "CurrentShardCount": current, "TargetShardCount": target}
