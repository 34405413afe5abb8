"""Client-listener handlers of a cluster node that replace the broker's generic ones
(``broker.admin``, ``broker.group``; same API keys and version ranges), and what the shared
Metadata/DescribeCluster handlers report for a cluster node (``broker_entries``,
``partition_entries``, ``controller_id``: every unfenced broker from the image with its
client-listener endpoint; each partition's leader, leader epoch, replicas, ISR and offline
replicas; a partition without a live leader is LEADER_NOT_AVAILABLE).

- FindCoordinator: a group's coordinator is the leader of its ``__consumer_offsets``
  partition (``partition_for``), a transactional id's (key type 1) the leader of its
  ``__transaction_state`` partition; missing topic or leader → COORDINATOR_NOT_AVAILABLE.
- CreateTopics, DeleteTopics, CreatePartitions, AlterConfigs, IncrementalAlterConfigs:
  forwarded unchanged (same version) to the active controller, whose answer is returned
  (the first three in an Envelope with the client's principal and client id, KIP-590, so
  the controller charges its KIP-599 quota; a throttle time in the answer mutes the
  client's connection for that long, as Kafka's broker does with forwarded responses);
  NOT_CONTROLLER answers and connection failures are retried until
  ``REQUEST_DEADLINE_S``. After a successful change the handler waits (bounded) until this
  broker's image shows it, so the client's next Metadata here agrees. BROKER resources of
  Alter requests stay local (dynamic broker configs are per broker); the others are
  forwarded, and the answers are merged in request order.
- DescribeQuorum: forwarded to the quorum (a client may ask any broker).
- ElectLeaders: forwarded to the active controller (``broker.cluster.elect_leaders``).
- AlterPartitionReassignments, ListPartitionReassignments: forwarded to the active
  controller (``broker.cluster.reassignments``).

The group code's own handlers stay: they answer NOT_COORDINATOR for a group whose
``__consumer_offsets`` partition this broker does not lead (``ClusterReplicaManager.log``
is None for it), and ``ClusterNode`` tells the coordinator which of those partitions this
broker gains or loses (``on_partition_leadership``).
"""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from typing import Any

from kio.schema.errors import ErrorCode

from broker.admin import handlers_configs
from broker.cluster import elect_leaders, reassignments
from broker.group.partitioner import partition_for
from broker.handlers import ApiHandler, RequestContext
from broker.txn.persistence import TOPIC as TXN_STATE_TOPIC
from broker.txn.persistence import topic_request as txn_topic_request
from controller.metadata.image import MetadataImage

OFFSETS_TOPIC = "__consumer_offsets"
#: forwarded with the client's identity (KIP-590), charged to its KIP-599 quota
MUTATIONS = frozenset({19, 20, 37})
BROKER_RESOURCE = 4
REQUEST_DEADLINE_S = 15.0
NOT_CONTROLLER = int(ErrorCode.not_controller)


def _cluster(ctx: RequestContext) -> Any:
    return ctx.broker.cluster


def broker_entries(image: MetadataImage, listener: str) -> list[dict[str, Any]]:
    """Every unfenced broker of the image with its endpoint on ``listener`` (a broker
    without that listener is left out, as Kafka does)."""
    out = []
    for b in image.unfenced_brokers():
        ep = b.endpoint(listener)
        if ep is None:
            continue
        out.append({"node_id": b.broker_id, "broker_id": b.broker_id, "host": ep.host,
                    "port": ep.port, "rack": b.rack, "is_fenced": False})
    return out


def _live(image: MetadataImage) -> set[int]:
    return {b.broker_id for b in image.unfenced_brokers()}


def partition_entries(image: MetadataImage, name: str) -> list[dict[str, Any]]:
    """Each partition's leader (LEADER_NOT_AVAILABLE when it has no live one), leader
    epoch, replicas, ISR and offline replicas (fenced or unregistered)."""
    topic = image.topic(name)
    if topic is None:
        return []
    live = _live(image)
    partitions = []
    for index, p in sorted(topic.partitions.items()):
        leader = p.leader if p.leader in live else -1
        partitions.append({
            "error_code": ErrorCode.none if leader >= 0 else ErrorCode.leader_not_available,
            "partition_index": index,
            "leader_id": leader,
            "leader_epoch": p.leader_epoch,
            "replica_nodes": tuple(p.replicas),
            "isr_nodes": tuple(p.isr),
            "offline_replicas": tuple(r for r in p.replicas if r not in live),
        })
    return partitions


def controller_id(cluster: Any, image: MetadataImage) -> int:
    live = sorted(_live(image))
    leader = cluster.quorum.leader_id
    if leader in live:
        return leader
    return live[0] if live else -1


# ---- FindCoordinator -------------------------------------------------------------------
async def _coordinator(ctx: RequestContext, key: str, key_type: int) -> dict[str, Any]:
    cluster = _cluster(ctx)
    entry: dict[str, Any] = {"key": key, "node_id": -1, "host": "", "port": -1,
                             "error_code": ErrorCode.none, "error_message": None}
    if key_type not in (0, 1):
        entry.update(error_code=ErrorCode.invalid_request,
                     error_message=f"Unknown coordinator key type {key_type}.")
        return entry
    if key_type == 1 and not key:
        entry.update(error_code=ErrorCode.invalid_request,
                     error_message="A transactional id must not be empty.")
        return entry
    # a group's coordinator leads its __consumer_offsets partition, a transactional id's
    # the __transaction_state partition it hashes to (both created on first lookup)
    if key_type == 0:
        internal, create = OFFSETS_TOPIC, cluster.offsets_topic_request
    else:
        internal = TXN_STATE_TOPIC
        def create() -> Any:
            return txn_topic_request(cluster.config,
                                     len(cluster.quorum.image.unfenced_brokers()))
    if cluster.quorum.image.topic(internal) is None:
        await cluster.create_now([create()])
    image: MetadataImage = cluster.quorum.image
    topic = image.topic(internal)
    if topic is None:
        cluster.request_create([create()])
        entry.update(error_code=ErrorCode.coordinator_not_available,
                     error_message="The coordinator is not available.")
        return entry
    part = topic.partitions.get(partition_for(key, len(topic.partitions)))
    broker = image.brokers.get(part.leader) if part is not None else None
    ep = None
    if broker is not None and not broker.fenced:
        ep = broker.endpoint(ctx.listener or cluster.client_listener)
    if ep is None or broker is None:
        entry.update(error_code=ErrorCode.coordinator_not_available,
                     error_message="The coordinator is not available.")
        return entry
    entry.update(node_id=broker.broker_id, host=ep.host, port=ep.port)
    return entry


async def handle_find_coordinator(ctx: RequestContext, request: Any) -> Any:
    key_type = int(getattr(request, "key_type", 0))
    if ctx.api_version >= 4:
        coordinators = [await _coordinator(ctx, k, key_type) for k in request.coordinator_keys]
        return ctx.build_response({"throttle_time": 0, "coordinators": coordinators})
    entry = await _coordinator(ctx, request.key, key_type)
    entry.pop("key")
    if ctx.api_version == 0 and entry["error_code"] != ErrorCode.none:
        entry.update(node_id=-1, host="", port=-1)
    return ctx.build_response({"throttle_time": 0, **entry})


# ---- forwarding --------------------------------------------------------------------------
def error_codes(entity: Any) -> list[int]:
    """Every ``error_code`` in a kio entity (recursively)."""
    found: list[int] = []

    def walk(value: Any) -> None:
        if dataclasses.is_dataclass(value):
            for f in dataclasses.fields(value):
                item = getattr(value, f.name)
                if f.name == "error_code":
                    found.append(int(item))
                else:
                    walk(item)
        elif isinstance(value, tuple):
            for item in value:
                walk(item)

    walk(entity)
    return found


def _forwarder(api_key: int, local: Any = None) -> Any:
    async def handle(ctx: RequestContext, request: Any) -> Any:
        if local is not None:
            mine = tuple(r for r in request.resources if r.resource_type == BROKER_RESOURCE)
            if len(mine) == len(request.resources):
                return await local(ctx, request)
            if mine:  # BROKER resources here, the others through the controller
                rest = tuple(r for r in request.resources
                             if r.resource_type != BROKER_RESOURCE)
                here = await local(ctx, dataclasses.replace(request, resources=mine))
                there = await handle(ctx, dataclasses.replace(request, resources=rest))
                answers = {True: list(here.responses), False: list(there.responses)}
                merged = tuple(answers[r.resource_type == BROKER_RESOURCE].pop(0)
                               for r in request.resources)
                return dataclasses.replace(there, responses=merged)
        mutation = api_key in MUTATIONS
        response = await _cluster(ctx).forward(request, REQUEST_DEADLINE_S,
                                               origin=ctx if mutation else None)
        if response is None:  # no controller answered: REQUEST_TIMED_OUT, client retries
            return ctx.build_response(_timeout_body(api_key, request))
        await _cluster(ctx).await_visible(api_key, request, response)
        throttle = response.throttle_time if mutation else None
        if isinstance(throttle, datetime.timedelta) and throttle.total_seconds() > 0:
            # the controller's KIP-599 throttle: this client's connection is muted for it
            ctx.throttle_ms = max(ctx.throttle_ms, int(throttle.total_seconds() * 1000))
        return response

    return handle


def _timeout_body(api_key: int, request: Any) -> dict[str, Any]:
    code = ErrorCode.request_timed_out
    message = "no active controller answered in time"
    err = {"error_code": code, "error_message": message}
    if api_key == 19:
        return {"throttle_time": 0, "topics": [
            {"name": t.name, "topic_id": uuid.UUID(int=0), "num_partitions": -1,
             "replication_factor": -1, "configs": (), **err} for t in request.topics]}
    if api_key == 20:
        names = ([(t.name, t.topic_id) for t in request.topics]
                 if hasattr(request, "topics") else [(n, None) for n in request.topic_names])
        return {"throttle_time": 0, "responses": [
            {"name": n, "topic_id": i or uuid.UUID(int=0), **err} for n, i in names]}
    if api_key == 37:
        return {"throttle_time": 0, "results": [{"name": t.name, **err}
                                                 for t in request.topics]}
    return {"throttle_time": 0, "responses": [
        {"resource_type": r.resource_type, "resource_name": r.resource_name, **err}
        for r in request.resources]}


async def handle_describe_quorum(ctx: RequestContext, request: Any) -> Any:
    return await _cluster(ctx).describe_quorum(request)


def cluster_handlers() -> list[ApiHandler]:
    """Replacements and additions for the broker listener's registry: coordinator lookup,
    admin APIs forwarded to the active controller, and DescribeQuorum (answered by the
    quorum leader, forwarded otherwise), which Kafka brokers serve too."""
    return [
        ApiHandler(10, 0, 6, handle_find_coordinator),
        ApiHandler(19, 2, 7, _forwarder(19)),
        ApiHandler(20, 1, 6, _forwarder(20)),
        ApiHandler(37, 0, 3, _forwarder(37)),
        ApiHandler(33, 0, 2, _forwarder(33, handlers_configs.handle_alter_configs)),
        ApiHandler(44, 0, 1, _forwarder(44, handlers_configs.handle_incremental_alter_configs)),
        ApiHandler(55, 2, 2, handle_describe_quorum),
        elect_leaders.BROKER_HANDLER,
        *reassignments.BROKER_HANDLERS,
    ]
