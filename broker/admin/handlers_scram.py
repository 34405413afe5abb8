"""DescribeUserScramCredentials (50) v0 and AlterUserScramCredentials (51) v0 (KIP-554;
``kafka-configs.sh --entity-type users --alter --add-config 'SCRAM-SHA-256=[password=..]'``,
AdminClient ``describeUserScramCredentials`` / ``alterUserScramCredentials``).

Credentials live in the metadata log (UserScramCredentialRecord: salt, iterations, stored
key, server key; never the password), decided by ``controller.metadata.scram_control``.

- Describe needs DESCRIBE on the cluster (else CLUSTER_AUTHORIZATION_FAILED at the top)
  and is answered from this broker's image.
- Alter needs ALTER on the cluster (else CLUSTER_AUTHORIZATION_FAILED for every user); it
  is forwarded to the active controller and answered once this broker's image shows the
  change (bounded wait), so the user can log in here at once. On the controller listener
  (``CONTROLLER_HANDLERS``) it is decided against the active image and answered once
  committed; NOT_CONTROLLER from a node that is not the active controller.
"""

from __future__ import annotations

import asyncio
from typing import Any

from broker.handlers import ApiHandler, RequestContext
from broker.security.authz import AclOperation, authorized_cluster
from controller.metadata import scram_control
from controller.quorum_controller import NotControllerError
from protocol.errors import ErrorCode

DESCRIBE_SCRAM, ALTER_SCRAM = 50, 51
REQUEST_DEADLINE_S = 15.0
VISIBLE_WAIT_S = 5.0
DENIED = ErrorCode.cluster_authorization_failed


def _users(request: Any) -> list[str]:
    names = []
    for d in request.deletions:
        if d.name not in names:
            names.append(d.name)
    for u in request.upsertions:
        if u.name not in names:
            names.append(u.name)
    return names


async def handle_describe(ctx: RequestContext, request: Any) -> Any:
    if not authorized_cluster(ctx, AclOperation.DESCRIBE):
        return ctx.build_response({"throttle_time": 0, "error_code": DENIED,
                                   "error_message": "Cluster authorization failed.",
                                   "results": []})
    users = None if request.users is None else [u.name for u in request.users]
    described = scram_control.describe(ctx.broker.cluster.quorum.image, users)
    return ctx.build_response({"throttle_time": 0, "error_code": 0, "error_message": None,
                               "results": [
        {"user": d.user, "error_code": d.error_code, "error_message": d.message,
         "credential_infos": [{"mechanism": m, "iterations": i} for m, i in d.credentials]}
        for d in described]})


def _error_results(request: Any, code: ErrorCode, message: str) -> dict[str, Any]:
    return {"throttle_time": 0, "results": [
        {"user": u, "error_code": code, "error_message": message} for u in _users(request)]}


async def handle_alter(ctx: RequestContext, request: Any) -> Any:
    if not authorized_cluster(ctx, AclOperation.ALTER):
        return ctx.build_response(_error_results(request, DENIED,
                                                 "Cluster authorization failed."))
    response = await ctx.broker.cluster.forward(request, REQUEST_DEADLINE_S)
    if response is None:
        return ctx.build_response(_error_results(
            request, ErrorCode.request_timed_out, "no active controller answered in time"))
    ok = {r.user for r in response.results if int(r.error_code) == 0}
    wanted = [(u.name, int(u.mechanism), bytes(u.salt)) for u in request.upsertions
              if u.name in ok]
    removed = [(d.name, int(d.mechanism)) for d in request.deletions if d.name in ok]

    def shows(image: Any) -> bool:
        return all((n, m) in image.scram and image.scram[(n, m)].salt == salt
                   for n, m, salt in wanted) and not any(k in image.scram for k in removed)

    loop = asyncio.get_running_loop()
    end = loop.time() + VISIBLE_WAIT_S
    while not shows(ctx.broker.cluster.quorum.image) and loop.time() < end:
        await asyncio.sleep(0.02)
    return ctx.build_response({"throttle_time": 0, "results": [
        {"user": r.user, "error_code": r.error_code, "error_message": r.error_message}
        for r in response.results]})


async def handle_alter_on_controller(ctx: RequestContext, request: Any) -> Any:
    deletions = [(d.name, int(d.mechanism)) for d in request.deletions]
    upsertions = [scram_control.Upsertion(u.name, int(u.mechanism), int(u.iterations),
                                          bytes(u.salt), bytes(u.salted_password))
                  for u in request.upsertions]
    try:
        controller = ctx.broker.controller
        if controller is None:
            raise NotControllerError("this node is not a controller")
        results = await controller.decide(
            lambda image, _next: scram_control.alter(image, deletions, upsertions))
    except NotControllerError as exc:
        return ctx.build_response(_error_results(request, ErrorCode.not_controller, str(exc)))
    return ctx.build_response({"throttle_time": 0, "results": [
        {"user": r.user, "error_code": r.error_code, "error_message": r.message}
        for r in results]})


HANDLERS = [
    ApiHandler(DESCRIBE_SCRAM, 0, 0, handle_describe),
    ApiHandler(ALTER_SCRAM, 0, 0, handle_alter),
]
CONTROLLER_HANDLERS = [ApiHandler(ALTER_SCRAM, 0, 0, handle_alter_on_controller)]
