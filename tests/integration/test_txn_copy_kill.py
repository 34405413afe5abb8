"""Exactly once through crashes (issue 10; Kafka's transactions system test, one node):
a consume-transform-produce copier (librdkafka, read_committed consumer, transactional
producer sending its consumer offsets with each transaction) copies 100,000 records
(``STROM_TXN_COPY_RECORDS``) over 2 partitions while the broker, coordinator and
partition leader at once, is killed with SIGKILL several times and restarted, the copier
killed with it and restarted with the same transactional.id. Afterwards the output topic
holds every input record exactly once, in order per partition, under read_committed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from tests.support.broker import BrokerProcess

pytestmark = pytest.mark.timeout(300)

#: as Kafka's system test (about 13 s for the whole test on a loaded 2-core box)
RECORDS = int(os.environ.get("STROM_TXN_COPY_RECORDS", "100000"))
PARTITIONS = 2
KILLS = 2
BROKER_OVERRIDES = {"transaction.abort.timed.out.transaction.cleanup.interval.ms": "300",
                    "num.partitions": str(PARTITIONS)}

COPIER = textwrap.dedent('''
    import sys
    from confluent_kafka import Consumer, Producer, TopicPartition
    import time
    bootstrap, source, sink, tid, group, partitions = sys.argv[1:7]
    partitions = int(partitions)
    batch, pause = (int(sys.argv[7]), float(sys.argv[8])) if len(sys.argv) > 8 else (500, 0)
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid,
                  "transaction.timeout.ms": 5000, "linger.ms": 5})
    p.init_transactions(30)
    print("initialized", file=sys.stderr, flush=True)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "isolation.level": "read_committed", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(source, i) for i in range(partitions)])
    idle = 0
    while True:
        got = c.consume(batch, 0.5)
        msgs = [m for m in got if m.error() is None]
        if not msgs:
            idle += 1
            if idle % 10 == 0:  # what a stuck copier waits for, on its stderr
                print("idle", [(tp.partition, tp.offset) for tp in c.position(c.assignment())],
                      [str(m.error()) for m in got], file=sys.stderr, flush=True)
            continue
        p.begin_transaction()
        for m in msgs:
            p.produce(sink, m.value(), partition=m.partition())
        p.send_offsets_to_transaction(
            [TopicPartition(source, tp.partition, tp.offset) for tp in c.position(c.assignment())],
            c.consumer_group_metadata(), 30)
        p.commit_transaction(30)
        print("committed", len(msgs), flush=True)
        time.sleep(pause)
''')


def read_committed(bootstrap: str, topic: str, expect: int, timeout: float
                   ) -> dict[int, list[bytes]]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{uuid.uuid4().hex}",
                  "isolation.level": "read_committed", "enable.auto.commit": False,
                  "fetch.wait.max.ms": 50})
    got: dict[int, list[bytes]] = {i: [] for i in range(PARTITIONS)}
    try:
        c.assign([TopicPartition(topic, i, 0) for i in range(PARTITIONS)])
        deadline = time.monotonic() + timeout
        quiet = None
        while time.monotonic() < deadline:
            batch = [m for m in c.consume(1000, 0.3) if m.error() is None]
            for m in batch:
                got[m.partition()].append(m.value())
            if not batch and sum(map(len, got.values())) >= expect:
                quiet = quiet or time.monotonic() + 1.5
                if time.monotonic() > quiet:
                    break
        return got
    finally:
        c.close()


def test_copy_is_exactly_once_across_broker_kills(broker: BrokerProcess,
                                                   tmp_path: Path) -> None:
    source, sink = f"copy-in-{uuid.uuid4().hex[:8]}", f"copy-out-{uuid.uuid4().hex[:8]}"
    tid, group = f"copier-{source}", f"copier-{source}"
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5,
                  "enable.idempotence": True})
    for i in range(RECORDS):
        p.produce(source, b"%d" % i, partition=i % PARTITIONS)
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(60) == 0
    p.produce(sink, b"", partition=0)  # create the sink; this record is skipped below
    assert p.flush(60) == 0
    script = tmp_path / "copier.py"
    script.write_text(COPIER)

    def start_copier() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, str(script), broker.bootstrap, source, sink,
                                 tid, group, str(PARTITIONS)],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def wait_commits(proc: subprocess.Popen[bytes], count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        seen = 0
        assert proc.stdout is not None
        while seen < count and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen += line.startswith(b"committed")
        assert seen >= count, f"copier committed {seen} transactions, wanted {count}"

    copier = start_copier()
    try:
        for kill in range(KILLS):
            wait_commits(copier, 3 + kill, 60)  # mid-copy, with transactions open
            broker.kill()
            copier.kill()
            copier.wait(10)
            broker.start()
            copier = start_copier()
        got = read_committed(broker.bootstrap, sink, RECORDS + 1, 120)
    finally:
        copier.kill()
        copier.wait(10)
    got[0] = [v for v in got[0] if v != b""]
    for part in range(PARTITIONS):
        expected = [b"%d" % i for i in range(part, RECORDS, PARTITIONS)]
        assert len(got[part]) == len(expected), (
            f"partition {part}: {len(got[part])} records, {len(set(got[part]))} distinct, "
            f"expected {len(expected)}")
        assert got[part] == expected, f"partition {part}: duplicated, lost or reordered"
