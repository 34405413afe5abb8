"""DescribeConfigs (32) v1-4, AlterConfigs (33) v0-2, IncrementalAlterConfigs (44) v0-1.

Resources: TOPIC (2) — values with sources (TOPIC_CONFIG, DYNAMIC_BROKER_CONFIG,
DYNAMIC_DEFAULT_BROKER_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG), synonyms and
documentation on request, changes validated (INVALID_CONFIG with the reason), persisted and
applied to the live logs. BROKER (4), named by this node's id or "" (the cluster-wide default
entity): described with sources; the topic-default properties (log.retention.ms,
message.max.bytes, log.cleanup.policy, min.insync.replicas, ...) can be changed at runtime,
persisted and applied to every topic that does not override them; any other broker property
gets INVALID_REQUEST ("Cannot update these configs dynamically"). Other resource types get
INVALID_REQUEST. A resource named twice in one Alter request gets INVALID_REQUEST.
``validate_only`` checks without changing anything.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from kio.schema.errors import ErrorCode

from broker.admin.broker_configs import describe_broker
from broker.handlers import ApiHandler, RequestContext
from broker.topics import DescribedConfig, TopicError, TopicRegistry
from common.topics.names import InvalidTopicName, validate_topic_name

TOPIC = 2
BROKER = 4
BROKER_LOGGER = 8


class ResourceError(Exception):
    def __init__(self, error_code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


def _check_topic_name(name: str) -> None:
    try:
        validate_topic_name(name)
    except InvalidTopicName as exc:
        raise ResourceError(ErrorCode.invalid_topic_exception, str(exc)) from None


def _check_broker_name(name: str, node_id: int) -> None:
    if name not in ("", str(node_id)):
        raise ResourceError(
            ErrorCode.invalid_request,
            f"Unexpected broker id, expected {node_id} or empty string, but received {name}",
        )


def _unsupported_type(resource_type: int) -> ResourceError:
    return ResourceError(
        ErrorCode.invalid_request, f"Unsupported resource type {resource_type} for configs"
    )


def _entry(d: DescribedConfig, synonyms: bool, docs: bool) -> dict[str, Any]:
    return {
        "name": d.name,
        "value": d.value,
        "read_only": d.read_only,
        "is_default": d.is_default,
        "config_source": int(d.source),
        "is_sensitive": d.is_sensitive,
        "synonyms": [
            {"name": s.name, "value": s.value, "source": int(s.source)} for s in d.synonyms
        ] if synonyms else [],
        "config_type": int(d.type),
        "documentation": d.documentation if docs else None,
    }


# --------------------------------------------------------------------------- DescribeConfigs


def answer_describe_configs(
    registry: TopicRegistry, broker_config: Any, node_id: int, request: Any, version: int,
) -> dict[str, Any]:
    synonyms = bool(request.include_synonyms)
    docs = bool(getattr(request, "include_documentation", False))
    results = []
    for resource in request.resources:
        result: dict[str, Any] = {
            "error_code": ErrorCode.none, "error_message": None,
            "resource_type": resource.resource_type, "resource_name": resource.resource_name,
            "configs": [],
        }
        keys: Iterable[str] | None = resource.configuration_keys or None  # empty: all
        try:
            if resource.resource_type == TOPIC:
                _check_topic_name(resource.resource_name)
                described = registry.describe_configs(resource.resource_name, keys)
            elif resource.resource_type == BROKER:
                _check_broker_name(resource.resource_name, node_id)
                properties, explicit = _broker_properties(broker_config)
                described = describe_broker(
                    properties, explicit, registry.broker, keys,
                    entity_default=resource.resource_name == "",
                )
            else:
                raise _unsupported_type(resource.resource_type)
        except (TopicError, ResourceError) as exc:
            result.update(error_code=exc.error_code, error_message=exc.message)
        else:
            result["configs"] = [_entry(d, synonyms, docs) for d in described]
        results.append(result)
    return {"throttle_time": 0, "results": results}


def _broker_properties(config: Any) -> tuple[dict[str, Any], set[str]]:
    if config is None:
        return {}, set()
    properties = config.as_properties()
    explicit = {name.replace("_", ".") for name in config.model_fields_set}
    return properties, explicit


async def handle_describe_configs(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.broker
    return ctx.build_response(
        answer_describe_configs(
            broker.topics, broker.config, broker.config.node_id, request, ctx.api_version
        )
    )


# --------------------------------------------------------------------------- Alter*


def _alter(
    registry: TopicRegistry, node_id: int, request: Any, incremental: bool
) -> dict[str, Any]:
    counts = Counter((r.resource_type, r.resource_name) for r in request.resources)
    responses = []
    for resource in request.resources:
        result: dict[str, Any] = {
            "error_code": ErrorCode.none, "error_message": None,
            "resource_type": resource.resource_type, "resource_name": resource.resource_name,
        }
        try:
            if counts[(resource.resource_type, resource.resource_name)] > 1:
                raise ResourceError(
                    ErrorCode.invalid_request,
                    f"Duplicate resource {resource.resource_name} in the request",
                )
            if resource.resource_type == TOPIC:
                _check_topic_name(resource.resource_name)
                _alter_topic(registry, resource, request.validate_only, incremental)
            elif resource.resource_type == BROKER:
                _check_broker_name(resource.resource_name, node_id)
                _alter_broker(registry, resource, request.validate_only, incremental)
            else:
                raise _unsupported_type(resource.resource_type)
        except (TopicError, ResourceError) as exc:
            result.update(error_code=exc.error_code, error_message=exc.message)
        responses.append(result)
    return {"throttle_time": 0, "responses": responses}


def _alter_topic(
    registry: TopicRegistry, resource: Any, validate_only: bool, incremental: bool
) -> None:
    if not incremental:
        configs = {c.name: c.value for c in resource.configs}
        if len(configs) != len(resource.configs):
            raise ResourceError(ErrorCode.invalid_request, "Duplicate config keys in the request")
        registry.alter_configs(resource.resource_name, configs, validate_only=validate_only)
        return
    registry.incremental_alter_configs(
        resource.resource_name, _ops(resource), validate_only=validate_only
    )


def _alter_broker(
    registry: TopicRegistry, resource: Any, validate_only: bool, incremental: bool
) -> None:
    if not incremental:
        configs = {c.name: c.value for c in resource.configs}
        if len(configs) != len(resource.configs):
            raise ResourceError(ErrorCode.invalid_request, "Duplicate config keys in the request")
        registry.alter_broker_configs(
            resource.resource_name, configs=configs, validate_only=validate_only
        )
        return
    registry.alter_broker_configs(
        resource.resource_name, ops=_ops(resource), validate_only=validate_only
    )


def _ops(resource: Any) -> list[tuple[str, int, str | None]]:
    ops = []
    for c in resource.configs:
        if c.config_operation not in (0, 1, 2, 3):
            raise ResourceError(
                ErrorCode.invalid_request,
                f"Unknown config operation {c.config_operation} for config key {c.name}",
            )
        ops.append((c.name, int(c.config_operation), c.value))
    return ops


def answer_alter_configs(
    registry: TopicRegistry, node_id: int, request: Any, version: int
) -> dict[str, Any]:
    return _alter(registry, node_id, request, incremental=False)


def answer_incremental_alter_configs(
    registry: TopicRegistry, node_id: int, request: Any, version: int
) -> dict[str, Any]:
    return _alter(registry, node_id, request, incremental=True)


async def handle_alter_configs(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.broker
    return ctx.build_response(
        answer_alter_configs(broker.topics, broker.config.node_id, request, ctx.api_version)
    )


async def handle_incremental_alter_configs(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.broker
    return ctx.build_response(
        answer_incremental_alter_configs(
            broker.topics, broker.config.node_id, request, ctx.api_version
        )
    )


HANDLERS = [
    ApiHandler(32, 1, 4, handle_describe_configs),
    ApiHandler(33, 0, 2, handle_alter_configs),
    ApiHandler(44, 0, 1, handle_incremental_alter_configs),
]
