"""Cross-client interoperability: what one client writes, every other client reads.

One partition receives, in turn, records from confluent-kafka, kafka-python, aiokafka
and kcat, each with every codec (none, gzip, snappy, lz4, zstd).  The broker stores the
batches as sent, so the log is a mix of five codecs and four record-batch encoders;
each of the four clients then reads the whole partition and must see every record with
its offset, key, value, headers and (where the producer set one) timestamp.  This is
what catches a broker that re-encodes, reorders or mangles batches of one encoder.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka import TopicPartition as AioTopicPartition
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer
from confluent_kafka import TopicPartition as CflTopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KpTopicPartition

from tests.support.fixtures import unique_topic

KCAT = "/usr/bin/kcat"
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
PER_BATCH = 25
TIMEOUT_S = 30.0
BASE_TS = (int(time.time()) - 7200) * 1000


@dataclass(frozen=True)
class Rec:
    """A record as every client should see it (``timestamp`` None: set by the producer
    client at send time, only checked to be CreateTime)."""

    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    timestamp: int | None


def _records(client: str, codec: str, with_ts: bool) -> list[Rec]:
    return [
        Rec(
            key=f"{client}-{codec}-k{i}".encode(),
            value=f"{client}|{codec}|{i}|".encode() * (1 + i % 7),
            headers=(("client", client.encode()), ("codec", codec.encode())),
            timestamp=BASE_TS + i if with_ts else None,
        )
        for i in range(PER_BATCH)
    ]


# ----------------------------------------------------------------------------- producers
def produce_confluent(bootstrap: str, topic: str, codec: str) -> list[Rec]:
    recs = _records("confluent", codec, with_ts=True)
    p = Producer({"bootstrap.servers": bootstrap, "compression.type": codec, "linger.ms": 20})
    for r in recs:
        p.produce(
            topic, value=r.value, key=r.key, partition=0, headers=list(r.headers),
            timestamp=r.timestamp,
        )  # fmt: skip
    assert p.flush(TIMEOUT_S) == 0
    return recs


def produce_kafka_python(bootstrap: str, topic: str, codec: str) -> list[Rec]:
    recs = _records("kafkapython", codec, with_ts=True)
    p = KafkaProducer(
        bootstrap_servers=bootstrap,
        compression_type=None if codec == "none" else codec,
        linger_ms=20,
        acks="all",
    )
    try:
        futures = [
            p.send(
                topic,
                value=r.value,
                key=r.key,
                partition=0,
                headers=list(r.headers),
                timestamp_ms=r.timestamp,
            )  # fmt: skip
            for r in recs
        ]
        p.flush(timeout=TIMEOUT_S)
        for f in futures:
            f.get(timeout=TIMEOUT_S)
    finally:
        p.close(timeout=5)
    return recs


def produce_aiokafka(bootstrap: str, topic: str, codec: str) -> list[Rec]:
    recs = _records("aiokafka", codec, with_ts=True)

    async def run() -> None:
        p = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            compression_type=None if codec == "none" else codec,
            linger_ms=20,
            acks="all",
        )
        await asyncio.wait_for(p.start(), TIMEOUT_S)
        try:
            futures = [
                await p.send(
                    topic,
                    value=r.value,
                    key=r.key,
                    partition=0,
                    headers=list(r.headers),
                    timestamp_ms=r.timestamp,
                )  # fmt: skip
                for r in recs
            ]
            await asyncio.wait_for(asyncio.gather(*futures), TIMEOUT_S)
        finally:
            await asyncio.wait_for(p.stop(), 10)

    asyncio.run(run())
    return recs


def produce_kcat(bootstrap: str, topic: str, codec: str) -> list[Rec]:
    recs = _records("kcat", codec, with_ts=False)
    data = b"".join(r.key + b"\t" + r.value + b"\n" for r in recs)
    cmd = [
        KCAT, "-b", bootstrap, "-m", "10", "-P", "-t", topic, "-p", "0", "-K", "\t",
        "-H", "client=kcat", "-H", f"codec={codec}", "-X", f"compression.codec={codec}",
        "-X", "linger.ms=20",
    ]  # fmt: skip
    proc = subprocess.run(cmd, input=data, capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return recs


# ----------------------------------------------------------------------------- consumers
Seen = tuple[int, bytes | None, bytes | None, tuple[tuple[str, bytes], ...], int, int]
# (offset, key, value, headers, timestamp_type (0 create/1 append), timestamp)


def consume_confluent(bootstrap: str, topic: str, n: int) -> list[Seen]:
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"assign-only-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 100,
            "check.crcs": True,  # verify every batch CRC the broker serves
        }
    )
    out: list[Seen] = []
    try:
        c.assign([CflTopicPartition(topic, 0, OFFSET_BEGINNING)])
        deadline = time.monotonic() + TIMEOUT_S
        while len(out) < n:
            assert time.monotonic() < deadline, f"confluent read {len(out)} of {n}"
            for m in c.consume(num_messages=1000, timeout=0.5):
                if m.error() is not None:
                    assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
                    continue
                ts_type, ts = m.timestamp()
                out.append(
                    (m.offset(), m.key(), m.value(), tuple(m.headers() or ()), ts_type - 1, ts)
                )
    finally:
        c.close()
    return out


def consume_kafka_python(bootstrap: str, topic: str, n: int) -> list[Seen]:
    c = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
        fetch_max_wait_ms=100,
    )  # fmt: skip
    out: list[Seen] = []
    try:
        tp = KpTopicPartition(topic, 0)
        c.assign([tp])
        c.seek_to_beginning(tp)
        deadline = time.monotonic() + TIMEOUT_S
        while len(out) < n:
            assert time.monotonic() < deadline, f"kafka-python read {len(out)} of {n}"
            for records in c.poll(timeout_ms=500).values():
                out.extend(
                    (r.offset, r.key, r.value, tuple(r.headers), r.timestamp_type, r.timestamp)
                    for r in records
                )
    finally:
        c.close()
    return out


def consume_aiokafka(bootstrap: str, topic: str, n: int) -> list[Seen]:
    async def run() -> list[Seen]:
        c = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
            fetch_max_wait_ms=100,
        )  # fmt: skip
        await asyncio.wait_for(c.start(), TIMEOUT_S)
        out: list[Seen] = []
        try:
            tp = AioTopicPartition(topic, 0)
            c.assign([tp])
            await asyncio.wait_for(c.seek_to_beginning(tp), TIMEOUT_S)
            deadline = time.monotonic() + TIMEOUT_S
            while len(out) < n:
                assert time.monotonic() < deadline, f"aiokafka read {len(out)} of {n}"
                batches = await asyncio.wait_for(c.getmany(timeout_ms=500), TIMEOUT_S)
                for records in batches.values():
                    out.extend(
                        (
                            r.offset,
                            r.key,
                            r.value,
                            tuple(r.headers),
                            r.timestamp_type,
                            r.timestamp,
                        )  # fmt: skip
                        for r in records
                    )
        finally:
            await asyncio.wait_for(c.stop(), 10)
        return out

    return asyncio.run(run())


def consume_kcat(bootstrap: str, topic: str, n: int) -> list[Seen]:
    cmd = [
        KCAT, "-b", bootstrap, "-m", "10", "-C", "-J", "-q", "-e", "-t", topic, "-p", "0",
        "-o", "beginning",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    out: list[Seen] = []
    for line in proc.stdout.splitlines():
        m = json.loads(line)
        flat = m.get("headers") or []
        headers = tuple((k, v.encode()) for k, v in zip(flat[0::2], flat[1::2], strict=True))
        ts_type = {"create": 0, "logappend": 1}.get(m["tstype"], -1)
        key = None if m["key"] is None else m["key"].encode()
        value = None if m["payload"] is None else m["payload"].encode()
        out.append((m["offset"], key, value, headers, ts_type, m["ts"]))
    return out


# ----------------------------------------------------------------------------- the test
def test_every_client_reads_every_clients_batches_in_every_codec(bootstrap: str) -> None:
    topic = unique_topic("interop")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)], request_timeout=15)[topic].result(TIMEOUT_S)

    expected: list[Rec] = []
    started = int(time.time() * 1000)
    for produce in (produce_confluent, produce_kafka_python, produce_aiokafka, produce_kcat):
        for codec in CODECS:
            expected += produce(bootstrap, topic, codec)
    finished = int(time.time() * 1000)
    n = len(expected)

    for consume in (consume_confluent, consume_kafka_python, consume_aiokafka, consume_kcat):
        seen = consume(bootstrap, topic, n)
        name = consume.__name__
        assert [s[0] for s in seen] == list(range(n)), f"{name}: offsets"
        for s, want in zip(seen, expected, strict=True):
            offset, key, value, headers, ts_type, ts = s
            assert (key, value) == (want.key, want.value), f"{name} @{offset}"
            assert headers == want.headers, f"{name} @{offset}: headers {headers}"
            assert ts_type == 0, f"{name} @{offset}: timestamp type {ts_type}"
            if want.timestamp is not None:
                assert ts == want.timestamp, f"{name} @{offset}: timestamp {ts}"
            else:
                assert started - 1000 <= ts <= finished + 1000, f"{name} @{offset}: ts {ts}"


def test_log_append_time_on_compressed_batches_keeps_crcs_valid(bootstrap: str) -> None:
    """LogAppendTime rewrites each batch's max timestamp and CRC in place, without
    recompressing: every client, each verifying CRCs, sees the broker's time on every
    record of every codec."""
    topic = unique_topic("interop-lat")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = NewTopic(topic, 1, 1, config={"message.timestamp.type": "LogAppendTime"})
    admin.create_topics([new], request_timeout=15)[topic].result(TIMEOUT_S)
    started = int(time.time() * 1000)
    expected: list[Rec] = []
    for codec in CODECS:
        expected += produce_confluent(bootstrap, topic, codec)
        expected += produce_kafka_python(bootstrap, topic, codec)
    finished = int(time.time() * 1000)
    n = len(expected)
    for consume in (consume_confluent, consume_kafka_python, consume_aiokafka, consume_kcat):
        seen = consume(bootstrap, topic, n)
        name = consume.__name__
        assert [s[0] for s in seen] == list(range(n)), f"{name}: offsets"
        for s, want in zip(seen, expected, strict=True):
            offset, key, value, _headers, ts_type, ts = s
            assert (key, value) == (want.key, want.value), f"{name} @{offset}"
            assert ts_type == 1, f"{name} @{offset}: timestamp type {ts_type}"
            assert started - 1000 <= ts <= finished + 1000, f"{name} @{offset}: ts {ts}"


def test_four_clients_producing_concurrently_into_one_partition(bootstrap: str) -> None:
    """confluent, kafka-python, aiokafka and kcat append to one partition at the same time
    (every codec in turn): the log holds each producer's records once, in its order."""
    topic = unique_topic("interop-concurrent")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)], request_timeout=15)[topic].result(TIMEOUT_S)
    producers = {
        "confluent": produce_confluent,
        "kafkapython": produce_kafka_python,
        "aiokafka": produce_aiokafka,
        "kcat": produce_kcat,
    }
    sent: dict[str, list[Rec]] = {}
    failures: list[BaseException] = []

    def run(name: str) -> None:
        try:
            recs: list[Rec] = []
            for _round in range(4):
                for codec in CODECS:
                    recs += producers[name](bootstrap, topic, codec)
            sent[name] = recs
        except BaseException as e:  # noqa: BLE001 - reported below
            failures.append(e)

    threads = [threading.Thread(target=run, args=(name,)) for name in producers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not failures, failures
    assert sorted(sent) == sorted(producers)
    n = sum(len(r) for r in sent.values())

    seen = consume_kafka_python(bootstrap, topic, n)
    assert [s[0] for s in seen] == list(range(n))
    by_client: dict[str, list[tuple[bytes | None, bytes | None]]] = {}
    for _offset, key, value, headers, _ts_type, _ts in seen:
        client = dict(headers)["client"].decode()
        by_client.setdefault(client, []).append((key, value))
    assert by_client == {name: [(r.key, r.value) for r in recs] for name, recs in sent.items()}
