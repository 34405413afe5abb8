"""FindCoordinator (10) v0-6, DescribeGroups (15) v0-6, ListGroups (16) v0-5,
DeleteGroups (42) v0-2.

- FindCoordinator: this node coordinates every group (it leads every
  ``__consumer_offsets`` partition, created here on first use). v4+ batch
  ``coordinator_keys``. Transaction coordinators (key type 1) do not exist yet: those
  keys answer COORDINATOR_NOT_AVAILABLE; unknown key types INVALID_REQUEST.
- DescribeGroups: an unknown group is described as Dead with no error (v0-5) or
  GROUP_ID_NOT_FOUND (v6, KIP-1043); member metadata and assignments only in Stable.
- ListGroups: v4+ ``states_filter`` (case-insensitive), v5+ ``types_filter`` (every
  group here is "classic").
"""

from __future__ import annotations

from typing import Any

from broker.group.service import service_for
from broker.group.state import GroupState
from broker.handlers import ApiHandler, RequestContext
from protocol.errors import ErrorCode

FIND_COORDINATOR, DESCRIBE_GROUPS, LIST_GROUPS, DELETE_GROUPS = 10, 15, 16, 42
KEY_TYPE_GROUP, KEY_TYPE_TRANSACTION = 0, 1
#: Kafka's authorized-operations bit set for a group without an authorizer:
#: READ (3), DELETE (6), DESCRIBE (8)
GROUP_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8)
NO_OPERATIONS = -(2**31)


def _coordinator(ctx: RequestContext, key: str, key_type: int) -> dict[str, Any]:
    b = ctx.broker
    entry: dict[str, Any] = {
        "key": key,
        "node_id": -1,
        "host": "",
        "port": -1,
        "error_code": ErrorCode.none,
        "error_message": None,
    }
    if key_type == KEY_TYPE_GROUP:
        error = service_for(b).store.ensure_topic()
        if error == ErrorCode.none:
            entry.update(node_id=b.node_id, host=b.advertised_host, port=b.advertised_port)
        else:
            entry.update(error_code=error, error_message="The coordinator is not available.")
    elif key_type == KEY_TYPE_TRANSACTION:
        entry.update(
            error_code=ErrorCode.coordinator_not_available,
            error_message="Transactions are not supported by this broker yet.",
        )
    else:
        entry.update(
            error_code=ErrorCode.invalid_request,
            error_message=f"Unknown coordinator key type {key_type}.",
        )
    return entry


async def handle_find_coordinator(ctx: RequestContext, request: Any) -> Any:
    key_type = int(getattr(request, "key_type", KEY_TYPE_GROUP))
    if ctx.api_version >= 4:
        coordinators = [_coordinator(ctx, k, key_type) for k in request.coordinator_keys]
        return ctx.build_response({"throttle_time": 0, "coordinators": coordinators})
    entry = _coordinator(ctx, request.key, key_type)
    entry.pop("key")
    if ctx.api_version == 0 and entry["error_code"] != ErrorCode.none:
        entry.update(node_id=-1, host="", port=-1)
    return ctx.build_response({"throttle_time": 0, **entry})


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
            if version >= 6:
                entry["error_code"] = ErrorCode.group_id_not_found
                entry["error_message"] = f"Group {group_id} not found."
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
    states_filter = tuple(getattr(request, "states_filter", ()) or ())
    types_filter = tuple(getattr(request, "types_filter", ()) or ())
    states: list[GroupState] | None = None
    if states_filter:
        states = [s for s in (GroupState.parse(x) for x in states_filter) if s is not None]
    error, listed = service.call("list_groups", states)
    if states_filter and not states:
        listed = []  # only unknown state names: nothing matches
    if types_filter and "classic" not in {t.lower() for t in types_filter}:
        listed = []
    return ctx.build_response(
        {
            "throttle_time": 0,
            "error_code": error,
            "groups": [
                {
                    "group_id": g.group_id,
                    "protocol_type": g.protocol_type,
                    "group_state": g.state.value,
                    "group_type": "classic",
                }
                for g in listed
            ],
        }
    )


async def handle_delete_groups(ctx: RequestContext, request: Any) -> Any:
    service = service_for(ctx.broker)
    names = list(dict.fromkeys(request.groups_names))
    result = service.call("delete_groups", service.now(), names)
    return ctx.build_response(
        {
            "throttle_time": 0,
            "results": [{"group_id": g, "error_code": result[g]} for g in names],
        }
    )


HANDLERS = [
    ApiHandler(FIND_COORDINATOR, 0, 6, handle_find_coordinator),
    ApiHandler(DESCRIBE_GROUPS, 0, 6, handle_describe_groups),
    ApiHandler(LIST_GROUPS, 0, 5, handle_list_groups),
    ApiHandler(DELETE_GROUPS, 0, 2, handle_delete_groups),
]


def on_broker_start(broker: Any) -> None:
    """Load groups and offsets from ``__consumer_offsets`` before the listener accepts
    (Kafka loads its coordinator partitions at startup) and start the retention timer."""
    service_for(broker)
