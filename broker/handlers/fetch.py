"""Fetch (key 1), v4-12: long poll, byte limits, incremental fetch sessions (KIP-227).

Limits, as Kafka applies them (KIP-74): the response holds at most
``min(max_bytes, fetch.max.bytes)``; partitions are read in request (or session) order;
each gets ``min(partition_max_bytes, bytes left)``; the first partition that returns
data may exceed that (one whole batch) so consumers always progress; batches are returned
whole, bounded by the high watermark (read_uncommitted) or the last stable offset
(read_committed, with the aborted transactions of the returned range).

Fetch below v10 gets UNSUPPORTED_COMPRESSION_TYPE instead of zstd batches (KIP-110).

Long poll: if fewer than ``min_bytes`` are available and ``max_wait_ms`` > 0, the fetch
waits in the purgatory until an append to one of its partitions (then re-reads) or the
deadline (then answers with what there is). Errors answer at once.

Follower fetching (KIP-392, v11+): a consumer's request carries ``rack_id`` (its
``client.rack``); for v11+ consumer fetches the replica manager also serves partitions
this broker follows (up to the follower's high watermark), and a leader configured with
``replica.selector.class`` may answer a partition with ``preferred_read_replica`` and no
records, which answers the whole request at once (as an error does). Below v11, and for
replica fetches, only leaders serve. ``strom_bytes_out_total`` counts consumer fetches
only (Kafka's BytesOutPerSec leaves replication out).

Fetch sessions (``broker.fetch_session``, v7+): epoch 0 opens a session (full answer
with its id); an incremental request (its next epoch) updates the session's partitions
and is answered with only the partitions that have records, an error, or a changed high
watermark, last stable offset or log start offset; epoch -1 closes it. Java and
kafka-python use sessions; librdkafka and aiokafka send sessionless requests (0, -1).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import Any

from broker.fetch_session import FetchSession, Key, SessionPartition
from broker.handlers import ApiHandler, RequestContext
from protocol.compat import FETCH_ZSTD_MIN_VERSION, contains_zstd
from protocol.errors import ErrorCode
from protocol.fetch_codec import encode_fetch_response
from replication.replica_manager import FetchPartition, PartitionRead

API_KEY = 1
FINAL_EPOCH = -1
INITIAL_EPOCH = 0


def requested(request: Any) -> OrderedDict[Key, SessionPartition]:
    """The partitions a request names, in request order, with their fetch parameters."""
    return OrderedDict(
        ((t.topic, p.partition), SessionPartition(p.fetch_offset, p.partition_max_bytes,
                                                  getattr(p, "current_leader_epoch", -1)))
        for t in request.topics for p in t.partitions)


def _replica_fields(request: Any) -> dict[Key, tuple[int, int]]:
    """(last fetched epoch, log start offset) per partition of a replica's request."""
    return {(t.topic, p.partition): (getattr(p, "last_fetched_epoch", -1),
                                     getattr(p, "log_start_offset", -1))
            for t in request.topics for p in t.partitions}


def client_rack(ctx: RequestContext, request: Any, replica_id: int) -> str | None:
    """A consumer's client metadata for the replica manager: its ``rack_id`` ("" when it
    has none) from Fetch v11 on; None below v11 and for replicas (leaders only)."""
    if replica_id >= 0 or ctx.api_version < 11:
        return None
    return getattr(request, "rack_id", None) or ""


def _reachable(ctx: RequestContext) -> frozenset[int] | None:
    """The brokers a consumer on this listener can be pointed to (those Metadata lists
    for it, as Kafka's ``getPartitionReplicaEndpoints``); None without a selector."""
    if ctx.broker.replica_manager.replica_selector is None:
        return None
    return frozenset(b["node_id"] for b in ctx.broker.metadata_brokers(ctx.listener))


def _entry(index: int, r: PartitionRead) -> dict[str, Any]:
    out: dict[str, Any] = {
        "partition_index": index, "error_code": r.error_code,
        "high_watermark": r.high_watermark, "last_stable_offset": r.last_stable_offset,
        "log_start_offset": r.log_start_offset, "records": r.records,
        "aborted_transactions": None if r.aborted_transactions is None else [
            {"producer_id": pid, "first_offset": first}
            for pid, first in r.aborted_transactions],
        "preferred_read_replica": r.preferred_read_replica}
    if r.diverging_epoch is not None:
        out["diverging_epoch"] = {"epoch": r.diverging_epoch[0],
                                  "end_offset": r.diverging_epoch[1]}
    return out


def read_partitions(ctx: RequestContext, request: Any,
                    wanted: OrderedDict[Key, SessionPartition], replica_id: int
                    ) -> tuple[list[tuple[str, dict[str, Any]]], int, bool]:
    """Read every wanted partition once, in order → ((topic, partition response) for each,
    bytes, any error)."""
    replica = _replica_fields(request) if replica_id >= 0 else {}
    rack = client_rack(ctx, request, replica_id)
    # the broker's fetch.max.bytes caps what a client may ask for (Kafka does the same),
    # so one request cannot make the broker build a response of gigabytes
    limit = min(getattr(request, "max_bytes", 0x7FFFFFFF), ctx.broker.config.fetch_max_bytes)
    result = ctx.broker.replica_manager.fetch_records(
        ((key, FetchPartition(p.fetch_offset, p.partition_max_bytes, p.current_leader_epoch,
                              *replica.get(key, (-1, -1)))) for key, p in wanted.items()),
        replica_id=replica_id, read_committed=getattr(request, "isolation_level", 0) == 1,
        max_bytes=limit, now_ms=time.time_ns() // 1_000_000,
        client_rack=rack, reachable=_reachable(ctx) if rack else None)
    out: list[tuple[str, dict[str, Any]]] = []
    errors = result.errors
    for (name, index), read in result.reads:
        entry = _entry(index, read)
        records = entry["records"]
        if records and ctx.api_version < FETCH_ZSTD_MIN_VERSION and contains_zstd(records):
            entry["records"] = b""  # KIP-110: this client version cannot have zstd data
            entry["error_code"] = ErrorCode.unsupported_compression_type
            errors = True
        out.append((name, entry))
    return out, result.total_bytes, errors


def _session_error(ctx: RequestContext, code: ErrorCode) -> Any:
    return ctx.build_response({"throttle_time": 0, "error_code": code, "session_id": 0,
                               "responses": ()})


async def handle(ctx: RequestContext, request: Any) -> Any:
    replica_id = int(getattr(request, "replica_id", -1))
    replica_state = getattr(request, "replica_state", None)
    if replica_state is not None:
        replica_id = int(replica_state.replica_id)
    session_id = getattr(request, "session_id", 0)
    epoch = getattr(request, "session_epoch", FINAL_EPOCH)
    cache = ctx.broker.fetch_sessions
    now_ms = int(time.monotonic() * 1000)
    session: FetchSession | None = None
    if epoch in (INITIAL_EPOCH, FINAL_EPOCH):  # a full request
        if session_id:
            cache.remove(session_id)
        wanted = requested(request)
        if epoch == INITIAL_EPOCH:
            session = cache.create(wanted, now_ms)
    else:
        session = cache.get(session_id, now_ms) if session_id else None
        if session is None:
            return _session_error(ctx, ErrorCode.fetch_session_id_not_found)
        if epoch != session.next_epoch:
            return _session_error(ctx, ErrorCode.invalid_fetch_session_epoch)
        wanted = session.partitions
        for key, asked in requested(request).items():
            known = wanted.get(key)
            if known is None:
                wanted[key] = asked
            else:
                known.fetch_offset = asked.fetch_offset
                known.partition_max_bytes = asked.partition_max_bytes
                known.current_leader_epoch = asked.current_leader_epoch
        for topic in getattr(request, "forgotten_topics_data", None) or ():
            for index in topic.partitions:
                wanted.pop((topic.topic, index), None)
    purgatory = ctx.broker.purgatory
    loop = asyncio.get_running_loop()
    deadline = loop.time() + request.max_wait.total_seconds()
    keys = list(wanted)
    while True:
        read, total, errors = read_partitions(ctx, request, wanted, replica_id)
        remaining = deadline - loop.time()
        if total >= request.min_bytes or errors or remaining <= 0 or purgatory.closed \
                or not keys:
            break
        fut = purgatory.watch(keys, replica=replica_id >= 0)
        try:
            await asyncio.wait_for(fut, remaining)
        except TimeoutError:
            pass
        finally:
            purgatory.unwatch(keys, fut)
    if session is not None:
        # remember what the client was told; an incremental answer shows only news
        # a preferred read replica is always news (the client must move)
        news = [cached.changed(part) or part["preferred_read_replica"] >= 0
                for cached, (_, part) in zip(wanted.values(), read, strict=True)]
        if epoch != INITIAL_EPOCH:
            read = [entry for entry, new in zip(read, news, strict=True) if new]
            session.served([(name, part["partition_index"]) for name, part in read
                            if part["records"]], now_ms)
    by_topic: dict[str, list[dict[str, Any]]] = {}
    bytes_out = ctx.broker.metrics.bytes_out
    for name, part in read:
        by_topic.setdefault(name, []).append(part)
        if part["records"] and replica_id < 0:
            bytes_out.inc(name, amount=len(part["records"]))
    # hand-written encoder (protocol.fetch_codec: same bytes, ~60 µs less per answer; a
    # leader sends one to each follower per produce round), record sets by reference
    return encode_fetch_response(ctx.api_version, {
        "throttle_time": 0, "error_code": 0,
        "session_id": session.session_id if session is not None else 0,
        "responses": [{"topic": name, "partitions": parts} for name, parts in by_topic.items()]})


HANDLERS = [ApiHandler(API_KEY, 4, 12, handle)]
