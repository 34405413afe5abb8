"""End-to-end benchmark of one Strom broker with the librdkafka client (confluent-kafka).

``python -m bench.produce_consume`` (also ``make bench``):

1. starts a broker subprocess on a free 127.0.0.1 port with a fresh temporary data dir;
2. **produce**: ``--mib`` MiB of 1 KiB records to a one-partition topic with
   ``linger.ms=5``, ``acks=1`` (and, after step 3, ``acks=all`` to a second topic once the
   first is deleted); throughput is bytes of record values over the time from the first
   ``produce_batch()`` to ``flush()`` done;
3. **consume**: reads the acks=1 topic from the beginning with ``assign()`` (no group
   membership) until every record is back; kcat (librdkafka in C) reads it once more, for
   reference, so client-side Python cost can be told apart from the broker's;
4. **end-to-end latency** at a fixed rate (after deleting the bulk topics, so their dirty
   pages are dropped rather than written back under the broker): a producer paces 1 KiB
   records at ``--e2e-rate`` MiB/s (default 50; one ``produce_batch`` per pacing tick of
   about a millisecond, each record carrying its send time); a consumer in *another process*
   (no GIL sharing) records receive time − send time (``CLOCK_MONOTONIC`` is system-wide).
   If that rate is not sustained (the producer falls behind its pace, records are missing,
   or latency grows: median of the last fifth > 2 × median of the first fifth + 50 ms), the
   rate is halved until it is; the rate used is ``e2e_rate_mib_s``;
5. **cluster** (on by default, ``--no-cluster`` skips it; it adds about the time of one
   more produce phase plus ~5 s of cluster start and stop): the same client, record size
   and volume with ``acks=all`` to a one-partition RF 3 topic on a local 3-broker
   combined-mode cluster (:mod:`bench.cluster`, the ``broker.local_cluster`` topology on
   free ports), after waiting up to 15 s for its ISR to hold all 3 replicas; reported
   against step 2's single-broker acks=1 figure as ``cluster_ratio`` (goal ≥ 0.33), with
   the ISR size before and after, CPU-seconds per GiB of each broker (leader, followers;
   also user time alone: compare these across runs, the throughput swings with the
   machine's load and the kernel's share with page-cache conditions), and the
   record log bytes on each node's disk (a warning line when there were not 3 full
   copies: acks=all then waited for fewer replicas);
6. the machine's limits in the same run (:mod:`bench.limits`): raw sequential file write
   into the same filesystem and loopback TCP, each with the produce volume, measured before
   and after the broker phases; the higher of each pair is reported (and used for ratios).

Output: a readable table, then one JSON line (last line) with ``produce_mib_s`` (acks=1),
``produce_all_mib_s`` (acks=all), ``consume_mib_s``, ``raw_write_mib_s``,
``loopback_mib_s``, ``produce_ratio`` (= produce / raw write), ``consume_ratio``
(= consume / loopback), ``e2e_p50_ms``, ``e2e_p99_ms``, ``e2e_rate_mib_s``; with the
cluster phase also ``cluster_produce_all_mib_s``, ``cluster_ratio`` (= cluster acks=all /
single acks=1), ``cluster_isr_before``/``_after``, ``cluster_copies_mib``,
``cluster_cpu_s_per_gib_by_broker``, ``cluster_user_cpu_s_per_gib_by_broker``.

``--py-spy PATH`` records py-spy samples of the broker during the acks=1 produce and the
consume phases: a flame graph for ``*.svg``, collapsed stacks otherwise (needs
``.venv/bin/py-spy`` and ptrace permission).
Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.limits import MIB, loopback_mib_s, raw_write_mib_s

REPO_ROOT = Path(__file__).resolve().parents[1]
RECORD_BYTES = 1024
PRODUCE_CHUNK = 1000  # records handed to librdkafka per produce_batch call
STARTUP_TIMEOUT_S = 30.0
CLUSTER_ISR_TIMEOUT_S = 15.0
CLUSTER_RATIO_GOAL = 0.33


# --------------------------------------------------------------------------- broker process


@dataclass
class BrokerRun:
    process: subprocess.Popen[bytes]
    bootstrap: str
    data_dir: Path
    log_path: Path


@contextlib.contextmanager
def running_broker(workdir: Path, overrides: dict[str, str]) -> Iterator[BrokerRun]:
    """A broker subprocess on 127.0.0.1:<free port>; SIGTERM (then SIGKILL) on exit."""
    data_dir = workdir / "data"
    ready = workdir / "ready"
    log_path = workdir / "broker.log"
    args = [
        sys.executable, "-m", "broker", "serve",
        "--override", f"log.dirs={data_dir}",
        "--override", "listeners=PLAINTEXT://127.0.0.1:0",
        "--ready-file", str(ready),
    ]
    for key, value in overrides.items():
        args += ["--override", f"{key}={value}"]
    env = {**os.environ, "STROM_LOG_FORMAT": "json", "STROM_LOG_LEVEL": "WARNING"}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(args, cwd=REPO_ROOT, stdout=log, stderr=log, env=env)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not ready.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"broker did not start:\n{tail}")
            time.sleep(0.05)
        bootstrap = ready.read_text().strip()
        try:
            yield BrokerRun(process, bootstrap, data_dir, log_path)
        except BaseException:
            tail = log_path.read_text(errors="replace")[-4000:]
            print(f"--- broker log tail ---\n{tail}", file=sys.stderr)
            raise
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@contextlib.contextmanager
def py_spy(pid: int, output: str | None) -> Iterator[None]:
    """Record a py-spy flame graph of ``pid`` while the block runs (no-op without output)."""
    if not output:
        yield
        return
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    fmt = "flamegraph" if output.endswith(".svg") else "raw"  # raw: collapsed stacks
    proc = subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--output", output, "--rate", "200",
         "--nonblocking", "--format", fmt],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    time.sleep(0.5)  # let py-spy attach before the measured phase starts
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def cpu_seconds(pid: int, *, user_only: bool = False) -> float:
    """User + system (or only user) CPU time of process ``pid`` so far (Linux /proc), 0.0
    if unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + (0 if user_only else int(fields[12]))
    return ticks / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- client phases


def create_topic(bootstrap: str, name: str, replication_factor: int = 1) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, num_partitions=1,
                                            replication_factor=replication_factor)],
                                  operation_timeout=30, request_timeout=30)
    futures[name].result(timeout=30)


def delete_topics(bootstrap: str, names: list[str]) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_topics(names, request_timeout=30).values():
        future.result(timeout=30)


def produce(bootstrap: str, topic: str, count: int, acks: str) -> tuple[float, int]:
    """Produce ``count`` 1 KiB records; returns (seconds, delivery errors)."""
    from confluent_kafka import KafkaException, Producer

    errors = 0

    def delivered(err: object, msg: object) -> None:
        nonlocal errors
        if err is not None:
            errors += 1

    producer = Producer({
        "bootstrap.servers": bootstrap,
        "acks": acks,
        "linger.ms": 5,
        "enable.idempotence": False,
        "compression.type": "none",
        "batch.size": 1_000_000,
        "queue.buffering.max.kbytes": 512 * 1024,
        "queue.buffering.max.messages": 1_000_000,
        "message.timeout.ms": 120_000,
        "delivery.report.only.error": True,  # callbacks for failures only
    })
    value = os.urandom(RECORD_BYTES)
    producer.list_topics(topic, timeout=30)  # connect and learn the leader before timing
    # produce_batch keeps the client's Python cost per record small: the client shares
    # the machine's two cores with the broker being measured
    chunk = [{"value": value}] * PRODUCE_CHUNK
    start = time.perf_counter()
    left = count
    while left > 0:
        batch = chunk if left >= PRODUCE_CHUNK else chunk[:left]
        try:
            queued = producer.produce_batch(topic, batch, partition=0, on_delivery=delivered)
        except BufferError:
            queued = 0
        left -= queued
        if queued < len(batch):
            producer.poll(0.005)  # queue full: let librdkafka drain
            chunk = [{"value": value}] * PRODUCE_CHUNK  # the old dict carries an "_error"
    remaining = producer.flush(180)
    elapsed = time.perf_counter() - start
    if remaining:
        raise KafkaException(f"{remaining} records still unacknowledged after 180 s")
    return elapsed, errors


def consume(bootstrap: str, topic: str, count: int) -> tuple[float, int]:
    """Read ``count`` records from offset 0; returns (seconds, value bytes received)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "strom-bench",
        "enable.auto.commit": False,
        "fetch.max.bytes": 64 * MIB,
        "max.partition.fetch.bytes": 16 * MIB,
        "fetch.wait.max.ms": 100,
        "queued.max.messages.kbytes": 256 * 1024,
        # librdkafka pauses fetching for fetch.queue.backoff.ms (default 1 s) whenever its
        # local queue passes these thresholds; keep it fetching back to back
        "queued.min.messages": 1_000_000,
        "fetch.queue.backoff.ms": 5,
    })
    try:
        # learn the leader first: assigning before metadata arrives makes librdkafka retry
        # its offset lookup after a fixed 500 ms, which has nothing to do with the broker
        consumer.list_topics(topic, timeout=30)
        start = time.perf_counter()
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        received = 0
        nbytes = 0
        deadline = time.monotonic() + 180
        while received < count and time.monotonic() < deadline:
            # consume() blocks until it has num_messages or the timeout passed: never ask
            # for more than are still due, or the last call idles for the whole timeout
            for msg in consumer.consume(num_messages=min(10_000, count - received),
                                        timeout=1.0):
                if msg.error() is None:
                    received += 1
                    nbytes += len(msg)
        elapsed = time.perf_counter() - start
    finally:
        consumer.close()
    if received < count:
        raise RuntimeError(f"consumed only {received} of {count} records")
    return elapsed, nbytes


def consume_kcat(bootstrap: str, topic: str, count: int) -> float | None:
    """Seconds for kcat (librdkafka in C, no Python per record) to read ``count`` records
    from the beginning to the end; None when kcat is not installed."""
    kcat = shutil.which("kcat")
    if kcat is None:
        return None
    start = time.perf_counter()
    out = subprocess.run(
        [kcat, "-C", "-b", bootstrap, "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q",
         "-f", "%o\n", "-X", "fetch.max.bytes=67108864",
         "-X", "max.partition.fetch.bytes=16777216"],
        capture_output=True, timeout=300, check=True,
    )
    elapsed = time.perf_counter() - start
    lines = out.stdout.count(b"\n")
    if lines != count:
        raise RuntimeError(f"kcat read {lines} of {count} records")
    return elapsed


def _latency_consumer(bootstrap: str, topic: str, count: int, ready: object,
                      out: object) -> None:
    """Child process: receive ``count`` records, send back receive − send times (ns)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "strom-bench-e2e",
        "enable.auto.commit": False,
        "fetch.wait.max.ms": 100,
        "fetch.min.bytes": 1,
    })
    consumer.list_topics(topic, timeout=30)  # leader known: the offset lookup is immediate
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    consumer.consume(num_messages=1, timeout=0.5)  # connect before the producer starts
    ready.set()  # type: ignore[attr-defined]
    latencies: list[int] = []
    deadline = time.monotonic() + 120
    while len(latencies) < count and time.monotonic() < deadline:
        # poll() returns with the first record; then take what else is already there
        # without waiting (consume() with a timeout would hold records back until full)
        first = consumer.poll(0.2)
        if first is None:
            continue
        for msg in [first, *consumer.consume(num_messages=10_000, timeout=0)]:
            if msg.error() is None:
                now = time.monotonic_ns()
                latencies.append(now - int.from_bytes(msg.value()[:8], "big"))
    consumer.close()
    out.send(latencies)  # type: ignore[attr-defined]


def _paced_produce(bootstrap: str, topic: str, rate_mib_s: float, count: int, ready: Any,
                   results: Any) -> tuple[int, float, list[int]]:
    """Produce ``count`` stamped records at ``rate_mib_s`` once the reader is ``ready``;
    returns (sent, seconds spent sending, the reader's latencies in ns)."""
    from confluent_kafka import Producer

    if not ready.wait(60):
        raise RuntimeError("latency consumer did not start")
    producer = Producer({
        "bootstrap.servers": bootstrap, "acks": "1", "linger.ms": 5,
        "enable.idempotence": False, "queue.buffering.max.kbytes": 512 * 1024,
    })
    producer.list_topics(topic, timeout=30)
    filler = os.urandom(RECORD_BYTES - 8)
    per_second = rate_mib_s * MIB / RECORD_BYTES
    start = time.monotonic()
    sent = 0
    while sent < count:
        due = min(count, int((time.monotonic() - start) * per_second) + 1)
        if due > sent:
            # every record due now carries the same send time: one produce_batch call with
            # one shared message dict keeps the pacing loop's CPU small (the client shares
            # the two cores with the broker being measured)
            message = {"value": time.monotonic_ns().to_bytes(8, "big") + filler}
            try:
                sent += producer.produce_batch(topic, [message] * (due - sent), partition=0)
            except BufferError:
                producer.poll(0.001)
        producer.poll(0)
        ahead = (sent / per_second) - (time.monotonic() - start)
        if ahead > 0.0005:
            time.sleep(ahead)
    send_elapsed = time.monotonic() - start
    producer.flush(60)
    latencies_ns = results.recv() if results.poll(150) else []
    return sent, send_elapsed, latencies_ns


def e2e_latency(bootstrap: str, topic: str, rate_mib_s: float, seconds: float,
                ) -> tuple[str, float, list[float]]:
    """Pace records at ``rate_mib_s``; returns (why the rate was not sustained, "" if it
    was; achieved MiB/s; latencies in ms after warm-up)."""

    count = int(rate_mib_s * MIB / RECORD_BYTES * seconds)
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    parent, child = ctx.Pipe(duplex=False)
    reader = ctx.Process(target=_latency_consumer, args=(bootstrap, topic, count, ready, child))
    reader.start()
    try:
        sent, send_elapsed, latencies_ns = _paced_produce(
            bootstrap, topic, rate_mib_s, count, ready, parent
        )
        reader.join(30)
    finally:  # also on errors and SIGTERM: never leave the reader process behind
        if reader.is_alive():
            reader.kill()
            reader.join(5)
    achieved = sent * RECORD_BYTES / MIB / send_elapsed
    warm = latencies_ns[len(latencies_ns) // 10:]  # drop the first 10 % (connection warm-up)
    latencies_ms = [ns / 1e6 for ns in warm]
    fifth = max(1, len(latencies_ms) // 5)
    head, tail = percentile(latencies_ms[:fifth], 50), percentile(latencies_ms[-fifth:], 50)
    problems = []
    if len(latencies_ns) != count:
        problems.append(f"{len(latencies_ns)} of {count} records arrived")
    if achieved < 0.95 * rate_mib_s:
        problems.append(f"producer reached {achieved:.1f} MiB/s")
    if not tail <= 2 * head + 50:  # a growing backlog: the last fifth much slower
        problems.append(f"median latency grew from {head:.0f} to {tail:.0f} ms")
    return "; ".join(problems), achieved, latencies_ms


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))  # nearest rank
    return ordered[index]


# --------------------------------------------------------------------------- cluster


@dataclass
class ClusterRun:
    """The acks=all produce phase on a local 3-broker cluster (RF 3 topic)."""

    seconds: float
    errors: int
    isr_before: int
    isr_after: int
    cpu_s: float  # all brokers together, during the produce
    copies_mib: list[float]  # record log bytes on each node's disk after the produce
    #: per broker, CPU seconds during the produce ("leader" / "follower <id>")
    cpu_by_broker: dict[str, float]
    #: the same, user time only (the broker's own code: steadier than the kernel's share,
    #: which page-cache conditions swing, see ``cluster_produce``)
    user_by_broker: dict[str, float]


def cluster_produce(workdir: Path, count: int) -> ClusterRun:
    """Produce ``count`` records with acks=all to a one-partition RF 3 topic of a local
    3-broker cluster (:mod:`bench.cluster`), after waiting (bounded) for a full ISR."""
    from bench.cluster import LocalCluster, accepted_overrides

    topic = "bench-cluster-acksall"
    overrides = accepted_overrides({"log.segment.bytes": str(1024 * MIB),
                                    "default.replication.factor": "3"})
    cluster = LocalCluster(workdir, overrides=overrides)
    try:
        with cluster:
            create_topic(cluster.bootstrap, topic, replication_factor=3)
            cluster.wait_full_isr(topic, CLUSTER_ISR_TIMEOUT_S)
            state = cluster.partitions(topic)[0]
            isr_before = len(state.isr)
            pids = {i: cluster.procs[i].pid for i in cluster.live_nodes()}
            names = {i: "leader" if i == state.leader else f"follower {i}" for i in pids}
            cpu0 = {i: cpu_seconds(pid) for i, pid in pids.items()}
            user0 = {i: cpu_seconds(pid, user_only=True) for i, pid in pids.items()}
            seconds, errors = produce(cluster.bootstrap, topic, count, "all")
            cpu1 = {i: cpu_seconds(pid) for i, pid in pids.items()}
            user1 = {i: cpu_seconds(pid, user_only=True) for i, pid in pids.items()}
            by_broker = {names[i]: cpu1[i] - cpu0[i] for i in pids}
            user_by_broker = {names[i]: user1[i] - user0[i] for i in pids}
            isr_after = len(cluster.partitions(topic)[0].isr)
            copies = [sum(f.stat().st_size for f in (workdir / f"node-{i}" / f"{topic}-0")
                          .glob("*.log")) / MIB for i in range(1, cluster.nodes + 1)]
    except Exception:
        print(cluster.log_tails(), file=sys.stderr)
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)  # unlinked: its dirty pages are dropped
    return ClusterRun(seconds, errors, isr_before, isr_after, sum(by_broker.values()), copies,
                      by_broker, user_by_broker)


# --------------------------------------------------------------------------- main


def source_revision() -> str:
    """The measured source: short git commit, "+dirty" with local changes ("unknown" outside
    a git checkout)."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=10, check=True).stdout
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO_ROOT, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return rev.strip() + ("+dirty" if dirty.strip() else "")


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="Strom produce/consume benchmark")
    parser.add_argument("--mib", type=int, default=1024, help="produce volume per acks mode")
    parser.add_argument("--e2e-rate", type=float, default=50.0, help="target MiB/s for e2e")
    parser.add_argument("--e2e-seconds", type=float, default=8.0)
    parser.add_argument("--py-spy", default=None, help="write a broker flame graph here")
    parser.add_argument("--dir", default=None, help="parent of the temporary data dir")
    parser.add_argument("--cluster", action=argparse.BooleanOptionalAction, default=True,
                        help="also produce with acks=all to an RF 3 topic on a local "
                             "3-broker cluster (default: on)")
    args = parser.parse_args(argv)
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C: the broker is stopped and the
    # temporary data dir removed by the finally blocks
    signal.signal(signal.SIGTERM, _exit_on_sigterm)

    count = args.mib * MIB // RECORD_BYTES
    volume_mib = count * RECORD_BYTES / MIB
    workdir = Path(tempfile.mkdtemp(prefix="strom-bench-", dir=args.dir))
    rows: list[tuple[str, str]] = []
    try:
        # the machine's limits before (fresh page cache; the file is unlinked, so its dirty
        # pages are dropped, not written back under the broker) and after the broker phases
        raw_before = raw_write_mib_s(workdir, count * RECORD_BYTES)
        loop_before = loopback_mib_s(count * RECORD_BYTES)
        with running_broker(workdir, {"log.segment.bytes": str(1024 * MIB)}) as broker:
            for topic in ("bench-acks1", "bench-acksall"):
                create_topic(broker.bootstrap, topic)
            pid = broker.process.pid
            with py_spy(pid, args.py_spy):
                cpu0 = cpu_seconds(pid)
                t1, err1 = produce(broker.bootstrap, "bench-acks1", count, "1")
                cpu1 = cpu_seconds(pid)
                tc, consumed = consume(broker.bootstrap, "bench-acks1", count)
                cpu2 = cpu_seconds(pid)
            tk = consume_kcat(broker.bootstrap, "bench-acks1", count)
            # each write phase starts without the previous phase's data: the unlinked files'
            # dirty pages need no writeback, which would otherwise stall the broker's writes
            delete_topics(broker.bootstrap, ["bench-acks1"])
            cpu2b = cpu_seconds(pid)
            tall, errall = produce(broker.bootstrap, "bench-acksall", count, "all")
            cpu3 = cpu_seconds(pid)
            delete_topics(broker.bootstrap, ["bench-acksall"])
            rate = args.e2e_rate
            while True:
                e2e_topic = f"bench-e2e-{rate:g}"  # a fresh topic per trial
                create_topic(broker.bootstrap, e2e_topic)
                problem, achieved, lat = e2e_latency(
                    broker.bootstrap, e2e_topic, rate, args.e2e_seconds
                )
                if not problem or rate <= 1:
                    break
                rows.append((f"e2e at {rate:g} MiB/s", f"not sustained: {problem}"))
                rate /= 2
            broker_errors = broker.process.poll()
        cluster = cluster_produce(workdir / "cluster", count) if args.cluster else None
        raw_after = raw_write_mib_s(workdir, count * RECORD_BYTES)
        loop_after = loopback_mib_s(count * RECORD_BYTES)
        # ratios use the best figure seen in this run: the conservative choice
        raw, loop = max(raw_before, raw_after), max(loop_before, loop_after)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    produce1 = volume_mib / t1
    produce_all = volume_mib / tall
    consume_rate = consumed / MIB / tc
    result = {
        "produce_mib_s": round(produce1, 1),
        "produce_all_mib_s": round(produce_all, 1),
        "consume_mib_s": round(consume_rate, 1),
        "raw_write_mib_s": round(raw, 1),
        "loopback_mib_s": round(loop, 1),
        "produce_ratio": round(produce1 / raw, 3),
        "consume_ratio": round(consume_rate / loop, 3),
        "e2e_p50_ms": round(percentile(lat, 50), 2),
        "e2e_p99_ms": round(percentile(lat, 99), 2),
        "e2e_rate_mib_s": round(rate, 1),
        "volume_mib": round(volume_mib, 1),
        "delivery_errors": err1 + errall,
        "broker_cpu_s_per_gib_produce": round((cpu1 - cpu0) / (volume_mib / 1024), 2),
        "broker_cpu_s_per_gib_consume": round((cpu2 - cpu1) / (volume_mib / 1024), 2),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "consume_kcat_mib_s": round(volume_mib / tk, 1) if tk else None,
        "revision": source_revision(),
    }
    if cluster is not None:
        cluster_rate = volume_mib / cluster.seconds
        result.update({
            "cluster_produce_all_mib_s": round(cluster_rate, 1),
            "cluster_ratio": round(cluster_rate / produce1, 3),
            "cluster_ratio_goal": CLUSTER_RATIO_GOAL,
            "cluster_isr_before": cluster.isr_before,
            "cluster_isr_after": cluster.isr_after,
            "cluster_delivery_errors": cluster.errors,
            "cluster_cpu_s_per_gib": round(cluster.cpu_s / (volume_mib / 1024), 2),
            "cluster_copies_mib": [round(c, 1) for c in cluster.copies_mib],
            "cluster_cpu_s_per_gib_by_broker": {
                k: round(v / (volume_mib / 1024), 2)
                for k, v in sorted(cluster.cpu_by_broker.items())},
            "cluster_user_cpu_s_per_gib_by_broker": {
                k: round(v / (volume_mib / 1024), 2)
                for k, v in sorted(cluster.user_by_broker.items())},
        })
    print(f"Strom produce/consume benchmark ({source_revision()}) — {count:,} records of "
          f"{RECORD_BYTES} B ({volume_mib:.0f} MiB) per phase, one partition, confluent-kafka "
          f"(librdkafka) linger.ms=5, uncompressed")
    table = [
        ("produce acks=1", f"{produce1:9.1f} MiB/s  ({t1:.1f} s, {err1} errors, "
                           f"broker CPU {cpu1 - cpu0:.1f} s)"),
        ("produce acks=all", f"{produce_all:9.1f} MiB/s  ({tall:.1f} s, {errall} errors, "
                             f"broker CPU {cpu3 - cpu2b:.1f} s)"),
        ("consume", f"{consume_rate:9.1f} MiB/s  ({tc:.1f} s, broker CPU {cpu2 - cpu1:.1f} s)"),
        ("consume with kcat", f"{volume_mib / tk:9.1f} MiB/s  ({tk:.1f} s, C client, "
                              "for reference)" if tk else "kcat not installed"),
        ("raw sequential write", f"{raw:9.1f} MiB/s  (os.write, same filesystem; before "
                                 f"{raw_before:.0f}, after {raw_after:.0f})"),
        ("loopback TCP", f"{loop:9.1f} MiB/s  (before {loop_before:.0f}, after "
                         f"{loop_after:.0f})"),
        ("produce / raw write", f"{result['produce_ratio']:9.3f}"),
        ("consume / loopback", f"{result['consume_ratio']:9.3f}"),
        *rows,
        (f"e2e latency at {rate:g} MiB/s", f"p50 {result['e2e_p50_ms']} ms, "
         f"p99 {result['e2e_p99_ms']} ms, max {percentile(lat, 100):.1f} ms "
         f"(acks=1, linger.ms=5, {len(lat):,} records)"),
    ]
    if cluster is not None:
        table += [
            ("3 brokers, RF 3, acks=all", f"{result['cluster_produce_all_mib_s']:9.1f} MiB/s  "
             f"({cluster.seconds:.1f} s, {cluster.errors} errors, ISR {cluster.isr_before}"
             f"→{cluster.isr_after} of 3, brokers' CPU {cluster.cpu_s:.1f} s)"),
            ("cluster / single acks=1", f"{result['cluster_ratio']:9.3f}  (goal ≥ "
                                        f"{CLUSTER_RATIO_GOAL})"),
        ]
        gib = volume_mib / 1024
        per_gib = ", ".join(f"{k} {v / gib:.2f} ({cluster.user_by_broker[k] / gib:.2f})"
                            for k, v in sorted(cluster.cpu_by_broker.items()))
        table.append(("cluster CPU-s per GiB", f"{per_gib}  (user + system (user only))"))
        copies = "/".join(f"{c:.0f}" for c in cluster.copies_mib)
        table.append(("cluster copies on disk", f"{copies} MiB (record logs of nodes 1/2/3)"))
        if min(cluster.isr_before, cluster.isr_after) < 3 or \
                min(cluster.copies_mib) < 0.99 * volume_mib:
            table.append(("cluster warning", "not 3 full copies (ISR or disk): acks=all did "
                                             "not wait for every copy, the figure means "
                                             "little"))
    table.append(("machine load (1 min avg)", f"{os.getloadavg()[0]:.2f} on "
                                               f"{os.cpu_count()} CPUs"))
    if broker_errors not in (None, 0):
        table.append(("broker", f"exited early with {broker_errors}"))
    width = max(len(k) for k, _ in table)
    for key, value in table:
        print(f"  {key:<{width}}  {value}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
