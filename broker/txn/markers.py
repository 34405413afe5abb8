"""Transaction markers: the partition side (WriteTxnMarkers, Kafka's
``ReplicaManager.appendRecords`` with origin COORDINATOR) and the coordinator side that
sends them to every partition leader.

Partition side, ``write_local``: for each (marker, partition) led here, one control batch
(``protocol.records.build_control_batch``: COMMIT or ABORT, the producer id and epoch,
the coordinator epoch) is appended as leader with origin "coordinator" (clients may not
write control batches), then awaited until it is below the high watermark (acks=all), so
the last stable offset moves past the transaction. A marker reaching a
``__consumer_offsets`` partition also settles the producer's pending transactional offsets
of groups there (``GroupCoordinator.complete_txn_offsets``). Errors are Kafka's: a
partition not led here NOT_LEADER_OR_FOLLOWER / UNKNOWN_TOPIC_OR_PARTITION, an epoch
older than the producer's INVALID_PRODUCER_EPOCH, a coordinator epoch older than the one
the partition last accepted for the producer TRANSACTION_COORDINATOR_FENCED (storage's
check, Kafka's checkCoordinatorEpoch; nothing appended), replication NOT_ENOUGH_REPLICAS /
REQUEST_TIMED_OUT.

Coordinator side, ``send_markers``: partitions led here are written in-process; in a
cluster the others go to their leaders as WriteTxnMarkers v1 over the inter-broker
listener. Returns the partitions still to retry (Kafka's marker channel retries until
every partition has its marker; a partition of a deleted topic is dropped).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kio.schema.errors import ErrorCode
from kio.schema.write_txn_markers.v1 import request as wtm

from common.logging import get_logger
from net.client import RequestError
from protocol.records import build_control_batch
from storage.errors import StorageError

log = get_logger("strom.txn")

TopicPartition = tuple[str, int]
OFFSETS_TOPIC = "__consumer_offsets"
#: marker errors after which the partition is done (the marker is stale, not retried)
DONE_ERRORS = frozenset({int(ErrorCode.none), int(ErrorCode.invalid_producer_epoch),
                         int(ErrorCode.transaction_coordinator_fenced)})
MARKER_REPLICATION_WAIT_S = 10.0


@dataclass(frozen=True, slots=True)
class Marker:
    producer_id: int
    producer_epoch: int
    commit: bool
    coordinator_epoch: int
    partitions: tuple[TopicPartition, ...]


def _now() -> int:
    return time.time_ns() // 1_000_000


async def write_local(broker: Any, markers: Iterable[Marker],
                      timeout_s: float = MARKER_REPLICATION_WAIT_S
                      ) -> list[dict[TopicPartition, int]]:
    """Write each marker to its partitions led here; one {partition: error} per marker."""
    replicas = broker.replica_manager
    results: list[dict[TopicPartition, int]] = []
    waits: list[tuple[dict[TopicPartition, int], TopicPartition, int]] = []
    for marker in markers:
        errors: dict[TopicPartition, int] = {}
        results.append(errors)
        for tp in marker.partitions:
            plog = replicas.log(*tp)
            if plog is None:
                errors[tp] = replicas.missing_error(*tp)
                continue
            now = _now()
            batch = build_control_batch(producer_id=marker.producer_id,
                                        producer_epoch=marker.producer_epoch,
                                        commit=marker.commit,
                                        coordinator_epoch=marker.coordinator_epoch,
                                        timestamp=now)
            try:
                replicas.append(plog, batch, now, origin="coordinator")
            except StorageError as exc:
                errors[tp] = exc.error_code if exc.error_code > 0 \
                    else int(ErrorCode.unknown_server_error)
                continue
            except OSError as exc:
                log.error("txn_marker_append_failed", topic=tp[0], partition=tp[1],
                          error=repr(exc))
                errors[tp] = int(ErrorCode.kafka_storage_error)
                continue
            errors[tp] = 0
            if tp[0] == OFFSETS_TOPIC:
                _settle_offsets(broker, marker, tp[1])
            waits.append((errors, tp, plog.log_end_offset))
    for errors, tp, offset in waits:
        errors[tp] = await replicas.wait_replicated(tp, offset, timeout_s)
    return results


def _settle_offsets(broker: Any, marker: Marker, partition: int) -> None:
    from broker.group.service import service_for

    try:
        service_for(broker).call("complete_txn_offsets", marker.producer_id, marker.commit,
                                 partition)
    except Exception as exc:  # the marker is written; replay settles the offsets anyway
        log.error("txn_offsets_settle_failed", partition=partition, error=repr(exc))


def _leader_of(broker: Any, tp: TopicPartition) -> int:
    """The partition's leader from the metadata image (this node when not a cluster)."""
    cluster = getattr(broker, "cluster", None)
    if cluster is None:
        return broker.node_id
    topic = cluster.quorum.image.topic(tp[0])
    part = topic.partitions.get(tp[1]) if topic is not None else None
    return part.leader if part is not None else -1


async def send_markers(broker: Any, marker: Marker, timeout_s: float
                       ) -> tuple[set[TopicPartition], dict[TopicPartition, int]]:
    """Write ``marker`` to every partition (in-process or to its leader); returns the
    partitions to retry and every partition's last error."""
    by_leader: dict[int, list[TopicPartition]] = {}
    errors: dict[TopicPartition, int] = {}
    for tp in marker.partitions:
        if broker.topics.get(tp[0]) is None:
            errors[tp] = 0  # the topic is gone: nothing to mark (as Kafka drops it)
            continue
        by_leader.setdefault(_leader_of(broker, tp), []).append(tp)
    jobs = []
    for leader, tps in by_leader.items():
        sub = Marker(marker.producer_id, marker.producer_epoch, marker.commit,
                     marker.coordinator_epoch, tuple(tps))
        jobs.append(_send_to(broker, leader, sub, timeout_s))
    # one leader (always so on a single node) is awaited in place: no task for it
    for found in (await asyncio.gather(*jobs)) if len(jobs) > 1 else \
            [await job for job in jobs]:
        errors.update(found)
    retry = {tp for tp, code in errors.items() if code not in DONE_ERRORS}
    return retry, errors


async def _send_to(broker: Any, leader: int, marker: Marker, timeout_s: float
                   ) -> dict[TopicPartition, int]:
    if leader == broker.node_id:
        [errors] = await write_local(broker, [marker], timeout_s)
        return errors
    unavailable = dict.fromkeys(marker.partitions, int(ErrorCode.not_leader_or_follower))
    cluster = getattr(broker, "cluster", None)
    address = cluster._broker_address(leader) if cluster is not None and leader >= 0 \
        else None
    if address is None:
        return unavailable
    by_topic: dict[str, list[int]] = {}
    for topic, partition in marker.partitions:
        by_topic.setdefault(topic, []).append(partition)
    body = wtm.WriteTxnMarkersRequest(markers=(wtm.WritableTxnMarker(
        producer_id=marker.producer_id, producer_epoch=marker.producer_epoch,
        transaction_result=marker.commit, coordinator_epoch=marker.coordinator_epoch,
        topics=tuple(wtm.WritableTxnMarkerTopic(name=t, partition_indexes=tuple(ps))
                     for t, ps in sorted(by_topic.items()))),))
    try:
        response = await cluster.replica_pool.request(*address, body, timeout=timeout_s + 5,
                                                      channel="txn-markers")
    except RequestError as exc:
        log.debug("txn_markers_unsent", leader=leader, error=str(exc))
        return unavailable
    errors = dict(unavailable)
    for result in response.markers:
        for topic in result.topics:
            for p in topic.partitions:
                errors[(topic.name, int(p.partition_index))] = int(p.error_code)
    return errors
