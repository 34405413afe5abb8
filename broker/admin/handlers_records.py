"""DeleteRecords (21) v0-2: advance partitions' log start offsets.

Per partition, as Kafka's ``Partition.deleteRecordsOnLeader``: offset -1 means the high
watermark; an offset below 0 or above the high watermark is OFFSET_OUT_OF_RANGE; an offset
at or below the current log start offset changes nothing. ``low_watermark`` is the log start
offset afterwards (-1 with an error). Unknown topics or partition indexes get
UNKNOWN_TOPIC_OR_PARTITION.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from broker.handlers import ApiHandler, RequestContext
from broker.topics import TopicRegistry
from storage.errors import StorageError

HIGH_WATERMARK = -1


def delete_records_from(log: Any, offset: int) -> tuple[ErrorCode, int]:
    """(error, low watermark) after deleting records before ``offset`` in one PartitionLog."""
    high_watermark = log.high_watermark
    target = high_watermark if offset == HIGH_WATERMARK else offset
    if target < 0 or target > high_watermark:
        return ErrorCode.offset_out_of_range, -1
    if target <= log.log_start_offset:
        return ErrorCode.none, log.log_start_offset
    try:
        return ErrorCode.none, log.delete_records_before(target)
    except StorageError as exc:  # e.g. OffsetOutOfRangeError, LogDirectoryError
        return _storage_code(exc), -1
    except OSError:
        return ErrorCode.kafka_storage_error, -1


def _storage_code(exc: StorageError) -> ErrorCode:
    try:
        return ErrorCode(exc.error_code)
    except ValueError:
        return ErrorCode.unknown_server_error


def answer_delete_records(
    registry: TopicRegistry, logs: Any, request: Any, version: int
) -> dict[str, Any]:
    topics = []
    for topic in request.topics:
        info = registry.get(topic.name)
        partitions = []
        for p in topic.partitions:
            log = None
            if info is not None and 0 <= p.partition_index < info.partitions:
                log = logs.get(topic.name, p.partition_index)
            if log is None:
                error, low = ErrorCode.unknown_topic_or_partition, -1
            else:
                error, low = delete_records_from(log, p.offset)
            partitions.append(
                {"partition_index": p.partition_index, "low_watermark": low, "error_code": error}
            )
        topics.append({"name": topic.name, "partitions": partitions})
    return {"throttle_time": 0, "topics": topics}


async def handle_delete_records(ctx: RequestContext, request: Any) -> Any:
    return ctx.build_response(
        answer_delete_records(ctx.broker.topics, ctx.broker.logs, request, ctx.api_version)
    )


HANDLERS = [ApiHandler(21, 0, 2, handle_delete_records)]
