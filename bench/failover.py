"""Failover soak: SIGKILL partition leaders of a 3-node cluster under idempotent acks=all load.

``python -m bench.failover`` (also ``make bench-failover``)::

    python -m bench.failover [--kills 100] [--partitions 3] [--record-size 512]
        [--rate 2000] [--min-insync 2] [--failover-timeout 60] [--isr-timeout 60]
        [--json PATH] [--dir PARENT]

1. starts a local combined-mode cluster of 3 broker processes (:mod:`bench.cluster`, the
   ``broker.local_cluster`` topology on free ports, data in a temporary directory) with
   ``default.replication.factor=3``, ``min.insync.replicas=--min-insync`` and failover
   timeouts (``broker.session.timeout.ms=3000``, ``broker.heartbeat.interval.ms=500``,
   ``replica.lag.time.max.ms=5000`` when ``broker.config`` knows it, fast quorum timeouts);
2. creates topic ``failover`` (RF 3, ``--partitions``) and waits until every ISR is full;
3. a producer thread (confluent-kafka, ``enable.idempotence=true``, ``acks=all``,
   ``linger.ms=5``) paces ``--rate`` records/s round robin over the partitions; each value
   starts with the record's 8-byte big-endian sequence number in its partition (then
   padding up to ``--record-size``); delivery reports tell which are acknowledged;
4. kill ``k`` (of ``--kills``) targets partition ``k mod partitions``: its leader (from
   Metadata) is SIGKILLed; **unavailability** is the time from the kill to the delivery
   report of the first record produced after the kill on that partition (a record queued
   after the kill can only be acknowledged by a live leader); meanwhile Metadata is polled
   every 50 ms for the partition's next leader epoch (``elected``: the cluster's share of
   the unavailability, fencing and election; kills of the broker that was also the
   active controller, which add a quorum election, are reported apart). Then the killed
   broker is restarted; the next kill waits until Metadata shows every ISR full again
   (``rejoin``: restart to full ISR; on a timeout the missing replicas are listed). When the
   ISR was the leader alone before the kill (no replica could take over, e.g. before data
   replication exists) the broker is restarted right after the kill, so that failover
   measures the restart instead (counted as ``restart_bound``);
5. the producer stops and flushes; a fresh consumer reads every partition from the
   beginning to its high watermark. Reported: ``acked`` records, ``lost`` (acknowledged,
   not read), ``duplicated`` (a sequence read again), ``reordered`` (a sequence lower
   than one read before it in the partition), ``unacked_written`` (failed delivery
   reports whose record was read anyway: allowed), and unavailability per failover
   p50/p99/max in ms.

Output: a readable table, then one JSON line (last line; also written to ``--json``).
Every wait has a timeout; the cluster is stopped and its directory removed at exit, on
Ctrl-C and SIGTERM too. A soak, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.cluster import LocalCluster, PartitionState, accepted_overrides, wait_for
from bench.produce_consume import percentile, source_revision

TOPIC = "failover"
SEQ_BYTES = 8
PACE_TICK_S = 0.002
METADATA_POLL_S = 0.05
FLUSH_TIMEOUT_S = 60.0
CONSUME_TIMEOUT_S = 120.0


# --------------------------------------------------------------------------- checking


@dataclass
class Audit:
    """What a reader found against what the producer was told was acknowledged."""

    acked: int = 0
    read: int = 0
    lost: int = 0
    duplicated: int = 0
    reordered: int = 0
    unacked_written: int = 0
    lost_examples: list[tuple[int, int]] = field(default_factory=list)


def audit(acked: dict[int, list[int]], failed: dict[int, list[int]],
          read: dict[int, list[int]], examples: int = 10) -> Audit:
    """Compare per-partition sequence numbers: ``acked`` (successful delivery reports),
    ``failed`` (failed ones) and ``read`` (in log order). A sequence read twice is one
    duplicate per extra copy; a first copy lower than the highest read before it in its
    partition is reordered; an acknowledged sequence never read is lost."""
    out = Audit()
    for partition in sorted(set(acked) | set(read) | set(failed)):
        got = read.get(partition, [])
        seen: set[int] = set()
        highest = -1
        for seq in got:
            if seq in seen:
                out.duplicated += 1
                continue
            seen.add(seq)
            if seq < highest:
                out.reordered += 1
            highest = max(highest, seq)
        ok = acked.get(partition, [])
        out.acked += len(ok)
        out.read += len(got)
        missing = sorted(set(ok) - seen)
        out.lost += len(missing)
        out.lost_examples += [(partition, s) for s in missing[: examples - len(out.lost_examples)]]
        out.unacked_written += len(set(failed.get(partition, [])) & seen)
    return out


# --------------------------------------------------------------------------- load


class LoadProducer(threading.Thread):
    """Paces ``rate`` idempotent acks=all records/s over ``partitions`` until ``stop()``.

    Record ``seq`` of partition ``p`` has value ``seq.to_bytes(8, "big") + padding``;
    ``acked[p]`` / ``failed[p]`` collect the sequences of successful / failed delivery
    reports. ``watch(p)`` arms a probe: ``probe`` is set when the first record of ``p``
    produced after the call is acknowledged (``probe_time``: time.monotonic() then).
    A fatal producer error (idempotence broken) is counted and a new producer created;
    the sequence numbers continue.
    """

    def __init__(self, bootstrap: str, topic: str, partitions: int, rate: float,
                 record_size: int, message_timeout_s: float) -> None:
        super().__init__(name="load-producer", daemon=True)
        self.bootstrap = bootstrap
        self.topic = topic
        self.partitions = partitions
        self.rate = rate
        self.padding = os.urandom(max(0, record_size - SEQ_BYTES))
        self.message_timeout_ms = int(message_timeout_s * 1000)
        self.acked: dict[int, list[int]] = {p: [] for p in range(partitions)}
        self.failed: dict[int, list[int]] = {p: [] for p in range(partitions)}
        self.errors: Counter[str] = Counter()
        self.fatal_errors: list[str] = []
        self.producers_created = 0
        self.unflushed = 0
        self.exception: BaseException | None = None
        self._next_seq = [0] * partitions
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._abort = False
        self._fatal = threading.Event()
        self.probe = threading.Event()
        self.probe_time = 0.0
        self._probe_partition = -1
        self._probe_seq = 0

    # ---- called from the main thread
    def watch(self, partition: int) -> float:
        """Arm the probe for ``partition``; returns the arming time (monotonic)."""
        with self._lock:  # the producer thread produces nothing meanwhile
            # the delivery callback reads these without the lock: disarm first, set the
            # sequence, and name the partition last
            self._probe_partition = -1
            self._probe_seq = self._next_seq[partition]
            self.probe.clear()
            self._probe_partition = partition
            return time.monotonic()

    def first_ack_seen(self) -> bool:
        """Whether every partition has at least one acknowledged record."""
        return all(self.acked[p] for p in range(self.partitions))

    def stop(self, timeout: float, *, abort: bool = False) -> None:
        """Stop producing and flush (``abort``: drop what is queued instead); wait up to
        ``timeout`` seconds for the thread."""
        self._abort = abort
        self._stopping.set()
        self.join(timeout)

    # ---- producer thread
    def _new_producer(self) -> Any:
        from confluent_kafka import Producer

        self.producers_created += 1
        self._fatal.clear()
        return Producer({
            "bootstrap.servers": self.bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "compression.type": "none",
            "message.timeout.ms": self.message_timeout_ms,
            "queue.buffering.max.messages": 1_000_000,
            "queue.buffering.max.kbytes": 512 * 1024,
            "error_cb": self._on_error,
        })

    def _on_error(self, err: Any) -> None:
        self.errors[err.name()] += 1
        if err.fatal():
            self.fatal_errors.append(str(err))
            self._fatal.set()

    def _delivered(self, err: Any, msg: Any) -> None:
        partition = msg.partition()
        seq = int.from_bytes(msg.value()[:SEQ_BYTES], "big")
        if err is not None:
            self.failed[partition].append(seq)
            self.errors[f"delivery:{err.name()}"] += 1
            return
        self.acked[partition].append(seq)
        if (partition == self._probe_partition and seq >= self._probe_seq
                and not self.probe.is_set()):
            self.probe_time = time.monotonic()
            self.probe.set()

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by the main thread
            self.exception = exc

    def _run(self) -> None:
        producer = self._new_producer()
        producer.list_topics(self.topic, timeout=30)
        start = time.monotonic()
        sent = 0
        partition = 0
        while not self._stopping.is_set():
            if self._fatal.is_set():  # the old instance fails its queue; start over
                producer.flush(5)
                producer = self._new_producer()
            due = int((time.monotonic() - start) * self.rate)
            while sent < due and not self._stopping.is_set():
                with self._lock:
                    seq = self._next_seq[partition]
                    value = seq.to_bytes(SEQ_BYTES, "big") + self.padding
                    try:
                        producer.produce(self.topic, value=value, partition=partition,
                                         on_delivery=self._delivered)
                    except BufferError:
                        break  # queue full: poll below, retry the same record later
                    self._next_seq[partition] = seq + 1
                sent += 1
                partition = (partition + 1) % self.partitions
            producer.poll(PACE_TICK_S)
        if self._abort:
            producer.purge()
        self.unflushed = producer.flush(1 if self._abort else FLUSH_TIMEOUT_S)


# --------------------------------------------------------------------------- reading


def read_all(bootstrap: str, topic: str, partitions: int) -> dict[int, list[int]]:
    """Every record's sequence per partition, read from the beginning to the high
    watermark by a fresh consumer (assign, no group membership)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"failover-audit-{os.getpid()}",
        "enable.auto.commit": False,
        "fetch.wait.max.ms": 100,
    })
    read: dict[int, list[int]] = {p: [] for p in range(partitions)}
    try:
        consumer.list_topics(topic, timeout=30)
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
                for p in range(partitions)}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        position = dict.fromkeys(range(partitions), 0)
        deadline = time.monotonic() + CONSUME_TIMEOUT_S
        while any(position[p] < ends[p] for p in range(partitions)):
            if time.monotonic() > deadline:
                short = {p: f"{position[p]}/{ends[p]}" for p in range(partitions)}
                raise RuntimeError(f"reading back timed out at offsets {short}")
            for msg in consumer.consume(num_messages=10_000, timeout=0.5):
                if msg.error() is not None:
                    continue
                read[msg.partition()].append(int.from_bytes(msg.value()[:SEQ_BYTES], "big"))
                position[msg.partition()] = msg.offset() + 1
    finally:
        consumer.close()
    return read


# --------------------------------------------------------------------------- soak


@dataclass
class Failover:
    """One kill: which partition and broker, and what happened."""

    partition: int
    killed: int
    unavailable_ms: float | None  # None: no acknowledgement within the timeout
    restart_bound: bool
    new_leader: int = -1
    isr_full_again: bool = True
    elected_ms: float | None = None  # Metadata showed a new leader epoch (None: not seen
    # before the first ack)
    rejoin_ms: float | None = None  # restart → every ISR full again (None: timed out)
    isr_missing: dict[int, list[int]] = field(default_factory=dict)  # when it timed out
    controller_killed: bool = False  # the killed broker was also the active controller


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions,
                                            replication_factor=3)],
                                  operation_timeout=30, request_timeout=30)
    futures[topic].result(timeout=30)


def cluster_overrides(min_insync: int) -> dict[str, str]:
    """Broker properties for the soak; keys ``broker.config`` does not know are dropped."""
    wanted = {
        "default.replication.factor": "3",
        "min.insync.replicas": str(min_insync),
        "broker.session.timeout.ms": "3000",
        "broker.heartbeat.interval.ms": "500",
        "replica.lag.time.max.ms": "5000",
        "controller.quorum.election.timeout.ms": "500",
        "controller.quorum.fetch.timeout.ms": "1000",
        "controller.quorum.request.timeout.ms": "1000",
        "log.segment.bytes": str(64 * 1024 * 1024),
    }
    return accepted_overrides(wanted)


def one_failover(cluster: LocalCluster, load: LoadProducer, partition: int,
                 failover_timeout: float, isr_timeout: float) -> Failover:
    """Kill the leader of ``partition``, time its unavailability, restart the broker and
    wait (bounded) until every ISR is full again."""
    state: PartitionState | None = wait_for(
        lambda: (p := cluster.partitions(TOPIC).get(partition)) and p.leader >= 0 and p,
        failover_timeout)
    if state is None:
        raise RuntimeError(f"partition {partition} has no leader before the kill")
    leader = state.leader
    restart_bound = len(state.isr) < 2
    controller_killed = cluster.active_controller() == leader
    killed_at = load.watch(partition)
    cluster.kill(leader)
    if restart_bound:
        cluster.restart(leader)
    # until the first ack: poll Metadata for the new leader (a higher leader epoch), which
    # tells the cluster's part (fencing, election) from the client's (rediscovery)
    elected_ms: float | None = None
    new_leader = -1
    deadline = killed_at + failover_timeout
    while not load.probe.wait(METADATA_POLL_S) and time.monotonic() < deadline:
        if elected_ms is None:
            try:
                now = cluster.partitions(TOPIC).get(partition)
            except OSError:
                continue
            if now and now.leader >= 0 and now.leader_epoch > state.leader_epoch:
                elected_ms = (time.monotonic() - killed_at) * 1000
                new_leader = now.leader
    acked = load.probe.is_set()
    unavailable = (load.probe_time - killed_at) * 1000 if acked else None
    if new_leader < 0:
        after = wait_for(lambda: cluster.partitions(TOPIC).get(partition), 5)
        new_leader = after.leader if after else -1
    if not restart_bound:
        cluster.restart(leader)
    restarted_at = time.monotonic()
    registered = wait_for(lambda: leader in cluster.brokers(), isr_timeout) is not None
    isr_full = registered and cluster.wait_full_isr(TOPIC, isr_timeout)
    rejoin_ms = (time.monotonic() - restarted_at) * 1000 if isr_full else None
    missing: dict[int, list[int]] = {}
    if not isr_full:  # say who is missing; at least every partition led before the next kill
        with contextlib.suppress(OSError):
            missing = {i: sorted(set(p.replicas) - set(p.isr))
                       for i, p in cluster.partitions(TOPIC).items()
                       if set(p.isr) != set(p.replicas)}
        wait_for(lambda: all(p.leader >= 0 for p in cluster.partitions(TOPIC).values()),
                 isr_timeout)
    return Failover(partition, leader, unavailable, restart_bound, new_leader, isr_full,
                    elected_ms, rejoin_ms, missing, controller_killed)


def _ms(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile ``q`` of ``values`` rounded to 0.1 ms; None for none."""
    return round(percentile(values, q), 1) if values else None


def summarize(failovers: list[Failover], found: Audit, load: LoadProducer,
              args: argparse.Namespace, isr_full_at_start: bool, elapsed: float
              ) -> dict[str, Any]:
    times = [f.unavailable_ms for f in failovers if f.unavailable_ms is not None]
    elected = [f.elected_ms for f in failovers if f.elected_ms is not None]
    rejoined = [f.rejoin_ms for f in failovers if f.rejoin_ms is not None]
    with_controller = [f.unavailable_ms for f in failovers
                       if f.unavailable_ms is not None and f.controller_killed]
    without_controller = [f.unavailable_ms for f in failovers
                          if f.unavailable_ms is not None and not f.controller_killed]
    return {
        "kills": len(failovers),
        "partitions": args.partitions,
        "record_size": args.record_size,
        "rate_records_s": args.rate,
        "min_insync_replicas": args.min_insync,
        "acked": found.acked,
        "read": found.read,
        "lost": found.lost,
        "duplicated": found.duplicated,
        "reordered": found.reordered,
        "unacked_written": found.unacked_written,
        "delivery_failed": sum(len(v) for v in load.failed.values()),
        "unflushed": load.unflushed,
        "unavailable_p50_ms": _ms(times, 50),
        "unavailable_p99_ms": _ms(times, 99),
        "unavailable_max_ms": _ms(times, 100),
        "controller_kills": sum(1 for f in failovers if f.controller_killed),
        "unavailable_p50_ms_controller_killed": _ms(with_controller, 50),
        "unavailable_p50_ms_controller_alive": _ms(without_controller, 50),
        "elected_p50_ms": _ms(elected, 50),
        "elected_max_ms": _ms(elected, 100),
        "rejoin_p50_ms": _ms(rejoined, 50),
        "rejoin_max_ms": _ms(rejoined, 100),
        "failovers_timed_out": sum(1 for f in failovers if f.unavailable_ms is None),
        "restart_bound": sum(1 for f in failovers if f.restart_bound),
        "isr_full_at_start": isr_full_at_start,
        "isr_not_full_after_restart": sum(1 for f in failovers if not f.isr_full_again),
        "producer_fatal_errors": len(load.fatal_errors),
        "client_errors": dict(load.errors),
        "lost_examples": found.lost_examples,
        "failovers": [{"partition": f.partition, "killed": f.killed, "leader": f.new_leader,
                       "unavailable_ms": None if f.unavailable_ms is None
                       else round(f.unavailable_ms, 1),
                       "elected_ms": None if f.elected_ms is None else round(f.elected_ms, 1),
                       "rejoin_ms": None if f.rejoin_ms is None else round(f.rejoin_ms, 1),
                       "restart_bound": f.restart_bound, "isr_full_again": f.isr_full_again,
                       "controller_killed": f.controller_killed,
                       **({"isr_missing": f.isr_missing} if f.isr_missing else {})}
                      for f in failovers],
        "elapsed_s": round(elapsed, 1),
        "revision": source_revision(),
    }


def print_report(result: dict[str, Any]) -> None:
    print(f"Strom failover soak ({result['revision']}) — 3 brokers, topic RF 3 with "
          f"{result['partitions']} partitions, min.insync.replicas="
          f"{result['min_insync_replicas']}, confluent-kafka idempotent acks=all at "
          f"{result['rate_records_s']:g} records/s of {result['record_size']} B")
    table = [
        ("kills (leader SIGKILL)", f"{result['kills']}  ({result['elapsed_s']:.0f} s)"),
        ("records acknowledged", f"{result['acked']:,}"),
        ("records read back", f"{result['read']:,}"),
        ("lost (acked, not read)", f"{result['lost']}"),
        ("duplicated", f"{result['duplicated']}"),
        ("reordered", f"{result['reordered']}"),
        ("unacked but written", f"{result['unacked_written']}  (failed delivery reports "
                                f"{result['delivery_failed']}, allowed)"),
        ("unavailable per failover", f"p50 {result['unavailable_p50_ms']} ms, p99 "
                                     f"{result['unavailable_p99_ms']} ms, max "
                                     f"{result['unavailable_max_ms']} ms"),
        ("  also the controller", f"{result['controller_kills']} kills, p50 "
                                  f"{result['unavailable_p50_ms_controller_killed']} ms "
                                  f"(others p50 "
                                  f"{result['unavailable_p50_ms_controller_alive']} ms)"),
        ("new leader in Metadata", f"p50 {result['elected_p50_ms']} ms, max "
                                   f"{result['elected_max_ms']} ms after the kill (fencing "
                                   "and election; the rest is the client's rediscovery)"),
        ("ISR full again", f"p50 {result['rejoin_p50_ms']} ms, max "
                           f"{result['rejoin_max_ms']} ms after the restart"),
        ("failovers without an ack", f"{result['failovers_timed_out']}"),
        ("producer fatal errors", f"{result['producer_fatal_errors']}"),
    ]
    if result["restart_bound"]:
        table.append(("restart-bound failovers",
                      f"{result['restart_bound']}  (ISR was the leader alone: no replica "
                      "could take over, the time includes restarting the killed broker)"))
    if not result["isr_full_at_start"] or result["isr_not_full_after_restart"]:
        table.append(("ISR", f"full at start: {result['isr_full_at_start']}, not full "
                             f"again after {result['isr_not_full_after_restart']} restarts"))
    if result["lost_examples"]:
        table.append(("lost, first (partition, seq)", str(result["lost_examples"])))
    width = max(len(k) for k, _ in table)
    for key, value in table:
        print(f"  {key:<{width}}  {value}")
    print(json.dumps(result))


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="Strom failover soak")
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--record-size", type=int, default=512, help="bytes per value")
    parser.add_argument("--rate", type=float, default=2000.0, help="records/s, all partitions")
    parser.add_argument("--min-insync", type=int, default=2, help="min.insync.replicas")
    parser.add_argument("--failover-timeout", type=float, default=60.0,
                        help="seconds to wait for the first ack after a kill")
    parser.add_argument("--isr-timeout", type=float, default=60.0,
                        help="seconds to wait for a full ISR after a restart")
    parser.add_argument("--json", default=None, help="also write the JSON result here")
    parser.add_argument("--dir", default=None, help="parent of the temporary data dir")
    args = parser.parse_args(argv)
    if args.partitions < 1 or args.kills < 0 or args.record_size < SEQ_BYTES:
        parser.error(f"need --partitions >= 1, --kills >= 0, --record-size >= {SEQ_BYTES}")
    signal.signal(signal.SIGTERM, _exit_on_sigterm)

    workdir = Path(tempfile.mkdtemp(prefix="strom-failover-", dir=args.dir))
    started = time.monotonic()
    load: LoadProducer | None = None
    failovers: list[Failover] = []
    cluster = LocalCluster(workdir, overrides=cluster_overrides(args.min_insync))
    try:
        with cluster:
            create_topic(cluster.bootstrap, TOPIC, args.partitions)
            isr_full_at_start = cluster.wait_full_isr(TOPIC, args.isr_timeout)
            load = LoadProducer(cluster.bootstrap, TOPIC, args.partitions, args.rate,
                                args.record_size, message_timeout_s=2 * args.failover_timeout)
            load.start()
            if wait_for(load.first_ack_seen, args.failover_timeout) is None:
                raise RuntimeError(f"no acks=all acknowledgement on every partition within "
                                   f"{args.failover_timeout:g} s; client errors: "
                                   f"{dict(load.errors)}")
            for k in range(args.kills):
                if load.exception is not None:
                    raise RuntimeError("load producer failed") from load.exception
                f = one_failover(cluster, load, k % args.partitions, args.failover_timeout,
                                 args.isr_timeout)
                failovers.append(f)
                shown = "no ack" if f.unavailable_ms is None else f"{f.unavailable_ms:.0f} ms"
                elected = "-" if f.elected_ms is None else f"{f.elected_ms:.0f} ms"
                role = " (also the controller)" if f.controller_killed else ""
                print(f"kill {k + 1}/{args.kills}: partition {f.partition} leader {f.killed}"
                      f"{role} → {f.new_leader} (elected {elected}), unavailable {shown}"
                      f"{' (restart-bound)' if f.restart_bound else ''}", file=sys.stderr)
            time.sleep(1.0)  # some load after the last failover
            load.stop(FLUSH_TIMEOUT_S + 10)
            if load.exception is not None:
                raise RuntimeError("load producer failed") from load.exception
            if load.is_alive():
                raise RuntimeError("load producer did not finish its flush")
            read = read_all(cluster.bootstrap, TOPIC, args.partitions)
    except Exception:
        print(cluster.log_tails(), file=sys.stderr)
        raise
    finally:
        if load is not None and load.is_alive():
            load.stop(5, abort=True)
        cluster.close()
        shutil.rmtree(workdir, ignore_errors=True)
    found = audit(load.acked, load.failed, read)
    result = summarize(failovers, found, load, args, isr_full_at_start,
                       time.monotonic() - started)
    print_report(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # the finally blocks stopped the cluster
        sys.exit(130)
