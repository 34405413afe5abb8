"""DescribeAcls (29), CreateAcls (30), DeleteAcls (31), v1-3: answered as a Kafka broker
without an authorizer answers them.

Strom has no authorizer (every client may do everything on its PLAINTEXT listeners), so,
as Kafka with ``authorizer.class.name`` unset: DescribeAcls answers SECURITY_DISABLED,
each ACL creation and each deletion filter gets SECURITY_DISABLED, with the message "No
Authorizer is configured on the broker". ``kafka-acls.sh`` and AdminClient callers get
``SecurityDisabledException`` rather than an unsupported-API failure.
"""

from __future__ import annotations

from typing import Any

from broker.handlers import ApiHandler, RequestContext
from protocol.errors import ErrorCode

NO_AUTHORIZER = {"error_code": ErrorCode.security_disabled,
                 "error_message": "No Authorizer is configured on the broker"}


async def handle_describe_acls(ctx: RequestContext, request: Any) -> Any:
    return ctx.build_response({"throttle_time": 0, **NO_AUTHORIZER, "resources": []})


async def handle_create_acls(ctx: RequestContext, request: Any) -> Any:
    return ctx.build_response({"throttle_time": 0,
                               "results": [NO_AUTHORIZER for _ in request.creations]})


async def handle_delete_acls(ctx: RequestContext, request: Any) -> Any:
    return ctx.build_response({"throttle_time": 0, "filter_results": [
        {**NO_AUTHORIZER, "matching_acls": []} for _ in request.filters]})


HANDLERS = [
    ApiHandler(29, 1, 3, handle_describe_acls),
    ApiHandler(30, 1, 3, handle_create_acls),
    ApiHandler(31, 1, 3, handle_delete_acls),
]
