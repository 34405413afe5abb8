"""Share-group APIs (KIP-932) at Kafka 4.2's versions:

=============================== ===== ======== ===========================================
API                             key   versions notes
=============================== ===== ======== ===========================================
ShareGroupHeartbeat             76    1        membership, simple assignor
ShareGroupDescribe              77    1        members and assignments by topic id + name
ShareFetch                      78    1-2      v2: share_acquire_mode, is_renew_ack, RENEW
ShareAcknowledge                79    1-2      v2: is_renew_ack, acquisition_lock_timeout
DescribeShareGroupOffsets       90    0-1      v1: lag
AlterShareGroupOffsets          91    0        the group must be empty
DeleteShareGroupOffsets         92    0        the group must be empty
=============================== ===== ======== ===========================================

(Kafka 4.0's early-access v0 of the first four is gone in 4.1 and is not served.) They
are registered by ``on_broker_start`` only when ``share.version`` is 1 (the default), so
a broker with ``share.version=0`` advertises none of them. Kafka's inter-broker state
APIs (Read/Write/Initialize/DeleteShareGroupState) are not served: a share-partition's
leader writes ``__share_group_state`` itself (``broker.share.store``).

ShareFetch, per request: the share session is updated (``broker.share.sessions``), the
piggybacked acknowledgements are applied (per partition ``acknowledge_error_code``), and
unless the session closes (epoch -1) or the request only renews locks, records are
acquired for the member on the session's partitions led here, waiting up to
``max_wait`` for some to become available (new records appended, or locks released).
Each partition answer carries whole stored batches covering its ``acquired_records``
(clients deliver only acquired offsets); the top-level ``acquisition_lock_timeout`` is
``group.share.record.lock.duration.ms``. Incremental answers (epoch > 0) list only the
partitions with acquired records, errors or acknowledgements; a new session lists all.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from broker.group.consumer_records import TopicMetadata
from broker.group.handler_support import client_host, ms
from broker.group.handlers_admin import GROUP_OPERATIONS, NO_OPERATIONS
from broker.handlers import ApiHandler, RequestContext
from broker.share.group import ASSIGNOR_NAME
from broker.share.partition import RENEW, LogBatch, SharePartition
from broker.share.service import ShareService, share_service, wall_ms
from broker.share.sessions import FINAL_EPOCH, INITIAL_EPOCH
from broker.share.state_format import ShareSnapshot, ShareStateKey
from common.logging import get_logger
from protocol.errors import ErrorCode
from protocol.records import InvalidRecordBatch, iter_batches
from storage.errors import OffsetOutOfRangeError

log = get_logger("strom.share")

SHARE_GROUP_HEARTBEAT, SHARE_GROUP_DESCRIBE, SHARE_FETCH, SHARE_ACKNOWLEDGE = 76, 77, 78, 79
DESCRIBE_SHARE_GROUP_OFFSETS, ALTER_SHARE_GROUP_OFFSETS, DELETE_SHARE_GROUP_OFFSETS = 90, 91, 92
RECORD_LIMIT_MODE = 1
_NEW_RECORDS_MAX_BYTES = 8 * 1024 * 1024
_READ_ALL = 1 << 30

TP = tuple[uuid.UUID, int]


# ---------------------------------------------------------------------- heartbeat/describe
async def handle_share_group_heartbeat(ctx: RequestContext, request: Any) -> Any:
    service = share_service(ctx.broker)
    names = request.subscribed_topic_names
    result = service.coordinator.heartbeat(
        wall_ms(), group_id=request.group_id, member_id=request.member_id or "",
        member_epoch=request.member_epoch, rack_id=request.rack_id,
        subscribed_topic_names=None if names is None else list(names),
        client_id=ctx.client_id or "", client_host=client_host(ctx))
    if result.error == ErrorCode.none and result.member_epoch == -1:
        session = service.sessions.remove_member(request.group_id, request.member_id)
        if session is not None:
            await service.release_member(request.group_id, request.member_id,
                                         list(session.partitions))
    service.after()
    assignment = None
    if result.error == ErrorCode.none and result.assignment is not None:
        assignment = {"topic_partitions": [
            {"topic_id": t, "partitions": sorted(ps)}
            for t, ps in sorted(result.assignment.items(), key=lambda kv: str(kv[0]))]}
    return ctx.build_response({
        "throttle_time": 0, "error_code": result.error,
        "error_message": result.error_message,
        "member_id": result.member_id if result.error == ErrorCode.none else None,
        "member_epoch": result.member_epoch,
        "heartbeat_interval": result.heartbeat_interval_ms,
        "assignment": assignment,
    })


async def handle_share_group_describe(ctx: RequestContext, request: Any) -> Any:
    service = share_service(ctx.broker)
    coordinator = service.coordinator
    include_ops = bool(request.include_authorized_operations)

    def assignment(parts: dict[uuid.UUID, frozenset[int]]) -> dict[str, Any]:
        return {"topic_partitions": [
            {"topic_id": t, "topic_name": coordinator.topic_name(t) or "",
             "partitions": sorted(ps)}
            for t, ps in sorted(parts.items(), key=lambda kv: str(kv[0]))]}

    groups = []
    for d in coordinator.describe(list(request.group_ids)):
        g = d.group
        groups.append({
            "error_code": d.error, "error_message": d.error_message, "group_id": d.group_id,
            "group_state": g.state if g is not None else "Dead",
            "group_epoch": g.group_epoch if g is not None else -1,
            "assignment_epoch": g.assignment_epoch if g is not None else -1,
            "assignor_name": ASSIGNOR_NAME if g is not None else "",
            "authorized_operations": GROUP_OPERATIONS if include_ops else NO_OPERATIONS,
            "members": [] if g is None else [
                {"member_id": m.member_id, "rack_id": m.rack_id,
                 "member_epoch": m.member_epoch, "client_id": m.client_id,
                 "client_host": m.client_host,
                 "subscribed_topic_names": list(m.subscribed_topic_names),
                 "assignment": assignment(m.assigned)}
                for m in g.members.values()],
        })
    return ctx.build_response({"throttle_time": 0, "groups": groups})


# ---------------------------------------------------------------------- fetch/acknowledge
class _Partition:
    """One requested share-partition, resolved against this broker."""

    __slots__ = ("topic_id", "index", "name", "error", "ack_error", "sp", "key", "plog",
                 "acquired", "records", "acked")

    def __init__(self, topic_id: uuid.UUID, index: int) -> None:
        self.topic_id, self.index = topic_id, index
        self.name = ""
        self.error = ErrorCode.none
        self.ack_error = ErrorCode.none
        self.sp: SharePartition | None = None
        self.key: ShareStateKey | None = None
        self.plog: Any = None
        self.acquired: list[Any] = []
        self.records: bytes = b""
        self.acked = False


async def _resolve(ctx: RequestContext, service: ShareService, group_id: str,
                   topic_id: uuid.UUID, index: int, revalidate: bool = False) -> _Partition:
    p = _Partition(topic_id, index)
    info = ctx.broker.topics.get_by_id(topic_id) if topic_id is not None else None
    if info is None:
        p.error = ErrorCode.unknown_topic_id
        return p
    p.name = info.name
    if not 0 <= index < info.partitions:
        p.error = ErrorCode.unknown_topic_or_partition
        return p
    plog = ctx.broker.replica_manager.log(info.name, index)
    if plog is None:
        p.error = ErrorCode(ctx.broker.replica_manager.missing_error(info.name, index))
        return p
    p.plog = plog
    p.key = ShareStateKey(group_id, topic_id, index)
    code, p.sp = await service.share_partition(p.key, plog, revalidate=revalidate)
    if code:
        p.error = ErrorCode(code)
        p.plog = None
    return p


async def _acknowledge(service: ShareService, p: _Partition, member_id: str, batches: Any,
                 version: int, now_ms: int) -> None:
    p.acked = True
    if p.sp is None or p.key is None:
        p.ack_error = p.error
        return
    for b in batches:
        types = list(b.acknowledge_types)
        if version < 2 and RENEW in types:
            p.ack_error = ErrorCode.invalid_request
            continue
        code = p.sp.acknowledge(member_id, b.first_offset, b.last_offset, types, now_ms)
        if code and p.ack_error == ErrorCode.none:
            p.ack_error = ErrorCode(code)
    code = await service.persist(p.key, p.sp)
    if code and p.ack_error == ErrorCode.none:
        p.ack_error = ErrorCode(code)
    if p.sp.has_available():
        service.wake()


def _log_batches(plog: Any, start: int, max_bytes: int) -> list[LogBatch]:
    hw = plog.high_watermark
    if start >= hw:
        return []
    try:
        data = plog.read(start, max_bytes, max_offset=hw).records
    except OffsetOutOfRangeError:
        return []
    out = []
    try:
        for _pos, h in iter_batches(data, verify_crc=False):
            if h.last_offset >= hw:
                break
            out.append(LogBatch(h.base_offset, h.last_offset, h.is_control))
    except InvalidRecordBatch as exc:
        log.error("share_fetch_bad_batch", topic=plog.topic, partition=plog.partition,
                  offset=start, error=str(exc))
    return out


def _acquire(p: _Partition, member_id: str, max_records: int, strict: bool,
             max_bytes: int, now_ms: int) -> int:
    """Acquire for ``member_id`` on ``p``; the number of records acquired."""
    sp, plog = p.sp, p.plog
    if sp is None or plog is None or max_records <= 0:
        return 0
    full = len(sp.records) >= sp.max_in_flight  # only redeliveries fit: read no new batch
    batches = [] if full else _log_batches(plog, sp.end_offset, max_bytes)
    acquired = sp.acquire(member_id, now_ms, max_records, batches, strict=strict)
    if not acquired:
        return 0
    first = acquired[0].first_offset
    last = max(a.last_offset for a in acquired)
    try:
        data = plog.read(first, _READ_ALL, max_offset=last + 1).records
    except OffsetOutOfRangeError:
        data = b""
    p.acquired.extend(acquired)
    p.records = bytes(data)
    return sum(a.last_offset - a.first_offset + 1 for a in acquired)


def _partition_answer(ctx: RequestContext, p: _Partition) -> dict[str, Any]:
    node = int(getattr(ctx.broker.config, "node_id", 0) or 0)
    epoch = ctx.broker.replica_manager.leader_epoch(p.name, p.index) if p.name else -1
    return {
        "partition_index": p.index, "error_code": p.error, "error_message": None,
        "acknowledge_error_code": p.ack_error, "acknowledge_error_message": None,
        "current_leader": {"leader_id": node if p.plog is not None else -1,
                           "leader_epoch": epoch if p.plog is not None else -1},
        "records": p.records,
        "acquired_records": [
            {"first_offset": a.first_offset, "last_offset": a.last_offset,
             "delivery_count": a.delivery_count} for a in p.acquired],
    }


def _group_by_topic(ctx: RequestContext, parts: list[_Partition],
                    key: str) -> list[dict[str, Any]]:
    by_topic: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for p in parts:
        by_topic.setdefault(p.topic_id, []).append(_partition_answer(ctx, p))
    return [{"topic_id": t, key: ps} for t, ps in by_topic.items()]


def _top_error(ctx: RequestContext, code: ErrorCode, message: str | None,
               lock_ms: int) -> Any:
    return ctx.build_response({
        "throttle_time": 0, "error_code": code, "error_message": message,
        "acquisition_lock_timeout": lock_ms, "responses": [], "node_endpoints": []})


def _requested(topics: Any) -> list[tuple[TP, Any]]:
    return [((t.topic_id, p.partition_index), p.acknowledgement_batches)
            for t in topics or () for p in t.partitions]


async def handle_share_fetch(ctx: RequestContext, request: Any) -> Any:
    service = share_service(ctx.broker)
    await service.store.ensure_topic_ready()
    lock_ms = service.config.record_lock_duration_ms
    group_id, member_id = request.group_id or "", request.member_id or ""
    epoch = request.share_session_epoch
    requested = _requested(request.topics)
    if not group_id:
        return _top_error(ctx, ErrorCode.invalid_group_id, "The group id is empty.", lock_ms)
    if not member_id:
        return _top_error(ctx, ErrorCode.unknown_member_id, "The member id is empty.", lock_ms)
    has_acks = any(batches for _tp, batches in requested)
    if epoch == INITIAL_EPOCH and has_acks:
        return _top_error(ctx, ErrorCode.invalid_request,
                          "Acknowledge data present on initial fetch request.", lock_ms)
    forgotten = [(t.topic_id, i) for t in request.forgotten_topics_data or ()
                 for i in t.partitions]
    error, session = service.sessions.update(group_id, member_id, epoch,
                                             [tp for tp, _b in requested], forgotten,
                                             wall_ms())
    if error or session is None:
        return _top_error(ctx, ErrorCode(error), None, lock_ms)
    now = wall_ms()
    parts: dict[TP, _Partition] = {}

    async def part(tp: TP) -> _Partition:
        if tp not in parts:
            parts[tp] = await _resolve(ctx, service, group_id, tp[0], tp[1],
                                       revalidate=epoch == INITIAL_EPOCH)
        return parts[tp]

    for tp, batches in requested:
        if batches:
            await _acknowledge(service, await part(tp), member_id, batches, ctx.api_version,
                               now)
    renew_only = bool(getattr(request, "is_renew_ack", False))
    if epoch == FINAL_EPOCH:
        await service.release_member(group_id, member_id, list(session.partitions))
    elif not renew_only:
        fetching = [await part(tp) for tp in session.partitions]
        strict = getattr(request, "share_acquire_mode", 0) == RECORD_LIMIT_MODE
        max_records = request.max_records if request.max_records > 0 else 500
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(ms(request.max_wait, 0), 0) / 1000
        purgatory = ctx.broker.purgatory
        while True:
            now = wall_ms()
            budget = max_records
            for p in fetching:
                if p.acquired or p.error:
                    continue
                budget -= _acquire(p, member_id, budget, strict,
                                   min(request.max_bytes, _NEW_RECORDS_MAX_BYTES), now)
                if budget <= 0:
                    break
            got = any(p.acquired or p.error for p in fetching)
            remaining = deadline - loop.time()
            if got or remaining <= 0 or purgatory.closed or not fetching:
                break
            keys = [(p.name, p.index) for p in fetching if p.plog is not None]
            appended = purgatory.watch(keys)
            released = service.released_future()
            try:
                await asyncio.wait({appended, released}, timeout=remaining,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                purgatory.unwatch(keys, appended)
    for p in parts.values():  # a new SPSO, archived gaps or control batches
        if p.sp is not None and p.key is not None and p.sp.dirty:
            await service.persist(p.key, p.sp)
    service.after()
    if epoch == INITIAL_EPOCH:
        shown = [await part(tp) for tp in session.partitions]
    else:
        shown = [p for p in parts.values() if p.acquired or p.error or p.acked]
    return ctx.build_response({
        "throttle_time": 0, "error_code": ErrorCode.none, "error_message": None,
        "acquisition_lock_timeout": lock_ms,
        "responses": _group_by_topic(ctx, shown, "partitions"),
        "node_endpoints": [],
    })


async def handle_share_acknowledge(ctx: RequestContext, request: Any) -> Any:
    service = share_service(ctx.broker)
    await service.store.ensure_topic_ready()
    lock_ms = service.config.record_lock_duration_ms
    group_id, member_id = request.group_id or "", request.member_id or ""
    epoch = request.share_session_epoch
    if not group_id:
        return _top_error(ctx, ErrorCode.invalid_group_id, "The group id is empty.", lock_ms)
    if not member_id:
        return _top_error(ctx, ErrorCode.unknown_member_id, "The member id is empty.", lock_ms)
    if epoch == INITIAL_EPOCH:
        return _top_error(ctx, ErrorCode.invalid_share_session_epoch,
                          "A ShareAcknowledge cannot open a share session.", lock_ms)
    error, session = service.sessions.update(group_id, member_id, epoch, [], [], wall_ms())
    if error or session is None:
        return _top_error(ctx, ErrorCode(error), None, lock_ms)
    now = wall_ms()
    parts = []
    for (topic_id, index), batches in _requested(request.topics):
        p = await _resolve(ctx, service, group_id, topic_id, index)
        await _acknowledge(service, p, member_id, batches, ctx.api_version, now)
        p.error, p.ack_error = p.ack_error if p.error == ErrorCode.none else p.error, \
            ErrorCode.none
        parts.append(p)
    if epoch == FINAL_EPOCH:
        await service.release_member(group_id, member_id, list(session.partitions))
    service.after()
    return ctx.build_response({
        "throttle_time": 0, "error_code": ErrorCode.none, "error_message": None,
        "acquisition_lock_timeout": lock_ms,
        "responses": _group_by_topic(ctx, parts, "partitions"),
        "node_endpoints": [],
    })


# ---------------------------------------------------------------------- offsets admin
async def _lag(ctx: RequestContext, service: ShareService, key: ShareStateKey,
               name: str) -> tuple[int, int, int]:
    """(error, start offset, lag) of a share-partition: start offset -1 when never
    initialised; lag = records from the SPSO to the high watermark not yet acknowledged or
    archived (-1 when the partition is not led here). Cached here, else as stored."""
    plog = ctx.broker.replica_manager.log(name, key.partition)
    sp = service.cached(key) if plog is not None else None
    if sp is None:
        code, snap = await service.persister.read(key)
        if code:
            return code, -1, -1
        if snap is None:
            return 0, -1, -1
        sp = SharePartition(snap.start_offset)
        sp.load(snap.start_offset, snap.state_batches)
    if plog is None:
        return 0, sp.start_offset, -1
    done = sum(1 for o in range(sp.start_offset, sp.end_offset)
               if sp.state_of(o)[0] in (2, 4))
    return 0, sp.start_offset, max(plog.high_watermark - sp.start_offset - done, 0)


async def handle_describe_share_group_offsets(ctx: RequestContext, request: Any) -> Any:
    service = share_service(ctx.broker)
    topics = ctx.broker.topics
    groups = []
    for g in request.groups:
        described = service.coordinator.describe([g.group_id])[0]
        if described.error:
            groups.append({"group_id": g.group_id, "topics": [], "error_code": described.error,
                           "error_message": described.error_message})
            continue
        wanted: list[tuple[str, list[int]]] = []
        if g.topics is None:  # every topic-partition with share state
            by_name: dict[str, list[int]] = {}
            for key in service.keys_of_group(g.group_id):
                info = topics.get_by_id(key.topic_id)
                if info is not None:
                    by_name.setdefault(info.name, []).append(key.partition)
            wanted = sorted(by_name.items())
        else:
            wanted = [(t.topic_name, list(t.partitions)) for t in g.topics]
        out_topics = []
        for name, partitions in wanted:
            info = topics.get(name)
            entries = []
            for index in partitions:
                if info is None or info.topic_id is None or not 0 <= index < info.partitions:
                    entries.append({"partition_index": index, "start_offset": -1,
                                    "leader_epoch": -1, "lag": -1,
                                    "error_code": ErrorCode.unknown_topic_or_partition})
                    continue
                code, start, lag = await _lag(
                    ctx, service, ShareStateKey(g.group_id, info.topic_id, index), name)
                if g.topics is None and (code or start < 0):
                    continue  # all topics: only the share-partitions with state
                entries.append({"partition_index": index, "start_offset": start,
                                "leader_epoch": ctx.broker.replica_manager.leader_epoch(
                                    name, index) if start >= 0 else -1,
                                "lag": lag, "error_code": code})
            if g.topics is None and not entries:
                continue
            out_topics.append({"topic_name": name,
                               "topic_id": info.topic_id if info is not None else None,
                               "partitions": entries})
        groups.append({"group_id": g.group_id, "topics": out_topics,
                       "error_code": ErrorCode.none})
    return ctx.build_response({"throttle_time": 0, "groups": groups})


def _empty_group_error(service: ShareService, group_id: str) -> tuple[int, str | None]:
    code, message = service.coordinator.ensure_group(group_id)
    if code:
        return code, message
    if service.coordinator.groups[group_id].members:
        return ErrorCode.non_empty_group, "The group is not empty."
    return ErrorCode.none, None


async def _alter_one(ctx: RequestContext, service: ShareService, key: ShareStateKey,
                     name: str, start: int) -> int:
    """Start ``key`` afresh at ``start`` with the next state epoch. Led here: clamped to
    the log (-1 = the log end) and applied to the cached share-partition; led elsewhere:
    written to the share coordinator (its leader re-reads it when a session opens or
    its next write is fenced)."""
    plog = ctx.broker.replica_manager.log(name, key.partition)
    if plog is not None:
        code, sp = await service.share_partition(key, plog)
        if code or sp is None:
            return code
        if start < 0 or start > plog.log_end_offset:
            start = plog.log_end_offset if start < 0 else start
        sp.reset(max(start, plog.log_start_offset))
        sp.state_epoch += 1
        return await service.persist(key, sp, ctx.broker.replica_manager.leader_epoch(
            name, key.partition))
    if start < 0:
        return ErrorCode.invalid_request  # the log end is only known to the leader
    code, snap = await service.persister.read(key)
    if code:
        return code
    now = wall_ms()
    return await service.persister.write(key, ShareSnapshot(
        0, (snap.state_epoch + 1) if snap is not None else 1, -1, start, now, now, ()))


async def handle_alter_share_group_offsets(ctx: RequestContext, request: Any) -> Any:
    service = share_service(ctx.broker)
    await service.store.ensure_topic_ready()
    code, message = _empty_group_error(service, request.group_id)
    if code:
        return ctx.build_response({"throttle_time": 0, "error_code": code,
                                   "error_message": message, "responses": []})
    responses = []
    for t in request.topics:
        info = ctx.broker.topics.get(t.topic_name)
        entries = []
        for p in t.partitions:
            error = ErrorCode.none
            message = None
            if info is None or info.topic_id is None or \
                    not 0 <= p.partition_index < info.partitions:
                error = ErrorCode.unknown_topic_or_partition
            else:
                key = ShareStateKey(request.group_id, info.topic_id, p.partition_index)
                error = ErrorCode(await _alter_one(ctx, service, key, info.name,
                                                   p.start_offset))
            entries.append({"partition_index": p.partition_index, "error_code": error,
                            "error_message": message})
        responses.append({"topic_name": t.topic_name,
                          "topic_id": info.topic_id if info is not None else None,
                          "partitions": entries})
    return ctx.build_response({"throttle_time": 0, "error_code": ErrorCode.none,
                               "error_message": None, "responses": responses})


async def handle_delete_share_group_offsets(ctx: RequestContext, request: Any) -> Any:
    service = share_service(ctx.broker)
    await service.store.ensure_topic_ready()
    described = service.coordinator.describe([request.group_id])[0]
    code, message = described.error, described.error_message
    if not code and described.group is not None and described.group.members:
        code, message = ErrorCode.non_empty_group, "The group is not empty."
    if code:
        return ctx.build_response({"throttle_time": 0, "error_code": code,
                                   "error_message": message, "responses": []})
    responses = []
    for t in request.topics:
        info = ctx.broker.topics.get(t.topic_name)
        error = ErrorCode.none
        if info is None or info.topic_id is None:
            error = ErrorCode.unknown_topic_or_partition
        else:
            for key in service.keys_of_group(request.group_id):
                if key.topic_id == info.topic_id:
                    error = ErrorCode(await service.delete_state(key)) or error
        responses.append({"topic_name": t.topic_name,
                          "topic_id": info.topic_id if info is not None else None,
                          "error_code": error, "error_message": None})
    return ctx.build_response({"throttle_time": 0, "error_code": ErrorCode.none,
                               "error_message": None, "responses": responses})


SHARE_HANDLERS = [
    ApiHandler(SHARE_GROUP_HEARTBEAT, 1, 1, handle_share_group_heartbeat),
    ApiHandler(SHARE_GROUP_DESCRIBE, 1, 1, handle_share_group_describe),
    ApiHandler(SHARE_FETCH, 1, 2, handle_share_fetch),
    ApiHandler(SHARE_ACKNOWLEDGE, 1, 2, handle_share_acknowledge),
    ApiHandler(DESCRIBE_SHARE_GROUP_OFFSETS, 0, 1, handle_describe_share_group_offsets),
    ApiHandler(ALTER_SHARE_GROUP_OFFSETS, 0, 0, handle_alter_share_group_offsets),
    ApiHandler(DELETE_SHARE_GROUP_OFFSETS, 0, 0, handle_delete_share_group_offsets),
]
#: registered by on_broker_start when share.version is 1 (see module doc)
HANDLERS: list[ApiHandler] = []


def _topic_metadata(broker: Any) -> dict[str, TopicMetadata]:
    return {info.name: TopicMetadata(info.topic_id, info.name, info.partitions)
            for info in broker.topics.list() if info.topic_id is not None}


def on_broker_start(broker: Any) -> None:
    service = share_service(broker)
    if not service.config.enabled:
        return
    for handler in SHARE_HANDLERS:
        if handler.api_key not in broker.registry:
            broker.registry.register(handler.spec())
    def sync_topics(topic: str = "") -> None:
        try:
            service.coordinator.update_topic_metadata(wall_ms(), _topic_metadata(broker))
            if topic and broker.topics.get(topic) is None:  # a topic was deleted
                live = {i.topic_id for i in broker.topics.list() if i.topic_id is not None}
                task = asyncio.get_running_loop().create_task(
                    service.forget_deleted_topics(live))
                service._tasks.add(task)
                task.add_done_callback(service._tasks.discard)
                log.info("share_state_deleted_with_topic", topic=topic)
        except Exception as exc:  # a bug here must not break topic changes
            log.error("share_group_topic_sync_failed", error=repr(exc))

    broker.topics.on_change(sync_topics)
    sync_topics()
