"""Every API's authorization, in one place: Kafka's ``KafkaApis`` checks per API key.

With an authorizer configured, the client listeners' registry is a ``GuardedRegistry``:
each handler registered in it (at build time or later) sits behind its gate (``GATES``).
A gate asks ``broker.security.authz`` and then either answers alone (everything
denied), or calls the handler with only the authorized resources and adds the denied ones
to its answer with Kafka's code, so a handler never sees, appends to, joins or changes
anything the principal may not touch. An API with no gate and not exempt is refused
outright (fail closed: CLUSTER_AUTHORIZATION_FAILED, or the connection is closed when the
response has no top-level error code), so a newly added handler cannot skip its check;
``tests/unit/security`` also asserts every registered API has a gate.

Rules (Kafka's; T = topic, G = group, X = transactional id, C = cluster):

=====================  ===========================================================
Produce                X WRITE when transactional (else every partition
                       TRANSACTIONAL_ID_AUTHORIZATION_FAILED); T WRITE per topic
Fetch                  replicas (replica_id >= 0): C CLUSTER_ACTION; consumers T READ
ListOffsets            T DESCRIBE          OffsetForLeaderEpoch  replicas C CLUSTER_ACTION,
                                                                 else T DESCRIBE
Metadata               T DESCRIBE (named: TOPIC_AUTHORIZATION_FAILED; all: omitted);
                       auto-creation needs C or T CREATE (else UNKNOWN_TOPIC_OR_PARTITION)
OffsetCommit           G READ, T READ      OffsetFetch  G DESCRIBE, T DESCRIBE (all: omitted)
FindCoordinator        G / X DESCRIBE      Join/Sync/Heartbeat/LeaveGroup  G READ
DescribeGroups         G DESCRIBE          ListGroups  C DESCRIBE, else groups filtered
DeleteGroups           G DELETE            OffsetDelete  G DELETE, T READ
CreateTopics           C or T CREATE       DeleteTopics  T DELETE   DeleteRecords T DELETE
CreatePartitions       T ALTER
DescribeConfigs        T / C DESCRIBE_CONFIGS    (Incremental)AlterConfigs T / C ALTER_CONFIGS
InitProducerId         X WRITE; idempotent: C IDEMPOTENT_WRITE or WRITE on some topic
AddPartitionsToTxn     X WRITE, T WRITE (others OPERATION_NOT_ATTEMPTED)
AddOffsetsToTxn        X WRITE, G READ     EndTxn  X WRITE
TxnOffsetCommit        X WRITE, G READ, T READ   WriteTxnMarkers  C CLUSTER_ACTION
DescribeTransactions   X DESCRIBE          ListTransactions  filtered by X DESCRIBE
DescribeLogDirs, DescribeQuorum, ListPartitionReassignments  C DESCRIBE
DescribeCluster        everyone (as Metadata's broker list; Kafka's rule too)
ElectLeaders, AlterPartitionReassignments  C ALTER
DescribeClientQuotas   C DESCRIBE_CONFIGS  AlterClientQuotas  C ALTER_CONFIGS
DescribeProducers      T READ
ConsumerGroupHeartbeat G READ              ConsumerGroupDescribe  G DESCRIBE
ShareGroupHeartbeat    G READ              ShareGroupDescribe  G DESCRIBE
ShareFetch, ShareAcknowledge  G READ, T READ (share session partitions re-checked)
DescribeShareGroupOffsets  G DESCRIBE, T DESCRIBE (others omitted)
AlterShareGroupOffsets G READ, T READ      DeleteShareGroupOffsets  G DELETE, T READ
Read/Write/DeleteShareGroupState  C CLUSTER_ACTION (broker to share coordinator)
=====================  ===========================================================

Exempt: ApiVersions and the SASL exchange (Kafka answers them before authentication).
ACL and SCRAM APIs check inside their handlers (``CHECKED_IN_HANDLER``): their rule is
part of the answer's shape (SECURITY_DISABLED without an authorizer).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Any

from kio.serial import entity_reader

from broker.handlers import ApiHandler, CloseConnection, RequestContext
from broker.security.authz import (
    CLUSTER_DENIED,
    GROUP_DENIED,
    TOPIC_DENIED,
    TXN_DENIED,
    authorized,
    authorized_any_topic,
    authorized_cluster,
    authorized_operations,
    authorized_transactional_id,
    filter_authorized,
    visible,
)
from common.logging import get_logger
from common.security.acl import CLUSTER_NAME
from common.security.acl import AclOperation as Op
from common.security.acl import ResourceType as RT
from protocol.api_registry import ApiRegistry, ApiSpec
from protocol.errors import ErrorCode

log = get_logger("strom.authorizer")

Handler = Callable[[RequestContext, Any], Awaitable[Any]]
Gate = Callable[[RequestContext, Any, Handler], Awaitable[Any]]

#: answered before (or as part of) authentication, as Kafka
EXEMPT = frozenset({18, 17, 36})
#: the handler asks ``broker.security.authz`` itself
CHECKED_IN_HANDLER = frozenset({29, 30, 31, 50, 51})
NOT_ATTEMPTED = ErrorCode.operation_not_attempted


NOT_REQUESTED = -(2**31)


def _masked(ctx: RequestContext, entity: Any, field: str, rtype: RT, name: str) -> Any:
    """``entity`` with its KIP-430 operations field reduced to what the principal may do
    (handlers fill in every operation: they know nothing of ACLs)."""
    value = getattr(entity, field, NOT_REQUESTED)
    if value is None or int(value) == NOT_REQUESTED:
        return entity
    return dataclasses.replace(entity, **{field: authorized_operations(
        ctx, rtype, name, int(value))})


def _topic(ctx: RequestContext, op: Op, name: str) -> bool:
    return authorized(ctx, op, RT.TOPIC, name)


def _group(ctx: RequestContext, op: Op, name: str) -> bool:
    return authorized(ctx, op, RT.GROUP, name)


def _image(ctx: RequestContext) -> Any:
    return ctx.broker.cluster.quorum.image


def _name_of_id(ctx: RequestContext, topic_id: Any) -> str | None:
    topic = _image(ctx).topics.get(topic_id)
    return topic.name if topic is not None else None


def _as_entity(ctx: RequestContext, response: Any) -> Any:
    """``response`` as a kio entity: a handler may answer with a pre-encoded body
    (``chunks``, the hand-written Fetch encoder), decoded here only when a gate must
    change the answer."""
    if dataclasses.is_dataclass(response) or not hasattr(response, "to_bytes"):
        return response
    entity, _ = entity_reader(ctx.response_class())(memoryview(response.to_bytes()), 0)
    return entity


def _merge(response: Any, field: str, extra: tuple[Any, ...], ctx: RequestContext | None
           = None) -> Any:
    if ctx is not None:
        response = _as_entity(ctx, response)
    return dataclasses.replace(response, **{field: tuple(getattr(response, field)) + extra})


def _built(ctx: RequestContext, field: str, entries: list[dict[str, Any]]) -> tuple[Any, ...]:
    """``entries`` as the kio entities of the response's list ``field``."""
    return tuple(getattr(ctx.build_response({field: entries}), field))


async def _split(ctx: RequestContext, request: Any, handler: Handler, *, req_field: str,
                 allowed: Callable[[Any], bool], rsp_field: str,
                 denied_entry: Callable[[Any], dict[str, Any]],
                 base: dict[str, Any] | None = None) -> Any:
    """Call ``handler`` with the items of ``request.<req_field>`` that are ``allowed``;
    the others answer ``denied_entry(item)`` in ``response.<rsp_field>``. All denied: the
    answer is built here (``base`` + the denied entries)."""
    items = tuple(getattr(request, req_field) or ())
    ok = tuple(i for i in items if allowed(i))
    if len(ok) == len(items):
        return await handler(ctx, request)
    denied = [denied_entry(i) for i in items if i not in ok]
    if not ok:
        return ctx.build_response({"throttle_time": 0, **(base or {}), rsp_field: denied})
    response = await handler(ctx, dataclasses.replace(request, **{req_field: ok}))
    if response is None:
        return None
    return _merge(response, rsp_field, _built(ctx, rsp_field, denied), ctx)


def _top_error(ctx: RequestContext, code: ErrorCode, **extra: Any) -> Any:
    """An answer carrying ``code`` at the top level (and nothing else)."""
    if "error_code" not in ctx.response_class().__dataclass_fields__:
        raise CloseConnection(f"not authorized ({code.name})")
    return ctx.build_response({"throttle_time": 0, "error_code": code,
                               "error_message": _message(code), **extra})


def _message(code: ErrorCode) -> str:
    return {CLUSTER_DENIED: "Cluster authorization failed.",
            GROUP_DENIED: "Group authorization failed.",
            TOPIC_DENIED: "Topic authorization failed.",
            TXN_DENIED: "Transactional Id authorization failed."}.get(code, code.name)


def cluster_gate(op: Op) -> Gate:
    async def gate(ctx: RequestContext, request: Any, handler: Handler) -> Any:
        if authorized_cluster(ctx, op):
            return await handler(ctx, request)
        return _top_error(ctx, CLUSTER_DENIED)
    return gate


def group_gate(op: Op, field: str = "group_id") -> Gate:
    async def gate(ctx: RequestContext, request: Any, handler: Handler) -> Any:
        if _group(ctx, op, getattr(request, field)):
            return await handler(ctx, request)
        return _top_error(ctx, GROUP_DENIED)
    return gate


# ---- data -----------------------------------------------------------------------------
async def produce(ctx: RequestContext, request: Any, handler: Handler) -> Any:
    txn = request.transactional_id
    txn_ok = txn is None or authorized_transactional_id(ctx, txn)

    def allowed(t: Any) -> bool:
        return txn_ok and _topic(ctx, Op.WRITE, t.name)

    def denied(t: Any) -> dict[str, Any]:
        code = TOPIC_DENIED if txn_ok else TXN_DENIED
        return {"name": t.name, "partition_responses": [
            {"index": p.index, "error_code": code, "base_offset": -1,
             "log_append_time": None, "log_start_offset": -1}
            for p in t.partition_data]}

    acks = int(request.acks)
    response = await _split(ctx, request, handler, req_field="topic_data", allowed=allowed,
                            rsp_field="responses", denied_entry=denied)
    if acks == 0:
        if not all(allowed(t) for t in request.topic_data):
            raise CloseConnection("acks=0 produce not authorized")
        return None
    return response


def _fetch_name(ctx: RequestContext, t: Any) -> str | None:
    name = getattr(t, "topic", None)
    return name if name is not None else _name_of_id(ctx, t.topic_id)


def _replica_id(request: Any) -> int:
    state = getattr(request, "replica_state", None)
    if state is not None and int(state.replica_id) >= 0:
        return int(state.replica_id)
    return int(getattr(request, "replica_id", -1))


def _session_topics(ctx: RequestContext, request: Any) -> set[str]:
    """The topics an incremental fetch session answers for besides the request's own."""
    session_id = int(getattr(request, "session_id", 0) or 0)
    if session_id == 0 or int(getattr(request, "session_epoch", -1)) <= 0:
        return set()
    cache = getattr(ctx.broker, "fetch_sessions", None)
    session = cache.get(session_id, time.time_ns() // 1_000_000) if cache else None
    return {name for name, _ in session.partitions} if session is not None else set()


async def fetch(ctx: RequestContext, request: Any, handler: Handler) -> Any:
    if _replica_id(request) >= 0:
        if authorized_cluster(ctx, Op.CLUSTER_ACTION):
            return await handler(ctx, request)
        return _top_error(ctx, CLUSTER_DENIED, responses=[])
    names = {_fetch_name(ctx, t) for t in request.topics} - {None}
    # an incremental session also answers for the partitions it holds: an ACL removed
    # since they joined must stop their data too (Kafka re-authorizes the whole session)
    readable = filter_authorized(ctx, Op.READ, RT.TOPIC,
                                 names | _session_topics(ctx, request))
    ok = tuple(t for t in request.topics
               if _fetch_name(ctx, t) is None or _fetch_name(ctx, t) in readable)
    unreadable_session = _session_topics(ctx, request) - readable
    if len(ok) == len(request.topics) and not unreadable_session:
        return await handler(ctx, request)  # the common case: the answer as it is
    denied = [denied_entry_for(t) for t in request.topics if t not in ok]
    response = await handler(ctx, dataclasses.replace(request, topics=ok))
    response = _as_entity(ctx, response)
    kept = tuple(t if _fetch_name(ctx, t) not in unreadable_session
                 else _built(ctx, "responses", [denied_entry_for(t)])[0]
                 for t in response.responses)
    return dataclasses.replace(response, responses=kept + _built(ctx, "responses", denied))


def denied_entry_for(t: Any) -> dict[str, Any]:
    """A Fetch request or response topic answered TOPIC_AUTHORIZATION_FAILED, without
    records."""
    key = {"topic": t.topic} if hasattr(t, "topic") else {"topic_id": t.topic_id}
    return {**key, "partitions": [
        {"partition_index": getattr(p, "partition_index", getattr(p, "partition", -1)),
         "error_code": TOPIC_DENIED,
         "high_watermark": -1, "last_stable_offset": -1, "log_start_offset": -1,
         "aborted_transactions": None, "preferred_read_replica": -1, "records": None}
        for p in t.partitions]}


async def list_offsets(ctx: RequestContext, request: Any, handler: Handler) -> Any:
    return await _split(
        ctx, request, handler, req_field="topics",
        allowed=lambda t: _topic(ctx, Op.DESCRIBE, t.name), rsp_field="topics",
        denied_entry=lambda t: {"name": t.name, "partitions": [
            {"partition_index": p.partition_index, "error_code": TOPIC_DENIED,
             "timestamp": -1, "offset": -1, "leader_epoch": -1} for p in t.partitions]})


async def offset_for_leader_epoch(ctx: RequestContext, request: Any, handler: Handler
                                  ) -> Any:
    if int(getattr(request, "replica_id", -1)) >= 0:
        if authorized_cluster(ctx, Op.CLUSTER_ACTION):
            return await handler(ctx, request)
        op_ok: Callable[[str], bool] = lambda name: False  # noqa: E731
    else:
        op_ok = lambda name: _topic(ctx, Op.DESCRIBE, name)  # noqa: E731
    return await _split(
        ctx, request, handler, req_field="topics", allowed=lambda t: op_ok(t.topic),
        rsp_field="topics",
        denied_entry=lambda t: {"topic": t.topic, "partitions": [
            {"partition": p.partition, "error_code": TOPIC_DENIED, "leader_epoch": -1,
             "end_offset": -1} for p in t.partitions]})


def _may_create(ctx: RequestContext, name: str) -> bool:
    return authorized_cluster(ctx, Op.CREATE) or _topic(ctx, Op.CREATE, name)


async def metadata(ctx: RequestContext, request: Any, handler: Handler) -> Any:
    response = await _metadata(ctx, request, handler)
    topics = tuple(_masked(ctx, t, "topic_authorized_operations", RT.TOPIC, t.name)
                   if t.name is not None else t for t in response.topics)
    response = _masked(ctx, response, "cluster_authorized_operations", RT.CLUSTER,
                       CLUSTER_NAME)
    return dataclasses.replace(response, topics=topics)


async def _metadata(ctx: RequestContext, request: Any, handler: Handler) -> Any:
    if request.topics is None or (ctx.api_version == 0 and not request.topics):
        # every topic: the ones it may describe
        response = await handler(ctx, request)
        kept = tuple(t for t in response.topics
                     if t.name is not None and visible(ctx, Op.DESCRIBE, RT.TOPIC, t.name))
        return dataclasses.replace(response, topics=kept)
    image = _image(ctx)
    auto = bool(getattr(request, "allow_auto_topic_creation", True))
    ok, denied = [], []
    for t in request.topics:
        name = t.name if t.name is not None else _name_of_id(ctx, getattr(t, "topic_id", None))
        if name is None:
            ok.append(t)  # an unknown topic id: UNKNOWN_TOPIC_ID from the handler
        elif not _topic(ctx, Op.DESCRIBE, name):
            denied.append((t, name, TOPIC_DENIED))
        elif auto and image.topic(name) is None and not _may_create(ctx, name):
            denied.append((t, name, ErrorCode.unknown_topic_or_partition))
        else:
            ok.append(t)
    if not denied:
        return await handler(ctx, request)
    entries = [{"error_code": code, "name": name, "topic_id": getattr(t, "topic_id", None),
                "is_internal": False, "partitions": [],
                "topic_authorized_operations": -2147483648} for t, name, code in denied]
    response = await handler(ctx, dataclasses.replace(request, topics=tuple(ok)))
    return _merge(response, "topics", _built(ctx, "topics", entries))


async def describe_producers(ctx: RequestContext, request: Any, handler: Handler) -> Any:
    return await _split(
        ctx, request, handler, req_field="topics",
        allowed=lambda t: _topic(ctx, Op.READ, t.name), rsp_field="topics",
        denied_entry=lambda t: {"name": t.name, "partitions": [
            {"partition_index": p, "error_code": TOPIC_DENIED,
             "error_message": _message(TOPIC_DENIED), "active_producers": []}
            for p in t.partition_indexes]})


# ---- groups ---------------------------------------------------------------------------
def _offset_parts(t: Any, code: ErrorCode) -> dict[str, Any]:
    return {"name": t.name, "partitions": [
        {"partition_index": p.partition_index, "error_code": code} for p in t.partitions]}


async def offset_commit(ctx: RequestContext, request: Any, handler: Handler) -> Any:
    if not _group(ctx, Op.READ, request.group_id):
        return ctx.build_response({"throttle_time": 0, "topics": [
            _offset_parts(t, GROUP_DENIED) for t in request.topics]})
    return await _split(ctx, request, handler, req_field="topics",
                        allowed=lambda t: _topic(ctx, Op.READ, t.name), rsp_field="topics",
                        denied_entry=lambda t: _offset_parts(t, TOPIC_DENIED))


def _fetched(t: Any, code: ErrorCode) -> dict[str, Any]:
    indexes = getattr(t, "partition_indexes", ())
    return {"name": t.name, "partitions": [
        {"partition_index": i, "committed_offset": -1, "committed_leader_epoch": -1,
         "metadata": None, "error_code": code} for i in indexes]}


def _visible_topics(ctx: RequestContext, topics: Any) -> tuple[Any, ...]:
    return tuple(t for t in topics if authorized(ctx, Op.DESCRIBE, RT.TOPIC, t.name))


async def offset_fetch(ctx: RequestContext, request: Any, handler: Handler) -> Any:
    if hasattr(request, "groups"):  # v8+: several groups, each answered on its own
        ok = tuple(g for g in request.groups if _group(ctx, Op.DESCRIBE, g.group_id))
        denied = [{"group_id": g.group_id, "topics": [], "error_code": GROUP_DENIED}
                  for g in request.groups if g not in ok]
        if not ok:
            return ctx.build_response({"throttle_time": 0, "groups": denied})
        narrowed = tuple(dataclasses.replace(
            g, topics=None if g.topics is None else _visible_topics(ctx, g.topics))
            for g in ok)
        response = await handler(ctx, dataclasses.replace(request, groups=narrowed))
        groups = []
        for g, asked in zip(response.groups, ok, strict=False):
            extra = () if asked.topics is None else _built(ctx, "groups", [
                {"group_id": g.group_id, "topics": [
                    _fetched(t, TOPIC_DENIED) for t in asked.topics
                    if t not in _visible_topics(ctx, asked.topics)]}])[0].topics
            topics = tuple(t for t in g.topics if authorized(
                ctx, Op.DESCRIBE, RT.TOPIC, t.name)) + tuple(extra)
            groups.append(dataclasses.replace(g, topics=topics))
        return _merge(dataclasses.replace(response, groups=tuple(groups)), "groups",
                      _built(ctx, "groups", denied))
    if not _group(ctx, Op.DESCRIBE, request.group_id):
        if "error_code" in ctx.response_class().__dataclass_fields__:
            return ctx.build_response({"throttle_time": 0, "topics": [],
                                       "error_code": GROUP_DENIED})
        return ctx.build_response({"throttle_time": 0, "topics": [
            _fetched(t, GROUP_DENIED) for t in request.topics or ()]})
    if request.topics is None:
        response = await handler(ctx, request)
        return dataclasses.replace(response, topics=_visible_topics(ctx, response.topics))
    return await _split(ctx, request, handler, req_field="topics",
                        allowed=lambda t: _topic(ctx, Op.DESCRIBE, t.name),
                        rsp_field="topics",
                        denied_entry=lambda t: _fetched(t, TOPIC_DENIED),
                        base={"error_code": 0})


async def find_coordinator(ctx: RequestContext, request: Any, handler: Handler) -> Any:
    key_type = int(getattr(request, "key_type", 0))
    if key_type == 1:
        may, code = (lambda k: authorized_transactional_id(ctx, k, Op.DESCRIBE)), TXN_DENIED
    else:
        may, code = (lambda k: _group(ctx, Op.DESCRIBE, k)), GROUP_DENIED
    if hasattr(request, "coordinator_keys"):
        return await _split(
            ctx, request, handler, req_field="coordinator_keys", allowed=may,
            rsp_field="coordinators",
            denied_entry=lambda k: {"key": k, "node_id": -1, "host": "", "port": -1,
                                    "error_code": code, "error_message": _message(code)})
    if may(request.key):
        return await handler(ctx, request)
    return ctx.build_response({"throttle_time": 0, "error_code": code,
                               "error_message": _message(code), "node_id": -1, "host": "",
                               "port": -1})


async def describe_groups(ctx: RequestContext, request: Any, handler: Handler) -> Any:
    response = await _split(
        ctx, request, handler, req_field="groups",
        allowed=lambda g: _group(ctx, Op.DESCRIBE, g), rsp_field="groups",
        denied_entry=lambda g: {"error_code": GROUP_DENIED, "group_id": g, "group_state": "",
                                "protocol_type": "", "protocol_data": "", "members": [],
                                "authorized_operations": -2147483648})
    return dataclasses.replace(response, groups=tuple(
        _masked(ctx, g, "authorized_operations", RT.GROUP, g.group_id)
        for g in response.groups))


async def list_groups(ctx: RequestContext, request: Any, handler: Handler) -> Any:
    response = await handler(ctx, request)
    if visible(ctx, Op.DESCRIBE, RT.CLUSTER, CLUSTER_NAME):
        return response
    return dataclasses.replace(response, groups=tuple(
        g for g in response.groups if visible(ctx, Op.DESCRIBE, RT.GROUP, g.group_id)))


async def delete_groups(ctx: RequestContext, request: Any, handler: Handler) -> Any:
    return await _split(ctx, request, handler, req_field="groups_names",
                        allowed=lambda g: _group(ctx, Op.DELETE, g), rsp_field="results",
                        denied_entry=lambda g: {"group_id": g, "error_code": GROUP_DENIED})


async def offset_delete(ctx: RequestContext, request: Any, handler: Handler) -> Any:
    if not _group(ctx, Op.DELETE, request.group_id):
        return ctx.build_response({"throttle_time": 0, "error_code": GROUP_DENIED,
                                   "topics": []})
    return await _split(ctx, request, handler, req_field="topics",
                        allowed=lambda t: _topic(ctx, Op.READ, t.name), rsp_field="topics",
                        denied_entry=lambda t: _offset_parts(t, TOPIC_DENIED),
                        base={"error_code": 0})


async def kip848_group_describe(ctx: RequestContext, request: Any, handler: Handler
                                ) -> Any:
    """ConsumerGroupDescribe and ShareGroupDescribe (one response shape): G DESCRIBE per
    group, denied groups answered GROUP_AUTHORIZATION_FAILED, operations masked."""
    response = await _split(
        ctx, request, handler, req_field="group_ids",
        allowed=lambda g: _group(ctx, Op.DESCRIBE, g), rsp_field="groups",
        denied_entry=lambda g: {"error_code": GROUP_DENIED,
                                "error_message": _message(GROUP_DENIED), "group_id": g,
                                "group_state": "", "group_epoch": 0, "assignment_epoch": 0,
                                "assignor_name": "", "members": [],
                                "authorized_operations": -2147483648})
    return dataclasses.replace(response, groups=tuple(
        _masked(ctx, g, "authorized_operations", RT.GROUP, g.group_id)
        for g in response.groups))


# ---- share groups (KIP-932) -----------------------------------------------------------
def _share_denied_topic(t: Any, code: ErrorCode) -> dict[str, Any]:
    return {"topic_id": t.topic_id, "partitions": [
        {"partition_index": p.partition_index, "error_code": code,
         "error_message": _message(code), "records": None, "acquired_records": []}
        for p in t.partitions]}


def share_data_gate(op: Op) -> Gate:
    """ShareFetch / ShareAcknowledge: G READ (else GROUP_AUTHORIZATION_FAILED at the top)
    and T ``op`` per topic; a share session's other partitions are re-checked in the
    answer, as for Fetch sessions."""
    async def gate(ctx: RequestContext, request: Any, handler: Handler) -> Any:
        if not _group(ctx, Op.READ, request.group_id):
            return _top_error(ctx, GROUP_DENIED, responses=[])

        def readable(t: Any) -> bool:
            name = _name_of_id(ctx, t.topic_id)
            return name is None or _topic(ctx, op, name)

        response = await _split(ctx, request, handler, req_field="topics",
                                allowed=readable, rsp_field="responses",
                                denied_entry=lambda t: _share_denied_topic(t, TOPIC_DENIED),
                                base={"error_code": 0})
        response = _as_entity(ctx, response)
        if not hasattr(response, "responses"):
            return response
        kept = []
        for t in response.responses:
            name = _name_of_id(ctx, t.topic_id)
            if name is not None and any(int(p.error_code) == 0 for p in t.partitions) \
                    and not authorized(ctx, op, RT.TOPIC, name):
                t = _built(ctx, "responses", [_share_denied_topic(t, TOPIC_DENIED)])[0]
            kept.append(t)
        return dataclasses.replace(response, responses=tuple(kept))
    return gate


async def describe_share_group_offsets(ctx: RequestContext, request: Any, handler: Handler
                                       ) -> Any:
    response = await _split(
        ctx, request, handler, req_field="groups",
        allowed=lambda g: _group(ctx, Op.DESCRIBE, g.group_id), rsp_field="groups",
        denied_entry=lambda g: {"group_id": g.group_id, "topics": [],
                                "error_code": GROUP_DENIED,
                                "error_message": _message(GROUP_DENIED)})
    return dataclasses.replace(response, groups=tuple(
        dataclasses.replace(g, topics=tuple(
            t for t in g.topics if visible(ctx, Op.DESCRIBE, RT.TOPIC, t.topic_name)))
        for g in response.groups))


def share_offsets_gate(group_op: Op) -> Gate:
    """Alter/DeleteShareGroupOffsets: G ``group_op`` (top-level error), T READ per topic."""
    async def gate(ctx: RequestContext, request: Any, handler: Handler) -> Any:
        if not _group(ctx, group_op, request.group_id):
            return _top_error(ctx, GROUP_DENIED, responses=[])

        def denied(t: Any) -> dict[str, Any]:
            entry: dict[str, Any] = {"topic_name": t.topic_name, "error_code": TOPIC_DENIED,
                                     "error_message": _message(TOPIC_DENIED)}
            if hasattr(t, "partitions"):
                entry["partitions"] = [{"partition_index": p.partition_index,
                                        "error_code": TOPIC_DENIED,
                                        "error_message": _message(TOPIC_DENIED)}
                                       for p in t.partitions]
            return entry

        return await _split(ctx, request, handler, req_field="topics",
                            allowed=lambda t: _topic(ctx, Op.READ, t.topic_name),
                            rsp_field="responses", denied_entry=denied,
                            base={"error_code": 0})
    return gate


# ---- admin ----------------------------------------------------------------------------
async def create_topics(ctx: RequestContext, request: Any, handler: Handler) -> Any:
    return await _split(
        ctx, request, handler, req_field="topics",
        allowed=lambda t: _may_create(ctx, t.name), rsp_field="topics",
        denied_entry=lambda t: {"name": t.name, "error_code": TOPIC_DENIED,
                                "error_message": _message(TOPIC_DENIED),
                                "num_partitions": -1, "replication_factor": -1,
                                "configs": None})


async def delete_topics(ctx: RequestContext, request: Any, handler: Handler) -> Any:
    if hasattr(request, "topic_names"):
        return await _split(
            ctx, request, handler, req_field="topic_names",
            allowed=lambda n: _topic(ctx, Op.DELETE, n), rsp_field="responses",
            denied_entry=lambda n: {"name": n, "error_code": TOPIC_DENIED})

    def name(t: Any) -> str | None:
        return t.name if t.name is not None else _name_of_id(ctx, t.topic_id)

    return await _split(
        ctx, request, handler, req_field="topics",
        allowed=lambda t: name(t) is None or _topic(ctx, Op.DELETE, name(t)),
        rsp_field="responses",
        denied_entry=lambda t: {"name": t.name, "topic_id": t.topic_id,
                                "error_code": TOPIC_DENIED,
                                "error_message": _message(TOPIC_DENIED)})


async def delete_records(ctx: RequestContext, request: Any, handler: Handler) -> Any:
    return await _split(
        ctx, request, handler, req_field="topics",
        allowed=lambda t: _topic(ctx, Op.DELETE, t.name), rsp_field="topics",
        denied_entry=lambda t: {"name": t.name, "partitions": [
            {"partition_index": p.partition_index, "low_watermark": -1,
             "error_code": TOPIC_DENIED} for p in t.partitions]})


async def create_partitions(ctx: RequestContext, request: Any, handler: Handler) -> Any:
    return await _split(
        ctx, request, handler, req_field="topics",
        allowed=lambda t: _topic(ctx, Op.ALTER, t.name), rsp_field="results",
        denied_entry=lambda t: {"name": t.name, "error_code": TOPIC_DENIED,
                                "error_message": _message(TOPIC_DENIED)})


def _config_allowed(ctx: RequestContext, op: Op, r: Any) -> bool:
    if int(r.resource_type) == int(RT.TOPIC):  # ConfigResource TOPIC = 2 as ResourceType
        return _topic(ctx, op, r.resource_name)
    return authorized_cluster(ctx, op)  # BROKER (4) and BROKER_LOGGER (8)


def _config_denied(r: Any) -> dict[str, Any]:
    code = TOPIC_DENIED if int(r.resource_type) == int(RT.TOPIC) else CLUSTER_DENIED
    return {"error_code": code, "error_message": _message(code),
            "resource_type": r.resource_type, "resource_name": r.resource_name,
            "configs": []}


def configs_gate(op: Op, rsp_field: str) -> Gate:
    async def gate(ctx: RequestContext, request: Any, handler: Handler) -> Any:
        return await _split(ctx, request, handler, req_field="resources",
                            allowed=lambda r: _config_allowed(ctx, op, r),
                            rsp_field=rsp_field, denied_entry=_config_denied)
    return gate


async def elect_leaders(ctx: RequestContext, request: Any, handler: Handler) -> Any:
    if authorized_cluster(ctx, Op.ALTER):
        return await handler(ctx, request)
    return ctx.build_response({"throttle_time": 0, "error_code": CLUSTER_DENIED,
                               "replica_election_results": [
        {"topic": t.topic, "partition_result": [
            {"partition_id": p, "error_code": CLUSTER_DENIED,
             "error_message": _message(CLUSTER_DENIED)} for p in t.partitions]}
        for t in request.topic_partitions or ()]})


async def describe_cluster(ctx: RequestContext, request: Any, handler: Handler) -> Any:
    """Like Metadata's broker list, DescribeCluster is every client's; Kafka checks the
    cluster ACLs only to fill ``cluster_authorized_operations``."""
    return _masked(ctx, await handler(ctx, request), "cluster_authorized_operations",
                   RT.CLUSTER, CLUSTER_NAME)


async def alter_client_quotas(ctx: RequestContext, request: Any, handler: Handler) -> Any:
    if authorized_cluster(ctx, Op.ALTER_CONFIGS):
        return await handler(ctx, request)
    return ctx.build_response({"throttle_time": 0, "entries": [
        {"error_code": CLUSTER_DENIED, "error_message": _message(CLUSTER_DENIED),
         "entity": [{"entity_type": d.entity_type, "entity_name": d.entity_name}
                    for d in entry.entity]} for entry in request.entries]})


async def describe_log_dirs(ctx: RequestContext, request: Any, handler: Handler) -> Any:
    if authorized_cluster(ctx, Op.DESCRIBE):
        return await handler(ctx, request)
    return ctx.build_response({"throttle_time": 0, "error_code": CLUSTER_DENIED,
                               "results": []})


# ---- transactions ---------------------------------------------------------------------
async def init_producer_id(ctx: RequestContext, request: Any, handler: Handler) -> Any:
    txn = request.transactional_id
    if txn is not None:
        if authorized_transactional_id(ctx, txn):
            return await handler(ctx, request)
        code = TXN_DENIED
    elif authorized_cluster(ctx, Op.IDEMPOTENT_WRITE) or authorized_any_topic(ctx, Op.WRITE):
        return await handler(ctx, request)
    else:
        code = CLUSTER_DENIED
    return ctx.build_response({"throttle_time": 0, "error_code": code, "producer_id": -1,
                               "producer_epoch": -1})


def _txn_id(request: Any) -> str:
    return getattr(request, "transactional_id", None) or getattr(
        request, "v3_and_below_transactional_id", "")


def txn_gate(group_op: Op | None = None) -> Gate:
    """X WRITE (and G ``group_op`` on ``group_id``) for a one-answer transaction API."""
    async def gate(ctx: RequestContext, request: Any, handler: Handler) -> Any:
        if not authorized_transactional_id(ctx, _txn_id(request)):
            return _top_error(ctx, TXN_DENIED)
        if group_op is not None and not _group(ctx, group_op, request.group_id):
            return _top_error(ctx, GROUP_DENIED)
        return await handler(ctx, request)
    return gate


async def add_partitions_to_txn(ctx: RequestContext, request: Any, handler: Handler) -> Any:
    topics = getattr(request, "v3_and_below_topics", None)
    if topics is None:  # v4+ (broker-to-broker batches): CLUSTER_ACTION
        return await cluster_gate(Op.CLUSTER_ACTION)(ctx, request, handler)
    txn_ok = authorized_transactional_id(ctx, _txn_id(request))
    denied_topics = {t.name for t in topics if not _topic(ctx, Op.WRITE, t.name)}
    if txn_ok and not denied_topics:
        return await handler(ctx, request)

    def code(name: str) -> ErrorCode:
        if not txn_ok:
            return TXN_DENIED
        return TOPIC_DENIED if name in denied_topics else NOT_ATTEMPTED

    return ctx.build_response({"throttle_time": 0, "results_by_topic_v3_and_below": [
        {"name": t.name, "results_by_partition": [
            {"partition_index": p, "partition_error_code": code(t.name)}
            for p in t.partitions]} for t in topics]})


async def txn_offset_commit(ctx: RequestContext, request: Any, handler: Handler) -> Any:
    if not authorized_transactional_id(ctx, request.transactional_id):
        return ctx.build_response({"throttle_time": 0, "topics": [
            _offset_parts(t, TXN_DENIED) for t in request.topics]})
    if not _group(ctx, Op.READ, request.group_id):
        return ctx.build_response({"throttle_time": 0, "topics": [
            _offset_parts(t, GROUP_DENIED) for t in request.topics]})
    return await _split(ctx, request, handler, req_field="topics",
                        allowed=lambda t: _topic(ctx, Op.READ, t.name), rsp_field="topics",
                        denied_entry=lambda t: _offset_parts(t, TOPIC_DENIED))


async def write_txn_markers(ctx: RequestContext, request: Any, handler: Handler) -> Any:
    if authorized_cluster(ctx, Op.CLUSTER_ACTION):
        return await handler(ctx, request)
    return ctx.build_response({"markers": [
        {"producer_id": m.producer_id, "topics": [
            {"name": t.name, "partitions": [
                {"partition_index": p, "error_code": CLUSTER_DENIED}
                for p in t.partition_indexes]} for t in m.topics]}
        for m in request.markers]})


async def share_group_state(ctx: RequestContext, request: Any, handler: Handler) -> Any:
    """Read/Write/DeleteShareGroupState: C CLUSTER_ACTION, else every partition is
    CLUSTER_AUTHORIZATION_FAILED (the answers have no top-level error)."""
    if authorized_cluster(ctx, Op.CLUSTER_ACTION):
        return await handler(ctx, request)
    return ctx.build_response({"results": [
        {"topic_id": t.topic_id, "partitions": [
            {"partition": p.partition, "error_code": CLUSTER_DENIED, "start_offset": -1}
            for p in t.partitions]} for t in request.topics]})


async def describe_transactions(ctx: RequestContext, request: Any, handler: Handler) -> Any:
    return await _split(
        ctx, request, handler, req_field="transactional_ids",
        allowed=lambda x: authorized_transactional_id(ctx, x, Op.DESCRIBE),
        rsp_field="transaction_states",
        denied_entry=lambda x: {"error_code": TXN_DENIED, "transactional_id": x,
                                "transaction_state": "", "transaction_timeout": 0,
                                "producer_id": -1, "producer_epoch": -1, "topics": []})


async def list_transactions(ctx: RequestContext, request: Any, handler: Handler) -> Any:
    response = await handler(ctx, request)
    return dataclasses.replace(response, transaction_states=tuple(
        s for s in response.transaction_states
        if visible(ctx, Op.DESCRIBE, RT.TRANSACTIONAL_ID, s.transactional_id)))


GATES: dict[int, Gate] = {
    0: produce, 1: fetch, 2: list_offsets, 3: metadata,
    8: offset_commit, 9: offset_fetch, 10: find_coordinator,
    11: group_gate(Op.READ), 12: group_gate(Op.READ), 13: group_gate(Op.READ),
    14: group_gate(Op.READ), 15: describe_groups, 16: list_groups,
    19: create_topics, 20: delete_topics, 21: delete_records, 22: init_producer_id,
    23: offset_for_leader_epoch, 24: add_partitions_to_txn, 25: txn_gate(Op.READ),
    26: txn_gate(), 27: write_txn_markers, 28: txn_offset_commit,
    32: configs_gate(Op.DESCRIBE_CONFIGS, "results"),
    33: configs_gate(Op.ALTER_CONFIGS, "responses"), 35: describe_log_dirs,
    37: create_partitions, 42: delete_groups, 43: elect_leaders,
    44: configs_gate(Op.ALTER_CONFIGS, "responses"),
    45: cluster_gate(Op.ALTER), 46: cluster_gate(Op.DESCRIBE), 47: offset_delete,
    55: cluster_gate(Op.DESCRIBE), 60: describe_cluster, 61: describe_producers,
    48: cluster_gate(Op.DESCRIBE_CONFIGS), 49: alter_client_quotas,
    65: describe_transactions, 66: list_transactions,
    68: group_gate(Op.READ), 69: kip848_group_describe,
    76: group_gate(Op.READ), 77: kip848_group_describe, 78: share_data_gate(Op.READ),
    79: share_data_gate(Op.READ), 90: describe_share_group_offsets,
    91: share_offsets_gate(Op.READ), 92: share_offsets_gate(Op.DELETE),
    # Read/Write/DeleteShareGroupState: broker to share coordinator, as Kafka
    84: share_group_state, 85: share_group_state, 86: share_group_state,
}


def _fail_closed(api_key: int) -> Handler:
    async def handle(ctx: RequestContext, request: Any) -> Any:
        log.error("authorization_rule_missing", api_key=api_key,
                  action="refused: every API needs a gate in broker.security.gates")
        return _top_error(ctx, CLUSTER_DENIED)
    return handle


def guarded_handler(api_key: int, inner: Handler) -> Handler:
    """``inner`` behind the gate of ``api_key`` (exempt and in-handler APIs unchanged; no
    gate: refused)."""
    if api_key in EXEMPT or api_key in CHECKED_IN_HANDLER:
        return inner
    gate = GATES.get(api_key)
    if gate is None:
        return _fail_closed(api_key)

    async def handle(ctx: RequestContext, request: Any) -> Any:
        if ctx.internal:
            return await inner(ctx, request)
        return await gate(ctx, request, inner)

    return handle


def guarded(h: ApiHandler) -> ApiHandler:
    return dataclasses.replace(h, handle=guarded_handler(h.api_key, h.handle))


class GuardedRegistry(ApiRegistry[Any]):
    """An API registry whose every entry, also one registered later (a coordinator that
    adds its APIs at startup), is behind its gate."""

    def register(self, spec: ApiSpec[Any]) -> None:
        super().register(dataclasses.replace(
            spec, handler=guarded_handler(spec.api_key, spec.handler)))
