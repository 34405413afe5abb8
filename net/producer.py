"""A blocking batch producer over ``KafkaClient`` (for tools; not idempotent).

``Producer(client, acks=-1, compression=0).send(topic, records, progress=None)``
partitions each ``OutgoingRecord`` (its own ``partition``; else Kafka's murmur2 of the key;
else round robin by batch), packs up to ``batch_records`` / ``batch_bytes`` per partition
into one RecordBatch v2 (``protocol.records.build_batch``, compressed with the codec id of
``protocol.compression``), and sends each batch to its partition's leader with Produce.
Batches of one partition go out in order, one at a time, so records keep their order.
A NOT_LEADER_OR_FOLLOWER / LEADER_NOT_AVAILABLE answer or an unreachable leader refreshes
metadata and retries (``retries`` times, backing off); any other error raises
``KafkaApiError``. Not idempotent: a batch whose answer was lost may be stored twice.
With acks=0 nothing is answered and the returned offsets are -1.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from net.kafka_client import ClusterMetadata, KafkaClient, error_name
from net.partitioner import partition_for_key
from net.session import BrokerUnreachable, ClientError, KafkaApiError
from protocol.records import Record, build_batch

PRODUCE = 0
UNREACHABLE = "BROKER_UNREACHABLE"
RETRIABLE = {"NOT_LEADER_OR_FOLLOWER", "LEADER_NOT_AVAILABLE", "REQUEST_TIMED_OUT",
             "NOT_ENOUGH_REPLICAS", "UNKNOWN_TOPIC_OR_PARTITION", UNREACHABLE}


@dataclass(slots=True)
class OutgoingRecord:
    value: bytes | None
    key: bytes | None = None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)
    partition: int | None = None
    timestamp: int | None = None  # epoch ms; None: now


@dataclass(frozen=True, slots=True)
class SendResult:
    """Per partition: how many records went out and the first record's offset."""

    records: dict[int, int]
    base_offsets: dict[int, int]

    @property
    def total(self) -> int:
        return sum(self.records.values())


class Producer:
    """See the module doc."""

    def __init__(self, client: KafkaClient, *, acks: int = -1, compression: int = 0,
                 batch_records: int = 1000, batch_bytes: int = 512 * 1024,
                 retries: int = 5) -> None:
        self.client = client
        self.acks = acks
        self.compression = compression
        self.batch_records = batch_records
        self.batch_bytes = batch_bytes
        self.retries = retries
        self._metadata: dict[str, ClusterMetadata] = {}

    def send(self, topic: str, records: Iterable[OutgoingRecord],
             progress: Callable[[int], None] | None = None) -> SendResult:
        info = self.client.topic(topic)
        count = len(info.partitions)
        pending: dict[int, list[Record]] = {}
        sizes: dict[int, int] = {}
        sent: dict[int, int] = {}
        bases: dict[int, int] = {}
        total = 0
        robin = 0

        def flush(partition: int) -> None:
            nonlocal total
            batch = pending.pop(partition, [])
            sizes.pop(partition, None)
            if not batch:
                return
            base = self._produce(topic, partition, batch)
            bases.setdefault(partition, base)
            sent[partition] = sent.get(partition, 0) + len(batch)
            total += len(batch)
            if progress is not None:
                progress(total)

        for rec in records:
            if rec.partition is not None:
                if not 0 <= rec.partition < count:
                    raise ClientError(f"topic {topic!r} has partitions 0..{count - 1}, "
                                      f"not {rec.partition}")
                partition = rec.partition
            elif rec.key is not None:
                partition = partition_for_key(rec.key, count)
            else:
                partition = robin % count
            ts = rec.timestamp if rec.timestamp is not None else time.time_ns() // 1_000_000
            pending.setdefault(partition, []).append(
                Record(-1, ts, rec.key, rec.value, list(rec.headers)))
            sizes[partition] = sizes.get(partition, 0) + len(rec.value or b"") + len(
                rec.key or b"") + 16
            if len(pending[partition]) >= self.batch_records or \
                    sizes[partition] >= self.batch_bytes:
                flush(partition)
                if rec.partition is None and rec.key is None:
                    robin += 1  # the next keyless batch goes to the next partition
        for partition in sorted(pending):
            flush(partition)
        return SendResult(sent, bases)

    def _produce(self, topic: str, partition: int, records: list[Record]) -> int:
        batch = build_batch(records, compression=self.compression)
        values = {"transactional_id": None, "acks": self.acks,
                  "timeout": int(self.client.timeout * 1000),
                  "topic_data": [{"name": topic, "partition_data": [
                      {"index": partition, "records": batch}]}]}
        attempt = 0
        while True:
            metadata = self._metadata.get(topic)
            if metadata is None or attempt:
                metadata = self._metadata[topic] = self.client.metadata([topic])
            leader = KafkaClient.by_leader(metadata, [(topic, partition)])
            leader_id = next(iter(leader))
            name = "LEADER_NOT_AVAILABLE"
            message = None
            if leader_id >= 0:
                try:
                    session = self.client.session(leader_id)
                    if self.acks == 0:
                        session.send_only(PRODUCE, values, highest=9, lowest=3)
                        return -1
                    response = session.call(PRODUCE, values, highest=9, lowest=3)
                except BrokerUnreachable as exc:  # the leader died: ask who leads now
                    self.client.forget(leader_id)
                    name, message = UNREACHABLE, str(exc)
                else:
                    p = response.responses[0].partition_responses[0]
                    if int(p.error_code) == 0:
                        return int(p.base_offset)
                    name = error_name(p.error_code)
                    message = getattr(p, "error_message", None)
            attempt += 1
            if name not in RETRIABLE or attempt > self.retries:
                detail = f": {message}" if message else ""
                raise KafkaApiError(-1, name, f"cannot produce to {topic}-{partition}: "
                                              f"{name}{detail}")
            time.sleep(min(0.1 * 2 ** attempt, 2.0))
