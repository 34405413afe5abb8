"""Share groups (KIP-932): acknowledged records/s by 1, 2 and 4 share consumers on one
partition, and the redelivery latency after a lock timeout.

``python -m bench.share_groups`` (``make bench-share``)::

    python -m bench.share_groups [--records 100000] [--size 100] [--consumers 1,2,4]
        [--lock-ms 2000] [--rounds 5] [--json PATH] [--dir PARENT]

1. starts one Strom broker (:mod:`bench.cluster`, one combined-mode node on free ports,
   data in a temporary directory) with ``group.share.record.lock.duration.ms=--lock-ms``,
   and measures loopback TCP (:func:`bench.limits.loopback_mib_s`) in the same run;
2. throughput, for each consumer count ``n``: a fresh one-partition topic gets
   ``--records`` records of ``--size`` bytes, a fresh share group is set to start at
   offset 0 (AlterShareGroupOffsets), then ``n`` confluent-kafka ``ShareConsumer``s
   (implicit acknowledgement: each poll accepts the previous one's records), each in its
   own thread, consume until the share-partition start offset reaches the log end (every
   record acknowledged, read with DescribeShareGroupOffsets). **records/s** = records /
   time from the first record delivered to that moment; also each consumer's share and any
   record delivered twice (there should be none);
3. redelivery, ``--rounds`` times: one record is acquired on the wire (ShareFetch) by a
   member that never acknowledges it; a ShareConsumer of the same group polls; the
   **latency** is the time from the lock's expiry (the acquiring request's send time +
   lock duration: an upper bound of the broker's deadline) until the consumer has the
   record again.

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
import uuid
from pathlib import Path
from typing import Any

from bench.cluster import LocalCluster, accepted_overrides, wait_for
from bench.limits import MIB, loopback_mib_s
from bench.produce_consume import percentile, source_revision

CONSUMER_TIMEOUT_S = 120.0


def _wire(bootstrap: str) -> Any:
    from net.wire import WireClient

    host, port = bootstrap.rsplit(":", 1)
    return WireClient(host, int(port), timeout=30)


def _request(bootstrap: str, api_key: int, version: int, values: dict[str, Any]) -> Any:
    from kio.index import load_request_schema

    from protocol.build import build

    with _wire(bootstrap) as c:
        return c.request(build(load_request_schema(api_key, version), values))


def _topic(bootstrap: str) -> tuple[str, uuid.UUID]:
    from confluent_kafka.admin import AdminClient, NewTopic

    name = f"bench-share-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive for the result
    admin.create_topics([NewTopic(name, 1, 1)])[name].result(30)
    meta = _request(bootstrap, 3, 12, {"topics": [{"name": name, "topic_id": None}],
                                       "allow_auto_topic_creation": False,
                                       "include_topic_authorized_operations": False})
    return name, meta.topics[0].topic_id


def _start_at(bootstrap: str, group: str, topic: str, offset: int) -> None:
    _request(bootstrap, 91, 0, {"group_id": group, "topics": [
        {"topic_name": topic, "partitions": [{"partition_index": 0, "start_offset": offset}]}]})


def _spso(bootstrap: str, group: str, topic: str) -> int:
    resp = _request(bootstrap, 90, 1, {"groups": [
        {"group_id": group, "topics": [{"topic_name": topic, "partitions": [0]}]}]})
    try:
        return int(resp.groups[0].topics[0].partitions[0].start_offset)
    except (IndexError, AttributeError):
        return -1


def _produce(bootstrap: str, topic: str, records: int, size: int) -> None:
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "batch.num.messages": 200})
    value = b"x" * size
    for _ in range(records):
        while True:
            try:
                p.produce(topic, value=value, partition=0)
                break
            except BufferError:
                p.poll(0.05)
    p.flush(60)


def summarize(total: int, elapsed_s: float, per_consumer: list[list[int]]) -> dict[str, Any]:
    """Throughput figures of one run (pure): records/s, each consumer's share, records
    delivered more than once."""
    seen: dict[int, int] = {}
    for offsets in per_consumer:
        for o in offsets:
            seen[o] = seen.get(o, 0) + 1
    return {
        "records": total,
        "seconds": round(elapsed_s, 3),
        "records_per_s": round(total / elapsed_s, 1) if elapsed_s > 0 else 0.0,
        "shares": [len(o) for o in per_consumer],
        "duplicates": sum(c - 1 for c in seen.values() if c > 1),
        "missing": sum(1 for o in range(total) if o not in seen),
    }


def measure_throughput(bootstrap: str, n: int, records: int, size: int) -> dict[str, Any]:
    from confluent_kafka import ShareConsumer

    topic, _tid = _topic(bootstrap)
    group = f"bench-share-{n}-{uuid.uuid4().hex[:6]}"
    _produce(bootstrap, topic, records, size)
    _start_at(bootstrap, group, topic, 0)
    seen: list[list[int]] = [[] for _ in range(n)]
    stop = threading.Event()

    def run(i: int) -> None:
        c = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group})
        c.subscribe([topic])
        try:
            while not stop.is_set():
                seen[i].extend(m.offset() for m in c.poll(0.2) or () if m.error() is None)
        finally:
            c.close()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    # timed from the first record delivered (joining the group is not part of the rate)
    wait_for(lambda: any(seen), CONSUMER_TIMEOUT_S, 0.005)
    started = time.perf_counter()
    wait_for(lambda: sum(len(s) for s in seen) >= records, CONSUMER_TIMEOUT_S, 0.02)
    stop.set()  # each consumer's close() accepts its last poll
    for t in threads:
        t.join(30)
    wait_for(lambda: _spso(bootstrap, group, topic) >= records, 30, 0.02)
    elapsed = time.perf_counter() - started
    return {"consumers": n, **summarize(records, elapsed, seen)}


def measure_redelivery(bootstrap: str, lock_ms: int, rounds: int) -> dict[str, Any]:
    from confluent_kafka import ShareConsumer
    from kio.index import load_request_schema

    from protocol.build import build

    topic, tid = _topic(bootstrap)
    group = f"bench-redeliver-{uuid.uuid4().hex[:6]}"
    _start_at(bootstrap, group, topic, 0)
    c = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group,
                       "share.acknowledgement.mode": "explicit"})
    c.subscribe([topic])
    latencies: list[float] = []
    try:
        for r in range(rounds):
            _produce(bootstrap, topic, 1, 10)
            with _wire(bootstrap) as w:
                acquired_at = None
                deadline = time.monotonic() + 30
                while acquired_at is None and time.monotonic() < deadline:
                    sent_at = time.monotonic()  # the broker's lock starts after this
                    resp = w.request(build(load_request_schema(78, 1), {
                        "group_id": group, "member_id": f"holder-{r}",
                        "share_session_epoch": 0, "max_wait": 500, "min_bytes": 1,
                        "max_bytes": MIB, "max_records": 1, "batch_size": 1,
                        "topics": [{"topic_id": tid, "partitions": [
                            {"partition_index": 0, "acknowledgement_batches": []}]}],
                        "forgotten_topics_data": []}))
                    if any(p.acquired_records for t in resp.responses for p in t.partitions):
                        acquired_at = sent_at
            if acquired_at is None:
                continue
            expiry = acquired_at + lock_ms / 1000
            got = None
            deadline = time.monotonic() + lock_ms / 1000 + 30
            while got is None and time.monotonic() < deadline:
                for m in c.poll(0.05) or ():
                    if m.error() is None:
                        got = time.monotonic()
                        c.acknowledge(m)
                if got is not None:
                    c.commit_sync(10)
            if got is not None:
                latencies.append((got - expiry) * 1000)
    finally:
        c.close()
    return {"rounds": len(latencies), "lock_ms": lock_ms,
            "latency_ms_p50": round(percentile(latencies, 50), 1) if latencies else None,
            "latency_ms_max": round(max(latencies), 1) if latencies else None,
            "latencies_ms": [round(v, 1) for v in latencies]}


def report(loopback: float, runs: list[dict[str, Any]], redelivery: dict[str, Any]) -> str:
    lines = [f"loopback TCP: {loopback:.0f} MiB/s",
             f"{'consumers':>9} {'records':>8} {'seconds':>8} {'rec/s':>9} {'dups':>5}  shares"]
    for r in runs:
        lines.append(f"{r['consumers']:>9} {r['records']:>8} {r['seconds']:>8.2f} "
                     f"{r['records_per_s']:>9.0f} {r['duplicates']:>5}  {r['shares']}")
    lines.append(f"redelivery after a {redelivery['lock_ms']} ms lock: p50 "
                 f"{redelivery['latency_ms_p50']} ms, max {redelivery['latency_ms_max']} ms "
                 f"over {redelivery['rounds']} rounds (from the lock's expiry)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="Share group benchmark")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--consumers", default="1,2,4")
    parser.add_argument("--lock-ms", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", default=None, help="also write the JSON result here")
    parser.add_argument("--dir", default=None, help="parent of the temporary data directory")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="strom-bench-share-", dir=args.dir))
    overrides = {"num.partitions": "1",
                 "group.share.record.lock.duration.ms": str(args.lock_ms),
                 "offsets.topic.num.partitions": "3",
                 "share.coordinator.state.topic.num.partitions": "3"}
    loopback = loopback_mib_s(256 * MIB)
    try:
        with LocalCluster(workdir, nodes=1, overrides=accepted_overrides(overrides)) as cl:
            runs = []
            for n in (int(x) for x in args.consumers.split(",")):
                runs.append(measure_throughput(cl.bootstrap, n, args.records, args.size))
                print(f"{n} consumer(s): {runs[-1]['records_per_s']:.0f} rec/s",
                      file=sys.stderr, flush=True)
            redelivery = measure_redelivery(cl.bootstrap, args.lock_ms, args.rounds)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result = {"benchmark": "share_groups", "revision": source_revision(),
              "loopback_mib_s": round(loopback, 1), "size": args.size,
              "throughput": runs, "redelivery": redelivery}
    print(report(loopback, runs, redelivery))
    print(json.dumps(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
