"""Produce (key 0), v3-12; v0-2 advertised (KAFKA-18659) but rejected.

Kafka 4.x lists Produce from v0 in ApiVersions because of a librdkafka bug, and closes the
connection of a client that sends v0-2 (the version is not *enabled*). The server does
the same: the registry's range starts at 3, ``advertised_min`` is 0.

A kio adapter over ``ReplicaManager.append_records`` (which validates, appends as leader,
and for acks=-1 waits until the high watermark passes the batches or ``timeout_ms``:
REQUEST_TIMED_OUT; NOT_ENOUGH_REPLICAS when the ISR is below ``min.insync.replicas``,
NOT_ENOUGH_REPLICAS_AFTER_APPEND when it shrank meanwhile). Checked here, before it:
acks not in {-1, 0, 1} → INVALID_REQUIRED_ACKS, unknown topic → UNKNOWN_TOPIC_OR_PARTITION,
illegal name → INVALID_TOPIC_EXCEPTION, an empty partition → INVALID_RECORD, a zstd batch
in Produce below v7 → UNSUPPORTED_COMPRESSION_TYPE (KIP-110), a record set the server
left unread for a batch above ``max.message.bytes`` (``protocol.produce_scan``) →
MESSAGE_TOO_LARGE (answered before the leadership check, which storage's own size check
follows). From v8 a refused batch carries ``record_errors`` (KIP-467: the index of each
offending record in its batch) and ``error_message``. A duplicate of one of the producer's
last five batches answers NONE with the original offset and appends nothing. A
transactional batch for a partition not in its producer's ongoing transaction is refused
with INVALID_TXN_STATE (KIP-890 part 1, ``broker.txn.verification``).

acks=0: no response; if any partition failed the connection is closed (as Kafka does), so
the producer notices and refreshes metadata.
"""

from __future__ import annotations

from typing import Any

from broker.handlers import ApiHandler, CloseConnection, RequestContext
from broker.topics import InvalidTopicName, validate_topic_name
from common.logging import get_logger
from protocol.compat import PRODUCE_ZSTD_MIN_VERSION, contains_zstd
from protocol.errors import ErrorCode, error_name
from protocol.produce_scan import OversizedRecords
from replication.replica_manager import ProduceResult

API_KEY = 0
log = get_logger("strom.produce")


def _partition_error(index: int, code: int, message: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"index": index, "error_code": code, "base_offset": -1,
                           "log_append_time": None, "log_start_offset": -1}
    if message is not None:
        out["error_message"] = message
    return out


def _answer(index: int, r: ProduceResult) -> dict[str, Any]:
    out: dict[str, Any] = {
        "index": index, "error_code": r.error_code, "base_offset": r.base_offset,
        "log_append_time": r.log_append_time if r.log_append_time >= 0 else None,
        "log_start_offset": r.log_start_offset}
    if r.error_message is not None:
        out["error_message"] = r.error_message
    if r.record_errors:
        out["record_errors"] = [{"batch_index": i, "batch_index_error_message": m}
                                for i, m in r.record_errors]
    return out


def _precheck(ctx: RequestContext, name: str, acks: int) -> int | None:
    """A topic-wide error, or None."""
    if acks not in (-1, 0, 1):
        return ErrorCode.invalid_required_acks
    if name not in ctx.broker.topics:
        try:
            validate_topic_name(name)
        except InvalidTopicName:
            return ErrorCode.invalid_topic_exception
        return ErrorCode.unknown_topic_or_partition
    return None


def _refuse(answers: list[tuple[str, list[dict[str, Any] | None]]],
            entries: list[tuple[tuple[str, int], bytes]], refused: dict[tuple[str, int], int]
            ) -> list[tuple[tuple[str, int], bytes]]:
    """Answer the ``refused`` partitions with their error; the entries left to append."""
    todo = iter(entries)
    kept = []
    for _name, parts in answers:
        for i, part in enumerate(parts):
            if part is None:
                key, records = next(todo)
                if key in refused:
                    parts[i] = _partition_error(key[1], refused[key])
                else:
                    kept.append((key, records))
    return kept


async def handle(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.broker
    metrics = broker.metrics
    acks = request.acks
    # (topic, answers in request order); None marks an entry the replica manager answers
    answers: list[tuple[str, list[dict[str, Any] | None]]] = []
    entries: list[tuple[tuple[str, int], bytes]] = []
    for topic_data in request.topic_data:
        name = topic_data.name
        topic_error = _precheck(ctx, name, acks)
        parts: list[dict[str, Any] | None] = []
        for pdata in topic_data.partition_data:
            index, records = pdata.index, pdata.records
            if topic_error is not None:
                parts.append(_partition_error(index, topic_error))
            elif isinstance(records, OversizedRecords):  # refused unread by broker.server
                parts.append(_partition_error(index, ErrorCode.message_too_large,
                                              records.message))
            elif not records:
                parts.append(_partition_error(index, ErrorCode.invalid_record,
                                              "Produce request carried no records"))
            elif ctx.api_version < PRODUCE_ZSTD_MIN_VERSION and contains_zstd(records):
                parts.append(_partition_error(index, ErrorCode.unsupported_compression_type,
                                              "zstd needs Produce v7 or later"))
            else:
                parts.append(None)
                entries.append(((name, index), records))
        answers.append((name, parts))
    transactional_id = getattr(request, "transactional_id", None)
    if transactional_id is not None and entries:
        from broker.txn.verification import verify_produce

        refused = await verify_produce(broker, transactional_id, entries)
        if refused:
            entries = _refuse(answers, entries, refused)
    results = iter(await broker.replica_manager.append_records(
        entries, acks=acks, timeout_ms=int(request.timeout.total_seconds() * 1000)))
    sizes = iter(entries)
    failed = False
    responses = []
    for name, parts in answers:
        done: list[dict[str, Any]] = []
        for part in parts:
            if part is None:
                (_, index), records = next(sizes)
                result = next(results)
                part = _answer(index, result)
                if result.last_offset >= 0:
                    metrics.bytes_in.inc(name, amount=len(records))
                    metrics.messages_in.inc(name, amount=result.last_offset
                                            - result.base_offset + 1)
            if part["error_code"]:
                failed = True
                log.debug("produce_partition_error", topic=name, partition=part["index"],
                          error=error_name(part["error_code"]), client_id=ctx.client_id)
            done.append(part)
        responses.append({"name": name, "partition_responses": done})
    if acks == 0:
        if failed:
            raise CloseConnection("acks=0 produce failed for some partitions")
        return None
    return ctx.build_response({"responses": responses, "throttle_time": 0})


HANDLERS = [ApiHandler(API_KEY, 3, 12, handle, advertised_min=0)]
