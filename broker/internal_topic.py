"""A compacted internal topic a coordinator keeps its state in (``__consumer_offsets``,
``__transaction_state``, ``__share_group_state``): creation, appends, the replication
wait and the chunked read that replays a partition.

Contract:

- The topic is compacted: configs ``cleanup.policy=compact``, ``segment.bytes``,
  ``compression.type`` (``producer`` unless told), and with ``min_isr`` also
  ``min.insync.replicas`` (capped by the replication factor) and
  ``unclean.leader.election.enable=false``. ``request(present)`` is its CreateTopics entry
  with the replication factor capped by the brokers present (at least 1); ``ensure``
  creates it in this broker's registry (one replica) and answers NONE or
  COORDINATOR_NOT_AVAILABLE; ``ensure_ready`` creates it through the cluster's controller
  and waits (bounded) until the registry has it.
- ``append`` writes one uncompressed RecordBatch v2 of key/value records as leader
  through the ReplicaManager (the bytes reach the OS before it returns) and answers NONE,
  ``missing`` (default: the replica manager's error) when the partition is not led here,
  MESSAGE_TOO_LARGE, UNKNOWN_SERVER_ERROR (StorageError; a transactional batch's
  producer-state error keeps its own code) or KAFKA_STORAGE_ERROR (OSError).
- ``wait_replicated`` waits until every write made so far, a concurrent caller's
  included, is below its partition's high watermark; an entry of ``unreplicated``
  (partition -> log end offset after the last write) goes once that offset was waited
  for. It answers NONE or the first error.
- ``replay_batches`` reads a local partition from its log start offset to its log end
  offset in chunks and yields its batches in offset order; a malformed batch stops it.

Log events are ``<event>_topic_created``, ``<event>_topic_create_failed``,
``<event>_append_failed``, ``<event>_not_replicated`` and ``<event>_replay_stopped``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from kio.schema.errors import ErrorCode

from broker.topics import NewTopicRequest
from protocol.records import (
    CONTROL_COMMIT,
    BatchHeader,
    InvalidRecordBatch,
    Record,
    build_batch,
    control_batch_type,
    decode_batch_records,
    iter_batches,
)
from storage.errors import RecordTooLargeError, StorageError

READ_CHUNK = 4 * 1024 * 1024


class StoredBatch(NamedTuple):
    """One batch read back: a data batch's records at or after the read position, or
    (``markers``) a control batch with no records and ``commit`` for a COMMIT marker."""

    header: BatchHeader
    records: list[Record]
    commit: bool = False


class InternalTopic:
    """One internal topic on the broker's topic registry, logs and replica manager."""

    def __init__(self, broker: Any, name: str, *, partitions: int, segment_bytes: int,
                 replication_factor: int, log: Any, event: str,
                 compression: str = "producer", min_isr: int | None = None) -> None:
        self.broker = broker
        self.name = name
        self.partitions = partitions
        self.segment_bytes = segment_bytes
        self.replication_factor = replication_factor
        self.compression = compression
        self.min_isr = min_isr
        self.log = log
        self.event = event
        #: partition -> log end offset after a write not yet awaited
        self.unreplicated: dict[int, int] = {}

    # ------------------------------------------------------------------ topic
    def configs(self, replication_factor: int) -> dict[str, str]:
        configs = {"cleanup.policy": "compact", "segment.bytes": str(self.segment_bytes),
                   "compression.type": self.compression}
        if self.min_isr is not None:
            configs["min.insync.replicas"] = str(max(1, min(self.min_isr, replication_factor)))
            configs["unclean.leader.election.enable"] = "false"
        return configs

    def request(self, brokers_present: int) -> NewTopicRequest:
        rf = max(1, min(self.replication_factor, brokers_present))
        return NewTopicRequest(self.name, self.partitions, rf, self.configs(rf))

    def partition_count(self) -> int:
        info = self.broker.topics.get(self.name)
        return info.partitions if info is not None else 0

    def ensure(self) -> ErrorCode:
        topics = self.broker.topics
        if topics.get(self.name) is not None:
            return ErrorCode.none
        try:
            topics.create_topic(self.name, partitions=self.partitions, replication_factor=1,
                                configs=self.configs(1))
        except Exception as exc:
            if getattr(exc, "error_code", None) == ErrorCode.topic_already_exists:
                return ErrorCode.none
            self.log.error(f"{self.event}_topic_create_failed", error=repr(exc))
            return ErrorCode.coordinator_not_available
        self.log.info(f"{self.event}_topic_created", partitions=self.partitions)
        return ErrorCode.none

    async def ensure_ready(self, timeout_s: float = 5.0) -> None:
        if self.broker.topics.get(self.name) is not None:
            return
        cluster = getattr(self.broker, "cluster", None)
        if cluster is None:
            self.ensure()
            return
        present = len(cluster.quorum.image.unfenced_brokers())
        await cluster.create_now([self.request(present)])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.broker.topics.get(self.name) is None and loop.time() < deadline:
            await asyncio.sleep(0.05)

    # ------------------------------------------------------------------ writes
    def append(self, partition: int, records: Sequence[tuple[bytes, bytes | None]], *,
               now: int, missing: ErrorCode | None = None, producer_id: int = -1,
               producer_epoch: int = -1, transactional: bool = False) -> ErrorCode:
        replicas = self.broker.replica_manager
        plog = replicas.log(self.name, partition)  # only a partition led here
        if plog is None:
            if missing is not None:
                return missing
            return ErrorCode(replicas.missing_error(self.name, partition))
        batch = build_batch([Record(timestamp=now, key=k, value=v) for k, v in records],
                            producer_id=producer_id, producer_epoch=producer_epoch,
                            is_transactional=transactional)
        try:
            replicas.append(plog, batch, now)
            self.unreplicated[partition] = plog.log_end_offset
        except RecordTooLargeError:
            return ErrorCode.message_too_large
        except StorageError as exc:
            if transactional and exc.error_code > 0:
                return ErrorCode(exc.error_code)
            self.log.error(f"{self.event}_append_failed", partition=partition, error=repr(exc))
            return ErrorCode.unknown_server_error
        except OSError as exc:
            self.log.error(f"{self.event}_append_failed", partition=partition, error=repr(exc))
            return ErrorCode.kafka_storage_error
        return ErrorCode.none

    async def wait_replicated(self, timeout_s: float) -> int:
        # every caller waits for all writes made so far (a concurrent caller's included:
        # taking the entries away would let that caller answer before its own write is
        # replicated); an entry goes once the offset it names has been waited for
        pending = dict(self.unreplicated)
        first = 0
        for partition, offset in sorted(pending.items()):
            code = await self.broker.replica_manager.wait_replicated(
                (self.name, partition), offset, timeout_s)
            if code:
                self.log.warning(f"{self.event}_not_replicated", partition=partition,
                                 offset=offset, error=ErrorCode(code).name)
                first = first or code
            elif self.unreplicated.get(partition) == offset:
                del self.unreplicated[partition]
        return first

    # ------------------------------------------------------------------ replay
    def replay_batches(self, partition: int, *, markers: bool = False) -> Iterator[StoredBatch]:
        """The batches of a local partition in offset order (control batches only with
        ``markers``; ``commit`` is read for a marker of a producer, id >= 0)."""
        plog = self.broker.logs.get(self.name, partition)
        if plog is None:
            return
        offset, end = plog.log_start_offset, plog.log_end_offset
        while offset < end:
            data = plog.read(offset, READ_CHUNK).records
            if not data:
                break
            next_offset = offset
            try:
                for pos, header in iter_batches(data):
                    next_offset = header.last_offset + 1
                    if header.last_offset < offset:
                        continue
                    if header.is_control:
                        if markers:
                            yield StoredBatch(header, [], header.producer_id >= 0
                                              and control_batch_type(data, pos) == CONTROL_COMMIT)
                        continue
                    yield StoredBatch(header, [rec for rec in decode_batch_records(data, pos)
                                               if rec.offset >= offset])
            except InvalidRecordBatch as exc:
                self.log.error(f"{self.event}_replay_stopped", partition=partition,
                               offset=offset, error=str(exc))
                break
            if next_offset <= offset:
                break
            offset = next_offset
