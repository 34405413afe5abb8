"""Produce-side transaction verification (KIP-890 part 1): a partition leader refuses a
transactional batch whose partition is not part of its producer's ongoing transaction,
so a late or stray write can never open a transaction no coordinator will finish (a
"hanging" transaction that would hold the partition's last stable offset forever).

``verify_produce(broker, transactional_id, entries)`` → {partition: error} for the
refused entries of one Produce request:

- a batch that is not transactional (or a control batch) is not checked;
- a partition whose producer state already has an open transaction of this producer id
  and epoch needs no check (its first batch of the transaction was verified, as Kafka's
  verification guard remembers);
- otherwise the coordinator of ``transactional_id`` is asked: in-process when this node
  leads its ``__transaction_state`` partition, else AddPartitionsToTxn v4
  ``verify_only`` to that leader. Not in the transaction: INVALID_TXN_STATE; a fenced or
  unknown producer: INVALID_PRODUCER_EPOCH / INVALID_PRODUCER_ID_MAPPING; coordinator
  unreachable, moving or busy: NOT_ENOUGH_REPLICAS, retriable for every client (Kafka's
  mapping for produce versions before KIP-890's TRANSACTION_ABORTABLE).
"""

from __future__ import annotations

from typing import Any

from kio.schema.add_partitions_to_txn.v4 import request as apt4
from kio.schema.errors import ErrorCode

from broker.group.partitioner import partition_for
from broker.txn.persistence import TOPIC as TXN_STATE_TOPIC
from common.logging import get_logger
from net.client import RequestError
from protocol.records import InvalidRecordBatch, parse_header

log = get_logger("strom.txn")
E = ErrorCode
TopicPartition = tuple[str, int]
VERIFY_TIMEOUT_S = 5.0
#: what a produce answer says for each coordinator-side verification error
_PRODUCE_ERRORS = {
    int(E.none): 0,
    int(E.invalid_txn_state): int(E.invalid_txn_state),
    int(E.producer_fenced): int(E.invalid_producer_epoch),
    int(E.invalid_producer_epoch): int(E.invalid_producer_epoch),
    int(E.invalid_producer_id_mapping): int(E.invalid_producer_id_mapping),
}
_RETRIABLE = int(E.not_enough_replicas)


def _needs_check(broker: Any, tp: TopicPartition, records: bytes) -> tuple[int, int] | None:
    """(producer id, epoch) when the entry's batch must be verified, else None."""
    try:
        header = parse_header(records)
    except InvalidRecordBatch:
        return None  # the partition log answers CORRUPT_MESSAGE
    if not header.is_transactional or header.is_control:
        return None
    plog = broker.replica_manager.log(*tp)
    if plog is not None:
        entry = plog.producer_state.get(header.producer_id)
        if entry is not None and entry.epoch == header.producer_epoch \
                and entry.current_txn_first_offset >= 0:
            return None  # this transaction already wrote here: verified before
    return header.producer_id, header.producer_epoch


async def verify_produce(broker: Any, transactional_id: str,
                         entries: list[tuple[TopicPartition, bytes]]
                         ) -> dict[TopicPartition, int]:
    wanted: dict[tuple[int, int], list[TopicPartition]] = {}
    for tp, records in entries:
        producer = _needs_check(broker, tp, records)
        if producer is not None:
            wanted.setdefault(producer, []).append(tp)
    refused: dict[TopicPartition, int] = {}
    for (pid, epoch), tps in wanted.items():
        found = await _ask(broker, transactional_id, pid, epoch, tps)
        for tp in tps:
            code = _PRODUCE_ERRORS.get(found.get(tp, _RETRIABLE), _RETRIABLE)
            if code:
                refused[tp] = code
    return refused


async def verify_partitions(broker: Any, transactional_id: str, pid: int, epoch: int,
                            tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    """The coordinator's verify answer per partition (Kafka's codes: NONE,
    INVALID_TXN_STATE, PRODUCER_FENCED, ...); partitions missing from the answer could
    not be checked (coordinator unknown or unreachable)."""
    return await _ask(broker, transactional_id, pid, epoch, tps)


async def _ask(broker: Any, transactional_id: str, pid: int, epoch: int,
               tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    from broker.txn.service import service_for

    service = service_for(broker)
    partition = service.coordinator.partition_for(transactional_id)
    if service.store.owns(partition):
        return {tp: int(c) for tp, c in
                service.coordinator.verify(transactional_id, pid, epoch, tps).items()}
    cluster = getattr(broker, "cluster", None)
    topic = cluster.quorum.image.topic(TXN_STATE_TOPIC) if cluster is not None else None
    if topic is None:
        return {}
    part = topic.partitions.get(partition_for(transactional_id, len(topic.partitions)))
    address = cluster._broker_address(part.leader) if part is not None else None
    if address is None or part.leader == broker.node_id:
        return {}  # no leader, or this node is taking over: the client retries
    by_topic: dict[str, list[int]] = {}
    for t, p in tps:
        by_topic.setdefault(t, []).append(p)
    body = apt4.AddPartitionsToTxnRequest(transactions=(apt4.AddPartitionsToTxnTransaction(
        transactional_id=transactional_id, producer_id=pid, producer_epoch=epoch,
        verify_only=True, topics=tuple(apt4.AddPartitionsToTxnTopic(name=t, partitions=tuple(ps))
                                       for t, ps in sorted(by_topic.items()))),))
    try:
        response = await cluster.replica_pool.request(*address, body, timeout=VERIFY_TIMEOUT_S,
                                                      channel="txn-verify")
    except RequestError as exc:
        log.debug("txn_verify_unsent", leader=part.leader, error=str(exc))
        return {}
    found: dict[TopicPartition, int] = {}
    for result in response.results_by_transaction:
        for t in result.topic_results:
            for p in t.results_by_partition:
                found[(t.name, int(p.partition_index))] = int(p.partition_error_code)
    return found
