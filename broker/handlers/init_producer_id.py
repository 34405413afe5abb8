"""InitProducerId (key 22), v0-5: ids for idempotent (non-transactional) producers.

Without a transactional id Kafka always hands out a fresh producer id with epoch 0 (any
producer id/epoch in the request, KIP-360, is ignored), so that is what happens here; ids
come from ``ProducerIdManager`` in blocks the active controller allocates, so they are
unique in the cluster and never reused, even after a restart. When no block can be had in
time the answer is COORDINATOR_LOAD_IN_PROGRESS, retriable, as Kafka answers (older
clients treat REQUEST_TIMED_OUT as fatal here).

A request carrying a transactional id goes to the transaction coordinator
(``broker.txn.handlers.init_transactional``: a new producer id or an epoch bump for that
id, fencing older incarnations).
"""

from __future__ import annotations

from typing import Any

from broker.handlers import ApiHandler, RequestContext
from broker.producer_ids import ProducerIdsUnavailable
from common.logging import get_logger
from protocol.errors import ErrorCode

API_KEY = 22
log = get_logger("strom.broker")


async def handle(ctx: RequestContext, request: Any) -> Any:
    if request.transactional_id is not None:
        from broker.txn.handlers import init_transactional

        return await init_transactional(ctx, request)
    try:
        producer_id = await ctx.broker.producer_ids.allocate()
    except ProducerIdsUnavailable as exc:
        log.warning("producer_ids_unavailable", problem=str(exc))
        return ctx.build_response({"throttle_time": 0,
                                   "error_code": ErrorCode.coordinator_load_in_progress,
                                   "producer_id": -1, "producer_epoch": -1})
    return ctx.build_response({"throttle_time": 0, "error_code": 0,
                               "producer_id": producer_id, "producer_epoch": 0})


HANDLERS = [ApiHandler(API_KEY, 0, 5, handle)]
