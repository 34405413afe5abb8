"""Every client family on RF 3 topics of a real 3-node cluster (processes on 127.0.0.1,
RF 3, min.insync.replicas 2), across a SIGKILL of the partition's leader:

- confluent-kafka, kafka-python, aiokafka, kafkajs (node; skipped with the reason when
  node/npm are missing) and kcat each produce N records with acks=all, the partition's
  leader is SIGKILLed, the same client produces N more (it finds the new leader on its
  own; retries allowed), the killed broker is restarted and back in the ISR, and the
  same client family reads the partition from the start: exactly the 2N records, in
  the order they were produced, at offsets 0..2N-1 (none missing, none twice);
- idempotent kafka-python, aiokafka and kafkajs producers under continuous load
  while the leader of each partition in turn is SIGKILLed mid-flight (and restarted):
  no delivery fails, and the log holds every acknowledged record once, in order (a
  retried batch the old leader had replicated is recognised by the new one);
- a rolling restart under load: an idempotent acks=all confluent-kafka producer sends
  continuously while each broker in turn is stopped cleanly (SIGTERM: controlled
  shutdown) and started again, full ISR between steps: no delivery fails, and nothing
  acknowledged is lost, duplicated or reordered.

One cluster serves the whole module; each test first brings every node back and waits
for its topic to have 3 in-sync replicas. Every wait is bounded; nothing sleeps as an
assertion.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import selectors
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.test_cluster import Cluster, wait_until
from tests.e2e.test_replication import (
    REPLICATED,
    Load,
    check_log,
    consume_all,
    create_topic,
    state,
)
from tests.support.kafkajs import KafkajsUnavailable, kafkajs_env

pytestmark = pytest.mark.timeout(180)

N = 50
KCAT = shutil.which("kcat") or "/usr/bin/kcat"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("replication-clients"), overrides=REPLICATED)
    try:
        yield c.start()
    finally:
        c.close()


def healthy(c: Cluster) -> None:
    """Every node running and registered (a previous test may have left one down)."""
    for node in c.nodes.values():
        if not node.running:
            node.start()
    c.wait_brokers(set(c.nodes), timeout=40)


def in_sync(c: Cluster, topic: str) -> bool:
    """``full_isr``, failing with the partitions' (leader, ISR) so a timeout shows them."""
    now = state(c, topic)
    assert all(leader > 0 and len(isr) == 3 for leader, isr in now.values()), now
    return True


def everyone(c: Cluster) -> str:
    return ",".join(c.bootstrap(i) for i in sorted(c.nodes))


def values(family: str, phase: str) -> list[bytes]:
    return [f"{family}-{phase}-{i}".encode() for i in range(N)]


class LeaderKill:
    """The RF 3 topic of one case: created with 3 in-sync replicas; ``kill()`` SIGKILLs
    its partition's leader, ``restore()`` restarts it and waits for the full ISR."""

    def __init__(self, c: Cluster, family: str) -> None:
        healthy(c)
        self.c, self.topic = c, f"rf3-{family}"
        create_topic(c, self.topic, 1)
        self.victim = -1

    def kill(self) -> None:
        wait_until(lambda: in_sync(self.c, self.topic), 30, "3 in-sync replicas")
        self.victim = state(self.c, self.topic)[0][0]
        self.c.nodes[self.victim].kill()

    def wait_new_leader(self) -> int:
        return wait_until(lambda: (lambda leader: leader if leader not in (-1, self.victim)
                                   else None)(state(self.c, self.topic)[0][0]),
                          30, f"a new leader of {self.topic} after killing {self.victim}")

    def restore(self) -> None:
        self.c.nodes[self.victim].start()
        wait_until(lambda: in_sync(self.c, self.topic), 40,
                   f"broker {self.victim} back in the ISR of {self.topic}")


def check_read(family: str, got: list[tuple[int, bytes]]) -> None:
    expected = values(family, "a") + values(family, "b")
    read = [v for _, v in got]
    assert len(read) == len(set(read)), f"{family}: duplicates"
    assert not set(expected) - set(read), f"{family}: missing {set(expected) - set(read)}"
    assert read == expected, f"{family}: reordered or foreign records"
    assert [o for o, _ in got] == list(range(2 * N)), f"{family}: offsets {got[:3]}..."


# ----------------------------------------------------------------------------- librdkafka
def test_confluent_kafka_across_a_leader_kill(cluster: Cluster) -> None:
    from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

    case = LeaderKill(cluster, "confluent")
    producer = Producer({"bootstrap.servers": everyone(cluster), "acks": "all",
                         "enable.idempotence": True, "message.timeout.ms": 60_000,
                         "retry.backoff.ms": 100})
    errors: list[Any] = []

    def produce(phase: str) -> None:
        for v in values("confluent", phase):
            producer.produce(case.topic, value=v, partition=0,
                             on_delivery=lambda err, msg: err and errors.append(err))
        assert producer.flush(70) == 0
        assert not errors, errors[:3]

    produce("a")
    case.kill()
    produce("b")
    case.restore()
    consumer = Consumer({"bootstrap.servers": everyone(cluster), "group.id": "cfl-rf3",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 100})
    got: list[tuple[int, bytes]] = []
    try:
        consumer.assign([TopicPartition(case.topic, 0, 0)])
        deadline = time.monotonic() + 40
        while len(got) < 2 * N and time.monotonic() < deadline:
            for m in consumer.consume(num_messages=2 * N - len(got), timeout=0.5):
                if m.error() is None:
                    got.append((m.offset(), m.value()))
                else:
                    assert m.error().code() in (KafkaError._PARTITION_EOF,
                                                KafkaError._TRANSPORT), m.error()
        assert consumer.get_watermark_offsets(TopicPartition(case.topic, 0),
                                              timeout=10) == (0, 2 * N)
    finally:
        consumer.close()
    check_read("confluent", got)


# ----------------------------------------------------------------------------- kafka-python
def test_kafka_python_across_a_leader_kill(cluster: Cluster) -> None:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    case = LeaderKill(cluster, "kafka-python")
    producer = KafkaProducer(bootstrap_servers=everyone(cluster).split(","), acks="all",
                             enable_idempotence=True, linger_ms=5, retry_backoff_ms=100,
                             request_timeout_ms=10_000, delivery_timeout_ms=60_000,
                             reconnect_backoff_ms=50, reconnect_backoff_max_ms=500)
    try:
        def produce(phase: str) -> list[int]:
            futures = [producer.send(case.topic, v, partition=0)
                       for v in values("kafka-python", phase)]
            producer.flush(timeout=70)
            return [f.get(timeout=70).offset for f in futures]

        assert produce("a") == list(range(N))
        case.kill()
        assert produce("b") == list(range(N, 2 * N))
    finally:
        producer.close(timeout=5)
    case.restore()
    consumer = KafkaConsumer(bootstrap_servers=everyone(cluster).split(","), group_id=None,
                             enable_auto_commit=False, fetch_max_wait_ms=100)
    got: list[tuple[int, bytes]] = []
    try:
        tp = TopicPartition(case.topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        deadline = time.monotonic() + 40
        while len(got) < 2 * N and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                got += [(r.offset, r.value) for r in records]
        assert consumer.end_offsets([tp], timeout_ms=10_000) == {tp: 2 * N}
    finally:
        consumer.close()
    check_read("kafka-python", got)


# ----------------------------------------------------------------------------- aiokafka
async def test_aiokafka_across_a_leader_kill(cluster: Cluster) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    case = await asyncio.to_thread(LeaderKill, cluster, "aiokafka")
    servers = everyone(cluster).split(",")
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all",
                                enable_idempotence=True, linger_ms=5, retry_backoff_ms=100,
                                request_timeout_ms=10_000, metadata_max_age_ms=1000)
    await asyncio.wait_for(producer.start(), 30)
    try:
        async def produce(phase: str) -> list[int]:
            futures = [await producer.send(case.topic, v, partition=0)
                       for v in values("aiokafka", phase)]
            return [m.offset for m in await asyncio.wait_for(asyncio.gather(*futures), 70)]

        assert await produce("a") == list(range(N))
        await asyncio.to_thread(case.kill)
        assert await produce("b") == list(range(N, 2 * N))
    finally:
        await asyncio.wait_for(producer.stop(), 15)
    await asyncio.to_thread(case.restore)
    consumer = AIOKafkaConsumer(bootstrap_servers=servers, group_id=None,
                                enable_auto_commit=False, fetch_max_wait_ms=100)
    await asyncio.wait_for(consumer.start(), 30)
    got: list[tuple[int, bytes]] = []
    try:
        tp = TopicPartition(case.topic, 0)
        consumer.assign([tp])
        await asyncio.wait_for(consumer.seek_to_beginning(tp), 30)
        deadline = time.monotonic() + 40
        while len(got) < 2 * N and time.monotonic() < deadline:
            batches = await asyncio.wait_for(consumer.getmany(timeout_ms=500), 30)
            for records in batches.values():
                got += [(r.offset, r.value) for r in records]
        assert await asyncio.wait_for(consumer.end_offsets([tp]), 30) == {tp: 2 * N}
    finally:
        await asyncio.wait_for(consumer.stop(), 15)
    check_read("aiokafka", got)


# ----------------------------------------------------------------------------- kafkajs
#: one long-lived node process: JSON commands on stdin, one JSON answer per command on
#: stdout; the producer (idempotent, acks -1) lives across commands
KAFKAJS = r"""
const { Kafka, logLevel } = require('kafkajs')
const readline = require('readline')
const answer = (o) => console.log(JSON.stringify(o))
const main = async () => {
  const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]()
  const spec = JSON.parse((await lines.next()).value)
  const kafka = new Kafka({ clientId: 'strom-rf3', brokers: spec.brokers,
    logLevel: logLevel.NOTHING, connectionTimeout: 3000, requestTimeout: 10000,
    retry: { retries: 12, initialRetryTime: 200, maxRetryTime: 3000 } })
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  answer({ ready: true })
  for await (const line of { [Symbol.asyncIterator]: () => lines }) {
    const cmd = JSON.parse(line)
    if (cmd.op === 'produce') {
      const offsets = []
      for (let i = 0; i < cmd.values.length; i += 10) {
        const r = await producer.send({ topic: spec.topic, acks: -1,
          messages: cmd.values.slice(i, i + 10).map(value => ({ value, partition: 0 })) })
        offsets.push(Number(r[0].baseOffset))
      }
      answer({ offsets })
    } else if (cmd.op === 'consume') {
      await producer.disconnect()
      const consumer = kafka.consumer({ groupId: cmd.group, maxWaitTimeInMs: 100 })
      await consumer.connect()
      await consumer.subscribe({ topic: spec.topic, fromBeginning: true })
      const seen = []
      await new Promise((resolve) => {
        consumer.run({ autoCommit: false, eachMessage: async ({ message }) => {
          seen.push([Number(message.offset), message.value.toString()])
          if (seen.length >= cmd.count) resolve()
        } })
      })
      await consumer.disconnect()
      answer({ seen })
      break
    }
  }
}
main().then(() => process.stdout.write('', () => process.exit(0)))  // after the answers
  .catch(e => { console.error(e); process.exit(1) })
"""


class NodeSession:
    """A node program driven line by line, every answer awaited with a deadline."""

    def __init__(self, env: dict[str, str], spec: dict[str, Any]) -> None:
        self.proc = subprocess.Popen(["node", "-e", KAFKAJS], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env={**os.environ, **env})
        self.selector = selectors.DefaultSelector()
        assert self.proc.stdout is not None
        self.selector.register(self.proc.stdout, selectors.EVENT_READ)
        self.buffer = b""
        self.send(spec)

    def send(self, obj: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(obj).encode() + b"\n")
        self.proc.stdin.flush()

    def answer(self, timeout: float) -> Any:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            assert left > 0, f"no answer from node within {timeout}s: {self.stderr()}"
            if self.selector.select(min(left, 0.5)):
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                assert chunk, f"node exited {self.proc.poll()}: {self.stderr()}"
                self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        assert self.proc.stderr is not None
        return self.proc.stderr.read().decode(errors="replace")[-4000:]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.selector.close()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()


def test_kafkajs_across_a_leader_kill(cluster: Cluster) -> None:
    try:
        env = kafkajs_env()
    except KafkajsUnavailable as e:
        pytest.skip(str(e))
    case = LeaderKill(cluster, "kafkajs")
    session = NodeSession(env, {"brokers": everyone(cluster).split(","),
                                "topic": case.topic})
    try:
        assert session.answer(30) == {"ready": True}
        session.send({"op": "produce", "values": [v.decode() for v in values("kafkajs", "a")]})
        assert session.answer(60)["offsets"] == list(range(0, N, 10))
        case.kill()
        session.send({"op": "produce", "values": [v.decode() for v in values("kafkajs", "b")]})
        assert session.answer(90)["offsets"] == list(range(N, 2 * N, 10))
        case.restore()
        session.send({"op": "consume", "group": "js-rf3", "count": 2 * N})
        seen = session.answer(60)["seen"]
        assert session.proc.wait(15) == 0, session.stderr()
    finally:
        session.close()
    check_read("kafkajs", [(o, v.encode()) for o, v in seen])


# ----------------------------------------------------------------------------- kcat
def kcat(bootstrap: str, *args: str, stdin: bytes | None = None, timeout: float = 90
         ) -> subprocess.CompletedProcess[bytes]:
    cmd = [KCAT, "-b", bootstrap, "-m", "15", *args]
    proc = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout, check=False)
    assert proc.returncode == 0, (f"{' '.join(cmd)} exited {proc.returncode}\n"
                                  f"{proc.stderr.decode(errors='replace')[-4000:]}")
    return proc


def test_kcat_across_a_leader_kill(cluster: Cluster) -> None:
    if not os.path.exists(KCAT):
        pytest.skip("kcat is not installed")
    case = LeaderKill(cluster, "kcat")
    produce = ["-P", "-t", case.topic, "-p", "0", "-X", "acks=all",
               "-X", "enable.idempotence=true", "-X", "message.timeout.ms=60000",
               "-X", "retry.backoff.ms=100"]

    def lines(phase: str) -> bytes:
        return b"".join(v + b"\n" for v in values("kcat", phase))

    kcat(everyone(cluster), *produce, stdin=lines("a"))
    case.kill()
    kcat(everyone(cluster), *produce, stdin=lines("b"))
    case.restore()
    proc = kcat(everyone(cluster), "-C", "-J", "-q", "-e", "-t", case.topic, "-p", "0",
                "-o", "beginning", "-c", str(2 * N + 1))
    msgs = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    check_read("kcat", [(m["offset"], m["payload"].encode()) for m in msgs])


# ----------------------------------------------------------------------------- kills mid-flight
def kill_leaders_under_load(c: Cluster, topic: str, partitions: int,
                            count: Callable[[], int]) -> None:
    """SIGKILL the leader of each partition in turn while ``count`` (acknowledged records)
    keeps growing; each killed broker is back in the ISR before the next kill."""
    wait_until(lambda: count() > 200, 30, "the load to start")
    for index in range(partitions):
        leader, _ = state(c, topic)[index]
        before = count()
        c.nodes[leader].kill()
        wait_until(lambda old=leader, i=index: state(c, topic)[i][0] not in (old, -1), 30,
                   f"a new leader of partition {index}")
        wait_until(lambda b=before: count() > b + 100, 40,
                   f"acks=all produces after killing {leader}")
        c.nodes[leader].start()
        wait_until(lambda: in_sync(c, topic), 40, f"{leader} back in the ISR")


def test_kafka_python_idempotent_producer_loses_and_repeats_nothing_across_kills(
        cluster: Cluster) -> None:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    healthy(cluster)
    topic, partitions = "kp-load", 2
    create_topic(cluster, topic, partitions)
    producer = KafkaProducer(bootstrap_servers=everyone(cluster).split(","), acks="all",
                             enable_idempotence=True, linger_ms=5, retry_backoff_ms=100,
                             request_timeout_ms=10_000, delivery_timeout_ms=120_000,
                             reconnect_backoff_ms=50, reconnect_backoff_max_ms=500)
    acked: dict[int, list[bytes]] = {p: [] for p in range(partitions)}
    failed: list[str] = []
    stop = threading.Event()

    def run() -> None:
        seq = 0
        while not stop.is_set():
            for p in range(partitions):
                value = f"{p}-{seq}".encode()
                future = producer.send(topic, value, partition=p)
                future.add_callback(lambda md, v=value: acked[md.partition].append(v))
                future.add_errback(lambda exc: failed.append(repr(exc)))
            seq += 1
            time.sleep(0.002)

    sender = threading.Thread(target=run, daemon=True)
    sender.start()
    try:
        kill_leaders_under_load(cluster, topic, partitions,
                                lambda: sum(map(len, acked.values())))
    finally:
        stop.set()
        sender.join(10)
        producer.flush(timeout=90)
        producer.close(timeout=10)
    assert not failed, failed[:5]
    total = sum(map(len, acked.values()))
    consumer = KafkaConsumer(bootstrap_servers=everyone(cluster).split(","), group_id=None,
                             enable_auto_commit=False, fetch_max_wait_ms=100)
    got: dict[int, list[bytes]] = {p: [] for p in range(partitions)}
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + 60
        while sum(map(len, got.values())) < total and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=500).items():
                got[tp.partition] += [r.value for r in records]
    finally:
        consumer.close()
    check_log(acked, got)
    assert sum(map(len, got.values())) == total


async def test_aiokafka_idempotent_producer_loses_and_repeats_nothing_across_kills(
        cluster: Cluster) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    await asyncio.to_thread(healthy, cluster)
    topic, partitions = "aio-load", 2
    await asyncio.to_thread(create_topic, cluster, topic, partitions)
    servers = everyone(cluster).split(",")
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all",
                                enable_idempotence=True, linger_ms=5, retry_backoff_ms=100,
                                request_timeout_ms=10_000, metadata_max_age_ms=1000)
    await asyncio.wait_for(producer.start(), 30)
    acked: dict[int, list[bytes]] = {p: [] for p in range(partitions)}
    failed: list[str] = []
    stop = asyncio.Event()

    def done(value: bytes, fut: asyncio.Future[Any]) -> None:
        if fut.exception() is not None:
            failed.append(repr(fut.exception()))
        else:
            acked[fut.result().partition].append(value)

    async def run() -> None:
        seq = 0
        while not stop.is_set():
            for p in range(partitions):
                value = f"{p}-{seq}".encode()
                fut = await producer.send(topic, value, partition=p)
                fut.add_done_callback(functools.partial(done, value))
            seq += 1
            await asyncio.sleep(0.002)

    sender = asyncio.create_task(run())
    try:
        await asyncio.to_thread(kill_leaders_under_load, cluster, topic, partitions,
                                lambda: sum(map(len, acked.values())))
    finally:
        stop.set()
        await asyncio.wait_for(sender, 70)
        await asyncio.wait_for(producer.flush(), 90)
        await asyncio.wait_for(producer.stop(), 15)
    assert not failed, failed[:5]
    total = sum(map(len, acked.values()))
    consumer = AIOKafkaConsumer(bootstrap_servers=servers, group_id=None,
                                enable_auto_commit=False, fetch_max_wait_ms=100)
    await asyncio.wait_for(consumer.start(), 30)
    got: dict[int, list[bytes]] = {p: [] for p in range(partitions)}
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await asyncio.wait_for(consumer.seek_to_beginning(*tps), 30)
        deadline = time.monotonic() + 60
        while sum(map(len, got.values())) < total and time.monotonic() < deadline:
            batches = await asyncio.wait_for(consumer.getmany(timeout_ms=500), 30)
            for tp, records in batches.items():
                got[tp.partition] += [r.value for r in records]
    finally:
        await asyncio.wait_for(consumer.stop(), 15)
    check_log(acked, got)
    assert sum(map(len, got.values())) == total


#: an idempotent kafkajs producer sending batches of 10 to every partition in turn until
#: a line arrives on stdin; one progress line per acknowledged batch, then the summary
KAFKAJS_LOAD = r"""
const { Kafka, logLevel } = require('kafkajs')
const spec = JSON.parse(process.argv[1])
const kafka = new Kafka({ clientId: 'strom-rf3-load', brokers: spec.brokers,
  logLevel: logLevel.NOTHING, connectionTimeout: 3000, requestTimeout: 10000,
  retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 2000 } })
let stop = false
process.stdin.on('data', () => { stop = true })
const main = async () => {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  const acked = Array.from({ length: spec.partitions }, () => [])
  const errors = []
  let seq = 0
  while (!stop) {
    for (let p = 0; p < spec.partitions; p++) {
      const values = Array.from({ length: 10 }, (_, i) => `${p}-${seq}-${i}`)
      try {
        await producer.send({ topic: spec.topic, acks: -1,
          messages: values.map(value => ({ value, partition: p })) })
        acked[p].push(...values)
      } catch (e) { errors.push(String(e)) }
      console.log(JSON.stringify({ count: acked.reduce((n, a) => n + a.length, 0) }))
    }
    seq++
  }
  await producer.disconnect()
  // written before exiting: process.exit() may cut a large pending write to a pipe
  process.stdout.write(JSON.stringify({ acked, errors }) + '\n', () => process.exit(0))
}
main().catch(e => { console.error(e); process.exit(1) })
"""


def test_kafkajs_idempotent_producer_loses_and_repeats_nothing_across_kills(
        cluster: Cluster) -> None:
    try:
        env = kafkajs_env()
    except KafkajsUnavailable as e:
        pytest.skip(str(e))
    healthy(cluster)
    topic, partitions = "js-load", 2
    create_topic(cluster, topic, partitions)
    spec = {"brokers": everyone(cluster).split(","), "topic": topic,
            "partitions": partitions}
    proc = subprocess.Popen(["node", "-e", KAFKAJS_LOAD, json.dumps(spec)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, **env})
    lines: list[Any] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(json.loads(line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        kill_leaders_under_load(cluster, topic, partitions,
                                lambda: lines[-1].get("count", 0) if lines else 0)
        assert proc.stdin is not None
        proc.stdin.write(b"stop\n")
        proc.stdin.flush()
        code = proc.wait(60)
        reader.join(10)
        assert proc.stderr is not None
        assert code == 0, proc.stderr.read().decode(errors="replace")[-4000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        reader.join(10)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    summary = lines[-1]
    assert not summary["errors"], summary["errors"][:5]
    acked = {p: [v.encode() for v in vs] for p, vs in enumerate(summary["acked"])}
    total = sum(map(len, acked.values()))
    got = consume_all(cluster, topic, partitions, total)
    check_log(acked, got)
    assert sum(map(len, got.values())) == total


# ----------------------------------------------------------------------------- rolling restart
def test_rolling_restart_under_idempotent_acks_all_load_loses_nothing(cluster: Cluster
                                                                      ) -> None:
    healthy(cluster)
    topic, partitions = "rolling", 3
    create_topic(cluster, topic, partitions)
    with Load(everyone(cluster), topic, partitions) as load:
        wait_until(lambda: load.count() > 200, 20, "the load to start")
        for node_id in sorted(cluster.nodes):
            before = load.count()
            cluster.nodes[node_id].stop()  # SIGTERM: controlled shutdown, exit code 0
            wait_until(lambda n=node_id: all(leader not in (n, -1) for leader, _
                                             in state(cluster, topic).values()), 20,
                       f"every partition led by another broker than {node_id}")
            wait_until(lambda b=before: load.count() > b + 100, 30,
                       f"acks=all produces while {node_id} is down")
            cluster.nodes[node_id].start()
            wait_until(lambda: in_sync(cluster, topic), 40,
                       f"3 in-sync replicas again after restarting {node_id}")
            before = load.count()
            wait_until(lambda b=before: load.count() > b + 100, 30,
                       f"acks=all produces after restarting {node_id}")
    assert not load.failed, load.failed[:5]
    got = consume_all(cluster, topic, partitions, load.count())
    check_log(load.acked, got)
    assert sum(map(len, got.values())) == load.count()
