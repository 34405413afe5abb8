"""OffsetForLeaderEpoch (key 23), v2-4.

Answered from the partition's leader-epoch cache (``end_offset_for_epoch``): the largest
epoch ≤ the requested one and the offset where the next epoch starts (or the log end);
UNDEFINED (-1, -1) when no such epoch exists. A current leader epoch newer than ours is
UNKNOWN_LEADER_EPOCH. Like Kafka's leader, which assigns its epoch the log end offset when
it takes leadership, the partition's current leader epoch counts as started at the log end
even before a batch of that epoch is appended.
"""

from __future__ import annotations

from typing import Any

from broker.handlers import ApiHandler, RequestContext
from protocol.errors import ErrorCode

API_KEY = 23


async def handle(ctx: RequestContext, request: Any) -> Any:
    replicas = ctx.broker.replica_manager
    topics = []
    for topic in request.topics:
        parts = []
        for p in topic.partitions:
            log = replicas.log(topic.topic, p.partition)
            current = replicas.leader_epoch(topic.topic, p.partition)
            entry: dict[str, Any] = {"partition": p.partition, "error_code": 0,
                                     "leader_epoch": -1, "end_offset": -1}
            if log is None:
                entry["error_code"] = replicas.missing_error(topic.topic, p.partition)
            elif p.current_leader_epoch > current:
                entry["error_code"] = ErrorCode.unknown_leader_epoch
            else:
                if p.leader_epoch >= current > log.latest_epoch():
                    epoch, end = current, log.log_end_offset
                else:
                    epoch, end = log.end_offset_for_epoch(p.leader_epoch)
                entry["leader_epoch"], entry["end_offset"] = epoch, end
            parts.append(entry)
        topics.append({"topic": topic.topic, "partitions": parts})
    return ctx.build_response({"throttle_time": 0, "topics": topics})


HANDLERS = [ApiHandler(API_KEY, 2, 4, handle)]
