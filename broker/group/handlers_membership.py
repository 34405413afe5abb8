"""JoinGroup (11) v0-9, SyncGroup (14) v0-5, Heartbeat (12) v0-4, LeaveGroup (13) v0-5.

Thin: kio request -> ``GroupService`` -> kio response. JoinGroup and SyncGroup may wait
for the rest of the group (the coordinator's purgatory); the wait suspends only this
request's coroutine. Version details:

- JoinGroup v4+ sends MEMBER_ID_REQUIRED to a dynamic member's first join (KIP-394);
  v0 has no rebalance timeout (the session timeout is used); v5+ carries
  group.instance.id; v7+ protocol type and nullable protocol name in the response;
  v9 skip_assignment (KIP-814).
- SyncGroup v5 checks protocol type/name (INCONSISTENT_GROUP_PROTOCOL) and echoes them.
- LeaveGroup v0-2 name one member; the response's top-level error is that member's
  error. v3+ batch members (KIP-345) with per-member errors.
- JoinGroup, SyncGroup and LeaveGroup answers wait (bounded) until the group records
  written so far (the leader's SyncGroup assignment, a static member's replacement, a
  leave) are on the in-sync replicas, as Kafka answers a group write once committed.
"""

from __future__ import annotations

from typing import Any

from broker.group.handler_support import client_host, ms
from broker.group.service import service_for
from broker.handlers import ApiHandler, RequestContext
from protocol.errors import ErrorCode

JOIN_GROUP, HEARTBEAT, LEAVE_GROUP, SYNC_GROUP = 11, 12, 13, 14
#: how long a JoinGroup/SyncGroup/LeaveGroup answer waits for the group record to reach
#: the in-sync replicas
LEAVE_REPLICATION_WAIT_S = 5.0


async def handle_join_group(ctx: RequestContext, request: Any) -> Any:
    version = ctx.api_version
    service = service_for(ctx.broker)
    session_ms = ms(request.session_timeout)
    rebalance_ms = ms(getattr(request, "rebalance_timeout", None), -1)
    result = await service.join(
        group_id=request.group_id,
        member_id=request.member_id,
        group_instance_id=getattr(request, "group_instance_id", None),
        client_id=ctx.client_id or "",
        client_host=client_host(ctx),
        session_timeout_ms=session_ms,
        rebalance_timeout_ms=rebalance_ms,
        protocol_type=request.protocol_type,
        protocols=[(p.name, p.metadata) for p in request.protocols],
        require_known_member_id=version >= 4,
        version=version,
    )
    # a static member's replacement stores the group before this answer: it must survive
    # a failover of the coordinator, as every other group write
    await service.store.wait_replicated(LEAVE_REPLICATION_WAIT_S)
    ok = result.error == ErrorCode.none
    protocol_name = result.protocol_name if ok else None
    if protocol_name is None and version < 7:
        protocol_name = ""
    return ctx.build_response(
        {
            "throttle_time": 0,
            "error_code": result.error,
            "generation_id": result.generation_id,
            "protocol_type": result.protocol_type if ok else None,
            "protocol_name": protocol_name,
            "leader": result.leader_id,
            "skip_assignment": result.skip_assignment,
            "member_id": result.member_id,
            "members": [
                {"member_id": m, "group_instance_id": i, "metadata": meta}
                for m, i, meta in result.members
            ],
        }
    )


async def handle_sync_group(ctx: RequestContext, request: Any) -> Any:
    service = service_for(ctx.broker)
    assignments: dict[str, bytes] = {}
    for a in request.assignments:
        assignments[a.member_id] = a.assignment
    result = await service.sync(
        group_id=request.group_id,
        generation_id=request.generation_id,
        member_id=request.member_id,
        group_instance_id=getattr(request, "group_instance_id", None),
        protocol_type=getattr(request, "protocol_type", None),
        protocol_name=getattr(request, "protocol_name", None),
        assignments=assignments,
    )
    # as Kafka (storeGroup appends with acks=all and answers in its callback): the
    # assignment record must be on the replicas, or the next coordinator loads the group
    # without it and the members' commits and heartbeats fail on the new coordinator
    await service.store.wait_replicated(LEAVE_REPLICATION_WAIT_S)
    ok = result.error == ErrorCode.none
    return ctx.build_response(
        {
            "throttle_time": 0,
            "error_code": result.error,
            "protocol_type": result.protocol_type if ok else None,
            "protocol_name": result.protocol_name if ok else None,
            "assignment": result.assignment,
        }
    )


async def handle_heartbeat(ctx: RequestContext, request: Any) -> Any:
    service = service_for(ctx.broker)
    error = service.call(
        "heartbeat",
        service.now(),
        group_id=request.group_id,
        generation_id=request.generation_id,
        member_id=request.member_id,
        group_instance_id=getattr(request, "group_instance_id", None),
    )
    return ctx.build_response({"throttle_time": 0, "error_code": error})


async def handle_leave_group(ctx: RequestContext, request: Any) -> Any:
    service = service_for(ctx.broker)
    if ctx.api_version < 3:
        members = [(request.member_id, None)]
    else:
        members = [(m.member_id, m.group_instance_id) for m in request.members]
    top, per = service.call(
        "leave_group", service.now(), group_id=request.group_id, members=members
    )
    # as Kafka's coordinator (a write answered once committed): the group record that
    # drops the members must survive a failover of the coordinator, or the next
    # coordinator keeps them and a new member's join waits out their session timeout
    await service.store.wait_replicated(LEAVE_REPLICATION_WAIT_S)
    if ctx.api_version < 3:
        error = top if top != ErrorCode.none or not per else per[0][2]
        return ctx.build_response({"throttle_time": 0, "error_code": error})
    return ctx.build_response(
        {
            "throttle_time": 0,
            "error_code": top,
            "members": [
                {"member_id": m, "group_instance_id": i, "error_code": e} for m, i, e in per
            ],
        }
    )


HANDLERS = [
    ApiHandler(JOIN_GROUP, 0, 9, handle_join_group),
    ApiHandler(SYNC_GROUP, 0, 5, handle_sync_group),
    ApiHandler(HEARTBEAT, 0, 4, handle_heartbeat),
    ApiHandler(LEAVE_GROUP, 0, 5, handle_leave_group),
]
