"""The pause a membership change causes: classic eager vs classic cooperative vs KIP-848.

``python -m bench.group_protocols``::

    python -m bench.group_protocols [--rounds 3] [--partitions 6] [--rate 600]
        [--json PATH] [--dir PARENT]

1. starts one Strom broker (:mod:`bench.cluster`, one combined-mode node on free ports,
   data in a temporary directory) with fast group settings: no initial rebalance delay,
   classic session 6 s / heartbeat 500 ms, consumer-protocol heartbeat 500 ms;
2. for each protocol, a fresh topic of ``--partitions`` partitions gets ``--rate``
   records/s round robin from a producer thread, and 3 librdkafka (confluent-kafka)
   consumers, each polling in its own thread, join one group:

   - ``classic-eager``: ``group.protocol=classic``, ``partition.assignment.strategy=range``
     (every member gives up everything on each rebalance);
   - ``classic-cooperative``: ``cooperative-sticky`` (KIP-429: only moved partitions);
   - ``consumer``: ``group.protocol=consumer`` (KIP-848, the broker's uniform assignor);

3. ``--rounds`` times, a 4th member joins, the group settles (every partition owned once,
   balanced), then the 4th member closes (leaves) and the group settles again. For each of
   the 3 original members, the **pause** of a change is the longest stretch without any
   record received from the start of the change until 1 s after it settled; **settle** is
   the time from the change to the balanced split. The **baseline** is the same longest
   gap measured over a quiet second before each change: what the machine and the load
   give without any rebalance; pauses are reported in ms and as a ratio to it.

Output: a readable table, then one JSON line (last line; also written to ``--json``).
Every wait is bounded; the broker is stopped and its directory removed at exit. A
benchmark, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.cluster import LocalCluster, accepted_overrides, wait_for
from bench.produce_consume import percentile, source_revision

PROTOCOLS: dict[str, dict[str, Any]] = {
    "classic-eager": {"group.protocol": "classic", "partition.assignment.strategy": "range",
                      "session.timeout.ms": 6000, "heartbeat.interval.ms": 500},
    "classic-cooperative": {"group.protocol": "classic",
                            "partition.assignment.strategy": "cooperative-sticky",
                            "session.timeout.ms": 6000, "heartbeat.interval.ms": 500},
    "consumer": {"group.protocol": "consumer"},
}
BROKER_OVERRIDES = {
    "num.partitions": "1",
    "group.initial.rebalance.delay.ms": "0",
    "group.min.session.timeout.ms": "1000",
    "group.consumer.heartbeat.interval.ms": "500",
    "group.consumer.min.heartbeat.interval.ms": "100",
}
SETTLE_TIMEOUT_S = 60.0
AFTER_SETTLE_S = 1.0
QUIET_S = 1.0


# --------------------------------------------------------------------------- pure parts


def max_gap(times: list[float], start: float, end: float) -> float:
    """Longest stretch within [start, end] without a timestamp of ``times``."""
    points = [start] + sorted(t for t in times if start <= t <= end) + [end]
    return max(b - a for a, b in zip(points, points[1:], strict=False))


def balanced(assignments: list[set[int]], partitions: int) -> bool:
    """Every partition owned exactly once, sizes within one of each other."""
    owned = [p for s in assignments for p in s]
    sizes = [len(s) for s in assignments]
    return (len(owned) == len(set(owned)) == partitions and bool(sizes)
            and max(sizes) - min(sizes) <= 1 and min(sizes) >= 1)


def summarize(values_s: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values_s]
    return {"p50_ms": round(percentile(ms, 50), 1), "max_ms": round(max(ms, default=0.0), 1)}


# --------------------------------------------------------------------------- I/O


@dataclass
class Member:
    """A librdkafka consumer polling in its own thread; records receive times."""

    bootstrap: str
    group: str
    topic: str
    conf: dict[str, Any]
    times: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        from confluent_kafka import Consumer

        self.consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.group,
                                  "auto.offset.reset": "latest", "enable.auto.commit": False,
                                  "fetch.wait.max.ms": 50,
                                  **self.conf})
        self.owned: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        c = self.consumer
        c.subscribe([self.topic])
        while not self._stop.is_set():
            m = c.poll(0.02)
            if m is not None and m.error() is None:
                with self._lock:
                    self.times.append(time.monotonic())
            with self._lock:
                self.owned = {tp.partition for tp in c.assignment()}
        c.close()

    def partitions(self) -> set[int]:
        with self._lock:
            return set(self.owned)

    def received(self) -> list[float]:
        with self._lock:
            return list(self.times)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)


class Load:
    def __init__(self, bootstrap: str, topic: str, partitions: int, rate: int) -> None:
        from confluent_kafka import Producer

        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1})
        self.topic, self.partitions, self.interval = topic, partitions, 1 / rate
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        i, next_at = 0, time.monotonic()
        while not self._stop.is_set():
            self.producer.produce(self.topic, value=b"x", partition=i % self.partitions)
            self.producer.poll(0)
            i += 1
            next_at += self.interval
            time.sleep(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.producer.flush(10)


def _create_topic(bootstrap: str, name: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)


def _settle(members: list[Member], partitions: int) -> float:
    if not wait_for(lambda: balanced([m.partitions() for m in members], partitions),
                    SETTLE_TIMEOUT_S, 0.01):
        raise RuntimeError(f"no balanced split within {SETTLE_TIMEOUT_S} s: "
                           f"{[sorted(m.partitions()) for m in members]}")
    return time.monotonic()


def measure(bootstrap: str, name: str, conf: dict[str, Any], args: argparse.Namespace
            ) -> dict[str, Any]:
    topic, group = f"bench-{name}-{time.monotonic_ns()}", f"bench-{name}"
    _create_topic(bootstrap, topic, args.partitions)
    load = Load(bootstrap, topic, args.partitions, args.rate)
    members = [Member(bootstrap, group, topic, conf) for _ in range(3)]
    out: dict[str, list[float]] = {"join": [], "leave": [], "join_settle": [],
                                   "leave_settle": [], "baseline": []}
    try:
        _settle(members, args.partitions)
        for _ in range(args.rounds):
            for change in ("join", "leave"):
                time.sleep(QUIET_S)
                quiet_end = time.monotonic()
                out["baseline"] += [max_gap(m.received(), quiet_end - QUIET_S, quiet_end)
                                    for m in members[:3]]
                start = time.monotonic()
                if change == "join":
                    members.append(Member(bootstrap, group, topic, conf))
                else:
                    members.pop().stop()
                settled = _settle(members, args.partitions)
                out[f"{change}_settle"].append(settled - start)
                time.sleep(AFTER_SETTLE_S)
                end = settled + AFTER_SETTLE_S
                out[change] += [max_gap(m.received(), start, end) for m in members[:3]]
    finally:
        for m in members:
            m.stop()
        load.stop()
    baseline = max(out["baseline"], default=0.0) or 1e-3
    return {
        "protocol": name,
        "join_pause": summarize(out["join"]),
        "leave_pause": summarize(out["leave"]),
        "join_settle": summarize(out["join_settle"]),
        "leave_settle": summarize(out["leave_settle"]),
        "baseline_gap": summarize(out["baseline"]),
        "join_pause_ratio": round(max(out["join"], default=0.0) / baseline, 1),
        "leave_pause_ratio": round(max(out["leave"], default=0.0) / baseline, 1),
    }


def report(results: list[dict[str, Any]]) -> str:
    lines = [f"{'protocol':<21} {'join pause p50/max':>19} {'leave pause p50/max':>20} "
             f"{'settle join/leave':>18} {'baseline':>9} {'x baseline':>11}"]
    for r in results:
        lines.append(
            f"{r['protocol']:<21} "
            f"{r['join_pause']['p50_ms']:>8.0f}/{r['join_pause']['max_ms']:<6.0f} ms "
            f"{r['leave_pause']['p50_ms']:>8.0f}/{r['leave_pause']['max_ms']:<6.0f} ms  "
            f"{r['join_settle']['max_ms']:>6.0f}/{r['leave_settle']['max_ms']:<6.0f} ms "
            f"{r['baseline_gap']['max_ms']:>6.0f} ms "
            f"{r['join_pause_ratio']:>5}/{r['leave_pause_ratio']:<5}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="Group protocol pause benchmark")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--rate", type=int, default=600, help="records/s produced")
    parser.add_argument("--protocols", default=",".join(PROTOCOLS))
    parser.add_argument("--json", default=None, help="also write the JSON result here")
    parser.add_argument("--dir", default=None, help="parent of the temporary data directory")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="strom-bench-groups-", dir=args.dir))
    results = []
    try:
        with LocalCluster(workdir, nodes=1,
                          overrides=accepted_overrides(BROKER_OVERRIDES)) as cluster:
            for name in args.protocols.split(","):
                results.append(measure(cluster.bootstrap, name, PROTOCOLS[name], args))
                print(report(results[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result = {"benchmark": "group_protocols", "revision": source_revision(),
              "rounds": args.rounds, "partitions": args.partitions, "rate": args.rate,
              "results": results}
    print(report(results))
    print(json.dumps(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
