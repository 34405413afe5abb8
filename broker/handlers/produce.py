"""Produce (key 0), v3-12; v0-2 advertised (KAFKA-18659) but rejected.

Kafka 4.x lists Produce from v0 in ApiVersions because of a librdkafka bug, and closes the
connection of a client that sends v0-2 (the version is not *enabled*). The server does
the same: the registry's range starts at 3, ``advertised_min`` is 0.

Per partition: the records stay opaque bytes handed to ``PartitionLog.append_as_leader``
(which validates length/magic/CRC, ``max.message.bytes``, producer sequences, assigns
offsets in place and applies LogAppendTime). Errors map to Kafka codes:
unknown topic/partition → UNKNOWN_TOPIC_OR_PARTITION, illegal name →
INVALID_TOPIC_EXCEPTION, acks=-1 with ``min.insync.replicas`` above the ISR (1) →
NOT_ENOUGH_REPLICAS, acks not in {-1, 0, 1} → INVALID_REQUIRED_ACKS, storage errors →
their ``error_code`` (CORRUPT_MESSAGE, INVALID_RECORD, MESSAGE_TOO_LARGE, ...), a zstd batch
in Produce below v7 → UNSUPPORTED_COMPRESSION_TYPE (KIP-110).
A duplicate of one of the producer's last five batches answers NONE with the original
offset and appends nothing.

acks=0: no response; if any partition failed the connection is closed (as Kafka does), so
the producer notices and refreshes metadata.
"""

from __future__ import annotations

import time
from typing import Any

from broker.handlers import ApiHandler, CloseConnection, RequestContext
from broker.topics import InvalidTopicName, validate_topic_name
from common.logging import get_logger
from protocol.compat import PRODUCE_ZSTD_MIN_VERSION, contains_zstd
from protocol.errors import ErrorCode, error_name
from protocol.records import InvalidRecordBatch
from storage.errors import DuplicateSequenceError, StorageError

API_KEY = 0
log = get_logger("strom.produce")


def _partition_error(index: int, code: int, message: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"index": index, "error_code": code, "base_offset": -1,
                           "log_append_time": None, "log_start_offset": -1}
    if message is not None:
        out["error_message"] = message
    return out


async def handle(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.broker
    replicas = broker.replica_manager
    topics = broker.topics
    metrics = broker.metrics
    acks = request.acks
    now = time.time_ns() // 1_000_000
    responses = []
    failed = False
    for topic_data in request.topic_data:
        name = topic_data.name
        parts: list[dict[str, Any]] = []
        topic_error: int | None = None
        if acks not in (-1, 0, 1):
            topic_error = ErrorCode.invalid_required_acks
        elif name not in topics:
            try:
                validate_topic_name(name)
            except InvalidTopicName:
                topic_error = ErrorCode.invalid_topic_exception
            else:
                topic_error = ErrorCode.unknown_topic_or_partition
        elif acks == -1 and not replicas.enough_replicas(name):
            topic_error = ErrorCode.not_enough_replicas
        for pdata in topic_data.partition_data:
            index = pdata.index
            if topic_error is not None:
                parts.append(_partition_error(index, topic_error))
                continue
            plog = replicas.log(name, index)
            if plog is None:
                parts.append(_partition_error(index, replicas.missing_error(name, index)))
                continue
            records = pdata.records
            if not records:
                parts.append(_partition_error(index, ErrorCode.invalid_record,
                                              "Produce request carried no records"))
                continue
            if ctx.api_version < PRODUCE_ZSTD_MIN_VERSION and contains_zstd(records):
                parts.append(_partition_error(index, ErrorCode.unsupported_compression_type,
                                              "zstd needs Produce v7 or later"))
                continue
            try:
                result = await replicas.append_async(plog, records, now)
            except DuplicateSequenceError as dup:
                parts.append({
                    "index": index, "error_code": 0, "base_offset": dup.first_offset,
                    "log_append_time": dup.log_append_time if dup.log_append_time >= 0
                    else None,
                    "log_start_offset": plog.log_start_offset,
                })
                continue
            except StorageError as exc:
                code = exc.error_code if exc.error_code > 0 else ErrorCode.unknown_server_error
                parts.append(_partition_error(index, code, str(exc) or None))
                continue
            except InvalidRecordBatch as exc:
                parts.append(_partition_error(index, ErrorCode.corrupt_message, str(exc)))
                continue
            except OSError as exc:  # disk full, I/O error: Kafka's KAFKA_STORAGE_ERROR
                log.error("append_failed", topic=name, partition=index, error=repr(exc))
                parts.append(_partition_error(index, ErrorCode.kafka_storage_error, str(exc)))
                continue
            metrics.bytes_in.inc(name, amount=len(records))
            metrics.messages_in.inc(name, amount=result.last_offset - result.first_offset + 1)
            parts.append({
                "index": index,
                "error_code": 0,
                "base_offset": result.first_offset,
                "log_append_time": result.log_append_time if result.log_append_time >= 0
                else None,
                "log_start_offset": result.log_start_offset,
            })
        for p in parts:
            if p["error_code"]:
                failed = True
                log.debug("produce_partition_error", topic=name, partition=p["index"],
                          error=error_name(p["error_code"]), client_id=ctx.client_id)
        responses.append({"name": name, "partition_responses": parts})
    if acks == 0:
        if failed:
            raise CloseConnection("acks=0 produce failed for some partitions")
        return None
    return ctx.build_response({"responses": responses, "throttle_time": 0})


HANDLERS = [ApiHandler(API_KEY, 3, 12, handle, advertised_min=0)]
