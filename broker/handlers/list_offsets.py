"""ListOffsets (key 2), v1-8.

Special timestamps: -1 latest (high watermark; the last stable offset under
read_committed, equal here), -2 earliest (log start offset), -3 the offset of the record
with the largest timestamp (v7+), -4 earliest local offset (v8+, = log start offset: no
tiered storage). A timestamp ≥ 0 finds the first offset whose timestamp is ≥ it
(offset -1 / timestamp -1 when there is none).
"""

from __future__ import annotations

from typing import Any

from broker.handlers import ApiHandler, RequestContext
from protocol.errors import ErrorCode

API_KEY = 2
LATEST, EARLIEST, MAX_TIMESTAMP, EARLIEST_LOCAL = -1, -2, -3, -4


def _lookup(log: Any, ts: int, version: int, read_committed: bool) -> tuple[int, int, int]:
    """(error, timestamp, offset) for one partition."""
    if ts == LATEST:
        return 0, -1, log.last_stable_offset if read_committed else log.high_watermark
    if ts == EARLIEST or (ts == EARLIEST_LOCAL and version >= 8):
        return 0, -1, log.log_start_offset
    if ts == MAX_TIMESTAMP and version >= 7:
        found = log.max_timestamp_and_offset()
        if found is None:
            return 0, -1, -1
        max_ts, offset = found
        return 0, max_ts, offset
    if ts < 0:
        return ErrorCode.invalid_request, -1, -1
    hit = log.offset_for_timestamp(ts)
    if hit is None or hit[0] >= log.high_watermark:
        return 0, -1, -1
    offset, found_ts = hit
    return 0, found_ts, offset


async def handle(ctx: RequestContext, request: Any) -> Any:
    replicas = ctx.broker.replica_manager
    version = ctx.api_version
    read_committed = getattr(request, "isolation_level", 0) == 1
    topics = []
    for topic in request.topics:
        parts = []
        for p in topic.partitions:
            log = replicas.log(topic.name, p.partition_index)
            entry: dict[str, Any] = {"partition_index": p.partition_index}
            epoch = getattr(p, "current_leader_epoch", -1)
            if log is None:
                entry["error_code"] = replicas.missing_error(topic.name, p.partition_index)
            elif epoch > replicas.leader_epoch(topic.name, p.partition_index):
                entry["error_code"] = ErrorCode.unknown_leader_epoch
            else:
                code, ts, offset = _lookup(log, p.timestamp, version, read_committed)
                entry.update(error_code=code, timestamp=ts, offset=offset,
                             leader_epoch=replicas.leader_epoch(topic.name, p.partition_index)
                             if offset >= 0 else -1)
            parts.append(entry)
        topics.append({"name": topic.name, "partitions": parts})
    return ctx.build_response({"throttle_time": 0, "topics": topics})


HANDLERS = [ApiHandler(API_KEY, 1, 8, handle)]
