"""Produce and consume throughput over TLS as a ratio of plaintext, in the same run.

``python -m bench.tls [--mib 200] [--rounds 2]``:

1. makes a throw-away CA and a server certificate (``tests.support.tls_ca``, the openssl
   command) and starts one broker with a PLAINTEXT and an SSL listener (PEM keystore,
   TLS 1.3, no client authentication);
2. per round and per listener (plaintext first, then TLS, alternating so a drifting
   machine load hits both alike): librdkafka (confluent-kafka) produces ``--mib`` MiB of
   1 KiB records with acks=1 to a fresh one-partition topic, then reads them back with
   ``assign()`` from offset 0 (the producer and consumer settings of
   :mod:`bench.produce_consume`);
3. reports each listener's best produce and consume MiB/s and ``tls_produce_ratio`` /
   ``tls_consume_ratio`` (TLS / plaintext). Kafka's published anchor is 0.6–0.8: it loses
   sendfile's zero copy under TLS; Strom copies in both cases, and Python's ssl encrypts
   with the GIL released.

Output: a table, then one JSON line. Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import socket
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.produce_consume import MIB, RECORD_BYTES, create_topic, running_broker

PRODUCE_CHUNK = 1000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def produce(conf: dict[str, Any], topic: str, count: int) -> float:
    """Seconds to produce ``count`` 1 KiB records with acks=1."""
    from confluent_kafka import Producer

    producer = Producer({**conf, "acks": "1", "linger.ms": 5, "enable.idempotence": False,
                         "batch.size": 1_000_000, "queue.buffering.max.kbytes": 512 * 1024,
                         "queue.buffering.max.messages": 1_000_000,
                         "message.timeout.ms": 120_000, "delivery.report.only.error": True})
    producer.list_topics(topic, timeout=30)
    chunk = [{"value": b"v" * RECORD_BYTES}] * PRODUCE_CHUNK
    start = time.perf_counter()
    left = count
    while left > 0:
        batch = chunk if left >= PRODUCE_CHUNK else chunk[:left]
        try:
            queued = producer.produce_batch(topic, batch, partition=0)
        except BufferError:
            queued = 0
        left -= queued
        if queued < len(batch):
            producer.poll(0.005)
            chunk = [{"value": b"v" * RECORD_BYTES}] * PRODUCE_CHUNK
    if producer.flush(180):
        raise RuntimeError("records left unacknowledged after 180 s")
    return time.perf_counter() - start


def consume(conf: dict[str, Any], topic: str, count: int) -> float:
    """Seconds to read ``count`` records from offset 0."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({**conf, "group.id": "bench-tls", "enable.auto.commit": False,
                         "fetch.max.bytes": 64 * MIB, "max.partition.fetch.bytes": 16 * MIB,
                         "fetch.wait.max.ms": 100, "queued.max.messages.kbytes": 256 * 1024,
                         "queued.min.messages": 1_000_000, "fetch.queue.backoff.ms": 5})
    try:
        consumer.list_topics(topic, timeout=30)
        start = time.perf_counter()
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        received = 0
        deadline = time.monotonic() + 180
        while received < count and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=min(10_000, count - received),
                                        timeout=1.0):
                if msg.error() is None:
                    received += 1
        elapsed = time.perf_counter() - start
    finally:
        consumer.close()
    if received < count:
        raise RuntimeError(f"consumed only {received} of {count} records")
    return elapsed


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=200, help="MiB per phase")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    from tests.support.tls_ca import TestCA

    count = args.mib * MIB // RECORD_BYTES
    with tempfile.TemporaryDirectory(prefix="strom-bench-tls-") as tmp:
        work = Path(tmp)
        ca = TestCA(work / "ca")
        server = ca.issue("server", "/CN=localhost", server=True)
        ssl_port = _free_port()
        overrides = {
            "listeners": f"PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:{ssl_port}",
            "ssl.keystore.type": "PEM", "ssl.keystore.location": str(server.bundle),
            "num.partitions": "1",
        }
        (work / "broker").mkdir()
        with running_broker(work / "broker", overrides) as run:
            confs = {
                "plaintext": {"bootstrap.servers": run.bootstrap},
                "tls": {"bootstrap.servers": f"127.0.0.1:{ssl_port}",
                        "security.protocol": "SSL", "ssl.ca.location": str(ca.pem)},
            }
            best: dict[str, dict[str, float]] = {k: {"produce": 0.0, "consume": 0.0}
                                                 for k in confs}
            for _ in range(args.rounds):
                for kind, conf in confs.items():
                    topic = f"bench-{kind}-{uuid.uuid4().hex[:6]}"
                    create_topic(run.bootstrap, topic)
                    p = args.mib / produce(conf, topic, count)
                    c = args.mib / consume(conf, topic, count)
                    best[kind]["produce"] = max(best[kind]["produce"], p)
                    best[kind]["consume"] = max(best[kind]["consume"], c)
                    print(f"  {kind:9s} produce {p:7.1f} MiB/s   consume {c:7.1f} MiB/s",
                          flush=True)
    result = {
        "mib": args.mib, "rounds": args.rounds,
        "plaintext_produce_mib_s": round(best["plaintext"]["produce"], 1),
        "plaintext_consume_mib_s": round(best["plaintext"]["consume"], 1),
        "tls_produce_mib_s": round(best["tls"]["produce"], 1),
        "tls_consume_mib_s": round(best["tls"]["consume"], 1),
        "tls_produce_ratio": round(best["tls"]["produce"] / best["plaintext"]["produce"], 2),
        "tls_consume_ratio": round(best["tls"]["consume"] / best["plaintext"]["consume"], 2),
    }
    print(f"best: plaintext produce {result['plaintext_produce_mib_s']} / consume "
          f"{result['plaintext_consume_mib_s']} MiB/s; TLS produce "
          f"{result['tls_produce_mib_s']} / consume {result['tls_consume_mib_s']} MiB/s; "
          f"ratios {result['tls_produce_ratio']} / {result['tls_consume_ratio']}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
