"""DescribeGroups (15) v0-6, ListGroups (16) v0-5, DeleteGroups (42) v0-2 (FindCoordinator
is ``broker.cluster.handlers``: the coordinator is the leader of the group's
``__consumer_offsets`` partition).

- DescribeGroups: an unknown group is described as Dead with no error (v0-5) or
  GROUP_ID_NOT_FOUND (v6, KIP-1043); member metadata and assignments only in Stable.
- DescribeGroups of a consumer (KIP-848) group: Dead, v6 GROUP_ID_NOT_FOUND "Group g is
  not a classic group." (as Kafka 4).
- ListGroups: v4+ ``states_filter`` (case-insensitive, classic and consumer state names),
  v5+ ``types_filter`` and ``group_type`` ("classic", "consumer" or "share": share groups
  come from ``broker.share`` when enabled).
"""

from __future__ import annotations

from typing import Any

from broker.group.service import service_for
from broker.group.state import GroupState
from broker.handlers import ApiHandler, RequestContext
from protocol.errors import ErrorCode

DESCRIBE_GROUPS, LIST_GROUPS, DELETE_GROUPS = 15, 16, 42
#: Kafka's authorized-operations bit set for a group without an authorizer:
#: READ (3), DELETE (6), DESCRIBE (8)
GROUP_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8)
NO_OPERATIONS = -(2**31)
#: how long a DeleteGroups answer waits for its tombstones to reach the in-sync replicas
DELETE_REPLICATION_WAIT_S = 5.0


async def handle_describe_groups(ctx: RequestContext, request: Any) -> Any:
    service = service_for(ctx.broker)
    version = ctx.api_version
    include_ops = bool(getattr(request, "include_authorized_operations", False))
    groups = []
    for group_id in request.groups:
        error, summary = service.call("describe_group", group_id)
        entry: dict[str, Any] = {
            "error_code": error,
            "error_message": None,
            "group_id": group_id,
            "group_state": "",
            "protocol_type": "",
            "protocol_data": "",
            "members": (),
            "authorized_operations": GROUP_OPERATIONS if include_ops else NO_OPERATIONS,
        }
        if error == ErrorCode.none and summary is None:
            entry["group_state"] = GroupState.DEAD.value
            if version >= 6:  # KIP-1043: say why
                entry["error_code"] = ErrorCode.group_id_not_found
                kind = getattr(service.coordinator, "group_type", lambda _gid: None)(group_id)
                if kind is None and _share_group(ctx, group_id):
                    kind = "share"
                entry["error_message"] = (
                    f"Group {group_id} is not a classic group." if kind in ("consumer", "share")
                    else f"Group {group_id} not found.")
        elif summary is not None:
            entry.update(
                group_state=summary.state.value,
                protocol_type=summary.protocol_type,
                protocol_data=summary.protocol_name,
                members=[
                    {
                        "member_id": m.member_id,
                        "group_instance_id": m.group_instance_id,
                        "client_id": m.client_id,
                        "client_host": m.client_host,
                        "member_metadata": m.metadata,
                        "member_assignment": m.assignment,
                    }
                    for m in summary.members
                ],
            )
        groups.append(entry)
    return ctx.build_response({"throttle_time": 0, "groups": groups})


async def handle_list_groups(ctx: RequestContext, request: Any) -> Any:
    service = service_for(ctx.broker)
    states_filter = {s.lower() for s in getattr(request, "states_filter", ()) or ()}
    types_filter = {t.lower() for t in getattr(request, "types_filter", ()) or ()}
    error, listed = service.call("list_groups", None)
    group_type = getattr(service.coordinator, "group_type", lambda _gid: "classic")
    types = {g.group_id: group_type(g.group_id) or "classic" for g in listed}
    if states_filter:  # case-insensitive; unknown names match nothing
        listed = [g for g in listed if g.state.value.lower() in states_filter]
    if types_filter:
        listed = [g for g in listed if types[g.group_id] in types_filter]
    rows = [
        {
            "group_id": g.group_id,
            "protocol_type": g.protocol_type,
            "group_state": g.state.value,
            "group_type": types[g.group_id],
        }
        for g in listed
    ]
    # KIP-932 share groups (broker.share), listed with protocol type and group type "share"
    share = ctx.broker.extensions.get("share_groups")
    if share is not None and (not types_filter or "share" in types_filter):
        rows += [
            {"group_id": g.group_id, "protocol_type": "share", "group_state": g.state,
             "group_type": "share"}
            for g in share.coordinator.list_groups()
            if not states_filter or g.state.lower() in states_filter
        ]
    return ctx.build_response({"throttle_time": 0, "error_code": error, "groups": rows})


def _share_group(ctx: RequestContext, group_id: str) -> bool:
    """A KIP-932 share group (``broker.share``) holds ``group_id``."""
    share = ctx.broker.extensions.get("share_groups")
    return share is not None and share.has_group(group_id)


async def handle_delete_groups(ctx: RequestContext, request: Any) -> Any:
    service = service_for(ctx.broker)
    names = list(dict.fromkeys(request.groups_names))
    shares = [g for g in names if _share_group(ctx, g)]
    result = service.call("delete_groups", service.now(), [g for g in names if g not in shares])
    # the tombstones are answered once replicated, or a new coordinator revives the group
    await service.store.wait_replicated(DELETE_REPLICATION_WAIT_S)
    for g in shares:  # an empty share group goes with its share-partition state
        result[g] = await ctx.broker.extensions["share_groups"].delete_group(g)
    return ctx.build_response(
        {
            "throttle_time": 0,
            "results": [{"group_id": g, "error_code": result[g]} for g in names],
        }
    )


HANDLERS = [
    ApiHandler(DESCRIBE_GROUPS, 0, 6, handle_describe_groups),
    ApiHandler(LIST_GROUPS, 0, 5, handle_list_groups),
    ApiHandler(DELETE_GROUPS, 0, 2, handle_delete_groups),
]


def on_broker_start(broker: Any) -> None:
    """Load groups and offsets from ``__consumer_offsets`` before the listener accepts
    (Kafka loads its coordinator partitions at startup) and start the retention timer."""
    service_for(broker)
