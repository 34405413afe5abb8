"""SaslHandshake (17) v0-1 and SaslAuthenticate (36) v0-2 on a connection that needs no
authentication: a PLAINTEXT listener, or a SASL connection already authenticated (unless
``connections.max.reauth.ms`` allows KIP-368 re-authentication there). As in Kafka, both
answer ILLEGAL_SASL_STATE then; the authentication itself happens before a connection
reaches the handlers (``broker.server`` with ``broker.security.authenticator``).
"""

from __future__ import annotations

from typing import Any

from broker.handlers import ApiHandler, RequestContext
from protocol.errors import ErrorCode

HANDSHAKE, AUTHENTICATE = 17, 36


async def handle_handshake(ctx: RequestContext, request: Any) -> Any:
    return ctx.build_response({"error_code": ErrorCode.illegal_sasl_state, "mechanisms": []})


async def handle_authenticate(ctx: RequestContext, request: Any) -> Any:
    return ctx.build_response({
        "error_code": ErrorCode.illegal_sasl_state, "auth_bytes": b"", "session_lifetime": 0,
        "error_message": "SaslAuthenticate is not expected on this connection "
                         "(not a SASL listener, or already authenticated)"})


HANDLERS = [ApiHandler(HANDSHAKE, 0, 1, handle_handshake),
            ApiHandler(AUTHENTICATE, 0, 2, handle_authenticate)]
