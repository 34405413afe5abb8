"""OffsetCommit (8) v2-9, OffsetFetch (9) v1-9, OffsetDelete (47) v0.

- OffsetCommit: per-partition errors; unknown topic/partition -> UNKNOWN_TOPIC_OR_PARTITION
  (as Kafka's KafkaApis checks its metadata cache); v2-v4 ``retention_time_ms`` other than
  -1 sets an explicit expiry; v6+ committed leader epoch; v7+ group.instance.id;
  ``generation -1`` with an empty member id is a simple (non-member) commit.
- OffsetFetch: v2+ ``topics = null`` = every committed offset of the group; v8+ several
  groups per request; a partition with no commit answers offset -1, epoch -1, metadata "".
  Group-level errors go in the top-level error (v2-7), the group's error (v8+), or, for v1
  which has neither, in every partition. v7+ ``require_stable`` (KIP-447): a partition
  with a pending transactional offset answers UNSTABLE_OFFSET_COMMIT (retriable).
- OffsetDelete: top-level GROUP_ID_NOT_FOUND / NON_EMPTY_GROUP, per-partition
  GROUP_SUBSCRIBED_TO_TOPIC (KIP-496).
"""

from __future__ import annotations

from typing import Any

from broker.group.coordinator import OffsetCommit
from broker.group.handler_support import ms, topic_partition_known
from broker.group.service import service_for
from broker.handlers import ApiHandler, RequestContext
from protocol.errors import ErrorCode

#: how long an OffsetCommit answer waits for its write to reach the in-sync replicas
COMMIT_REPLICATION_WAIT_S = 5.0

OFFSET_COMMIT, OFFSET_FETCH, OFFSET_DELETE = 8, 9, 47


async def handle_offset_commit(ctx: RequestContext, request: Any) -> Any:
    service = service_for(ctx.broker)
    now = service.now()
    version = ctx.api_version
    # v2-v4 retention_time (-1 = the broker's retention policy)
    retention = ms(getattr(request, "retention_time", None), -1) if version <= 4 else -1
    expire = now + retention if retention != -1 else None
    generation = getattr(request, "generation_id_or_member_epoch", None)
    if generation is None:
        generation = request.generation_id
    errors: dict[tuple[str, int], ErrorCode] = {}
    commits: list[OffsetCommit] = []
    for topic in request.topics:
        for p in topic.partitions:
            tp = (topic.name, p.partition_index)
            if not topic_partition_known(ctx, topic.name, p.partition_index):
                errors[tp] = ErrorCode.unknown_topic_or_partition
                continue
            commits.append(
                OffsetCommit(
                    topic.name,
                    p.partition_index,
                    p.committed_offset,
                    getattr(p, "committed_leader_epoch", -1),
                    p.committed_metadata,
                    expire,
                )
            )
    if commits:
        errors.update(
            service.call(
                "commit_offsets",
                now,
                group_id=request.group_id,
                generation_id=generation,
                member_id=request.member_id,
                group_instance_id=getattr(request, "group_instance_id", None),
                offsets=commits,
                api_version=version,
            )
        )
        await service.store.wait_replicated(COMMIT_REPLICATION_WAIT_S)
    return ctx.build_response(
        {
            "throttle_time": 0,
            "topics": [
                {
                    "name": topic.name,
                    "partitions": [
                        {
                            "partition_index": p.partition_index,
                            "error_code": errors.get(
                                (topic.name, p.partition_index), ErrorCode.none
                            ),
                        }
                        for p in topic.partitions
                    ],
                }
                for topic in request.topics
            ],
        }
    )


def _fetch_group(
    ctx: RequestContext, group_id: str, topics: Any, per_partition_errors: bool,
    require_stable: bool = False, member: tuple[str | None, int] = (None, -1),
) -> dict[str, Any]:
    service = service_for(ctx.broker)
    wanted = None
    if topics is not None:
        wanted = [(t.name, p) for t in topics for p in t.partition_indexes]
    error, offsets = service.call("fetch_offsets", group_id, wanted, *member)
    by_topic: dict[str, list[dict[str, Any]]] = {}
    if wanted is not None:
        for t in topics:
            by_topic.setdefault(t.name, [])
    if error != ErrorCode.none and wanted is not None and per_partition_errors:
        offsets = {tp: None for tp in wanted}
    for (topic, partition), committed in sorted(offsets.items()):
        if require_stable and error == ErrorCode.none and \
                service.coordinator.has_pending_txn_offset(group_id, (topic, partition)):
            # KIP-447: an open transaction holds an offset for it; the client retries
            by_topic.setdefault(topic, []).append(
                {"partition_index": partition, "committed_offset": -1,
                 "committed_leader_epoch": -1, "metadata": "",
                 "error_code": ErrorCode.unstable_offset_commit})
            continue
        by_topic.setdefault(topic, []).append(
            {
                "partition_index": partition,
                "committed_offset": committed.offset if committed else -1,
                "committed_leader_epoch": committed.leader_epoch if committed else -1,
                "metadata": committed.metadata if committed else "",
                "error_code": error if per_partition_errors else ErrorCode.none,
            }
        )
    return {
        "group_id": group_id,
        "error_code": error,
        "topics": [{"name": n, "partitions": ps} for n, ps in by_topic.items()],
    }


async def handle_offset_fetch(ctx: RequestContext, request: Any) -> Any:
    version = ctx.api_version
    if version >= 8:
        return ctx.build_response(
            {
                "throttle_time": 0,
                "groups": [_fetch_group(ctx, g.group_id, g.topics, False,
                                        bool(getattr(request, "require_stable", False)),
                                        # v9: a consumer group member's id and epoch
                                        member=(getattr(g, "member_id", None),
                                                getattr(g, "member_epoch", -1)))
                           for g in request.groups],
            }
        )
    topics = request.topics
    if version < 2 and topics is None:
        topics = ()
    group = _fetch_group(ctx, request.group_id, topics, version < 2,
                         bool(getattr(request, "require_stable", False)))
    return ctx.build_response(
        {"throttle_time": 0, "topics": group["topics"], "error_code": group["error_code"]}
    )


async def handle_offset_delete(ctx: RequestContext, request: Any) -> Any:
    service = service_for(ctx.broker)
    errors: dict[tuple[str, int], ErrorCode] = {}
    wanted: list[tuple[str, int]] = []
    for t in request.topics:
        for p in t.partitions:
            tp = (t.name, p.partition_index)
            if topic_partition_known(ctx, t.name, p.partition_index):
                wanted.append(tp)
            else:
                errors[tp] = ErrorCode.unknown_topic_or_partition
    top, per = service.call(
        "delete_offsets", service.now(), group_id=request.group_id, partitions=wanted
    )
    # the offset tombstones are answered once replicated, as a commit
    await service.store.wait_replicated(COMMIT_REPLICATION_WAIT_S)
    if top != ErrorCode.none:
        return ctx.build_response({"error_code": top, "throttle_time": 0, "topics": ()})
    errors.update(per)
    return ctx.build_response(
        {
            "error_code": ErrorCode.none,
            "throttle_time": 0,
            "topics": [
                {
                    "name": t.name,
                    "partitions": [
                        {
                            "partition_index": p.partition_index,
                            "error_code": errors.get((t.name, p.partition_index), ErrorCode.none),
                        }
                        for p in t.partitions
                    ],
                }
                for t in request.topics
            ],
        }
    )


HANDLERS = [
    ApiHandler(OFFSET_COMMIT, 2, 9, handle_offset_commit),
    ApiHandler(OFFSET_FETCH, 1, 9, handle_offset_fetch),
    ApiHandler(OFFSET_DELETE, 0, 0, handle_offset_delete),
]
