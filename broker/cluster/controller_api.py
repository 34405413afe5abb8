"""The controller listener (``controller.listener.names``, e.g. CONTROLLER://...:19092).

It runs the same ``KafkaServer`` as the client listener with its own API registry, so its
ApiVersions advertises only what it answers:

- the quorum RPCs, stepped into the Raft core (``QuorumNode.handle``): Vote v2,
  BeginQuorumEpoch v1, EndQuorumEpoch v1, Fetch v18 (``__cluster_metadata`` only),
  FetchSnapshot v1;
- DescribeQuorum v2 (a non-leader forwards it to the quorum leader when it can);
- BrokerRegistration v0-4, BrokerHeartbeat v0-2 and AlterPartition v2-3 (ISR changes
  from partition leaders, ``controller.metadata.isr_control``) from brokers;
- AllocateProducerIds v0 from brokers (KIP-730): a block of producer ids decided by
  ``controller.metadata.producer_id_control`` and answered once its ProducerIdsRecord has
  committed; NOT_CONTROLLER (start -1, length 0) from a node that is not the active
  controller (the broker retries);
- the admin requests brokers forward (CreateTopics, DeleteTopics, CreatePartitions,
  AlterConfigs, IncrementalAlterConfigs, the same version ranges as the broker listener):
  decided by the active controller against its image with the admin code's own request
  handling (``broker.cluster.staging.StagingRegistry``), proposed as one metadata entry
  and answered once committed. A node that is not the active controller answers
  NOT_CONTROLLER for every topic/resource; the forwarding broker retries;
- ElectLeaders v0-2 (``broker.cluster.elect_leaders``), AlterPartitionReassignments v0-1
  and ListPartitionReassignments v0 (``broker.cluster.reassignments``), which brokers
  forward from their client listeners;
- Envelope v0 (KIP-590): a client's CreateTopics, DeleteTopics or CreatePartitions that a
  broker forwards with the client's principal and client id, so the controller charges the
  client's KIP-599 ``controller_mutation_rate`` (``mutation_quota``, ``STRICT_SINCE``;
  a topic refused by a strict quota gets THROTTLING_QUOTA_EXCEEDED, the response carries
  the throttle time); the same three sent directly by a broker are its own (no quota);
- CreateAcls / DeleteAcls v1-3, AlterUserScramCredentials v0 and AlterClientQuotas v0-1,
  forwarded by brokers (``broker.admin.handlers_acls``, ``handlers_scram``,
  ``handlers_quotas``);
- SaslHandshake v0-1 and SaslAuthenticate v0-2: the SASL exchange on a SASL controller
  listener (below); on an authenticated or PLAINTEXT connection ILLEGAL_SASL_STATE.

With an authorizer every request but ApiVersions and the SASL pair needs CLUSTER_ACTION
on the cluster (``cluster_action``), as Kafka's controller requires of brokers and fellow
controllers.

On a SASL_PLAINTEXT / SASL_SSL controller listener the server authenticates as on any SASL
listener (``broker.server``: ``sasl.enabled.mechanisms``, PLAIN users of
``listener.name.<controller>.plain.sasl.jaas.config``). SCRAM credentials come from the
metadata image, which needs a leader elected over this very listener. Like the users of
Kafka's ``kafka-storage.sh format --add-scram``, the ``strom.add.scram`` users are known to
a controller before that: this node accepts them while its image has no credential for
that user and mechanism (``scram_credential``), so the first election, and the one after
every controller restarted, authenticate before the log can be read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kio.schema.errors import ErrorCode

from broker.admin import handlers_acls, handlers_quotas, handlers_scram
from broker.admin.handlers_configs import answer_alter_configs, answer_incremental_alter_configs
from broker.admin.handlers_topics import (
    answer_create_partitions,
    answer_create_topics,
    answer_delete_topics,
)
from broker.cluster import elect_leaders, reassignments
from broker.cluster.staging import StagingRegistry, UnavailableRegistry
from broker.handlers import ApiHandler, CloseConnection, RequestContext, api_versions, sasl
from broker.quotas import (
    MutationQuota,
    MutationQuotaManager,
    ThrottlingQuotaExceeded,
    user_of,
)
from broker.security.authz import AclOperation, authorized_cluster
from broker.topics import TopicError
from common.security.scram import ScramCredential, parse_add_scram
from controller.metadata import isr_control, producer_id_control
from controller.metadata.records import Endpoint
from controller.metadata.scram_control import bootstrap_credential
from controller.quorum import QuorumNode
from controller.quorum_controller import NotControllerError, QuorumController
from controller.raft.wire import WireError
from net.client import RequestError
from protocol import envelope
from protocol.api_registry import ApiRegistry
from protocol.codec import DecodeError, decode_request
from replication.fetch_purgatory import FetchPurgatory

VOTE, BEGIN_QUORUM_EPOCH, END_QUORUM_EPOCH, FETCH, FETCH_SNAPSHOT = 52, 53, 54, 1, 59
DESCRIBE_QUORUM, BROKER_REGISTRATION, BROKER_HEARTBEAT = 55, 62, 63
ALTER_PARTITION = 56
CREATE_TOPICS, DELETE_TOPICS, CREATE_PARTITIONS = 19, 20, 37
ALTER_CONFIGS, INCREMENTAL_ALTER_CONFIGS = 33, 44
ALLOCATE_PRODUCER_IDS = 67
ENVELOPE = 58


class ControllerEndpoint:
    """What ``ctx.broker`` is for requests on the controller listener."""

    def __init__(self, config: Any, quorum: QuorumNode, controller: QuorumController | None,
                 defaults: Any, cluster_id: str) -> None:
        self.config = config
        self.node_id = config.node_id
        self.quorum = quorum
        self.controller = controller
        #: the topic defaults to decide with (a callable: they may change at runtime)
        self.defaults = defaults if callable(defaults) else (lambda: defaults)
        self.cluster_id = cluster_id
        self.purgatory = FetchPurgatory()
        self.extensions: dict[str, Any] = {}
        #: ``broker.security.authz``: every RPC here but ``UNGATED`` needs CLUSTER_ACTION
        self.authorizer: Any = None
        #: KIP-599 buckets of forwarded client requests (``mutation_quota``)
        self.mutation_quotas: MutationQuotaManager | None = None
        #: ``strom.add.scram`` users, salted once per process (see the module doc)
        self.bootstrap_scram: dict[tuple[str, int], ScramCredential] = {
            (u.name, u.mechanism): bootstrap_credential(u)
            for u in parse_add_scram(getattr(config, "strom_add_scram", ""))}
        self.registry: ApiRegistry[Any] = ApiRegistry(
            (h if h.api_key in UNGATED else cluster_action(h)).spec() for h in HANDLERS)

    def scram_credential(self, user: str, mechanism: int) -> ScramCredential | None:
        """The credential a SCRAM login on this listener is checked against: the metadata
        image's, else the user's bootstrap one (``strom.add.scram``)."""
        found = self.quorum.image.scram.get((user, mechanism))
        return found if found is not None else self.bootstrap_scram.get((user, mechanism))


def cluster_action(h: ApiHandler) -> ApiHandler:
    """``h`` behind Kafka's check for inter-broker and controller RPCs: the principal needs
    CLUSTER_ACTION on the cluster (brokers' principals: ``super.users``), else the answer
    is CLUSTER_AUTHORIZATION_FAILED (top-level error code; an API without one closes the
    connection)."""
    async def handle(ctx: RequestContext, request: Any) -> Any:
        if authorized_cluster(ctx, AclOperation.CLUSTER_ACTION):
            return await h.handle(ctx, request)
        if "error_code" not in getattr(ctx.response_class(), "__dataclass_fields__", {}):
            raise CloseConnection("not authorized for CLUSTER_ACTION")
        return ctx.build_response({"error_code": ErrorCode.cluster_authorization_failed})

    return ApiHandler(h.api_key, h.min_version, h.max_version, handle, h.advertised_min)


async def handle_quorum_rpc(ctx: RequestContext, request: Any) -> Any:
    try:
        return await ctx.broker.quorum.handle(request)
    except WireError as exc:
        raise CloseConnection(f"not a quorum request: {exc}") from None
    except TimeoutError:
        raise CloseConnection("the quorum did not answer in time") from None


async def handle_describe_quorum(ctx: RequestContext, request: Any) -> Any:
    quorum: QuorumNode = ctx.broker.quorum
    leader = quorum.leader_id
    if not quorum.is_leader and leader in quorum.voters and leader != quorum.node_id:
        host, port = quorum.voters[leader]
        try:
            return await quorum.pool.request(host, port, request, timeout=2.0, channel="admin")
        except RequestError:
            pass
    return quorum.describe()


def _controller(ctx: RequestContext) -> QuorumController:
    controller = ctx.broker.controller
    if controller is None:
        raise NotControllerError("this node is not a controller")
    return controller


async def handle_broker_registration(ctx: RequestContext, request: Any) -> Any:
    """v0-4; v4 carries the directory ids of the broker's data directories (KIP-858),
    older versions register them as unknown."""
    if request.cluster_id != ctx.broker.cluster_id:
        return ctx.build_response({"throttle_time": 0, "broker_epoch": -1,
                                   "error_code": ErrorCode.inconsistent_cluster_id})
    endpoints = tuple(Endpoint(li.name, li.host, int(li.port), int(li.security_protocol))
                      for li in request.listeners)
    try:
        result = await _controller(ctx).register_broker(
            broker_id=request.broker_id, incarnation_id=request.incarnation_id,
            endpoints=endpoints, rack=request.rack,
            log_dirs=tuple(d for d in getattr(request, "log_dirs", ()) if d is not None))
    except NotControllerError:
        return ctx.build_response({"throttle_time": 0, "broker_epoch": -1,
                                   "error_code": ErrorCode.not_controller})
    return ctx.build_response({"throttle_time": 0, "error_code": result.error_code,
                               "broker_epoch": result.broker_epoch})


async def handle_broker_heartbeat(ctx: RequestContext, request: Any) -> Any:
    try:
        result = await _controller(ctx).broker_heartbeat(
            broker_id=request.broker_id, broker_epoch=request.broker_epoch,
            current_metadata_offset=request.current_metadata_offset,
            want_fence=request.want_fence, want_shut_down=request.want_shut_down)
    except NotControllerError:
        return ctx.build_response({"throttle_time": 0, "error_code": ErrorCode.not_controller,
                                   "is_caught_up": False, "is_fenced": True,
                                   "should_shut_down": False})
    return ctx.build_response({
        "throttle_time": 0, "error_code": result.error_code,
        "is_caught_up": result.is_caught_up, "is_fenced": result.is_fenced,
        "should_shut_down": result.should_shut_down})


async def handle_allocate_producer_ids(ctx: RequestContext, request: Any) -> Any:
    def decide(image: Any, next_offset: int) -> tuple[Any, Any]:
        res = producer_id_control.allocate_producer_ids(
            image, broker_id=int(request.broker_id), broker_epoch=int(request.broker_epoch))
        return res.records, res

    try:
        result = await _controller(ctx).decide(decide)
    except NotControllerError:
        return ctx.build_response({"throttle_time": 0, "error_code": ErrorCode.not_controller,
                                   "producer_id_start": -1, "producer_id_len": 0})
    return ctx.build_response({"throttle_time": 0, "error_code": result.error_code,
                               "producer_id_start": result.start,
                               "producer_id_len": result.length})


async def handle_alter_partition(ctx: RequestContext, request: Any) -> Any:
    """AlterPartition v2-3 (topic ids; v3 carries each ISR member's broker epoch)."""
    items = []
    for topic in request.topics:
        for p in topic.partitions:
            if ctx.api_version >= 3:
                isr = tuple((int(b.broker_id), int(b.broker_epoch))
                            for b in p.new_isr_with_epochs)
            else:
                isr = tuple((int(b), -1) for b in p.new_isr)
            items.append(isr_control.IsrRequest(topic.topic_id, int(p.partition_index),
                                                int(p.leader_epoch), int(p.partition_epoch),
                                                isr))
    try:
        decision = await _controller(ctx).alter_partition(
            broker_id=int(request.broker_id), broker_epoch=int(request.broker_epoch),
            requests=items)
    except NotControllerError:
        return ctx.build_response({"throttle_time": 0, "error_code": ErrorCode.not_controller,
                                   "topics": ()})
    by_topic: dict[Any, list[dict[str, Any]]] = {}
    for r in decision.results:
        state = r.state
        by_topic.setdefault(r.topic_id, []).append({
            "partition_index": r.partition, "error_code": r.error_code,
            "leader_id": state.leader if state else -1,
            "leader_epoch": state.leader_epoch if state else -1,
            "isr": tuple(state.isr) if state else (),
            "partition_epoch": state.partition_epoch if state else -1})
    return ctx.build_response({
        "throttle_time": 0, "error_code": decision.error_code,
        "topics": [{"topic_id": tid, "partitions": parts} for tid, parts in by_topic.items()]})


#: KIP-599: the first version of each mutating API whose controller mutation quota is
#: strict (a topic over it is refused THROTTLING_QUOTA_EXCEEDED); older ones are permissive
STRICT_SINCE = {CREATE_TOPICS: 6, DELETE_TOPICS: 5, CREATE_PARTITIONS: 3}


def mutation_quota(ctx: RequestContext) -> MutationQuota | None:
    """The controller_mutation_rate quota of a client's forwarded CreateTopics,
    DeleteTopics or CreatePartitions (None: no quota applies, or the request is a
    broker's own). Validate-only requests are charged too, as by Kafka's controller."""
    manager = getattr(ctx.broker, "mutation_quotas", None)
    since = STRICT_SINCE.get(ctx.api_key)
    if manager is None or since is None or not ctx.forwarded:
        return None
    return manager.quota_for(user_of(ctx.principal), ctx.client_id or "",
                             ctx.api_version >= since)


def _charger(quota: MutationQuota) -> Callable[[int], None]:
    def charge(partitions: int) -> None:
        try:
            quota.record(partitions)
        except ThrottlingQuotaExceeded as exc:
            raise TopicError(ErrorCode.throttling_quota_exceeded, str(exc)) from None

    return charge


def _admin(answer: Callable[..., dict[str, Any]], with_node: bool) -> Any:
    def call(registry: Any, ctx: RequestContext, request: Any) -> dict[str, Any]:
        if with_node:
            return answer(registry, ctx.broker.node_id, request, ctx.api_version)
        return answer(registry, request, ctx.api_version)

    async def handle(ctx: RequestContext, request: Any) -> Any:
        endpoint: ControllerEndpoint = ctx.broker
        config = endpoint.config
        quota = mutation_quota(ctx)

        def decide(image: Any, next_offset: int) -> tuple[Any, Any]:
            registry = StagingRegistry(
                image, endpoint.defaults(), default_partitions=config.num_partitions,
                default_replication_factor=config.default_replication_factor,
                rng=_controller(ctx).rng, node_id=endpoint.node_id)
            if quota is not None:
                registry.charge = _charger(quota)
            body = call(registry, ctx, request)
            return registry.records, body

        try:
            body = await _controller(ctx).decide(decide)
        except NotControllerError as exc:
            body = call(UnavailableRegistry(ErrorCode.not_controller, str(exc)), ctx, request)
        if quota is not None:
            body["throttle_time"] = quota.throttle_time_ms()
        return ctx.build_response(body)

    return handle


_create_topics = ApiHandler(CREATE_TOPICS, 2, 7, _admin(answer_create_topics, False))
_delete_topics = ApiHandler(DELETE_TOPICS, 1, 6, _admin(answer_delete_topics, False))
_create_partitions = ApiHandler(CREATE_PARTITIONS, 0, 3,
                                _admin(answer_create_partitions, False))
#: what a broker may forward in an Envelope: the mutations a client's quota applies to
FORWARDABLE = {h.api_key: h for h in (_create_topics, _delete_topics, _create_partitions)}


async def handle_envelope(ctx: RequestContext, request: Any) -> Any:
    """Envelope v0 (KIP-590, ``protocol.envelope``): a broker's forwarded client request,
    run with the client's principal and client id (``RequestContext.forwarded``; the
    broker authorized it). An unreadable envelope, principal or inner request, or an API
    not in ``FORWARDABLE``: INVALID_REQUEST, no response data."""
    def refused() -> Any:
        return ctx.build_response({"error_code": ErrorCode.invalid_request,
                                   "response_data": None})

    data = bytes(request.request_data)
    try:
        header = envelope.open_request(data)
        principal = envelope.deserialize_principal(bytes(request.request_principal or b""))
    except ValueError:
        return refused()
    h = FORWARDABLE.get(header.api_key)
    if h is None or not h.min_version <= header.api_version <= h.max_version:
        return refused()
    try:
        body = decode_request(header.api_key, header.api_version, data, header.body_offset)
    except DecodeError:
        return refused()
    host = envelope.host_text(bytes(request.client_host_address or b""))
    inner = RequestContext(ctx.broker, header, f"{host}:0", ctx.connection_id,  # type: ignore[arg-type]
                           listener=ctx.listener, principal=principal, forwarded=True)
    response = await h.handle(inner, body)
    return ctx.build_response({"error_code": ErrorCode.none, "response_data":
                               envelope.response_data(header.api_key, header.api_version,
                                                      header.correlation_id, response)})


#: asked before (or instead of) authentication, so never behind CLUSTER_ACTION
UNGATED = frozenset({api_versions.API_KEY, sasl.HANDSHAKE, sasl.AUTHENTICATE})
HANDLERS = [
    ApiHandler(api_versions.API_KEY, api_versions.MIN_VERSION, api_versions.MAX_VERSION,
               api_versions.handle),
    *sasl.HANDLERS,  # the exchange itself runs in broker.server before any handler
    ApiHandler(VOTE, 2, 2, handle_quorum_rpc),
    ApiHandler(BEGIN_QUORUM_EPOCH, 1, 1, handle_quorum_rpc),
    ApiHandler(END_QUORUM_EPOCH, 1, 1, handle_quorum_rpc),
    ApiHandler(FETCH, 18, 18, handle_quorum_rpc),
    ApiHandler(FETCH_SNAPSHOT, 1, 1, handle_quorum_rpc),
    ApiHandler(DESCRIBE_QUORUM, 2, 2, handle_describe_quorum),
    ApiHandler(BROKER_REGISTRATION, 0, 4, handle_broker_registration),
    ApiHandler(BROKER_HEARTBEAT, 0, 2, handle_broker_heartbeat),
    elect_leaders.CONTROLLER_HANDLER,
    *reassignments.CONTROLLER_HANDLERS,
    ApiHandler(ALTER_PARTITION, 2, 3, handle_alter_partition),
    ApiHandler(ALLOCATE_PRODUCER_IDS, 0, 0, handle_allocate_producer_ids),
    _create_topics, _delete_topics, _create_partitions,
    ApiHandler(ENVELOPE, 0, 0, handle_envelope),
    ApiHandler(ALTER_CONFIGS, 0, 2, _admin(answer_alter_configs, True)),
    ApiHandler(INCREMENTAL_ALTER_CONFIGS, 0, 1, _admin(answer_incremental_alter_configs, True)),
    *handlers_acls.CONTROLLER_HANDLERS,
    *handlers_scram.CONTROLLER_HANDLERS,
    *handlers_quotas.CONTROLLER_HANDLERS,
]
