"""ConsumerGroupHeartbeat (68) v0-1 and ConsumerGroupDescribe (69) v0-1 (KIP-848).

Advertised only when ``group.coordinator.rebalance.protocols`` includes ``consumer``
(Kafka 4's default ``classic,consumer``): ``HANDLERS`` is empty and ``on_broker_start``
registers them, so a broker configured ``classic`` alone never lists them in ApiVersions
and clients fall back to the classic protocol.

- ConsumerGroupHeartbeat: v1 members generate their own member id (a v1 request with an
  empty id is INVALID_REQUEST); v0 members may leave it empty on their first heartbeat
  and the coordinator names them. v1 adds SubscribedTopicRegex. Assignments travel as
  topic ids; ``topic_partitions`` = what the member owns (null = unchanged). The answer
  waits (at most 5 s) until the records it caused are replicated, as Kafka's appends to
  ``__consumer_offsets`` do, so a coordinator failover keeps the epochs it announced.
- ConsumerGroupDescribe: per group GROUP_ID_NOT_FOUND ("Group g not found." / "Group g
  is not a consumer group."); members with their current and target assignments by topic
  id and name; v1 adds member_type (1 = consumer protocol member).

``on_broker_start`` also feeds the coordinator the topics (name, id, partition count) now
and after every topic change, which re-resolves regex subscriptions.
"""

from __future__ import annotations

import uuid
from typing import Any

from broker.group.consumer_records import TopicMetadata
from broker.group.handler_support import client_host, ms
from broker.group.handlers_admin import GROUP_OPERATIONS, NO_OPERATIONS
from broker.group.service import service_for
from broker.handlers import ApiHandler, RequestContext
from common.logging import get_logger
from protocol.errors import ErrorCode

log = get_logger("strom.group")

CONSUMER_GROUP_HEARTBEAT, CONSUMER_GROUP_DESCRIBE = 68, 69
#: ConsumerGroupDescribe v1 member_type: 1 = ConsumerGroupHeartbeat member, 0 = JoinGroup
CONSUMER_MEMBER_TYPE, CLASSIC_MEMBER_TYPE = 1, 0
#: how long a heartbeat answer waits for its records to reach the in-sync replicas
REPLICATION_WAIT_S = 5.0


def _owned(request: Any) -> dict[uuid.UUID, frozenset[int]] | None:
    tps = request.topic_partitions
    if tps is None:
        return None
    out: dict[uuid.UUID, frozenset[int]] = {}
    for tp in tps:
        if tp.topic_id is None:
            continue
        out[tp.topic_id] = out.get(tp.topic_id, frozenset()) | frozenset(tp.partitions)
    return out


async def handle_consumer_group_heartbeat(ctx: RequestContext, request: Any) -> Any:
    service = service_for(ctx.broker)
    share = ctx.broker.extensions.get("share_groups")
    if share is not None and request.group_id and share.has_group(request.group_id):
        # a KIP-932 share group holds the id (broker.share), as Kafka 4 answers
        return ctx.build_response({
            "throttle_time": 0, "error_code": ErrorCode.group_id_not_found,
            "error_message": f"Group {request.group_id} is not a consumer group.",
            "member_id": None, "member_epoch": 0, "heartbeat_interval": 0,
            "assignment": None})
    names = request.subscribed_topic_names
    result = service.call(
        "consumer_group_heartbeat",
        service.now(),
        group_id=request.group_id,
        member_id=request.member_id or "",
        member_epoch=request.member_epoch,
        instance_id=request.instance_id,
        rack_id=request.rack_id,
        rebalance_timeout_ms=ms(request.rebalance_timeout),
        subscribed_topic_names=None if names is None else list(names),
        subscribed_topic_regex=getattr(request, "subscribed_topic_regex", None),
        server_assignor=request.server_assignor,
        owned=_owned(request),
        client_id=ctx.client_id or "",
        client_host=client_host(ctx),
        version=ctx.api_version,
    )
    # as Kafka (acks=all on __consumer_offsets): the epochs this answer announces must
    # survive a failover of the coordinator, so wait (bounded) for the replicas
    await service.store.wait_replicated(REPLICATION_WAIT_S)
    ok = result.error == ErrorCode.none
    assignment = None
    if ok and result.assignment is not None:
        assignment = {
            "topic_partitions": [
                {"topic_id": t, "partitions": sorted(ps)}
                for t, ps in sorted(result.assignment.items(), key=lambda kv: str(kv[0]))
            ]
        }
    return ctx.build_response(
        {
            "throttle_time": 0,
            "error_code": result.error,
            "error_message": result.error_message,
            "member_id": result.member_id if ok else None,
            "member_epoch": result.member_epoch,
            "heartbeat_interval": result.heartbeat_interval_ms,
            "assignment": assignment,
        }
    )


def _assignment(coordinator: Any, partitions: dict[uuid.UUID, frozenset[int]]) -> dict[str, Any]:
    return {
        "topic_partitions": [
            {"topic_id": t, "topic_name": coordinator.topic_name(t) or "",
             "partitions": sorted(ps)}
            for t, ps in sorted(partitions.items(), key=lambda kv: str(kv[0]))
        ]
    }


async def handle_consumer_group_describe(ctx: RequestContext, request: Any) -> Any:
    service = service_for(ctx.broker)
    coordinator = service.coordinator
    include_ops = bool(request.include_authorized_operations)
    described = service.call("describe_consumer_groups", list(request.group_ids))
    groups = []
    for d in described:
        groups.append({
            "error_code": d.error,
            "error_message": d.error_message,
            "group_id": d.group_id,
            "group_state": d.state,
            "group_epoch": d.group_epoch,
            "assignment_epoch": d.assignment_epoch,
            "assignor_name": d.assignor_name,
            "authorized_operations": GROUP_OPERATIONS if include_ops else NO_OPERATIONS,
            "members": [
                {
                    "member_id": m.member.member_id,
                    "instance_id": m.member.instance_id,
                    "rack_id": m.member.rack_id,
                    "member_epoch": m.member.member_epoch,
                    "client_id": m.member.client_id,
                    "client_host": m.member.client_host,
                    "subscribed_topic_names": list(m.member.subscribed_topic_names),
                    "subscribed_topic_regex": m.member.subscribed_topic_regex,
                    "assignment": _assignment(coordinator, m.member.assigned),
                    "target_assignment": _assignment(coordinator, m.target),
                    "member_type": (CLASSIC_MEMBER_TYPE if m.member.uses_classic_protocol
                                    else CONSUMER_MEMBER_TYPE),
                }
                for m in d.members
            ],
        })
    return ctx.build_response({"throttle_time": 0, "groups": groups})


CONSUMER_HANDLERS = [
    ApiHandler(CONSUMER_GROUP_HEARTBEAT, 0, 1, handle_consumer_group_heartbeat),
    ApiHandler(CONSUMER_GROUP_DESCRIBE, 0, 1, handle_consumer_group_describe),
]
#: registered by on_broker_start when the consumer protocol is enabled (see module doc)
HANDLERS: list[ApiHandler] = []


def topic_metadata(broker: Any) -> dict[str, TopicMetadata]:
    """Every topic's (name, id, partition count) from the broker's topic registry."""
    out: dict[str, TopicMetadata] = {}
    for info in broker.topics.list():
        if info.topic_id is not None:
            out[info.name] = TopicMetadata(info.topic_id, info.name, info.partitions)
    return out


def on_broker_start(broker: Any) -> None:
    service = service_for(broker)
    if not service.coordinator.consumer_config.consumer_enabled:
        return
    for handler in CONSUMER_HANDLERS:
        if handler.api_key not in broker.registry:
            broker.registry.register(handler.spec())

    def sync_topics(_topic: str = "") -> None:
        try:
            service.call("update_topic_metadata", service.now(), topic_metadata(broker))
        except Exception as exc:  # a bug here must not break topic changes
            log.error("consumer_group_topic_sync_failed", error=repr(exc))

    broker.topics.on_change(sync_topics)
    sync_topics()
