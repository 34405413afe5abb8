"""DescribeProducers (key 61), v0: the idempotent/transactional producer state a partition
leader keeps (KIP-664) — producer id, epoch, last sequence and timestamp, coordinator
epoch and the first offset of an open transaction (-1 when none)."""

from __future__ import annotations

from typing import Any

from broker.handlers import ApiHandler, RequestContext
from protocol.errors import ErrorCode

API_KEY = 61


def _producers(log: Any) -> list[dict[str, Any]]:
    return [
        {
            "producer_id": pid,
            "producer_epoch": entry.epoch,
            "last_sequence": entry.last_sequence,
            "last_timestamp": entry.last_timestamp,
            "coordinator_epoch": entry.coordinator_epoch,
            "current_txn_start_offset": entry.current_txn_first_offset,
        }
        for pid, entry in sorted(log.producer_state.items())
    ]


async def handle(ctx: RequestContext, request: Any) -> Any:
    replicas = ctx.broker.replica_manager
    topics = []
    for topic in request.topics:
        parts = []
        for index in topic.partition_indexes:
            log = replicas.log(topic.name, index)
            if log is None:
                parts.append({"partition_index": index,
                              "error_code": ErrorCode.unknown_topic_or_partition,
                              "active_producers": ()})
            else:
                parts.append({"partition_index": index, "error_code": 0,
                              "active_producers": _producers(log)})
        topics.append({"name": topic.name, "partitions": parts})
    return ctx.build_response({"throttle_time": 0, "topics": topics})


HANDLERS = [ApiHandler(API_KEY, 0, 0, handle)]
