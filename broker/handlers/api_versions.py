"""ApiVersions (key 18), v0-4.

The response lists the registry's APIs (so only implemented APIs are advertised). The v3+
tagged fields (supported/finalized features) are left out: librdkafka 2.0.2 (Debian's
kcat) fails with "Read underflow" when they are present.

The KIP-511 fallback for versions above 4 is in the server: it answers with a v0 body
carrying UNSUPPORTED_VERSION and the API list (``fallback_response``).
"""

from __future__ import annotations

import re
from typing import Any

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
    return ctx.build_response(api_versions_body(registry))


HANDLERS = [ApiHandler(API_KEY, MIN_VERSION, MAX_VERSION, handle)]
