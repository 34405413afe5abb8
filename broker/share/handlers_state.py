"""The share coordinator's inter-broker APIs (KIP-932), v0: ReadShareGroupState (84),
WriteShareGroupState (85), DeleteShareGroupState (86).

A share-partition's leader calls them on the leader of the share-partition's
``__share_group_state`` partition (``broker.share.persister``); this node answers from
and writes to the partitions it leads: NOT_COORDINATOR for a key whose state partition is
led elsewhere, FENCED_STATE_EPOCH for a write older than the stored state epoch. A key
never written reads as state epoch 0, start offset -1 (not initialised). Registered with
the other share APIs (only while ``share.version`` is 1).
"""

from __future__ import annotations

import uuid
from typing import Any

from kio.schema.errors import ErrorCode

from broker.handlers import ApiHandler, RequestContext
from broker.share.partition import StateBatch
from broker.share.service import share_service, wall_ms
from broker.share.state_format import ShareSnapshot, ShareStateKey

READ_SHARE_GROUP_STATE, WRITE_SHARE_GROUP_STATE, DELETE_SHARE_GROUP_STATE = 84, 85, 86


def _malformed(group_id: str | None, topic_id: uuid.UUID | None) -> bool:
    """A key no share-partition leader sends (no group, a null or zero topic id): each of
    its partitions is answered INVALID_REQUEST, as Kafka's share coordinator does."""
    return not group_id or topic_id is None or topic_id.int == 0


def _refused(t: Any) -> dict[str, Any]:
    return {"topic_id": t.topic_id, "partitions": [
        {"partition": p.partition, "error_code": ErrorCode.invalid_request,
         "error_message": "a share state key needs a group id and a topic id"}
        for p in t.partitions]}


async def handle_read_share_group_state(ctx: RequestContext, request: Any) -> Any:
    service = share_service(ctx.broker)
    await service.store.ensure_topic_ready()
    results = []
    for t in request.topics:
        if _malformed(request.group_id, t.topic_id):
            results.append({"topic_id": t.topic_id, "partitions": [
                {"partition": p.partition, "error_code": ErrorCode.invalid_request,
                 "error_message": "a share state key needs a group id and a topic id",
                 "state_epoch": 0, "start_offset": -1, "state_batches": []}
                for p in t.partitions]})
            continue
        parts = []
        for p in t.partitions:
            code, snap = service.persister.read_local(
                ShareStateKey(request.group_id, t.topic_id, p.partition))
            parts.append({
                "partition": p.partition, "error_code": code, "error_message": None,
                "state_epoch": snap.state_epoch if snap is not None else 0,
                "start_offset": snap.start_offset if snap is not None else -1,
                "state_batches": [
                    {"first_offset": b.first_offset, "last_offset": b.last_offset,
                     "delivery_state": b.state, "delivery_count": b.delivery_count}
                    for b in (snap.state_batches if snap is not None else ())],
            })
        results.append({"topic_id": t.topic_id, "partitions": parts})
    return ctx.build_response({"results": results})


async def handle_write_share_group_state(ctx: RequestContext, request: Any) -> Any:
    service = share_service(ctx.broker)
    await service.store.ensure_topic_ready()
    now = wall_ms()
    results = []
    for t in request.topics:
        if _malformed(request.group_id, t.topic_id):
            results.append(_refused(t))
            continue
        parts = []
        for p in t.partitions:
            snap = ShareSnapshot(0, p.state_epoch, p.leader_epoch, p.start_offset, now, now,
                                 tuple(StateBatch(b.first_offset, b.last_offset,
                                                  b.delivery_state, b.delivery_count)
                                       for b in p.state_batches))
            key = ShareStateKey(request.group_id, t.topic_id, p.partition)
            code = await service.persister.replicated(key, service.persister.write_local(key, snap))
            if code == 0:
                service.coordinator.stored.add(request.group_id)
            parts.append({"partition": p.partition, "error_code": code,
                          "error_message": None})
        results.append({"topic_id": t.topic_id, "partitions": parts})
    return ctx.build_response({"results": results})


async def handle_delete_share_group_state(ctx: RequestContext, request: Any) -> Any:
    service = share_service(ctx.broker)
    await service.store.ensure_topic_ready()
    results = []
    for t in request.topics:
        if _malformed(request.group_id, t.topic_id):
            results.append(_refused(t))
            continue
        parts = []
        for p in t.partitions:
            key = ShareStateKey(request.group_id, t.topic_id, p.partition)
            code = await service.persister.replicated(key, service.persister.delete_local(key))
            parts.append({"partition": p.partition, "error_code": code,
                          "error_message": None})
        results.append({"topic_id": t.topic_id, "partitions": parts})
    return ctx.build_response({"results": results})


STATE_HANDLERS = [
    ApiHandler(READ_SHARE_GROUP_STATE, 0, 0, handle_read_share_group_state),
    ApiHandler(WRITE_SHARE_GROUP_STATE, 0, 0, handle_write_share_group_state),
    ApiHandler(DELETE_SHARE_GROUP_STATE, 0, 0, handle_delete_share_group_state),
]
#: registered by on_broker_start when share.version is 1
HANDLERS: list[ApiHandler] = []


def on_broker_start(broker: Any) -> None:
    service = share_service(broker)
    if not service.config.enabled:
        return
    for handler in STATE_HANDLERS:
        if handler.api_key not in broker.registry:
            broker.registry.register(handler.spec())
