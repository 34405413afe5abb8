"""ElectLeaders (43) v0-2 (KIP-460; ``kafka-leader-election.sh``, AdminClient
``electLeaders``) on the controller listener and, forwarded, on every broker's client
listener.

- Controller listener (``handle_on_controller``): decided by the active controller against
  its image (``QuorumController.elect_leaders``, rules in
  ``controller.metadata.elect_leaders``), the leader changes committed as one metadata
  entry, then answered. A node that is not the active controller answers NOT_CONTROLLER
  (top level and every named partition).
- Client listener (``handle_forwarded``): the request goes to the active controller as v2
  whatever version the client spoke (v2 has the top-level error code, so NOT_CONTROLLER is
  seen even for an all-partitions request) and is retried until ``REQUEST_DEADLINE_S``
  (then REQUEST_TIMED_OUT, which clients retry). The answer is returned in the client's
  version once this broker's image shows the new leaders (bounded wait), so the client's
  next Metadata here agrees.
- v0 has no election type: it means PREFERRED.

Strom has no authorizer, so the CLUSTER_AUTHORIZATION_FAILED path of Kafka never applies.
"""

from __future__ import annotations

import asyncio
from typing import Any

from kio.schema.elect_leaders.v2 import request as v2
from kio.schema.errors import ErrorCode
from kio.static.primitive import i8, i32

from broker.handlers import ApiHandler, RequestContext
from controller.metadata.elect_leaders import PREFERRED, UNCLEAN, ElectLeadersDecision
from controller.metadata.image import MetadataImage
from controller.quorum_controller import NotControllerError

API_KEY = 43
MIN_VERSION, MAX_VERSION = 0, 2
#: how long a broker keeps forwarding before it answers REQUEST_TIMED_OUT
REQUEST_DEADLINE_S = 15.0
#: how long a broker waits for its own image to show the elected leaders
VISIBLE_WAIT_S = 3.0

TopicPartitions = list[tuple[str, tuple[int, ...]]]


def requested(request: Any) -> tuple[int, TopicPartitions | None]:
    """(election type, [(topic, partitions)] in request order, or None for all)."""
    election_type = int(getattr(request, "election_type", PREFERRED))
    if request.topic_partitions is None:
        return election_type, None
    return election_type, [(t.topic, tuple(int(p) for p in t.partitions))
                           for t in request.topic_partitions]


def decision_body(decision: ElectLeadersDecision) -> dict[str, Any]:
    """The response (union of the versions' fields) for a controller decision."""
    return {"throttle_time": 0, "error_code": decision.error_code,
            "replica_election_results": [
                {"topic": topic, "partition_result": [
                    {"partition_id": r.partition, "error_code": r.error_code,
                     "error_message": r.message} for r in results]}
                for topic, results in decision.results]}


def error_body(request: Any, code: ErrorCode, message: str) -> dict[str, Any]:
    """``code`` at the top level and for every named partition (Kafka's error response:
    v0 has no top-level error code)."""
    _, named = requested(request)
    return {"throttle_time": 0, "error_code": code, "replica_election_results": [
        {"topic": topic, "partition_result": [
            {"partition_id": p, "error_code": code, "error_message": message}
            for p in parts]} for topic, parts in named or ()]}


def response_body(response: Any) -> dict[str, Any]:
    """A kio ElectLeaders response of any version as a plain body (to re-build it in the
    client's version)."""
    return {"throttle_time": response.throttle_time,
            "error_code": getattr(response, "error_code", ErrorCode.none),
            "replica_election_results": [
                {"topic": t.topic, "partition_result": [
                    {"partition_id": p.partition_id, "error_code": p.error_code,
                     "error_message": p.error_message} for p in t.partition_result]}
                for t in response.replica_election_results]}


async def handle_on_controller(ctx: RequestContext, request: Any) -> Any:
    controller = ctx.broker.controller
    election_type, named = requested(request)
    try:
        if controller is None:
            raise NotControllerError("this node is not a controller")
        decision = await controller.elect_leaders(election_type, named)
    except NotControllerError as exc:
        return ctx.build_response(error_body(request, ErrorCode.not_controller, str(exc)))
    return ctx.build_response(decision_body(decision))


def as_v2(request: Any) -> v2.ElectLeadersRequest:
    election_type, named = requested(request)
    return v2.ElectLeadersRequest(
        election_type=i8(election_type),
        topic_partitions=None if named is None else tuple(
            v2.TopicPartitions(topic=topic, partitions=tuple(i32(p) for p in parts))
            for topic, parts in named),
        timeout=request.timeout)


def shows_elections(image: MetadataImage, election_type: int, response: Any) -> bool:
    """Whether ``image`` shows every election the response reports as done: the preferred
    replica leading (PREFERRED), some leader (UNCLEAN)."""
    for t in response.replica_election_results:
        for p in t.partition_result:
            if int(p.error_code) != 0:
                continue
            part = image.partition(t.topic, int(p.partition_id))
            if part is None:
                return False
            if election_type == PREFERRED and part.leader != part.replicas[0]:
                return False
            if election_type == UNCLEAN and part.leader < 0:
                return False
    return True


async def handle_forwarded(ctx: RequestContext, request: Any) -> Any:
    cluster = ctx.broker.cluster
    response = await cluster.forward(as_v2(request), REQUEST_DEADLINE_S)
    if response is None:
        return ctx.build_response(error_body(request, ErrorCode.request_timed_out,
                                             "no active controller answered in time"))
    election_type, _ = requested(request)
    loop = asyncio.get_running_loop()
    end = loop.time() + VISIBLE_WAIT_S
    while not shows_elections(cluster.quorum.image, election_type, response) \
            and loop.time() < end:
        await asyncio.sleep(0.02)
    return ctx.build_response(response_body(response))


CONTROLLER_HANDLER = ApiHandler(API_KEY, MIN_VERSION, MAX_VERSION, handle_on_controller)
BROKER_HANDLER = ApiHandler(API_KEY, MIN_VERSION, MAX_VERSION, handle_forwarded)
