"""DescribeAcls (29), CreateAcls (30), DeleteAcls (31), v1-3 (``kafka-acls.sh``,
AdminClient ``createAcls``/``describeAcls``/``deleteAcls``).

ACLs live in the metadata log (AccessControlEntryRecord), so every broker enforces the same
set (``controller.metadata.acl_control`` decides; ``common.security.acl`` matches).

- Without an authorizer (``authorizer.class.name`` empty) they answer as Kafka does then:
  SECURITY_DISABLED, "No Authorizer is configured on the broker".
- DescribeAcls needs DESCRIBE on the cluster, CreateAcls and DeleteAcls ALTER on the
  cluster (else CLUSTER_AUTHORIZATION_FAILED, at the top / for each creation / filter).
- DescribeAcls is answered from this broker's image, grouped by resource pattern.
- CreateAcls and DeleteAcls are forwarded to the active controller (``cluster.forward``)
  and answered once this broker's image shows the change (bounded wait), so a describe
  or an authorization here right after agrees. On the controller listener
  (``CONTROLLER_HANDLERS``) they are decided against the active image and answered once
  committed; NOT_CONTROLLER from a node that is not the active controller.
- Invalid ACLs (resource type ANY, pattern type other than LITERAL/PREFIXED, operation or
  permission ANY, a principal without ``Type:``, a CLUSTER name other than
  ``kafka-cluster``) get INVALID_REQUEST for that creation only.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from broker.handlers import ApiHandler, RequestContext
from broker.security.authz import authorized_cluster
from common.security.acl import (
    AclBinding,
    AclFilter,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourceType,
)
from controller.metadata import acl_control
from controller.quorum_controller import NotControllerError
from protocol.errors import ErrorCode

DESCRIBE_ACLS, CREATE_ACLS, DELETE_ACLS = 29, 30, 31
NO_AUTHORIZER = {"error_code": ErrorCode.security_disabled,
                 "error_message": "No Authorizer is configured on the broker"}
DENIED = {"error_code": ErrorCode.cluster_authorization_failed,
          "error_message": "Cluster authorization failed."}
REQUEST_DEADLINE_S = 15.0
VISIBLE_WAIT_S = 5.0


def _enum(cls: Any, value: int) -> Any:
    try:
        return cls(int(value))
    except ValueError:
        return cls(0)  # UNKNOWN


def binding_of(c: Any) -> AclBinding:
    """A CreateAcls creation as an ACL."""
    return AclBinding(_enum(ResourceType, c.resource_type), c.resource_name,
                      _enum(PatternType, getattr(c, "resource_pattern_type", 3)),
                      c.principal, c.host, _enum(AclOperation, c.operation),
                      _enum(AclPermissionType, c.permission_type))


def filter_of(f: Any) -> AclFilter:
    """A DescribeAcls request or DeleteAcls filter as an ``AclFilter``."""
    return AclFilter(_enum(ResourceType, f.resource_type_filter), f.resource_name_filter,
                     _enum(PatternType, getattr(f, "pattern_type_filter", 3)),
                     f.principal_filter, f.host_filter, _enum(AclOperation, f.operation),
                     _enum(AclPermissionType, f.permission_type))


def _acl_fields(b: AclBinding) -> dict[str, Any]:
    return {"resource_type": int(b.resource_type), "resource_name": b.resource_name,
            "pattern_type": int(b.pattern_type), "principal": b.principal, "host": b.host,
            "operation": int(b.operation), "permission_type": int(b.permission)}


def describe_body(code: int, message: str | None, acls: list[AclBinding]) -> dict[str, Any]:
    groups: dict[tuple[int, str, int], list[AclBinding]] = {}
    for b in sorted(acls, key=lambda b: (b.resource_type, b.resource_name, b.pattern_type,
                                         b.principal, b.host, b.operation, b.permission)):
        groups.setdefault((int(b.resource_type), b.resource_name, int(b.pattern_type)),
                          []).append(b)
    return {"throttle_time": 0, "error_code": code, "error_message": message, "resources": [
        {"resource_type": rt, "resource_name": name, "pattern_type": pt, "acls": [
            {"principal": b.principal, "host": b.host, "operation": int(b.operation),
             "permission_type": int(b.permission)} for b in items]}
        for (rt, name, pt), items in groups.items()]}


def create_body(results: list[acl_control.AclResult]) -> dict[str, Any]:
    return {"throttle_time": 0, "results": [
        {"error_code": r.error_code, "error_message": r.message} for r in results]}


def delete_body(results: list[acl_control.DeleteResult]) -> dict[str, Any]:
    return {"throttle_time": 0, "filter_results": [
        {"error_code": r.error_code, "error_message": r.message, "matching_acls": [
            {"error_code": 0, "error_message": None, **_acl_fields(b)} for b in r.matches]}
        for r in results]}


# ---- client listeners ------------------------------------------------------------------
async def handle_describe_acls(ctx: RequestContext, request: Any) -> Any:
    if getattr(ctx.broker, "authorizer", None) is None:
        return ctx.build_response({"throttle_time": 0, **NO_AUTHORIZER, "resources": []})
    if not authorized_cluster(ctx, AclOperation.DESCRIBE):
        return ctx.build_response({"throttle_time": 0, **DENIED, "resources": []})
    image = ctx.broker.cluster.quorum.image
    return ctx.build_response(describe_body(*acl_control.describe_acls(
        image, filter_of(request))))


async def _wait_visible(ctx: RequestContext, shows: Any) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + VISIBLE_WAIT_S
    while not shows(ctx.broker.cluster.quorum.image) and loop.time() < end:
        await asyncio.sleep(0.02)


def _timed_out(n: int) -> list[dict[str, Any]]:
    return [{"error_code": ErrorCode.request_timed_out,
             "error_message": "no active controller answered in time"} for _ in range(n)]


async def handle_create_acls(ctx: RequestContext, request: Any) -> Any:
    if getattr(ctx.broker, "authorizer", None) is None:
        return ctx.build_response({"throttle_time": 0,
                                   "results": [NO_AUTHORIZER for _ in request.creations]})
    if not authorized_cluster(ctx, AclOperation.ALTER):
        return ctx.build_response({"throttle_time": 0,
                                   "results": [DENIED for _ in request.creations]})
    response = await ctx.broker.cluster.forward(request, REQUEST_DEADLINE_S)
    if response is None:
        return ctx.build_response({"throttle_time": 0,
                                   "results": _timed_out(len(request.creations))})
    made = [binding_of(c) for c, r in zip(request.creations, response.results, strict=False)
            if int(r.error_code) == 0]
    await _wait_visible(ctx, lambda image: set(made) <= set(image.acls.values()))
    return ctx.build_response({"throttle_time": 0, "results": [
        {"error_code": r.error_code, "error_message": r.error_message}
        for r in response.results]})


async def handle_delete_acls(ctx: RequestContext, request: Any) -> Any:
    if getattr(ctx.broker, "authorizer", None) is None:
        return ctx.build_response({"throttle_time": 0, "filter_results": [
            {**NO_AUTHORIZER, "matching_acls": []} for _ in request.filters]})
    if not authorized_cluster(ctx, AclOperation.ALTER):
        return ctx.build_response({"throttle_time": 0, "filter_results": [
            {**DENIED, "matching_acls": []} for _ in request.filters]})
    response = await ctx.broker.cluster.forward(request, REQUEST_DEADLINE_S)
    if response is None:
        return ctx.build_response({"throttle_time": 0, "filter_results": [
            {**e, "matching_acls": []} for e in _timed_out(len(request.filters))]})
    gone = {AclBinding(ResourceType(m.resource_type), m.resource_name,
                       PatternType(m.pattern_type), m.principal, m.host, AclOperation(m.operation),
                       AclPermissionType(m.permission_type))
            for r in response.filter_results for m in r.matching_acls}
    await _wait_visible(ctx, lambda image: not gone & set(image.acls.values()))
    return ctx.build_response({"throttle_time": 0, "filter_results": [
        {"error_code": r.error_code, "error_message": r.error_message, "matching_acls": [
            {"error_code": m.error_code, "error_message": m.error_message,
             "resource_type": m.resource_type, "resource_name": m.resource_name,
             "pattern_type": m.pattern_type, "principal": m.principal, "host": m.host,
             "operation": m.operation, "permission_type": m.permission_type}
            for m in r.matching_acls]} for r in response.filter_results]})


# ---- the controller listener -----------------------------------------------------------
async def handle_create_acls_on_controller(ctx: RequestContext, request: Any) -> Any:
    creations = [binding_of(c) for c in request.creations]
    try:
        controller = ctx.broker.controller
        if controller is None:
            raise NotControllerError("this node is not a controller")
        rng = controller.rng

        def decide(image: Any, _next: int) -> tuple[Any, Any]:
            ids = iter(lambda: uuid.UUID(int=rng.getrandbits(128), version=4), None)
            return acl_control.create_acls(image, creations, ids)

        results = await controller.decide(decide)
    except NotControllerError as exc:
        results = [acl_control.AclResult(int(ErrorCode.not_controller), str(exc))
                   for _ in creations]
    return ctx.build_response(create_body(results))


async def handle_delete_acls_on_controller(ctx: RequestContext, request: Any) -> Any:
    filters = [filter_of(f) for f in request.filters]
    try:
        controller = ctx.broker.controller
        if controller is None:
            raise NotControllerError("this node is not a controller")
        results = await controller.decide(
            lambda image, _next: acl_control.delete_acls(image, filters))
    except NotControllerError as exc:
        results = [acl_control.DeleteResult(int(ErrorCode.not_controller), str(exc))
                   for _ in filters]
    return ctx.build_response(delete_body(results))


HANDLERS = [
    ApiHandler(DESCRIBE_ACLS, 1, 3, handle_describe_acls),
    ApiHandler(CREATE_ACLS, 1, 3, handle_create_acls),
    ApiHandler(DELETE_ACLS, 1, 3, handle_delete_acls),
]
CONTROLLER_HANDLERS = [
    ApiHandler(CREATE_ACLS, 1, 3, handle_create_acls_on_controller),
    ApiHandler(DELETE_ACLS, 1, 3, handle_delete_acls_on_controller),
]
