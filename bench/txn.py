"""Transactional vs idempotent produce throughput, and commit latency.

``python -m bench.txn [--records 20000] [--rounds 3] [--sizes 100,1000] [--intervals 100]
[--interval-records 200000] [--json PATH]``

1. starts one Strom broker (:mod:`bench.cluster`, one combined-mode node on free ports,
   data in a temporary directory);
2. per round, interleaved so a noisy machine affects every mode alike, one librdkafka
   (confluent-kafka) producer per mode sends ``--records`` 1 KiB records to a fresh
   single-partition topic and waits for every acknowledgement:

   - ``idempotent``: ``enable.idempotence=true`` (acks=all), one ``flush`` at the end;
   - ``txn-<n>`` for each ``--sizes`` n: ``transactional.id`` set, transactions of n
     records (``begin_transaction``, n ``produce``, ``commit_transaction``);
   - ``txn-<t>ms`` for each ``--intervals`` t: a transaction committed every t ms of
     producing at full speed, however many records that is (``--interval-records`` in
     all, enough for several intervals at this machine's rate). This is the shape behind
     Kafka's guidance (Confluent's "Transactions in Apache Kafka": 1 KB records at
     maximum throughput, a commit every 100 ms, about 3% below non-transactional).

Reported per mode: records/s and MiB/s (median over rounds), the median of its ratios to
the idempotent rate of the same round (Kafka's guidance: a few percent lower at reasonable
transaction sizes; each round's rate and ratio are in the JSON as
``per_round_records_per_s`` / ``per_round_vs_idempotent``: on a machine whose speed drifts
between rounds the median ratio is not the ratio of the medians), and for transactions
the ``commit_transaction`` latency p50/p99 in ms (the client's flush of the transaction's
last records, EndTxn, and the wait for the coordinator's answer; the markers follow
asynchronously, as in Kafka).

Output: a table, then one JSON line (last line; also written to ``--json``). Every wait is
bounded; the broker is stopped and its directory removed at exit. Not a test.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.cluster import LocalCluster

RECORD = b"x" * 1024
MIB = 1024 * 1024
TIMEOUT_S = 60.0


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def run_idempotent(bootstrap: str, records: int) -> dict[str, float]:
    from confluent_kafka import Producer

    topic = f"bench-idem-{uuid.uuid4().hex[:8]}"
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                  "linger.ms": 5, "queue.buffering.max.messages": 1_000_000})
    p.produce(topic, RECORD)  # topic auto-created and producer id fetched before timing
    p.flush(TIMEOUT_S)
    start = time.perf_counter()
    for _ in range(records):
        p.produce(topic, RECORD)
        p.poll(0)
    assert p.flush(TIMEOUT_S) == 0, "idempotent records not acknowledged"
    return {"seconds": time.perf_counter() - start}


def run_transactional(bootstrap: str, records: int, size: int = 0,
                      interval_ms: float = 0.0) -> dict[str, Any]:
    """Transactions of ``size`` records, or (``size`` 0) each committed once it has
    produced for ``interval_ms``."""
    from confluent_kafka import Producer

    topic = f"bench-txn-{uuid.uuid4().hex[:8]}"
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"bench-{topic}",
                  "linger.ms": 5, "queue.buffering.max.messages": 1_000_000})
    p.init_transactions(TIMEOUT_S)
    p.begin_transaction()
    p.produce(topic, RECORD)
    p.commit_transaction(TIMEOUT_S)
    commits: list[float] = []
    start = time.perf_counter()
    sent = 0
    while sent < records:
        p.begin_transaction()
        if size:
            for _ in range(min(size, records - sent)):
                p.produce(topic, RECORD)
                p.poll(0)
            sent += min(size, records - sent)
        else:
            until = time.perf_counter() + interval_ms / 1000
            while sent < records and time.perf_counter() < until:
                p.produce(topic, RECORD)
                p.poll(0)
                sent += 1
        t0 = time.perf_counter()
        p.commit_transaction(TIMEOUT_S)
        commits.append((time.perf_counter() - t0) * 1000)
    return {"seconds": time.perf_counter() - start, "commits_ms": commits,
            "records": records}


def measure(bootstrap: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    sizes = [int(s) for s in args.sizes.split(",") if s]
    rounds: dict[str, list[dict[str, Any]]] = {"idempotent": []}
    intervals = [int(t) for t in args.intervals.split(",") if t]
    modes = [(f"txn-{n}", {"size": n}) for n in sizes]
    modes += [(f"txn-{t}ms", {"interval_ms": float(t), "records": args.interval_records})
              for t in intervals]
    for mode, _ in modes:
        rounds[mode] = []
    # the baseline runs as long as the longest transactional run, so a rate measured
    # over a short start-up-dominated run is not set against a long one
    idem_records = max([args.records] + [args.interval_records] * bool(intervals))
    for r in range(args.rounds):
        idem = run_idempotent(bootstrap, idem_records)
        rounds["idempotent"].append({**idem, "ratio": 1.0, "records": idem_records})
        for mode, shape in modes:
            txn = run_transactional(bootstrap, **{"records": args.records, **shape})
            txn["ratio"] = (txn["records"] / txn["seconds"]) / (idem_records / idem["seconds"])
            rounds[mode].append(txn)
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    results = []
    for mode, runs in rounds.items():
        rate = statistics.median(run.get("records", args.records) / run["seconds"]
                                 for run in runs)
        entry: dict[str, Any] = {
            "mode": mode,
            "records_per_s": round(rate),
            "mib_per_s": round(rate * len(RECORD) / MIB, 2),
            "vs_idempotent": round(statistics.median(run["ratio"] for run in runs), 3),
            "per_round_records_per_s": [round(run.get("records", args.records) / run["seconds"])
                                        for run in runs],
            "per_round_vs_idempotent": [round(run["ratio"], 3) for run in runs],
        }
        commits = [c for run in runs for c in run.get("commits_ms", [])]
        if commits:
            entry["commit_p50_ms"] = round(_quantile(commits, 0.50), 2)
            entry["commit_p99_ms"] = round(_quantile(commits, 0.99), 2)
            entry["transactions"] = len(commits)
        results.append(entry)
    return results


def report(results: list[dict[str, Any]]) -> str:
    lines = [f"{'mode':<12} {'records/s':>10} {'MiB/s':>8} {'vs idem':>8} "
             f"{'commit p50':>11} {'commit p99':>11}"]
    for e in results:
        p50 = f"{e['commit_p50_ms']:.2f} ms" if "commit_p50_ms" in e else "-"
        p99 = f"{e['commit_p99_ms']:.2f} ms" if "commit_p99_ms" in e else "-"
        lines.append(f"{e['mode']:<12} {e['records_per_s']:>10} {e['mib_per_s']:>8} "
                     f"{e['vs_idempotent']:>8} {p50:>11} {p99:>11}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="Transactional produce benchmark")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="100,1000", help="records per transaction")
    parser.add_argument("--intervals", default="100",
                        help="commit intervals in ms of producing (Kafka's anchor: 100)")
    parser.add_argument("--interval-records", type=int, default=200_000,
                        help="records per run of each --intervals mode")
    parser.add_argument("--json", default=None, help="also write the JSON result here")
    parser.add_argument("--dir", default=None, help="parent of the temporary data directory")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="strom-bench-txn-", dir=args.dir))
    try:
        with LocalCluster(workdir, nodes=1) as cluster:
            results = measure(cluster.bootstrap, args)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result = {"benchmark": "txn", "records": args.records, "rounds": args.rounds,
              "record_bytes": len(RECORD), "results": results}
    print(report(results))
    print(json.dumps(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
