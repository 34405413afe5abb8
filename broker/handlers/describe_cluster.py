"""DescribeCluster (key 60), v0-2: the brokers and controller id Metadata reports."""

from __future__ import annotations

from typing import Any

from broker.handlers import ApiHandler, RequestContext
from broker.handlers.metadata import CLUSTER_OPERATIONS, NOT_REQUESTED, broker_entries
from protocol.errors import ErrorCode

API_KEY = 60
BROKERS_ENDPOINT = 1


async def handle(ctx: RequestContext, request: Any) -> Any:
    endpoint_type = getattr(request, "endpoint_type", BROKERS_ENDPOINT)
    if endpoint_type != BROKERS_ENDPOINT:
        return ctx.build_response({
            "error_code": ErrorCode.unsupported_endpoint_type,
            "error_message": f"endpoint type {endpoint_type} is not served on this listener",
            "endpoint_type": endpoint_type,
            "cluster_id": ctx.broker.cluster_id,
            "controller_id": -1,
            "brokers": (),
        })
    return ctx.build_response({
        "throttle_time": 0,
        "error_code": 0,
        "endpoint_type": BROKERS_ENDPOINT,
        "cluster_id": ctx.broker.cluster_id,
        "controller_id": ctx.broker.metadata_controller_id(),
        "brokers": broker_entries(ctx),
        "cluster_authorized_operations": CLUSTER_OPERATIONS
        if request.include_cluster_authorized_operations else NOT_REQUESTED,
    })


HANDLERS = [ApiHandler(API_KEY, 0, 2, handle)]
