"""Fetch (key 1), v4-12: long poll, byte limits, sessionless (KIP-227) answers.

Limits, as Kafka applies them (KIP-74): the response holds at most
``min(max_bytes, fetch.max.bytes)``; partitions are read in request order; each gets
``min(partition_max_bytes, bytes left)``; the first partition that returns
data may exceed that (one whole batch) so consumers always progress; batches are returned
whole, bounded by the high watermark (read_uncommitted) or the last stable offset
(read_committed, with the aborted transactions of the returned range).

Fetch below v10 gets UNSUPPORTED_COMPRESSION_TYPE instead of zstd batches (KIP-110).

Long poll: if fewer than ``min_bytes`` are available and ``max_wait_ms`` > 0, the fetch
waits in the purgatory until an append to one of its partitions (then re-reads) or the
deadline (then answers with what there is). Errors answer at once.

Fetch sessions (KIP-227) are not kept: every request is served in full and every response
carries ``session_id`` 0, which tells clients "no session was created" — Java and
kafka-python then keep sending full requests (epoch 0 or -1); librdkafka and aiokafka
never ask for sessions. A request naming a session id gets FETCH_SESSION_ID_NOT_FOUND,
an incremental epoch without a session INVALID_FETCH_SESSION_EPOCH.
"""

from __future__ import annotations

import asyncio
from typing import Any

from broker.handlers import ApiHandler, RequestContext
from protocol.compat import FETCH_ZSTD_MIN_VERSION, contains_zstd
from protocol.errors import ErrorCode
from storage.errors import OffsetOutOfRangeError, StorageError

API_KEY = 1
FINAL_EPOCH = -1
INITIAL_EPOCH = 0


def _error_partition(index: int, code: int) -> dict[str, Any]:
    return {"partition_index": index, "error_code": code, "high_watermark": -1,
            "last_stable_offset": -1, "log_start_offset": -1,
            "aborted_transactions": None, "records": b""}


def read_partitions(ctx: RequestContext, request: Any) -> tuple[list[dict[str, Any]], int, bool]:
    """Read every requested partition once → (topic responses, bytes, any error)."""
    replicas = ctx.broker.replica_manager
    read_committed = getattr(request, "isolation_level", 0) == 1
    # the broker's fetch.max.bytes caps what a client may ask for (Kafka does the same),
    # so one request cannot make the broker build a response of gigabytes
    left = min(getattr(request, "max_bytes", 0x7FFFFFFF), ctx.broker.config.fetch_max_bytes)
    total = 0
    errors = False
    min_one = True
    out = []
    for topic in request.topics:
        name = topic.topic
        parts = []
        for p in topic.partitions:
            index = p.partition
            log = replicas.log(name, index)
            if log is None:
                parts.append(_error_partition(index, replicas.missing_error(name, index)))
                errors = True
                continue
            epoch = getattr(p, "current_leader_epoch", -1)
            if epoch > replicas.leader_epoch(name, index):
                parts.append(_error_partition(index, ErrorCode.unknown_leader_epoch))
                errors = True
                continue
            hw = log.high_watermark
            # read_uncommitted skips the LSO computation (it may scan producer state): it is
            # reported as the high watermark, which it equals while no transaction is open
            lso = log.last_stable_offset if read_committed else hw
            records: Any = b""
            code = 0
            limit = min(p.partition_max_bytes, left)
            if limit > 0 or min_one:
                try:
                    data = log.read(p.fetch_offset, max(limit, 0),
                                    max_offset=lso if read_committed else hw,
                                    min_one_batch=min_one)
                    records = data.records
                except OffsetOutOfRangeError:
                    code = ErrorCode.offset_out_of_range
                    errors = True
                except StorageError as exc:
                    code = exc.error_code if exc.error_code > 0 else \
                        ErrorCode.unknown_server_error
                    errors = True
                except OSError:  # I/O error reading a segment
                    code = ErrorCode.kafka_storage_error
                    errors = True
            if records and ctx.api_version < FETCH_ZSTD_MIN_VERSION and contains_zstd(records):
                records = b""  # KIP-110: this client version cannot have zstd data
                code = ErrorCode.unsupported_compression_type
                errors = True
            size = len(records)
            aborted: Any = None
            if read_committed:
                aborted = [{"producer_id": pid, "first_offset": first}
                           for pid, first in log.aborted_transactions(p.fetch_offset, lso)] \
                    if size else ()
            if size:
                min_one = False
                left -= size
                total += size
            parts.append({
                "partition_index": index,
                "error_code": code,
                "high_watermark": hw if not code else -1,
                "last_stable_offset": lso if not code else -1,
                "log_start_offset": log.log_start_offset if not code else -1,
                "aborted_transactions": aborted,
                "records": records,
            })
        out.append({"topic": name, "partitions": parts})
    return out, total, errors


async def handle(ctx: RequestContext, request: Any) -> Any:
    session_id = getattr(request, "session_id", 0)
    session_epoch = getattr(request, "session_epoch", FINAL_EPOCH)
    if session_id != 0:
        return ctx.build_response({"throttle_time": 0,
                                   "error_code": ErrorCode.fetch_session_id_not_found,
                                   "session_id": 0, "responses": ()})
    if session_epoch not in (INITIAL_EPOCH, FINAL_EPOCH):
        return ctx.build_response({"throttle_time": 0,
                                   "error_code": ErrorCode.invalid_fetch_session_epoch,
                                   "session_id": 0, "responses": ()})
    purgatory = ctx.broker.purgatory
    loop = asyncio.get_running_loop()
    max_wait = request.max_wait.total_seconds()
    deadline = loop.time() + max_wait
    min_bytes = request.min_bytes
    keys = [(t.topic, p.partition) for t in request.topics for p in t.partitions]
    while True:
        responses, total, errors = read_partitions(ctx, request)
        remaining = deadline - loop.time()
        if total >= min_bytes or errors or remaining <= 0 or purgatory.closed or not keys:
            break
        fut = purgatory.watch(keys)
        try:
            await asyncio.wait_for(fut, remaining)
        except TimeoutError:
            pass
        finally:
            purgatory.unwatch(keys, fut)
    bytes_out = ctx.broker.metrics.bytes_out
    for topic in responses:
        sent = sum(len(p["records"]) for p in topic["partitions"])
        if sent:
            bytes_out.inc(topic["topic"], amount=sent)
    return ctx.build_response({"throttle_time": 0, "error_code": 0, "session_id": 0,
                               "responses": responses})


HANDLERS = [ApiHandler(API_KEY, 4, 12, handle)]
