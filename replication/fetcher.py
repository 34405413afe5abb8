"""The follower side: one ``ReplicaFetcher`` per leader broker fetches every partition
this broker follows from that leader (Kafka's ReplicaFetcherThread).

Each round is one Fetch v12 as replica ``node_id`` (``replica_id``) with, per partition,
the fetch offset (the local log end), the last fetched epoch (the local log's latest
leader epoch), the current leader epoch this broker knows and
``replica.fetch.max.bytes``; the whole answer is bounded by
``replica.fetch.response.max.bytes`` and long-polls ``replica.fetch.wait.max.ms``.

Per partition of the answer:
- records: appended with the leader's offsets and epochs kept (``append_as_follower``),
  then the leader's high watermark (capped by the local log end) and log start offset
  are adopted;
- ``diverging_epoch`` (KIP-279): the local log is truncated to the smaller of the
  leader's end offset for that epoch and the local end offset for the same epoch, and the
  next round fetches from there — never blindly to the high watermark;
- OFFSET_OUT_OF_RANGE: below the leader's log start the local log restarts empty at it;
  above the leader's end it is truncated to the leader's high watermark;
- NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH, ...: the partition
  waits ``replica.fetch.backoff.ms`` (or until the metadata gives it a new leader epoch).
A partition whose state changed while a round was in flight (removed, new epoch, log end
moved) ignores that round's answer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from common.logging import get_logger
from net.client import ClientPool, RequestError
from protocol.errors import ErrorCode
from protocol.fetch_codec import EncodedBody, encode_fetch_request
from storage.errors import StorageError

if TYPE_CHECKING:
    from replication.replica_manager import ReplicaManager, TopicPartition

log = get_logger("strom.replication.fetcher")

REQUEST_TIMEOUT_S = 10.0
OFFSET_OUT_OF_RANGE = int(ErrorCode.offset_out_of_range)


class ReplicaFetcher:
    def __init__(self, leader_id: int, replicas: ReplicaManager, pool: ClientPool,
                 address: Callable[[int], tuple[str, int] | None]) -> None:
        self.leader_id = leader_id
        self.replicas = replicas
        self.pool = pool
        self.address = address
        #: partition -> the leader epoch it is followed in
        self.partitions: dict[TopicPartition, int] = {}
        self._retry_at: dict[TopicPartition, float] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.log = log.bind(node_id=replicas.node_id, leader=leader_id)

    def add(self, key: TopicPartition, leader_epoch: int) -> None:
        self.partitions[key] = leader_epoch
        self._retry_at.pop(key, None)
        self._wake.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def remove(self, key: TopicPartition) -> None:
        self.partitions.pop(key, None)
        self._retry_at.pop(key, None)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # ---- the loop --------------------------------------------------------------------------
    async def _run(self) -> None:
        cfg = self.replicas.config
        backoff = cfg.replica_fetch_backoff_ms / 1000
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            ready = [k for k in self.partitions if self._retry_at.get(k, 0.0) <= now]
            if not ready:
                self._wake.clear()
                waits = [t - now for k, t in self._retry_at.items() if k in self.partitions]
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), min(waits, default=1.0))
                continue
            address = self.address(self.leader_id)
            if address is None:
                await asyncio.sleep(backoff)
                continue
            sent = self._sent(ready)
            if not sent:
                await asyncio.sleep(backoff)
                continue
            try:
                response = await self.pool.request(
                    address[0], address[1], self._request(sent),
                    timeout=cfg.replica_fetch_wait_max_ms / 1000 + REQUEST_TIMEOUT_S,
                    channel="replica-fetch")
            except RequestError as exc:
                self.log.debug("replica_fetch_failed", error=str(exc))
                await asyncio.sleep(backoff)
                continue
            try:
                self._handle(response, sent, loop.time() + backoff)
            except Exception as exc:  # keep fetching the other partitions
                self.log.exception("replica_fetch_handling_failed", error=repr(exc))
                await asyncio.sleep(backoff)

    def _sent(self, keys: list[TopicPartition]) -> dict[TopicPartition, tuple[int, int, int]]:
        """partition -> (leader epoch, fetch offset, last fetched epoch)."""
        out = {}
        for key in keys:
            plog = self.replicas.log_manager.get(*key)
            if plog is not None:
                out[key] = (self.partitions[key], plog.log_end_offset, plog.latest_epoch())
        return out

    def _request(self, sent: dict[TopicPartition, tuple[int, int, int]]) -> EncodedBody:
        """The Fetch v12 request, encoded by ``protocol.fetch_codec`` (building and
        encoding kio entities cost ~40 µs more per request, one per produce round)."""
        cfg = self.replicas.config
        topics: dict[str, list[tuple[int, int, int, int, int, int]]] = {}
        for (topic, index), (epoch, offset, last_epoch) in sent.items():
            topics.setdefault(topic, []).append(
                (index, epoch, offset, last_epoch, self._log_start(topic, index),
                 cfg.replica_fetch_max_bytes))
        return encode_fetch_request(
            replica_id=self.replicas.node_id, max_wait_ms=cfg.replica_fetch_wait_max_ms,
            min_bytes=cfg.replica_fetch_min_bytes,
            max_bytes=cfg.replica_fetch_response_max_bytes, isolation_level=0,
            session_id=0, session_epoch=-1, topics=list(topics.items()))

    def _log_start(self, topic: str, index: int) -> int:
        """The local log start offset, sent so the leader knows which offsets this
        replica can serve to consumers (KIP-392); -1 if the log is gone."""
        plog = self.replicas.log_manager.get(topic, index)
        return plog.log_start_offset if plog is not None else -1

    def _handle(self, response: Any, sent: dict[TopicPartition, tuple[int, int, int]],
                retry_at: float) -> None:
        if int(response.error_code):
            self.log.warning("replica_fetch_error", error=ErrorCode(int(response.error_code)).name)
            for key in sent:
                self._retry_at[key] = retry_at
            return
        for topic in response.responses:
            for pd in topic.partitions:
                key = (topic.topic, int(pd.partition_index))
                state = sent.get(key)
                if state is None or self.partitions.get(key) != state[0]:
                    continue  # no longer followed in that epoch
                plog = self.replicas.log_manager.get(*key)
                if plog is None or plog.log_end_offset != state[1]:
                    continue
                code = int(pd.error_code)
                try:
                    if code == 0:
                        self._apply(key, plog, pd)
                    elif code == OFFSET_OUT_OF_RANGE:
                        self._out_of_range(key, plog, pd)
                    else:
                        self._retry_at[key] = retry_at
                        self.log.debug("replica_fetch_partition_error", topic=key[0],
                                       partition=key[1], error=ErrorCode(code).name)
                except (StorageError, OSError) as exc:
                    self._retry_at[key] = retry_at
                    self.log.error("follower_append_failed", topic=key[0], partition=key[1],
                                   error=repr(exc))

    def _apply(self, key: TopicPartition, plog: Any, pd: Any) -> None:
        div = pd.diverging_epoch
        if int(div.end_offset) >= 0:
            own_epoch, own_end = plog.end_offset_for_epoch(int(div.epoch))
            target = int(div.end_offset) if own_epoch < 0 else min(int(div.end_offset), own_end)
            self.log.info("follower_truncating", topic=key[0], partition=key[1],
                          leader_epoch=int(div.epoch), leader_end_offset=int(div.end_offset),
                          log_end_offset=plog.log_end_offset, truncate_to=target)
            plog.truncate_to(target)
            return
        records = pd.records
        if records:
            plog.append_as_follower(records)
        start = int(pd.log_start_offset)
        if plog.log_start_offset < start <= plog.log_end_offset:
            plog.delete_records_before(start)
        self.replicas.follower_high_watermark(key, int(pd.high_watermark))

    def _out_of_range(self, key: TopicPartition, plog: Any, pd: Any) -> None:
        start = int(pd.log_start_offset)
        if 0 <= plog.log_end_offset < start:
            self.log.info("follower_restarting_log", topic=key[0], partition=key[1],
                          leader_log_start_offset=start)
            plog.truncate_fully_and_start_at(start)
        elif int(pd.high_watermark) >= 0:
            plog.truncate_to(int(pd.high_watermark))
