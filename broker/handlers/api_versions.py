"""ApiVersions (key 18), v0-4.

The response lists the registry's APIs (so only implemented APIs are advertised). From v3
it carries the KIP-584 feature flags of ``broker.features`` (the same table admin tools
read): the supported levels, the finalized ones and ``finalized_features_epoch``, the
offset of the metadata image the answer was made from (Kafka's epoch; -1 when unknown).

The KIP-511 fallback for versions above 4 is in the server: it answers with a v0 body
carrying UNSUPPORTED_VERSION and the API list (``fallback_response``).
"""

from __future__ import annotations

import re
from typing import Any

from broker.features import features_from_config, finalized_feature_keys, supported_feature_keys
from broker.handlers import ApiHandler, RequestContext
from protocol.api_registry import ApiRegistry
from protocol.build import build
from protocol.codec import response_type
from protocol.errors import ErrorCode

API_KEY = 18
MIN_VERSION = 0
MAX_VERSION = 4

# Kafka's validation of client_software_name/version (ApiVersionsRequest.isValid)
_SOFTWARE = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?")


def api_versions_body(registry: ApiRegistry[Any], error: int = 0) -> dict[str, Any]:
    return {
        "error_code": error,
        "api_keys": registry.as_dicts(),
        "throttle_time": 0,
    }


def features_epoch(broker: Any) -> int:
    """The offset of the metadata image a broker (``.cluster.quorum``) or a controller
    endpoint (``.quorum``) has applied; -1 when it has none."""
    quorum = getattr(getattr(broker, "cluster", None), "quorum", None)
    if quorum is None:
        quorum = getattr(broker, "quorum", None)
    image = getattr(quorum, "image", None)
    offset = getattr(image, "offset", -1)
    return offset if isinstance(offset, int) and offset >= 0 else -1


def feature_fields(broker: Any, api_version: int) -> dict[str, Any]:
    """The v3+ feature fields of the answer to ``broker`` at ``api_version``."""
    config = getattr(broker, "config", None)
    if config is None:
        return {}
    features = features_from_config(config)
    return {
        "supported_features": supported_feature_keys(features, api_version),
        "finalized_features_epoch": features_epoch(broker),
        "finalized_features": finalized_feature_keys(features),
    }


def fallback_response(registry: ApiRegistry[Any]) -> Any:
    """KIP-511: v0 ApiVersions response with UNSUPPORTED_VERSION and the API list."""
    return build(
        response_type(API_KEY, 0),
        api_versions_body(registry, ErrorCode.unsupported_version),
    )


async def handle(ctx: RequestContext, request: Any) -> Any:
    registry = ctx.broker.registry
    if ctx.api_version >= 3:
        name = getattr(request, "client_software_name", "")
        version = getattr(request, "client_software_version", "")
        if not (_SOFTWARE.fullmatch(name or "") and _SOFTWARE.fullmatch(version or "")):
            return ctx.build_response(api_versions_body(registry, ErrorCode.invalid_request))
        body = api_versions_body(registry)
        body.update(feature_fields(ctx.broker, ctx.api_version))
        return ctx.build_response(body)
    return ctx.build_response(api_versions_body(registry))


HANDLERS = [ApiHandler(API_KEY, MIN_VERSION, MAX_VERSION, handle)]
