"""AlterPartitionReassignments (45) v0-1 and ListPartitionReassignments (46) v0 (KIP-455;
``kafka-reassign-partitions.sh``, AdminClient ``alterPartitionReassignments`` /
``listPartitionReassignments``) on the controller listener and, forwarded, on every
broker's client listener.

- Controller listener (``CONTROLLER_HANDLERS``): decided by the active controller
  against its image (``QuorumController.alter_partition_reassignments``, rules in
  ``controller.metadata.reassignment``), the changes committed as one metadata entry,
  then answered; the list is read from the active image. A node that is not the active
  controller answers NOT_CONTROLLER at the top level (and, for Alter, for every named
  partition).
- Client listener (``BROKER_HANDLERS``): the request goes unchanged (same version) to the
  active controller and is retried until ``REQUEST_DEADLINE_S`` (then REQUEST_TIMED_OUT,
  which clients retry). An Alter answer is returned once this broker's image shows each
  accepted change (bounded wait, ``VISIBLE_WAIT_S``): a target leading the replicas, a
  cancelled reassignment gone; so the client's next Metadata or List here agrees.
- v1 of Alter carries ``allow_replication_factor_change`` (KIP-860; False refuses a
  target of another size with INVALID_REPLICATION_FACTOR) and echoes it.

Strom has no authorizer, so Kafka's CLUSTER_AUTHORIZATION_FAILED never applies.
"""

from __future__ import annotations

import asyncio
from typing import Any

from kio.schema.errors import ErrorCode

from broker.handlers import ApiHandler, RequestContext
from controller.metadata.image import MetadataImage
from controller.metadata.reassignment import Target
from controller.quorum_controller import NotControllerError

ALTER_API_KEY, LIST_API_KEY = 45, 46
ALTER_VERSIONS, LIST_VERSIONS = (0, 1), (0, 0)
#: how long a broker keeps forwarding before it answers REQUEST_TIMED_OUT
REQUEST_DEADLINE_S = 15.0
#: how long a broker waits for its own image to show an accepted change
VISIBLE_WAIT_S = 3.0

Requested = list[tuple[str, list[tuple[int, Target]]]]


def alter_requested(request: Any) -> Requested:
    """[(topic, [(partition, target replicas or None = cancel)])] in request order."""
    return [(t.name, [(int(p.partition_index),
                       None if p.replicas is None else tuple(int(r) for r in p.replicas))
                      for p in t.partitions]) for t in request.topics]


def list_requested(request: Any) -> list[tuple[str, list[int]]] | None:
    """[(topic, partitions)] named by a List request, or None for every partition."""
    if request.topics is None:
        return None
    return [(t.name, [int(i) for i in t.partition_indexes]) for t in request.topics]


def _allow_rf_change(request: Any) -> bool:
    return bool(getattr(request, "allow_replication_factor_change", True))


def alter_error_body(request: Any, code: ErrorCode, message: str) -> dict[str, Any]:
    """``code`` at the top level and for every named partition."""
    return {"throttle_time": 0, "error_code": code, "error_message": message,
            "allow_replication_factor_change": _allow_rf_change(request),
            "responses": [{"name": name, "partitions": [
                {"partition_index": index, "error_code": code, "error_message": message}
                for index, _ in parts]} for name, parts in alter_requested(request)]}


def list_error_body(code: ErrorCode, message: str) -> dict[str, Any]:
    return {"throttle_time": 0, "error_code": code, "error_message": message, "topics": ()}


async def handle_alter_on_controller(ctx: RequestContext, request: Any) -> Any:
    controller = ctx.broker.controller
    allow = _allow_rf_change(request)
    try:
        if controller is None:
            raise NotControllerError("this node is not a controller")
        decision = await controller.alter_partition_reassignments(
            alter_requested(request), allow_replication_factor_change=allow)
    except NotControllerError as exc:
        return ctx.build_response(alter_error_body(request, ErrorCode.not_controller, str(exc)))
    return ctx.build_response({
        "throttle_time": 0, "error_code": ErrorCode.none, "error_message": None,
        "allow_replication_factor_change": allow,
        "responses": [{"name": name, "partitions": [
            {"partition_index": r.partition, "error_code": r.error_code,
             "error_message": r.message} for r in results]}
            for name, results in decision.results]})


async def handle_list_on_controller(ctx: RequestContext, request: Any) -> Any:
    controller = ctx.broker.controller
    try:
        if controller is None:
            raise NotControllerError("this node is not a controller")
        found = await controller.list_partition_reassignments(list_requested(request))
    except NotControllerError as exc:
        return ctx.build_response(list_error_body(ErrorCode.not_controller, str(exc)))
    return ctx.build_response({
        "throttle_time": 0, "error_code": ErrorCode.none, "error_message": None,
        "topics": [{"name": name, "partitions": [
            {"partition_index": index, "replicas": part.replicas,
             "adding_replicas": part.adding_replicas,
             "removing_replicas": part.removing_replicas} for index, part in parts]}
            for name, parts in found]})


def shows_alter(image: MetadataImage, request: Any, response: Any) -> bool:
    """Whether ``image`` shows every change the Alter response accepted: the target
    leading the replicas (in progress or complete), or no reassignment (a cancel)."""
    targets = {(name, index): target for name, parts in alter_requested(request)
               for index, target in parts}
    for t in response.responses:
        for p in t.partitions:
            if int(p.error_code) != 0:
                continue
            part = image.partition(t.name, int(p.partition_index))
            target = targets.get((t.name, int(p.partition_index)))
            if part is None:
                return False
            if target is None and part.reassigning:
                return False
            if target is not None and part.replicas[:len(target)] != tuple(target):
                return False
    return True


async def handle_alter_forwarded(ctx: RequestContext, request: Any) -> Any:
    cluster = ctx.broker.cluster
    response = await cluster.forward(request, REQUEST_DEADLINE_S)
    if response is None:
        return ctx.build_response(alter_error_body(request, ErrorCode.request_timed_out,
                                                   "no active controller answered in time"))
    loop = asyncio.get_running_loop()
    end = loop.time() + VISIBLE_WAIT_S
    while not shows_alter(cluster.quorum.image, request, response) and loop.time() < end:
        await asyncio.sleep(0.02)
    return response


async def handle_list_forwarded(ctx: RequestContext, request: Any) -> Any:
    response = await ctx.broker.cluster.forward(request, REQUEST_DEADLINE_S)
    if response is None:
        return ctx.build_response(list_error_body(ErrorCode.request_timed_out,
                                                  "no active controller answered in time"))
    return response


CONTROLLER_HANDLERS = [
    ApiHandler(ALTER_API_KEY, *ALTER_VERSIONS, handle_alter_on_controller),
    ApiHandler(LIST_API_KEY, *LIST_VERSIONS, handle_list_on_controller),
]
BROKER_HANDLERS = [
    ApiHandler(ALTER_API_KEY, *ALTER_VERSIONS, handle_alter_forwarded),
    ApiHandler(LIST_API_KEY, *LIST_VERSIONS, handle_list_forwarded),
]
