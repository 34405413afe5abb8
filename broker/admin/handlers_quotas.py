"""DescribeClientQuotas (48) and AlterClientQuotas (49), v0-1 (KIP-546;
``kafka-configs.sh --entity-type users/clients/ips --describe|--alter --add-config
'producer_byte_rate=...'``, ``controller_mutation_rate`` (KIP-599) or, for ips,
``connection_creation_rate`` (KIP-612)).

Quotas live in the metadata log (ClientQuotaRecord), decided by
``controller.metadata.quota_control``; ``broker.quotas`` enforces them.

- Describe (DESCRIBE_CONFIGS on the cluster, checked by ``broker.security.gates``) is
  answered from this broker's image; a bad filter is the top-level error (entries null).
- Alter (ALTER_CONFIGS on the cluster) is forwarded to the active controller and answered
  once this broker's image shows the change (bounded wait). On the controller listener
  (``CONTROLLER_HANDLERS``) it is decided against the active image and answered once
  committed; NOT_CONTROLLER from a node that is not the active controller.
"""

from __future__ import annotations

import asyncio
from typing import Any

from broker.handlers import ApiHandler, RequestContext
from controller.metadata import quota_control
from controller.quorum_controller import NotControllerError
from protocol.errors import ErrorCode

DESCRIBE_QUOTAS, ALTER_QUOTAS = 48, 49
REQUEST_DEADLINE_S = 15.0
VISIBLE_WAIT_S = 5.0


def _entity_body(e: Any) -> list[dict[str, Any]]:
    return [{"entity_type": t, "entity_name": n} for t, n in e]


def entries_of(request: Any) -> list[tuple[Any, list[quota_control.QuotaOp]]]:
    """(entity pairs as sent, ops) per entry of an AlterClientQuotas request."""
    return [(tuple((d.entity_type, d.entity_name) for d in entry.entity),
             [quota_control.QuotaOp(op.key, float(op.value), bool(op.remove))
              for op in entry.ops]) for entry in request.entries]


async def handle_describe(ctx: RequestContext, request: Any) -> Any:
    components = [quota_control.Component(c.entity_type, int(c.match_type), c.match)
                  for c in request.components]
    code, message, found = quota_control.describe(ctx.broker.cluster.quorum.image,
                                                  components, bool(request.strict))
    return ctx.build_response({
        "throttle_time": 0, "error_code": code, "error_message": message,
        "entries": None if code else [
            {"entity": _entity_body(e),
             "values": [{"key": k, "value": v} for k, v in sorted(values.items())]}
            for e, values in found]})


def _all(request: Any, code: ErrorCode, message: str) -> dict[str, Any]:
    return {"throttle_time": 0, "entries": [
        {"error_code": code, "error_message": message,
         "entity": [{"entity_type": d.entity_type, "entity_name": d.entity_name}
                    for d in entry.entity]} for entry in request.entries]}


async def handle_alter(ctx: RequestContext, request: Any) -> Any:
    response = await ctx.broker.cluster.forward(request, REQUEST_DEADLINE_S)
    if response is None:
        return ctx.build_response(_all(request, ErrorCode.request_timed_out,
                                       "no active controller answered in time"))
    if not request.validate_only:
        wanted = []
        for (e, ops), result in zip(entries_of(request), response.entries, strict=False):
            if int(result.error_code) == 0:
                key = quota_control.normalized(e)
                wanted += [(key, op) for op in ops]

        def shows(image: Any) -> bool:
            for key, op in wanted:
                values = image.quotas.get(key, {})
                if op.remove == (op.key in values) or (
                        not op.remove and values.get(op.key) != op.value):
                    return False
            return True

        loop = asyncio.get_running_loop()
        end = loop.time() + VISIBLE_WAIT_S
        while not shows(ctx.broker.cluster.quorum.image) and loop.time() < end:
            await asyncio.sleep(0.02)
    return ctx.build_response({"throttle_time": 0, "entries": [
        {"error_code": r.error_code, "error_message": r.error_message,
         "entity": [{"entity_type": d.entity_type, "entity_name": d.entity_name}
                    for d in r.entity]} for r in response.entries]})


async def handle_alter_on_controller(ctx: RequestContext, request: Any) -> Any:
    entries = entries_of(request)
    try:
        controller = ctx.broker.controller
        if controller is None:
            raise NotControllerError("this node is not a controller")
        results = await controller.decide(lambda image, _next: quota_control.alter(
            image, entries, bool(request.validate_only)))
    except NotControllerError as exc:
        return ctx.build_response(_all(request, ErrorCode.not_controller, str(exc)))
    return ctx.build_response({"throttle_time": 0, "entries": [
        {"error_code": r.error_code, "error_message": r.message,
         "entity": _entity_body(r.entity)} for r in results]})


HANDLERS = [
    ApiHandler(DESCRIBE_QUOTAS, 0, 1, handle_describe),
    ApiHandler(ALTER_QUOTAS, 0, 1, handle_alter),
]
CONTROLLER_HANDLERS = [ApiHandler(ALTER_QUOTAS, 0, 1, handle_alter_on_controller)]
