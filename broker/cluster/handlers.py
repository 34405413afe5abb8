"""Client-listener handlers that differ in cluster mode (they replace the single-node
ones in the broker's registry; same API keys and version ranges).

- Metadata: every unfenced broker from the image (its endpoint on the client listener),
  each partition's leader, leader epoch, replicas, ISR and offline replicas (fenced or
  unregistered); a partition without a leader is LEADER_NOT_AVAILABLE. Unknown topics are
  auto-created through the controller (LEADER_NOT_AVAILABLE until they exist).
- DescribeCluster: the same broker list.
- FindCoordinator: a group's coordinator is the leader of its ``__consumer_offsets``
  partition (``partition_for``); missing topic or leader → COORDINATOR_NOT_AVAILABLE.
- CreateTopics, DeleteTopics, CreatePartitions, AlterConfigs, IncrementalAlterConfigs:
  forwarded unchanged (same version) to the active controller, whose answer is returned;
  NOT_CONTROLLER answers and connection failures are retried until
  ``REQUEST_DEADLINE_S``. After a successful change the handler waits (bounded) until this
  broker's image shows it, so the client's next Metadata here agrees. Alter requests
  naming only BROKER resources stay local (dynamic broker configs are per broker).
- DescribeQuorum: forwarded to the quorum (a client may ask any broker).

The group code's own handlers stay: they answer NOT_COORDINATOR for a group whose
``__consumer_offsets`` partition this broker does not lead (``ClusterReplicaManager.log``
is None for it), and ``ClusterNode`` tells the coordinator which of those partitions this
broker gains or loses (``on_partition_leadership``).
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from kio.schema.errors import ErrorCode

from broker.admin import handlers_configs
from broker.group.partitioner import partition_for
from broker.handlers import ApiHandler, RequestContext
from broker.handlers.metadata import error_topic
from broker.topics import InvalidTopicName, NewTopicRequest, validate_topic_name
from common.topics.names import INTERNAL_TOPICS
from controller.metadata.image import MetadataImage

OFFSETS_TOPIC = "__consumer_offsets"
REQUEST_DEADLINE_S = 15.0
NOT_CONTROLLER = int(ErrorCode.not_controller)


def _cluster(ctx: RequestContext) -> Any:
    return ctx.broker.cluster


def broker_entries(ctx: RequestContext, image: MetadataImage) -> list[dict[str, Any]]:
    listener = _cluster(ctx).client_listener
    out = []
    for b in image.unfenced_brokers():
        ep = b.endpoint(listener) or (b.endpoints[0] if b.endpoints else None)
        if ep is None:
            continue
        out.append({"node_id": b.broker_id, "broker_id": b.broker_id, "host": ep.host,
                    "port": ep.port, "rack": b.rack, "is_fenced": False})
    return out


def _live(image: MetadataImage) -> set[int]:
    return {b.broker_id for b in image.unfenced_brokers()}


def topic_entry(image: MetadataImage, name: str) -> dict[str, Any] | None:
    topic = image.topic(name)
    if topic is None:
        return None
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
    return {"error_code": 0, "name": name, "topic_id": topic.topic_id,
            "is_internal": name in INTERNAL_TOPICS, "partitions": partitions}


def controller_id(ctx: RequestContext, image: MetadataImage) -> int:
    live = sorted(_live(image))
    leader = _cluster(ctx).quorum.leader_id
    if leader in live:
        return leader
    return live[0] if live else -1


async def handle_metadata(ctx: RequestContext, request: Any) -> Any:
    cluster = _cluster(ctx)
    image: MetadataImage = cluster.quorum.image
    version = ctx.api_version
    requested = request.topics
    if version == 0 and not requested:
        requested = None
    allow_auto = getattr(request, "allow_auto_topic_creation", True)
    auto = ctx.broker.config.auto_create_topics_enable and allow_auto
    out: list[dict[str, Any]] = []
    to_create: list[str] = []
    if requested is None:
        out = [e for e in (topic_entry(image, t.name) for t in
                           sorted(image.topics.values(), key=lambda t: t.name)) if e]
    else:
        seen: set[Any] = set()
        for t in requested:
            name = t.name
            topic_id = getattr(t, "topic_id", None)
            if name is None and topic_id is not None and topic_id != uuid.UUID(int=0):
                if topic_id in seen:
                    continue
                seen.add(topic_id)
                topic = image.topics.get(topic_id)
                entry = topic_entry(image, topic.name) if topic is not None else None
                out.append(entry or error_topic(None, ErrorCode.unknown_topic_id, topic_id))
                continue
            if name in seen:
                continue
            seen.add(name)
            entry = topic_entry(image, name) if name is not None else None
            if entry is not None:
                out.append(entry)
                continue
            try:
                validate_topic_name(name)
            except InvalidTopicName:
                out.append(error_topic(name, ErrorCode.invalid_topic_exception))
                continue
            if auto and name not in INTERNAL_TOPICS:
                to_create.append(name)
                out.append(error_topic(name, ErrorCode.leader_not_available))
            else:
                out.append(error_topic(name, ErrorCode.unknown_topic_or_partition))
    if to_create:
        cluster.request_create([NewTopicRequest(n) for n in to_create])
    return ctx.build_response({
        "throttle_time": 0,
        "brokers": broker_entries(ctx, image),
        "cluster_id": ctx.broker.cluster_id,
        "controller_id": controller_id(ctx, image),
        "topics": out,
    })


async def handle_describe_cluster(ctx: RequestContext, request: Any) -> Any:
    image = _cluster(ctx).quorum.image
    endpoint_type = getattr(request, "endpoint_type", 1)
    if endpoint_type != 1:
        return ctx.build_response({
            "error_code": ErrorCode.unsupported_endpoint_type,
            "error_message": f"endpoint type {endpoint_type} is not served on this listener",
            "endpoint_type": endpoint_type, "cluster_id": ctx.broker.cluster_id,
            "controller_id": -1, "brokers": ()})
    return ctx.build_response({
        "throttle_time": 0, "error_code": 0, "endpoint_type": 1,
        "cluster_id": ctx.broker.cluster_id, "controller_id": controller_id(ctx, image),
        "brokers": broker_entries(ctx, image)})


# ---- FindCoordinator -------------------------------------------------------------------
def _coordinator(ctx: RequestContext, key: str, key_type: int) -> dict[str, Any]:
    cluster = _cluster(ctx)
    image: MetadataImage = cluster.quorum.image
    entry: dict[str, Any] = {"key": key, "node_id": -1, "host": "", "port": -1,
                             "error_code": ErrorCode.none, "error_message": None}
    if key_type == 1:
        entry.update(error_code=ErrorCode.coordinator_not_available,
                     error_message="Transactions are not supported by this broker yet.")
        return entry
    if key_type != 0:
        entry.update(error_code=ErrorCode.invalid_request,
                     error_message=f"Unknown coordinator key type {key_type}.")
        return entry
    topic = image.topic(OFFSETS_TOPIC)
    if topic is None:
        cluster.request_create([cluster.offsets_topic_request()])
        entry.update(error_code=ErrorCode.coordinator_not_available,
                     error_message="The coordinator is not available.")
        return entry
    part = topic.partitions.get(partition_for(key, len(topic.partitions)))
    broker = image.brokers.get(part.leader) if part is not None else None
    ep = None
    if broker is not None and not broker.fenced:
        ep = broker.endpoint(cluster.client_listener) or (
            broker.endpoints[0] if broker.endpoints else None)
    if ep is None or broker is None:
        entry.update(error_code=ErrorCode.coordinator_not_available,
                     error_message="The coordinator is not available.")
        return entry
    entry.update(node_id=broker.broker_id, host=ep.host, port=ep.port)
    return entry


async def handle_find_coordinator(ctx: RequestContext, request: Any) -> Any:
    key_type = int(getattr(request, "key_type", 0))
    if ctx.api_version >= 4:
        coordinators = [_coordinator(ctx, k, key_type) for k in request.coordinator_keys]
        return ctx.build_response({"throttle_time": 0, "coordinators": coordinators})
    entry = _coordinator(ctx, request.key, key_type)
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
        if local is not None and all(r.resource_type == 4 for r in request.resources):
            return await local(ctx, request)
        response = await _cluster(ctx).forward(request, REQUEST_DEADLINE_S)
        if response is None:  # no controller answered: REQUEST_TIMED_OUT, client retries
            return ctx.build_response(_timeout_body(api_key, request))
        await _cluster(ctx).await_visible(api_key, request, response)
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
    """Replacements for the broker listener's registry in cluster mode."""
    return [
        ApiHandler(3, 0, 12, handle_metadata),
        ApiHandler(60, 0, 2, handle_describe_cluster),
        ApiHandler(10, 0, 6, handle_find_coordinator),
        ApiHandler(19, 2, 7, _forwarder(19)),
        ApiHandler(20, 1, 6, _forwarder(20)),
        ApiHandler(37, 0, 3, _forwarder(37)),
        ApiHandler(33, 0, 2, _forwarder(33, handlers_configs.handle_alter_configs)),
        ApiHandler(44, 0, 1, _forwarder(44, handlers_configs.handle_incremental_alter_configs)),
        ApiHandler(55, 2, 2, handle_describe_quorum),
    ]
