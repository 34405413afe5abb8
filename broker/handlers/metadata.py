"""Metadata (key 3), v0-12.

Brokers, the controller id and each partition's leader, leader epoch, replicas, ISR and
offline replicas come from the broker (``Broker.metadata_*``: the metadata image of the
quorum). Topics requested but unknown are auto-created (``Broker.auto_create_topic``,
``num.partitions``) when
``auto.create.topics.enable`` is true and the request allows it (v4+ flag; always for
v0-3), except internal topics and illegal names (INVALID_TOPIC_EXCEPTION). As Kafka's
broker (its auto-creation's CreateTopics goes to the controller in an Envelope with the
Metadata request's principal and client id), the creation is charged to the client's
KIP-599 ``controller_mutation_rate`` and, as a strict CreateTopics, refused while that
bucket is in debt (the topic is then LEADER_NOT_AVAILABLE and a later Metadata request
tries again); the Metadata response itself is never throttled for it. Topics
requested by id (v10+) that do not exist get UNKNOWN_TOPIC_ID.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from broker.handlers import ApiHandler, RequestContext
from broker.topics import InvalidTopicName, TopicError, validate_topic_name
from common.topics.names import INTERNAL_TOPICS
from protocol.errors import ErrorCode

API_KEY = 3
ZERO_UUID = UUID(int=0)

# Authorized operations (KIP-430) with no authorizer: everything is allowed. Bit n set =
# AclOperation code n: READ 3, WRITE 4, CREATE 5, DELETE 6, ALTER 7, DESCRIBE 8,
# CLUSTER_ACTION 9, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11, IDEMPOTENT_WRITE 12.
NOT_REQUESTED = -(2**31)
TOPIC_OPERATIONS = sum(1 << op for op in (3, 4, 5, 6, 7, 8, 10, 11))
CLUSTER_OPERATIONS = sum(1 << op for op in (5, 7, 8, 9, 10, 11, 12))


def broker_entries(ctx: RequestContext) -> list[dict[str, Any]]:
    """The brokers clients may talk to, with their endpoint on the listener of this
    request (``Broker.metadata_brokers``)."""
    return ctx.broker.metadata_brokers(ctx.listener)


def topic_entry(ctx: RequestContext, info: Any) -> dict[str, Any]:
    return {
        "error_code": 0,
        "name": info.name,
        "topic_id": info.topic_id,
        "is_internal": info.name in INTERNAL_TOPICS,
        "partitions": ctx.broker.metadata_partitions(info),
    }


def error_topic(name: str | None, code: int, topic_id: UUID | None = None) -> dict[str, Any]:
    return {"error_code": code, "name": name, "topic_id": topic_id or ZERO_UUID,
            "is_internal": False, "partitions": ()}


async def _auto_create(ctx: RequestContext, name: str) -> dict[str, Any]:
    try:
        validate_topic_name(name)
    except InvalidTopicName:
        return error_topic(name, ErrorCode.invalid_topic_exception)
    if name in INTERNAL_TOPICS:
        return error_topic(name, ErrorCode.unknown_topic_or_partition)
    try:
        info = await ctx.broker.auto_create_topic(name, ctx)
    except TopicError as exc:
        if exc.error_code == ErrorCode.topic_already_exists:
            existing = ctx.broker.topics.get(name)
            if existing is not None:
                return topic_entry(ctx, existing)
        return error_topic(name, exc.error_code)
    return topic_entry(ctx, info)


async def handle(ctx: RequestContext, request: Any) -> Any:
    topics_registry = ctx.broker.topics
    version = ctx.api_version
    requested = request.topics
    if version == 0 and not requested:
        requested = None  # v0: an empty list means all topics
    allow_auto = getattr(request, "allow_auto_topic_creation", True)
    auto = ctx.broker.config.auto_create_topics_enable and allow_auto
    out: list[dict[str, Any]] = []
    topic_ops = TOPIC_OPERATIONS if getattr(
        request, "include_topic_authorized_operations", False) else NOT_REQUESTED
    cluster_ops = CLUSTER_OPERATIONS if getattr(
        request, "include_cluster_authorized_operations", False) else NOT_REQUESTED
    if requested is None:
        out = [topic_entry(ctx, info) for info in topics_registry.list()]
    else:
        seen: set[Any] = set()
        for t in requested:
            name = t.name
            topic_id = getattr(t, "topic_id", None)
            if version < 12 and (name is None or (topic_id is not None
                                                  and topic_id != ZERO_UUID)):
                # v10-11 carry topic ids in the schema but Kafka refuses them (and null
                # names) before v12: INVALID_REQUEST, named "" (the name is not nullable)
                out.append(error_topic(name or "", ErrorCode.invalid_request))
                continue
            if name is None and topic_id is not None and topic_id != ZERO_UUID:
                key: Any = topic_id
                if key in seen:
                    continue
                seen.add(key)
                info = topics_registry.get_by_id(topic_id)
                out.append(
                    topic_entry(ctx, info) if info is not None
                    else error_topic(None, ErrorCode.unknown_topic_id, topic_id)
                )
                continue
            if name in seen:
                continue
            seen.add(name)
            info = topics_registry.get(name) if name is not None else None
            if info is not None:
                out.append(topic_entry(ctx, info))
                continue
            try:
                validate_topic_name(name)
            except InvalidTopicName:
                out.append(error_topic(name, ErrorCode.invalid_topic_exception))
                continue
            if auto:
                out.append(await _auto_create(ctx, name))
            else:
                out.append(error_topic(name, ErrorCode.unknown_topic_or_partition))
    for entry in out:
        entry["topic_authorized_operations"] = topic_ops
    return ctx.build_response({
        "throttle_time": 0,
        "brokers": broker_entries(ctx),
        "cluster_id": ctx.broker.cluster_id,
        "controller_id": ctx.broker.metadata_controller_id(),
        "topics": out,
        "cluster_authorized_operations": cluster_ops,
    })


HANDLERS = [ApiHandler(API_KEY, 0, 12, handle)]
