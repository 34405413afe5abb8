"""Transaction APIs (transaction version 1): AddPartitionsToTxn (24) v0-5, AddOffsetsToTxn
(25) v0-3, EndTxn (26) v0-3, WriteTxnMarkers (27) v1, TxnOffsetCommit (28) v0-3,
DescribeTransactions (65) v0, ListTransactions (66) v0-1. InitProducerId with a
transactional id is ``init_transactional`` (the core InitProducerId handler calls it).

AddPartitionsToTxn v4-5 is KIP-890 part 1's batched form that partition leaders send to
check (``verify_only``) that a transactional batch's partition is in the transaction
(``broker.txn.verification``). Not served: EndTxn v4+/InitProducerId v6 and
Produce-implied partitions (KIP-890 part 2, transaction version 2), so clients use the
version 1 protocol.

Error codes are Kafka's; PRODUCER_FENCED (KIP-588) is answered as INVALID_PRODUCER_EPOCH
to request versions before it: InitProducerId < 4, AddPartitionsToTxn/AddOffsetsToTxn/
EndTxn < 2, TxnOffsetCommit < 3. Answers that changed the transaction wait (bounded)
until ``__transaction_state`` has the change on the in-sync replicas (EndTxn: the
PrepareCommit/PrepareAbort record; the markers follow asynchronously, as in Kafka). A
request for an id whose markers are still being written first waits (at most
``MARKERS_WAIT_S``) for them, and so gets the answer a CONCURRENT_TRANSACTIONS retry
would get, without the client's backoff.
"""

from __future__ import annotations

from typing import Any

from broker.group.handler_support import topic_partition_known
from broker.group.partitioner import partition_for
from broker.handlers import ApiHandler, RequestContext
from broker.producer_ids import ProducerIdsUnavailable
from broker.txn.markers import OFFSETS_TOPIC, Marker, write_local
from broker.txn.service import service_for, wall_ms
from common.logging import get_logger
from protocol.errors import ErrorCode

log = get_logger("strom.txn")
E = ErrorCode
#: how long InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn and EndTxn wait for the
#: id's markers in flight before answering (then CONCURRENT_TRANSACTIONS, retriable)
MARKERS_WAIT_S = 1.0


def _fenced(code: int, version: int, first_version: int) -> int:
    if code == E.producer_fenced and version < first_version:
        return int(E.invalid_producer_epoch)
    return int(code)


def offsets_partition(broker: Any, group_id: str) -> int:
    info = broker.topics.get(OFFSETS_TOPIC)
    count = info.partitions if info is not None else broker.config.offsets_topic_num_partitions
    return partition_for(group_id, count)


async def _ensure_offsets_topic(broker: Any) -> None:
    cluster = getattr(broker, "cluster", None)
    if cluster is not None and broker.topics.get(OFFSETS_TOPIC) is None:
        await cluster.create_now([cluster.offsets_topic_request()])


# ---- InitProducerId ------------------------------------------------------------------------
async def init_transactional(ctx: RequestContext, request: Any) -> Any:
    """InitProducerId for a transactional id: a new producer id or an epoch bump."""
    service = service_for(ctx.broker)
    tid = request.transactional_id
    timeout_ms = int(request.transaction_timeout.total_seconds() * 1000)
    await service.wait_markers(tid, MARKERS_WAIT_S)
    fresh = None
    if service.coordinator.needs_producer_id(tid) and tid and \
            0 < timeout_ms <= service.coordinator.config.max_timeout_ms:
        try:
            fresh = await ctx.broker.producer_ids.allocate()
        except ProducerIdsUnavailable as exc:
            log.warning("producer_ids_unavailable", problem=str(exc))
    result = service.call(
        "init_producer_id", wall_ms(), tid, timeout_ms, fresh_producer_id=fresh,
        expected_producer_id=int(getattr(request, "producer_id", -1)),
        expected_epoch=int(getattr(request, "producer_epoch", -1)))
    error = result.error
    if error == E.none:
        error = await service.replicated() and E.coordinator_not_available
    if error != E.none:
        return ctx.build_response({"throttle_time": 0,
                                   "error_code": _fenced(error, ctx.api_version, 4),
                                   "producer_id": -1, "producer_epoch": -1})
    return ctx.build_response({"throttle_time": 0, "error_code": 0,
                               "producer_id": result.producer_id,
                               "producer_epoch": result.producer_epoch})


# ---- AddPartitionsToTxn ----------------------------------------------------------------------
async def handle_add_partitions(ctx: RequestContext, request: Any) -> Any:
    version = ctx.api_version
    if version >= 4:
        return await _add_partitions_batched(ctx, request)
    tid = request.v3_and_below_transactional_id
    pid = request.v3_and_below_producer_id
    epoch = request.v3_and_below_producer_epoch
    topics = request.v3_and_below_topics
    wanted = [(t.name, int(p)) for t in topics for p in t.partitions]
    unknown = {tp for tp in wanted if not topic_partition_known(ctx, *tp)}
    if unknown:
        errors = {tp: int(E.unknown_topic_or_partition if tp in unknown
                          else E.operation_not_attempted) for tp in wanted}
    else:
        service = service_for(ctx.broker)
        await service.wait_markers(tid, MARKERS_WAIT_S)
        code = service.call("add_partitions", wall_ms(), tid, pid, epoch, wanted)
        if code == E.none:
            code = await service.replicated() and E.coordinator_not_available
        errors = dict.fromkeys(wanted, _fenced(code, version, 2))
    return ctx.build_response({"throttle_time": 0, "results_by_topic_v3_and_below": [
        {"name": t.name, "results_by_partition": [
            {"partition_index": p, "partition_error_code": errors[(t.name, int(p))]}
            for p in t.partitions]}
        for t in topics]})


async def _add_partitions_batched(ctx: RequestContext, request: Any) -> Any:
    """v4+ (KIP-890 part 1, sent by brokers): several transactions per request; each
    ``verify_only`` one answers whether its partitions are in the ongoing transaction
    (NONE or INVALID_TXN_STATE, or the producer's error), the others are added as v3
    adds them."""
    service = service_for(ctx.broker)
    results = []
    changed = False
    for txn in request.transactions:
        wanted = [(t.name, int(p)) for t in txn.topics for p in t.partitions]
        if txn.verify_only:
            errors = {tp: int(c) for tp, c in service.coordinator.verify(
                txn.transactional_id, txn.producer_id, txn.producer_epoch, wanted).items()}
        else:
            unknown = {tp for tp in wanted if not topic_partition_known(ctx, *tp)}
            if unknown:
                errors = {tp: int(E.unknown_topic_or_partition if tp in unknown
                                  else E.operation_not_attempted) for tp in wanted}
            else:
                code = service.call("add_partitions", wall_ms(), txn.transactional_id,
                                    txn.producer_id, txn.producer_epoch, wanted)
                changed = changed or code == E.none
                errors = dict.fromkeys(wanted, int(code))
        results.append({"transactional_id": txn.transactional_id, "topic_results": [
            {"name": t.name, "results_by_partition": [
                {"partition_index": p, "partition_error_code": errors[(t.name, int(p))]}
                for p in t.partitions]}
            for t in txn.topics]})
    if changed:
        await service.replicated()
    return ctx.build_response({"throttle_time": 0, "error_code": 0,
                               "results_by_transaction": results})


# ---- AddOffsetsToTxn -------------------------------------------------------------------------
async def handle_add_offsets(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.broker
    if not request.group_id:
        return ctx.build_response({"throttle_time": 0, "error_code": E.invalid_group_id})
    await _ensure_offsets_topic(broker)
    service = service_for(broker)
    tp = (OFFSETS_TOPIC, offsets_partition(broker, request.group_id))
    await service.wait_markers(request.transactional_id, MARKERS_WAIT_S)
    code = service.call("add_partitions", wall_ms(), request.transactional_id,
                        request.producer_id, request.producer_epoch, [tp])
    if code == E.none:
        code = await service.replicated() and E.coordinator_not_available
    return ctx.build_response({"throttle_time": 0,
                               "error_code": _fenced(code, ctx.api_version, 2)})


# ---- EndTxn ----------------------------------------------------------------------------------
async def handle_end_txn(ctx: RequestContext, request: Any) -> Any:
    service = service_for(ctx.broker)
    await service.wait_markers(request.transactional_id, MARKERS_WAIT_S)
    code = service.call("end_txn", wall_ms(), request.transactional_id, request.producer_id,
                        request.producer_epoch, bool(request.committed))
    if code == E.none:
        code = await service.replicated() and E.coordinator_not_available
    body: dict[str, Any] = {"throttle_time": 0, "error_code": _fenced(code, ctx.api_version, 2)}
    return ctx.build_response(body)


# ---- WriteTxnMarkers (partition side) ---------------------------------------------------------
async def handle_write_txn_markers(ctx: RequestContext, request: Any) -> Any:
    markers = [Marker(m.producer_id, m.producer_epoch, bool(m.transaction_result),
                      m.coordinator_epoch,
                      tuple((t.name, int(p)) for t in m.topics for p in t.partition_indexes))
               for m in request.markers]
    results = await write_local(ctx.broker, markers)
    out = []
    for marker, errors in zip(request.markers, results, strict=True):
        out.append({"producer_id": marker.producer_id, "topics": [
            {"name": t.name, "partitions": [
                {"partition_index": p, "error_code": errors.get((t.name, int(p)), 0)}
                for p in t.partition_indexes]}
            for t in marker.topics]})
    return ctx.build_response({"markers": out})


# ---- TxnOffsetCommit (group coordinator side) --------------------------------------------------
async def handle_txn_offset_commit(ctx: RequestContext, request: Any) -> Any:
    from broker.group.coordinator import OffsetCommit
    from broker.group.handlers_offsets import COMMIT_REPLICATION_WAIT_S
    from broker.group.service import service_for as group_service

    broker = ctx.broker
    version = ctx.api_version
    errors: dict[tuple[str, int], int] = {}
    commits: list[OffsetCommit] = []
    for topic in request.topics:
        for p in topic.partitions:
            tp = (topic.name, int(p.partition_index))
            if not topic_partition_known(ctx, *tp):
                errors[tp] = int(E.unknown_topic_or_partition)
                continue
            commits.append(OffsetCommit(topic.name, int(p.partition_index),
                                        p.committed_offset,
                                        getattr(p, "committed_leader_epoch", -1),
                                        p.committed_metadata, None))
    if commits:
        # the group's partition must be in the transaction (AddOffsetsToTxn): asked of
        # the transaction coordinator, in-process or over AddPartitionsToTxn v4
        # (KIP-890 part 1, as Kafka verifies offset commits)
        from broker.txn.verification import verify_partitions

        tp = (OFFSETS_TOPIC, offsets_partition(broker, request.group_id))
        found = await verify_partitions(broker, request.transactional_id,
                                        request.producer_id, request.producer_epoch, [tp])
        code = found.get(tp, int(E.coordinator_not_available))
        if code not in (E.none, E.invalid_txn_state, E.producer_fenced,
                        E.invalid_producer_epoch, E.invalid_producer_id_mapping):
            code = int(E.coordinator_not_available)  # retriable: the client asks again
        if code != E.none:
            errors.update(dict.fromkeys(((c.topic, c.partition) for c in commits),
                                        _fenced(code, version, 3)))
        else:
            groups = group_service(broker)
            result = groups.call(
                "commit_txn_offsets", groups.now(), group_id=request.group_id,
                producer_id=request.producer_id, producer_epoch=request.producer_epoch,
                generation_id=int(getattr(request, "generation_id", -1)),
                member_id=getattr(request, "member_id", "") or "",
                group_instance_id=getattr(request, "group_instance_id", None),
                offsets=commits)
            errors.update({tp: _fenced(c, version, 3) for tp, c in result.items()})
            await groups.store.wait_replicated(COMMIT_REPLICATION_WAIT_S)
    return ctx.build_response({"throttle_time": 0, "topics": [
        {"name": t.name, "partitions": [
            {"partition_index": p.partition_index,
             "error_code": errors.get((t.name, int(p.partition_index)), 0)}
            for p in t.partitions]}
        for t in request.topics]})


# ---- DescribeTransactions / ListTransactions -------------------------------------------------
async def handle_describe_transactions(ctx: RequestContext, request: Any) -> Any:
    coordinator = service_for(ctx.broker).coordinator
    states = []
    for tid in request.transactional_ids:
        code, d = coordinator.describe(tid)
        if d is None:
            states.append({"error_code": code, "transactional_id": tid,
                           "transaction_state": "", "transaction_timeout": 0,
                           "transaction_start_time": -1, "producer_id": -1,
                           "producer_epoch": -1, "topics": ()})
            continue
        by_topic: dict[str, list[int]] = {}
        for topic, partition in d.partitions:
            by_topic.setdefault(topic, []).append(partition)
        states.append({"error_code": 0, "transactional_id": tid,
                       "transaction_state": d.state.kafka_name,
                       "transaction_timeout": d.timeout_ms,
                       "transaction_start_time": d.start_ms, "producer_id": d.producer_id,
                       "producer_epoch": d.producer_epoch,
                       "topics": [{"topic": t, "partitions": ps}
                                  for t, ps in sorted(by_topic.items())]})
    return ctx.build_response({"throttle_time": 0, "transaction_states": states})


async def handle_list_transactions(ctx: RequestContext, request: Any) -> Any:
    from broker.txn.state import TransactionState

    coordinator = service_for(ctx.broker).coordinator
    filters = tuple(request.state_filters)
    unknown = [s for s in filters if TransactionState.from_kafka_name(s) is None]
    found = coordinator.list_transactions(
        [s for s in filters if s not in unknown], tuple(request.producer_id_filters),
        int(getattr(request, "duration_filter", -1)), wall_ms())
    if filters and len(unknown) == len(filters):
        found = []
    return ctx.build_response({
        "throttle_time": 0, "error_code": 0, "unknown_state_filters": unknown,
        "transaction_states": [{"transactional_id": d.transactional_id,
                                "producer_id": d.producer_id,
                                "transaction_state": d.state.kafka_name} for d in found]})


def on_broker_start(broker: Any) -> None:
    """Load the coordinator eagerly, so decided transactions complete after a restart."""
    service_for(broker)


HANDLERS = [
    ApiHandler(24, 0, 5, handle_add_partitions),
    ApiHandler(25, 0, 3, handle_add_offsets),
    ApiHandler(26, 0, 3, handle_end_txn),
    ApiHandler(27, 1, 1, handle_write_txn_markers),
    ApiHandler(28, 0, 3, handle_txn_offset_commit),
    ApiHandler(65, 0, 0, handle_describe_transactions),
    ApiHandler(66, 0, 1, handle_list_transactions),
]

