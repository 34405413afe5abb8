"""``__transaction_state`` on storage: the coordinator's ``TxnStore`` and the replay.

The topic is compacted (``cleanup.policy=compact``, ``segment.bytes`` =
``transaction.state.log.segment.bytes``, ``compression.type=uncompressed``),
``transaction.state.log.num.partitions`` partitions (50) and
``transaction.state.log.replication.factor`` replicas (3) capped by the brokers present,
``min.insync.replicas`` = ``transaction.state.log.min.isr`` capped by that factor. It is
created through the controller on the first FindCoordinator for a transactional id
(``topic_request``), as Kafka creates it.

``append`` builds one uncompressed RecordBatch v2 holding one key/value record and
appends it as leader through the ReplicaManager; the bytes reach the OS before it
returns (a kill -9 loses nothing answered), and the shell waits for the in-sync replicas
(``wait_replicated``) before it answers the client, as Kafka appends with acks=all.
Replay feeds every record of a partition, in offset order, to
``TransactionCoordinator.load_record``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kio.schema.errors import ErrorCode

from broker.topics import NewTopicRequest
from broker.txn.coordinator import TransactionCoordinator
from broker.txn.log_format import LogFormatError
from common.logging import get_logger
from protocol.records import (
    InvalidRecordBatch,
    Record,
    build_batch,
    decode_batch_records,
    iter_batches,
)
from storage.errors import RecordTooLargeError, StorageError

log = get_logger("strom.txn")

TOPIC = "__transaction_state"
_READ_CHUNK = 4 * 1024 * 1024


def topic_request(config: Any, brokers_present: int) -> NewTopicRequest:
    """The CreateTopics entry for ``__transaction_state`` (Kafka's defaults, the
    replication factor capped by the brokers present)."""
    rf = max(1, min(config.transaction_state_log_replication_factor, brokers_present))
    return NewTopicRequest(
        TOPIC, config.transaction_state_log_num_partitions, rf,
        {"cleanup.policy": "compact",
         "segment.bytes": str(config.transaction_state_log_segment_bytes),
         "compression.type": "uncompressed",
         "min.insync.replicas": str(max(1, min(config.transaction_state_log_min_isr, rf))),
         "unclean.leader.election.enable": "false"})


class TxnStateStore:
    """``TxnStore`` port on the broker's topic registry, logs and replica manager."""

    def __init__(self, broker: Any, clock: Callable[[], int]) -> None:
        self.broker = broker
        self.clock = clock
        #: partition -> log end offset after a write not yet awaited
        self.unreplicated: dict[int, int] = {}

    def partition_count(self) -> int:
        info = self.broker.topics.get(TOPIC)
        return info.partitions if info is not None else 0

    def owns(self, partition: int) -> bool:
        return self.broker.replica_manager.log(TOPIC, partition) is not None

    def coordinator_epoch(self, partition: int) -> int:
        return max(self.broker.replica_manager.leader_epoch(TOPIC, partition), 0)

    def append(self, partition: int, key: bytes, value: bytes | None) -> ErrorCode:
        replicas = self.broker.replica_manager
        plog = replicas.log(TOPIC, partition)
        if plog is None:
            return ErrorCode(replicas.missing_error(TOPIC, partition))
        now = self.clock()
        batch = build_batch([Record(timestamp=now, key=key, value=value)])
        try:
            replicas.append(plog, batch, now)
            self.unreplicated[partition] = plog.log_end_offset
        except RecordTooLargeError:
            return ErrorCode.message_too_large
        except StorageError as exc:
            log.error("txn_state_append_failed", partition=partition, error=repr(exc))
            return ErrorCode.unknown_server_error
        except OSError as exc:
            log.error("txn_state_append_failed", partition=partition, error=repr(exc))
            return ErrorCode.kafka_storage_error
        return ErrorCode.none

    async def wait_replicated(self, timeout_s: float) -> int:
        """Wait (bounded) until every write made so far is below its partition's high
        watermark: NONE, or the first error (REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS...)."""
        # every caller waits for all writes made so far (a concurrent caller's included:
        # taking the entries away would let that caller answer before its own write is
        # replicated); an entry goes once the offset it names has been waited for
        pending = dict(self.unreplicated)
        first = 0
        for partition, offset in sorted(pending.items()):
            code = await self.broker.replica_manager.wait_replicated(
                (TOPIC, partition), offset, timeout_s)
            if code:
                log.warning("txn_state_not_replicated", partition=partition, offset=offset,
                            error=ErrorCode(code).name)
                first = first or code
            elif self.unreplicated.get(partition) == offset:
                del self.unreplicated[partition]
        return first

    def replay_partition(self, coordinator: TransactionCoordinator, partition: int) -> int:
        """Feed one partition's records, in offset order, to ``load_record``; returns the
        count. An undecodable record is logged and skipped."""
        count = 0
        plog = self.broker.logs.get(TOPIC, partition)
        if plog is None:
            return 0
        offset = plog.log_start_offset
        end = plog.log_end_offset
        while offset < end:
            data = plog.read(offset, _READ_CHUNK).records
            if not data:
                break
            next_offset = offset
            try:
                for pos, header in iter_batches(data):
                    next_offset = header.last_offset + 1
                    if header.is_control or header.last_offset < offset:
                        continue
                    for rec in decode_batch_records(data, pos):
                        if rec.offset < offset:
                            continue
                        try:
                            coordinator.load_record(rec.key, rec.value)
                            count += 1
                        except LogFormatError as exc:
                            log.warning("txn_state_record_skipped", partition=partition,
                                        offset=rec.offset, error=str(exc))
            except InvalidRecordBatch as exc:
                log.error("txn_state_replay_stopped", partition=partition, offset=offset,
                          error=str(exc))
                break
            if next_offset <= offset:
                break
            offset = next_offset
        return count
