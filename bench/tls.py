"""Produce and consume throughput over TLS as a ratio of plaintext, in the same run.

``python -m bench.tls [--mib 200] [--rounds 2] [--py-spy PATH]``:

1. makes a throw-away CA and a server certificate (``tests.support.tls_ca``, the openssl
   command) and measures the machine's own limits: loopback TCP
   (:func:`bench.limits.loopback_mib_s`) and loopback TLS with Python's ``ssl`` on both
   ends (:func:`tls_loopback_mib_s`, the cipher it negotiates is the broker's), before and
   after the broker phases;
2. starts one broker with a PLAINTEXT and an SSL listener (PEM keystore, TLS 1.3, no
   client authentication);
3. per round and per listener (plaintext first, then TLS, alternating so a drifting
   machine load hits both alike): librdkafka (confluent-kafka) produces ``--mib`` MiB of
   1 KiB records with acks=1 to a fresh one-partition topic, then reads them back with
   ``assign()`` from offset 0 (the producer and consumer settings of
   :mod:`bench.produce_consume`); the broker's CPU seconds (all threads, /proc) and this
   process's (librdkafka encrypts too) are taken per GiB: on a shared machine they move
   far less than MiB/s;
4. reports each listener's best MiB/s and lowest CPU-s/GiB, ``tls_produce_ratio`` /
   ``tls_consume_ratio`` (TLS / plaintext) and ``tls_loopback_ratio`` (the machine's TLS /
   TCP). Kafka's published anchor is 0.6-0.8: it loses sendfile's zero copy under TLS;
   Strom copies in both cases, and Python's ssl decrypts with the GIL released.

``--py-spy PATH`` records the broker during the TLS produce phases (``-<round>`` added to
the name when there are several rounds). Output: a table, then one JSON line (with every
round's figures under ``per_round``). Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.limits import loopback_mib_s
from bench.produce_consume import (
    MIB,
    RECORD_BYTES,
    cpu_seconds,
    create_topic,
    py_spy,
    running_broker,
    source_revision,
)

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


def tls_loopback_mib_s(ca: Any, server: Any, total_bytes: int, *,
                       chunk_bytes: int = MIB) -> tuple[float, str]:
    """MiB/s through one TLS connection over 127.0.0.1 with Python's ``ssl`` (a sender
    thread ``sendall``s ``total_bytes`` to this thread's ``recv_into``) and the negotiated
    cipher: the machine's own TLS limit, as :func:`bench.limits.loopback_mib_s` is its TCP
    limit. Same server certificate and context defaults as the broker's listener."""
    import ssl
    import threading

    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(str(server.bundle))
    client_ctx = ssl.create_default_context(cafile=str(ca.pem))
    client_ctx.check_hostname = False
    payload = memoryview(b"v" * chunk_bytes)
    errors: list[BaseException] = []
    received_all = threading.Event()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        raw = socket.create_connection(("127.0.0.1", port))
        accepted, _ = listener.accept()

        def send() -> None:
            try:
                with client_ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                    left = total_bytes
                    while left > 0:
                        n = min(chunk_bytes, left)
                        tls.sendall(payload[:n])
                        left -= n
                    # closing with the server's session tickets unread would reset the
                    # connection and drop bytes still in flight
                    received_all.wait(60)
            except BaseException as exc:  # reported below, never swallowed
                errors.append(exc)

        thread = threading.Thread(target=send, name="tls-loopback-sender", daemon=True)
        thread.start()
        accepted.settimeout(60)
        with server_ctx.wrap_socket(accepted, server_side=True) as tls:
            cipher = f"{tls.version()} {tls.cipher()[0]}"
            buffer = bytearray(chunk_bytes)
            received = 0
            start = time.perf_counter()
            while received < total_bytes:
                n = tls.recv_into(buffer)
                if n == 0:
                    break
                received += n
            elapsed = time.perf_counter() - start
            received_all.set()
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    if received != total_bytes:
        raise RuntimeError(f"TLS loopback received {received} of {total_bytes} bytes")
    return received / MIB / max(elapsed, 1e-9), cipher


def _ratio(a: float, b: float) -> float:
    return round(a / b, 2) if b else 0.0


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=200, help="MiB per phase")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--py-spy", default=None,
                        help="record the broker during the TLS produce phases here "
                             "(.svg: flame graph, else collapsed stacks)")
    args = parser.parse_args(argv)
    from tests.support.tls_ca import TestCA

    count = args.mib * MIB // RECORD_BYTES
    kinds = ("plaintext", "tls")
    phases = ("produce", "consume")
    best = {k: dict.fromkeys(phases, 0.0) for k in kinds}
    #: broker CPU seconds per GiB, the lowest seen (less noisy than MiB/s on a shared box)
    cpu = {k: dict.fromkeys(phases, float("inf")) for k in kinds}
    #: this process's CPU seconds per GiB produced (librdkafka's threads: it encrypts too)
    client = dict.fromkeys(kinds, float("inf"))
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="strom-bench-tls-") as tmp:
        work = Path(tmp)
        ca = TestCA(work / "ca")
        server = ca.issue("server", "/CN=localhost", server=True)
        loop_tcp = [loopback_mib_s(args.mib * MIB)]
        loop_tls, cipher = tls_loopback_mib_s(ca, server, args.mib * MIB)
        loop_tls_all = [loop_tls]
        ssl_port = _free_port()
        overrides = {
            "listeners": f"PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:{ssl_port}",
            "ssl.keystore.type": "PEM", "ssl.keystore.location": str(server.bundle),
            "num.partitions": "1",
        }
        (work / "broker").mkdir()
        with running_broker(work / "broker", overrides) as run:
            pid = run.process.pid
            confs = {
                "plaintext": {"bootstrap.servers": run.bootstrap},
                "tls": {"bootstrap.servers": f"127.0.0.1:{ssl_port}",
                        "security.protocol": "SSL", "ssl.ca.location": str(ca.pem)},
            }
            for n in range(args.rounds):
                for kind, conf in confs.items():
                    topic = f"bench-{kind}-{uuid.uuid4().hex[:6]}"
                    create_topic(run.bootstrap, topic)
                    spy = args.py_spy if kind == "tls" else None
                    if spy and args.rounds > 1:
                        spy = str(Path(spy).with_stem(f"{Path(spy).stem}-{n + 1}"))
                    c0, k0 = cpu_seconds(pid), time.process_time()
                    with py_spy(pid, spy):
                        p = args.mib / produce(conf, topic, count)
                    c1, k1 = cpu_seconds(pid), time.process_time()
                    c = args.mib / consume(conf, topic, count)
                    c2 = cpu_seconds(pid)
                    gib = args.mib / 1024
                    row = {"round": n + 1, "listener": kind, "produce_mib_s": round(p, 1),
                           "consume_mib_s": round(c, 1),
                           "produce_cpu_s_per_gib": round((c1 - c0) / gib, 2),
                           "produce_client_cpu_s_per_gib": round((k1 - k0) / gib, 2),
                           "consume_cpu_s_per_gib": round((c2 - c1) / gib, 2)}
                    rounds.append(row)
                    for phase, rate, secs in (("produce", p, c1 - c0), ("consume", c, c2 - c1)):
                        best[kind][phase] = max(best[kind][phase], rate)
                        cpu[kind][phase] = min(cpu[kind][phase], secs / gib)
                    client[kind] = min(client[kind], (k1 - k0) / gib)
                    print(f"  round {n + 1} {kind:9s} produce {p:7.1f} MiB/s (broker "
                          f"{row['produce_cpu_s_per_gib']:.2f}, client "
                          f"{row['produce_client_cpu_s_per_gib']:.2f} CPU-s/GiB)   consume "
                          f"{c:7.1f} MiB/s (broker {row['consume_cpu_s_per_gib']:.2f} "
                          f"CPU-s/GiB)", flush=True)
        loop_tcp.append(loopback_mib_s(args.mib * MIB))
        loop_tls_all.append(tls_loopback_mib_s(ca, server, args.mib * MIB)[0])
    tcp, tls = max(loop_tcp), max(loop_tls_all)
    result: dict[str, Any] = {"mib": args.mib, "rounds": args.rounds, "cipher": cipher}
    for kind in kinds:
        for phase in phases:
            result[f"{kind}_{phase}_mib_s"] = round(best[kind][phase], 1)
            result[f"{kind}_{phase}_cpu_s_per_gib"] = round(cpu[kind][phase], 2)
        result[f"{kind}_produce_client_cpu_s_per_gib"] = round(client[kind], 2)
    result.update({
        "tls_produce_ratio": _ratio(best["tls"]["produce"], best["plaintext"]["produce"]),
        "tls_consume_ratio": _ratio(best["tls"]["consume"], best["plaintext"]["consume"]),
        "loopback_mib_s": round(tcp, 1), "tls_loopback_mib_s": round(tls, 1),
        "tls_loopback_ratio": _ratio(tls, tcp),
        "revision": source_revision(), "load_avg_1m": round(os.getloadavg()[0], 2),
        "per_round": rounds,
    })
    table = [
        *((f"{name} produce", f"{result[f'{kind}_produce_mib_s']:8.1f} MiB/s   broker "
                              f"{result[f'{kind}_produce_cpu_s_per_gib']:.2f}, client "
                              f"{result[f'{kind}_produce_client_cpu_s_per_gib']:.2f} CPU-s/GiB")
          for kind, name in (("plaintext", "plaintext"), ("tls", "TLS"))),
        *((f"{name} consume", f"{result[f'{kind}_consume_mib_s']:8.1f} MiB/s   broker "
                              f"{result[f'{kind}_consume_cpu_s_per_gib']:.2f} CPU-s/GiB")
          for kind, name in (("plaintext", "plaintext"), ("tls", "TLS"))),
        ("TLS / plaintext produce", f"{result['tls_produce_ratio']:8.2f}   (Kafka: 0.6-0.8)"),
        ("TLS / plaintext consume", f"{result['tls_consume_ratio']:8.2f}   (Kafka: 0.6-0.8)"),
        ("loopback TCP", f"{tcp:8.1f} MiB/s   (before/after: "
                         f"{'/'.join(f'{x:.0f}' for x in loop_tcp)})"),
        ("loopback TLS (Python ssl)", f"{tls:8.1f} MiB/s   ({cipher}; before/after: "
                                      f"{'/'.join(f'{x:.0f}' for x in loop_tls_all)})"),
        ("TLS / TCP loopback", f"{result['tls_loopback_ratio']:8.2f}"),
        ("machine load (1 min avg)", f"{result['load_avg_1m']:.2f} on {os.cpu_count()} CPUs"),
    ]
    print(f"Strom TLS benchmark ({result['revision']}): {args.mib} MiB of {RECORD_BYTES} B "
          f"records per phase, {args.rounds} rounds: the best MiB/s and the lowest CPU-s/GiB "
          f"of each")
    width = max(len(k) for k, _ in table)
    for key, value in table:
        print(f"  {key:<{width}}  {value}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
