"""Registered stream consumers (enhanced fan-out), kept in the stream document.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from kinesis.cluster import TopicView
from kinesis.codec import Timestamp
from kinesis.core import MAX_CONSUMERS, StreamsCore, next_token, now_ms, read_token
from kinesis.errors import in_use, invalid, limit, not_found
from kinesis.metadata import (
    StreamMeta,
)
from kinesis.validation import CONSUMER_ARN, stream_name


class ConsumerOps(StreamsCore):
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
        created = now_ms()
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
            after = read_token(token).get("after", "")
            consumers = [c for c in consumers if c[0] > after]
        count = req.get("MaxResults", 100)
        page = consumers[:count]
        out: dict[str, Any] = {"Consumers": [self._consumer(topic.name, n, c)
                                             for n, c in page]}
        if len(consumers) > count:
            out["NextToken"] = next_token({"after": page[-1][0]})
        return out
