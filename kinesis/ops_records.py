"""Record operations: PutRecord(s) (routing by hash range, per-shard batches, forwarding
to remote leaders), GetShardIterator, GetRecords and SubscribeToShard's events.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

from kinesis import hashing, iterators, sequence
from kinesis import records as krecords
from kinesis.cluster import TopicView
from kinesis.codec import Timestamp
from kinesis.core import (
    BATCH_BYTES,
    GET_RECORDS_BYTES,
    JSON_WIRE,
    SUBSCRIPTION_S,
    Forward,
    StreamsCore,
    Subscription,
    now_ms,
)
from kinesis.errors import KinesisError, invalid, not_found, stream_not_found
from kinesis.metadata import (
    StreamMeta,
    shard_id,
)
from kinesis.validation import stream_name
from protocol.errors import ErrorCode, error_name
from replication.replica_manager import FetchPartition


def _json_array(items: list[bytes]) -> orjson.Fragment:
    """A JSON array of encoded ``items`` with one copy of their bytes (brackets added to
    the first and last item, which are small, instead of around the joined whole)."""
    if not items:
        return orjson.Fragment(b"[]")
    items[0] = b"[" + items[0]
    items[-1] = items[-1] + b"]"
    return orjson.Fragment(b",".join(items))


#: Kinesis' error for writes over a shard's limit (400)
THROTTLED = "ProvisionedThroughputExceededException"


class RecordOps(StreamsCore):
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
                      ) -> dict[int, list[tuple[int, int, str | None]]]:
        """Append each shard's entries (in batches of at most ``BATCH_BYTES``); per shard,
        per record in order: (error code, offset, message). A record's offset comes from
        its own batch (another request may append between two batches of one shard)."""
        now = now_ms()
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
        out: dict[int, list[tuple[int, int, str | None]]] = {}
        for (shard, n), result in zip(owners, results, strict=True):
            out.setdefault(shard, []).extend(
                (result.error_code, result.base_offset + i, result.error_message)
                for i in range(n))
        return out

    @staticmethod
    def _put_error(code: int, message: str | None) -> tuple[str, str]:
        if code == int(ErrorCode.message_too_large) or code == int(ErrorCode.record_list_too_large):
            return "InvalidArgumentException", message or "Record too large for the topic."
        return "InternalFailure", f"Append failed: {message or error_name(code)}"

    def _throttled(self, topic: TopicView, shard: int) -> dict[str, str]:
        """A PutRecords entry refused by the shard's write limit (AWS's words)."""
        return {"ErrorCode": THROTTLED,
                "ErrorMessage": f"Rate exceeded for shard {shard_id(shard)} in stream "
                                f"{topic.name} under account {self.settings.account}."}

    def _admit(self, topic: TopicView, shard: int, entry: dict[str, Any], now_s: float
               ) -> bool:
        """Whether the shard's write limit (``kinesis.throttle``) takes this record."""
        return self.write_limits.admit(
            (topic.topic_id, shard),
            len(entry["Data"]) + len(entry["PartitionKey"].encode("utf-8")), now_s)

    async def put_record(self, req: dict[str, Any]) -> dict[str, Any]:
        topic, meta = self._stream(stream_name(req))
        self._check_size(req)
        shard = self._route(meta, req)
        leader = self._leader_elsewhere(topic, shard, req)
        if leader is not None:
            raise Forward(leader)
        if not self._admit(topic, shard, req, time.monotonic()):
            raise KinesisError(THROTTLED, self._throttled(topic, shard)["ErrorMessage"])
        put = krecords.PutEntry(req["PartitionKey"], req["Data"], req.get("ExplicitHashKey"))
        [(code, offset, message)] = (await self._append(topic, {shard: [put]}))[shard]
        if code:
            error, text = self._put_error(code, message)
            if error == "InternalFailure":
                raise KinesisError("InternalFailureException", text)
            raise invalid(text)
        return {"ShardId": shard_id(shard), "SequenceNumber": sequence.encode(shard, offset),
                "EncryptionType": "NONE"}

    async def put_records(self, req: dict[str, Any]) -> dict[str, Any]:
        topic, meta = self._stream(stream_name(req))
        entries = req["Records"]
        most = self.settings.max_record_bytes
        for entry in entries:
            # UTF-8 takes at most 4 bytes a character: the exact check only when it may fail
            if len(entry["Data"]) + 4 * len(entry["PartitionKey"]) > most:
                self._check_size(entry)
        route = self._router(meta)
        routed = [route(e) for e in entries]
        remote: dict[int, list[int]] = {}  # leader -> shards it leads
        local: set[int] = set()
        for shard in dict.fromkeys(routed):
            try:
                leader = self._leader_elsewhere(topic, shard, req)
            except KinesisError:
                leader = None  # appended below, where it fails per record
            if leader is None:
                local.add(shard)
            else:
                remote.setdefault(leader, []).append(shard)
        limited = self.write_limits.enforced
        now_s = time.monotonic()
        by_shard: dict[int, list[krecords.PutEntry]] = {}
        index_in_shard: list[int] = []  # -1: refused by the shard's write limit
        for entry, shard in zip(entries, routed, strict=True):
            if limited and shard in local and not self._admit(topic, shard, entry, now_s):
                index_in_shard.append(-1)
                continue
            puts = by_shard.setdefault(shard, [])
            index_in_shard.append(len(puts))
            puts.append(krecords.PutEntry(entry["PartitionKey"], entry["Data"],
                                          entry.get("ExplicitHashKey")))
        mine = {s: p for s, p in by_shard.items() if s in local}
        results = await self._append(topic, mine) if mine else {}
        answers = {}
        if remote:
            answers = await self._forward_puts(topic.name, by_shard, remote)
        out, failed = [], 0
        ids: dict[int, str] = {}
        for shard, i in zip(routed, index_in_shard, strict=True):
            if i < 0:
                failed += 1
                out.append(self._throttled(topic, shard))
                continue
            if shard in answers:
                entry = answers[shard][i]
                failed += "ErrorCode" in entry
                out.append(entry)
                continue
            code, offset, message = results[shard][i]
            if code:
                failed += 1
                error, text = self._put_error(code, message)
                out.append({"ErrorCode": "InternalFailure" if error == "InternalFailure"
                            else error, "ErrorMessage": text})
            else:
                out.append({"SequenceNumber": sequence.encode(shard, offset),
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
              wanted: int, json: bool = False) -> tuple[dict[str, Any], int, bool]:
        """Up to ``wanted`` records from ``offset`` (at most ``GET_RECORDS_BYTES``):
        (answer with Records, MillisBehindLatest and, at a closed shard's end, ChildShards;
        the next offset; whether the shard's end was reached). With ``json`` the Records
        are one ``orjson.Fragment``, the AWS JSON 1.1 array itself
        (``records.json_records``); otherwise plain values for ``codec``."""
        shard = meta.shard(partition)
        assert shard is not None
        out: list[Any] = []
        budget = GET_RECORDS_BYTES
        hw = -1
        last_ts = -1
        key = (topic.name, partition)
        end = shard.read_end
        stop = (1 << 62) if end is None else end
        while len(out) < wanted and budget > 0 and offset < stop:
            result = self.replicas.fetch_records(
                [(key, FetchPartition(offset, budget))], replica_id=-1, read_committed=False,
                max_bytes=budget, now_ms=now_ms())
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
            got, next_offset = krecords.scan(read.records, offset, wanted - len(out), stop)
            if got:
                last_ts = got[-1][1]
                if json:
                    out.extend(krecords.json_records(got, partition))
                else:
                    out.extend(
                        {"SequenceNumber": sequence.encode(partition, off),
                         "ApproximateArrivalTimestamp": Timestamp(ts),
                         "Data": bytes(value) if value is not None else b"",
                         "PartitionKey": bytes(k).decode("utf-8", "replace")
                         if k is not None else ""}
                        for off, ts, k, value in got)
            if next_offset <= offset:
                break
            offset = next_offset
        behind = 0 if hw < 0 or offset >= hw or last_ts < 0 else max(now_ms() - last_ts, 0)
        answer: dict[str, Any] = {
            "Records": _json_array(out) if json else out,
            "MillisBehindLatest": behind}
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
                                    now_ms())
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
                                           req.get("Limit", 10_000), bool(req.get(JSON_WIRE)))
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
