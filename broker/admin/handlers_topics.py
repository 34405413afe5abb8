"""CreateTopics (19) v2-7, DeleteTopics (20) v1-6, CreatePartitions (37) v0-3.

The ``answer_*`` functions run on the active controller over a ``StagingRegistry``
(``broker.cluster.controller_api``; brokers forward these requests there).
``replication_factor`` -1 means ``default.replication.factor``; ``num_partitions`` -1 means
``num.partitions``. Topics repeated within one request all get
INVALID_REQUEST, as in Kafka. ``validate_only`` checks everything and changes nothing.
Results keep the order of the request.
"""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

from kio.schema.errors import ErrorCode

from broker.handlers import ApiHandler, RequestContext
from broker.topics import NewTopicRequest, TopicError, TopicInfo, TopicRegistry
from common.topics.names import is_internal

ZERO_UUID = uuid.UUID(int=0)


def _error(exc: TopicError) -> dict[str, Any]:
    return {"error_code": exc.error_code, "error_message": exc.message}


# --------------------------------------------------------------------------- CreateTopics


def answer_create_topics(registry: TopicRegistry, request: Any, version: int) -> dict[str, Any]:
    counts = Counter(t.name for t in request.topics)
    # (index in the request, what to ask the registry) for every topic not refused up front
    asks: list[tuple[int, NewTopicRequest]] = []
    outcome: list[TopicInfo | TopicError | None] = [None] * len(request.topics)
    for i, topic in enumerate(request.topics):
        configs = {c.name: c.value for c in topic.configs}
        if counts[topic.name] > 1:
            outcome[i] = TopicError(
                ErrorCode.invalid_request,
                "Create topics request contains multiple entries for the following topics: "
                f"{topic.name}",
            )
        elif len(configs) != len(topic.configs):
            outcome[i] = TopicError(ErrorCode.invalid_config, "Duplicate config keys.")
        else:
            asks.append((i, NewTopicRequest(
                topic.name, topic.num_partitions, topic.replication_factor, configs,
                tuple((a.partition_index, tuple(a.broker_ids)) for a in topic.assignments),
            )))
    created = registry.create_topics([a for _, a in asks], validate_only=request.validate_only)
    for (i, _), result in zip(asks, created, strict=True):
        outcome[i] = result
    results = []
    for topic, result in zip(request.topics, outcome, strict=True):
        entry: dict[str, Any] = {
            "name": topic.name, "topic_id": ZERO_UUID, "error_code": ErrorCode.none,
            "error_message": None, "num_partitions": -1, "replication_factor": -1,
            "configs": (),
        }
        if isinstance(result, TopicError):
            entry.update(_error(result))
        elif result is not None:
            entry.update(
                topic_id=ZERO_UUID if request.validate_only else result.topic_id,
                num_partitions=result.partitions,
                replication_factor=result.replication_factor,
                configs=[
                    {"name": d.name, "value": d.value, "read_only": d.read_only,
                     "config_source": int(d.source), "is_sensitive": d.is_sensitive}
                    for d in registry.describe_configs_for(result.configs)
                ],
            )
        results.append(entry)
    return {"throttle_time": 0, "topics": results}


async def handle_create_topics(ctx: RequestContext, request: Any) -> Any:
    return ctx.build_response(answer_create_topics(ctx.broker.topics, request, ctx.api_version))


# --------------------------------------------------------------------------- DeleteTopics


def answer_delete_topics(registry: TopicRegistry, request: Any, version: int) -> dict[str, Any]:
    if version >= 6:
        wanted = [(t.name, t.topic_id or ZERO_UUID) for t in request.topics]
    else:
        wanted = [(name, ZERO_UUID) for name in request.topic_names]
    counts = Counter(wanted)
    results: list[dict[str, Any]] = []
    to_delete: list[tuple[int, str]] = []  # (index in results, topic name)
    chosen: set[str] = set()
    for name, topic_id in wanted:
        result: dict[str, Any] = {
            "name": name, "topic_id": topic_id, "error_code": ErrorCode.none,
            "error_message": None,
        }
        try:
            name = _resolve_deletion(registry, name, topic_id, counts[(name, topic_id)])
            result["name"] = name
            if name in chosen:  # named once by name and once by id
                raise TopicError(ErrorCode.invalid_request, "Duplicate topic in request.")
            chosen.add(name)
            to_delete.append((len(results), name))
        except TopicError as exc:
            result.update(_error(exc))
        results.append(result)
    deleted = registry.delete_topics([name for _, name in to_delete])
    for (index, _), outcome in zip(to_delete, deleted, strict=True):
        if isinstance(outcome, TopicError):
            results[index].update(_error(outcome))
        else:
            results[index]["topic_id"] = outcome.topic_id
    return {"throttle_time": 0, "responses": results}


def _resolve_deletion(
    registry: TopicRegistry, name: str | None, topic_id: uuid.UUID, count: int
) -> str:
    """The name of the topic a DeleteTopics entry asks for, or TopicError."""
    if count > 1:
        raise TopicError(ErrorCode.invalid_request, "Duplicate topic in request.")
    if name is not None and topic_id != ZERO_UUID:
        raise TopicError(
            ErrorCode.invalid_request, "You may not specify both topic name and topic id."
        )
    if name is None:
        if topic_id == ZERO_UUID:
            raise TopicError(ErrorCode.invalid_request, "Neither topic name nor topic id given.")
        found = registry.get_by_id(topic_id)
        if found is None:
            raise TopicError(ErrorCode.unknown_topic_id, f"Topic id {topic_id} does not exist.")
        name = found.name
    if is_internal(name) and name in registry:
        raise TopicError(ErrorCode.invalid_request, f"Internal topic {name} cannot be deleted.")
    return name


async def handle_delete_topics(ctx: RequestContext, request: Any) -> Any:
    return ctx.build_response(answer_delete_topics(ctx.broker.topics, request, ctx.api_version))


# --------------------------------------------------------------------------- CreatePartitions


def answer_create_partitions(
    registry: TopicRegistry, request: Any, version: int
) -> dict[str, Any]:
    counts = Counter(t.name for t in request.topics)
    results = []
    for topic in request.topics:
        result: dict[str, Any] = {
            "name": topic.name, "error_code": ErrorCode.none, "error_message": None
        }
        try:
            if counts[topic.name] > 1:
                raise TopicError(ErrorCode.invalid_request, "Duplicate topic in request.")
            assignments = (
                None if topic.assignments is None
                else [list(a.broker_ids) for a in topic.assignments]
            )
            registry.create_partitions(
                topic.name, topic.count, assignments, validate_only=request.validate_only
            )
        except TopicError as exc:
            result.update(_error(exc))
        results.append(result)
    return {"throttle_time": 0, "results": results}


async def handle_create_partitions(ctx: RequestContext, request: Any) -> Any:
    return ctx.build_response(
        answer_create_partitions(ctx.broker.topics, request, ctx.api_version)
    )


HANDLERS = [
    ApiHandler(19, 2, 7, handle_create_topics),
    ApiHandler(20, 1, 6, handle_delete_topics),
    ApiHandler(37, 0, 3, handle_create_partitions),
]
