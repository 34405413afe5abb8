"""Stream-level operations: lifecycle, listings, shard listings with Kinesis' shard
filters, limits, mode, tags and retention (the topic's ``retention.ms``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from kinesis import iterators
from kinesis.cluster import TopicView
from kinesis.codec import Timestamp
from kinesis.core import (
    BATCH_BYTES,
    DEFAULT_RETENTION_MS,
    HOUR_MS,
    MAX_RETENTION_HOURS,
    MAX_TAGS,
    MIN_RETENTION_HOURS,
    StreamsCore,
    next_token,
    now_ms,
    read_token,
)
from kinesis.errors import KinesisError, in_use, invalid, limit, stream_not_found
from kinesis.metadata import (
    CONFIG_KEY,
    ON_DEMAND,
    ON_DEMAND_SHARDS,
    PROVISIONED,
    StreamMeta,
    parse_shard_id,
)
from kinesis.validation import stream_name
from protocol.errors import ErrorCode, error_name


class StreamOps(StreamsCore):
    """CreateStream, DeleteStream, ListStreams, DescribeStream(Summary), ListShards,
    DescribeLimits, UpdateStreamMode, tags and retention."""

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
        meta = StreamMeta.new(count, mode, now_ms(), req.get("Tags"))
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
            after = read_token(token).get("after")
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
            out["NextToken"] = next_token({"after": page[-1]})
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
            doc = read_token(token)
            if now_ms() - int(doc.get("t", 0)) > iterators.TTL_MS:
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
            out["NextToken"] = next_token({"s": name, "after": page[-1], "f": shard_filter,
                                       "t": now_ms()})
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
            ts = now_ms() - topic.retention_ms if topic.retention_ms >= 0 else 0
        else:
            ts = int(f["Timestamp"])
        ts = max(ts, meta.created_ms)
        if kind.startswith("AT_"):
            return [p for p in shards if (s := meta.shard(p)) is not None and s.open_at(ts)]
        return [p for p in shards if (s := meta.shard(p)) is not None
                and (s.closed_ms is None or s.closed_ms > ts)]


    async def describe_limits(self, req: dict[str, Any]) -> dict[str, Any]:
        shards, on_demand = self._open_counts()
        return {"ShardLimit": self.settings.shard_limit, "OpenShardCount": shards,
                "OnDemandStreamCount": on_demand,
                "OnDemandStreamCountLimit": self.settings.on_demand_stream_limit}


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
