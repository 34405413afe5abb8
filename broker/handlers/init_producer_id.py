"""InitProducerId (key 22), v0-5: ids for idempotent (non-transactional) producers.

Without a transactional id Kafka always hands out a fresh producer id with epoch 0 (any
producer id/epoch in the request, KIP-360, is ignored), so that is what happens here; ids
come from ``ProducerIdManager`` and are never reused, even after a restart.

Transactions do not exist yet: a request carrying a transactional id gets
INVALID_REQUEST (non-retriable, so the client fails fast with Kafka's explanation that the
broker is incompatible) rather than a retriable error that would make it hang.
"""

from __future__ import annotations

from typing import Any

from broker.handlers import ApiHandler, RequestContext
from protocol.errors import ErrorCode

API_KEY = 22


async def handle(ctx: RequestContext, request: Any) -> Any:
    if request.transactional_id is not None:
        return ctx.build_response({"throttle_time": 0, "error_code": ErrorCode.invalid_request,
                                   "producer_id": -1, "producer_epoch": -1})
    producer_id = await ctx.broker.producer_ids.allocate()
    return ctx.build_response({"throttle_time": 0, "error_code": 0,
                               "producer_id": producer_id, "producer_epoch": 0})


HANDLERS = [ApiHandler(API_KEY, 0, 5, handle)]
