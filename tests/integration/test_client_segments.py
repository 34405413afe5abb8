"""Clients over a log that rolls segments and deletes old ones while they work.

- A consumer tailing a partition while a producer appends, on a topic whose segments
  roll every 64 KiB, sees every record exactly once and in order (reads cross segment
  boundaries and race the active segment's growth).
- Retention by size deletes whole old segments: the log start offset moves forward,
  every client reports it as the earliest offset, and a consumer asking for offset 0
  gets OFFSET_OUT_OF_RANGE and resets to the new start, then reads on without a gap.

The broker checks retention every 300 ms here; waits for it are bounded polls.
"""

from __future__ import annotations

import threading
import time
import uuid

from confluent_kafka import Consumer, KafkaError, Message, Producer
from confluent_kafka import TopicPartition as CflTopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, TopicPartition

from tests.support.fixtures import unique_topic

BROKER_OVERRIDES = {"log.retention.check.interval.ms": "300"}
SEGMENT_BYTES = 65536
TIMEOUT_S = 30.0


def create_topic(bootstrap: str, name: str, **config: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, 1, 1, config=config)], request_timeout=15)
    futures[name].result(timeout=TIMEOUT_S)


def kp_consumer(bootstrap: str, **conf: object) -> KafkaConsumer:
    settings: dict[str, object] = {
        "group_id": None,
        "enable_auto_commit": False,
        "fetch_max_wait_ms": 100,
        "auto_offset_reset": "earliest",
        **conf,
    }
    return KafkaConsumer(bootstrap_servers=bootstrap, **settings)


def test_tail_reads_across_segment_rolls(bootstrap: str) -> None:
    topic = unique_topic("seg-tail")
    create_topic(bootstrap, topic, **{"segment.bytes": str(SEGMENT_BYTES)})
    total = 20_000
    errors: list[KafkaError] = []
    done = threading.Event()

    def produce() -> None:
        p = Producer(
            {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 1, "batch.size": 16384}
        )

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                errors.append(err)

        for i in range(total):
            while True:
                try:
                    p.produce(topic, value=b"tail-%06d-" % i + b"." * 50, partition=0,
                              on_delivery=on_delivery)  # fmt: skip
                    break
                except BufferError:
                    p.poll(0.01)
            if i % 500 == 0:
                p.poll(0)
                time.sleep(0.005)  # let the consumer catch up and tail the active segment
        p.flush(TIMEOUT_S)
        done.set()

    c = kp_consumer(bootstrap)
    producer_thread = threading.Thread(target=produce, daemon=True)
    seen: list[tuple[int, bytes]] = []
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        c.seek(tp, 0)
        producer_thread.start()
        deadline = time.monotonic() + 60
        while len(seen) < total:
            assert time.monotonic() < deadline, f"tailed {len(seen)} of {total}"
            for records in c.poll(timeout_ms=200).values():
                seen.extend((r.offset, r.value[:12]) for r in records)
        assert done.wait(TIMEOUT_S)
        assert not errors, errors[:5]
        assert c.end_offsets([tp], timeout_ms=10000) == {tp: total}
    finally:
        producer_thread.join(timeout=TIMEOUT_S)
        c.close()
    assert [o for o, _ in seen] == list(range(total))
    assert [v for _, v in seen] == [b"tail-%06d-" % i for i in range(total)]


def test_retention_moves_log_start_and_clients_reset(bootstrap: str) -> None:
    topic = unique_topic("seg-retention")
    create_topic(
        bootstrap,
        topic,
        **{
            "segment.bytes": str(SEGMENT_BYTES),
            "retention.bytes": str(2 * SEGMENT_BYTES),
            "file.delete.delay.ms": "0",
        },
    )
    total = 5000
    # small batches (a batch is never split: one bigger than a segment fills it alone)
    p = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "batch.size": 16384}
    )
    for i in range(total):
        p.produce(topic, value=b"r-%05d-" % i + b"x" * 100, partition=0)
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(TIMEOUT_S) == 0

    c = kp_consumer(bootstrap)
    try:
        tp = TopicPartition(topic, 0)
        deadline = time.monotonic() + 20
        while (start := c.beginning_offsets([tp], timeout_ms=10000)[tp]) == 0:
            assert time.monotonic() < deadline, "retention deleted nothing within 20 s"
            time.sleep(0.2)
        assert 0 < start < total
        assert c.end_offsets([tp], timeout_ms=10000)[tp] == total
        retained = total - start
        # ~2 segments of ~120-byte records are kept; certainly less than half the log
        assert retained < total // 2, f"retention kept {retained} of {total} records"

        # librdkafka reports the same log start offset
        cfl = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": f"assign-only-{uuid.uuid4().hex[:8]}"}
        )
        try:
            low, high = cfl.get_watermark_offsets(CflTopicPartition(topic, 0), timeout=10)
        finally:
            cfl.close()
        assert low >= start and high == total

        # a consumer asking for offset 0 is reset to the (possibly moved) start
        c.assign([tp])
        c.seek(tp, 0)
        got: list[int] = []
        deadline = time.monotonic() + TIMEOUT_S
        while not got or got[-1] < total - 1:
            assert time.monotonic() < deadline, f"read {len(got)} records after the reset"
            for records in c.poll(timeout_ms=200).values():
                got.extend(r.offset for r in records)
        assert got[0] >= start
        assert got == list(range(got[0], total))
    finally:
        c.close()
