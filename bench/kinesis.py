"""Benchmark of the Kinesis API on one shard of one broker.

``python -m bench.kinesis [--mib 64] [--connections 8] [--seconds 5]``:

1. starts a broker subprocess with the Kinesis listener on a free 127.0.0.1 port and
   creates a one-shard stream per record size;
2. **put**: for 1 KiB and 64 KiB records, ``--connections`` concurrent HTTP connections
   (one aiohttp session, raw AWS JSON 1.1 bodies built once with orjson and base64, as an
   SDK sends them, unsigned as the default mode accepts) send PutRecords requests of about
   1 MiB (500 1-KiB records, 16 64-KiB records) until ``--mib`` MiB are acknowledged;
   throughput in MiB/s and records/s, and as a multiple of a Kinesis shard's write limit
   (1 MB/s and 1,000 records/s);
3. **get**: ``--connections`` readers each read the whole shard from TRIM_HORIZON with
   GetRecords (Limit 10,000) following NextShardIterator; bytes of data delivered over
   the time until the last reader is done, as a multiple of a shard's read limit
   (2 MB/s shared by all readers);
4. **put-to-get latency**: one writer puts a record (PutRecord, its send time inside)
   every ``--interval-ms`` for ``--seconds``, while one reader polls GetRecords on its
   iterator chain (1 ms pause after an empty answer); latency = time the reader holds
   the record - time the writer sent it (same clock); p50 and p99 (Kinesis' typical
   propagation is ~200 ms, ~70 ms with enhanced fan-out);
   Before the first phase the bench waits ``--settle-s`` seconds (the broker loads its
   Kafka schemas in its first seconds, which would otherwise be timed as Kinesis work);
   Each put and get phase also reports the broker process's CPU time per record
   (``*_cpu_us_per_record``: user + system time from /proc, all its threads), which
   a loaded machine changes far less than throughput;
5. the machine's loopback TCP throughput in the same run (:mod:`bench.limits`), so the
   HTTP figures can be read against it (``*_loopback_ratio``: throughput / loopback).

Output: a table, then one JSON line. Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.limits import loopback_mib_s
from bench.produce_consume import percentile, running_broker

MIB = 1024 * 1024
TARGET = "Kinesis_20131202."
SHARD_IN_MB_S, SHARD_IN_RECORDS_S, SHARD_OUT_MB_S = 1.0, 1000.0, 2.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Api:
    """Raw AWS JSON 1.1 calls over one aiohttp session."""

    def __init__(self, url: str, connections: int) -> None:
        self.url = url
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections),
            timeout=aiohttp.ClientTimeout(total=120))

    async def call(self, op: str, body: bytes | dict[str, Any]) -> dict[str, Any]:
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        async with self.session.post(self.url, data=data, headers={
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": TARGET + op}) as response:
            answer = orjson.loads(await response.read())
            if response.status != 200:
                raise RuntimeError(f"{op}: {response.status} {answer}")
            return answer

    async def close(self) -> None:
        await self.session.close()


async def wait_active(api: Api, stream: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            d = await api.call("DescribeStreamSummary", {"StreamName": stream})
            if d["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE":
                return
        except RuntimeError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"stream {stream} did not become ACTIVE")


async def put_phase(api: Api, stream: str, size: int, total_bytes: int,
                    connections: int) -> dict[str, float]:
    per_request = max(1, min(500, MIB // size))
    data = base64.b64encode(os.urandom(size)).decode()
    body = orjson.dumps({"StreamName": stream, "Records": [
        {"Data": data, "PartitionKey": f"k{i}"} for i in range(per_request)]})
    requests = max(1, total_bytes // (size * per_request))
    left = requests
    failed = 0

    async def worker() -> None:
        nonlocal left, failed
        while left > 0:
            left -= 1
            answer = await api.call("PutRecords", body)
            failed += answer["FailedRecordCount"]

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - start
    records = requests * per_request - failed
    return {"mib_s": records * size / MIB / elapsed, "records_s": records / elapsed,
            "records": records, "failed": failed, "seconds": elapsed,
            "records_per_request": per_request}


async def read_shard(api: Api, stream: str) -> tuple[int, int]:
    it = (await api.call("GetShardIterator", {
        "StreamName": stream, "ShardId": "shardId-000000000000",
        "ShardIteratorType": "TRIM_HORIZON"}))["ShardIterator"]
    records = size = 0
    while it:
        got = await api.call("GetRecords", {"ShardIterator": it, "Limit": 10_000})
        if not got["Records"]:
            break
        records += len(got["Records"])
        # the decoded size without decoding (the client's CPU is the broker's too)
        size += sum(len(d) * 3 // 4 - d.count("=", -2)
                    for d in (r["Data"] for r in got["Records"]))
        it = got.get("NextShardIterator")
    return records, size


async def get_phase(api: Api, stream: str, readers: int) -> dict[str, float]:
    start = time.perf_counter()
    results = await asyncio.gather(*(read_shard(api, stream) for _ in range(readers)))
    elapsed = time.perf_counter() - start
    size = sum(s for _, s in results)
    return {"mib_s": size / MIB / elapsed, "records_s": sum(r for r, _ in results) / elapsed,
            "records_per_reader": results[0][0], "seconds": elapsed}


async def latency_phase(api: Api, stream: str, seconds: float, interval_ms: float
                        ) -> dict[str, float]:
    it = (await api.call("GetShardIterator", {
        "StreamName": stream, "ShardId": "shardId-000000000000",
        "ShardIteratorType": "LATEST"}))["ShardIterator"]
    latencies: list[float] = []
    sent = 0
    done = asyncio.Event()

    async def writer() -> None:
        nonlocal sent
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            stamp = struct.pack(">d", time.perf_counter()) + b"x" * 1016
            await api.call("PutRecord", {"StreamName": stream, "PartitionKey": "lat",
                                         "Data": base64.b64encode(stamp).decode()})
            sent += 1
            await asyncio.sleep(interval_ms / 1000)
        done.set()

    async def reader() -> None:
        nonlocal it
        deadline = None
        while True:
            got = await api.call("GetRecords", {"ShardIterator": it})
            now = time.perf_counter()
            for r in got["Records"]:
                latencies.append((now - struct.unpack(">d", base64.b64decode(
                    r["Data"])[:8])[0]) * 1000)
            it = got["NextShardIterator"]
            if done.is_set():
                deadline = deadline or time.perf_counter() + 5
                if len(latencies) >= sent or time.perf_counter() > deadline:
                    return
            if not got["Records"]:
                await asyncio.sleep(0.001)

    await asyncio.gather(writer(), reader())
    return {"p50_ms": percentile(latencies, 0.50), "p99_ms": percentile(latencies, 0.99),
            "records": len(latencies), "sent": sent}


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of process ``pid`` (all threads); 0 without /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(url: str, args: argparse.Namespace, pid: int | None = None) -> dict[str, Any]:
    api = Api(url, args.connections)
    out: dict[str, Any] = {}
    try:
        await asyncio.sleep(args.settle_s)
        for size in (1024, 64 * 1024):
            stream = f"bench-{size}"
            await api.call("CreateStream", {"StreamName": stream, "ShardCount": 1})
            await wait_active(api, stream)
            cpu0 = cpu_seconds(pid)
            put = await put_phase(api, stream, size, args.mib * MIB, args.connections)
            cpu1 = cpu_seconds(pid)
            get = await get_phase(api, stream, args.connections)
            cpu2 = cpu_seconds(pid)
            tag = f"{size // 1024}k"
            out[f"put_{tag}_cpu_us_per_record"] = round((cpu1 - cpu0) * 1e6 / put["records"], 1)
            out[f"get_{tag}_cpu_us_per_record"] = round(
                (cpu2 - cpu1) * 1e6 / (put["records"] * args.connections), 1)
            out[f"put_{tag}_mib_s"] = round(put["mib_s"], 1)
            out[f"put_{tag}_records_s"] = round(put["records_s"])
            out[f"put_{tag}_failed"] = put["failed"]
            out[f"put_{tag}_x_shard_mb"] = round(put["mib_s"] * MIB / 1e6 / SHARD_IN_MB_S, 1)
            out[f"put_{tag}_x_shard_records"] = round(put["records_s"] / SHARD_IN_RECORDS_S, 1)
            out[f"get_{tag}_mib_s"] = round(get["mib_s"], 1)
            out[f"get_{tag}_x_shard"] = round(get["mib_s"] * MIB / 1e6 / SHARD_OUT_MB_S, 1)
        stream = "bench-latency"
        await api.call("CreateStream", {"StreamName": stream, "ShardCount": 1})
        await wait_active(api, stream)
        lat = await latency_phase(api, stream, args.seconds, args.interval_ms)
        out["latency_p50_ms"] = round(lat["p50_ms"], 2)
        out["latency_p99_ms"] = round(lat["p99_ms"], 2)
        out["latency_records"] = lat["records"]
    finally:
        await api.close()
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.kinesis", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=64, help="MiB put per record size")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0, help="latency phase length")
    parser.add_argument("--interval-ms", type=float, default=5.0)
    parser.add_argument("--settle-s", type=float, default=3.0,
                        help="wait after the broker started, before the first phase")
    args = parser.parse_args(argv)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="strom-bench-kinesis-") as tmp:
        overrides = {"strom.kinesis.listener": f"http://127.0.0.1:{port}"}
        with running_broker(Path(tmp), overrides) as broker:
            result = asyncio.run(run(f"http://127.0.0.1:{port}/", args, broker.process.pid))
    result["loopback_mib_s"] = round(loopback_mib_s(256 * MIB), 1)
    result["connections"] = args.connections
    for key in ("put_1k", "put_64k", "get_1k", "get_64k"):
        result[f"{key}_loopback_ratio"] = round(result[f"{key}_mib_s"]
                                                / result["loopback_mib_s"], 4)
    rows = [
        ("PutRecords 1 KiB", f"{result['put_1k_mib_s']} MiB/s, {result['put_1k_records_s']} "
         f"rec/s = {result['put_1k_x_shard_mb']}x MB, {result['put_1k_x_shard_records']}x "
         f"records of a shard's limit"),
        ("broker CPU per record", f"put {result['put_1k_cpu_us_per_record']} us, get "
         f"{result['get_1k_cpu_us_per_record']} us (1 KiB); put "
         f"{result['put_64k_cpu_us_per_record']} us, get "
         f"{result['get_64k_cpu_us_per_record']} us (64 KiB)"),
        ("PutRecords 64 KiB", f"{result['put_64k_mib_s']} MiB/s = "
         f"{result['put_64k_x_shard_mb']}x a shard's 1 MB/s"),
        ("GetRecords 1 KiB", f"{result['get_1k_mib_s']} MiB/s = {result['get_1k_x_shard']}x "
         f"a shard's 2 MB/s"),
        ("GetRecords 64 KiB", f"{result['get_64k_mib_s']} MiB/s = "
         f"{result['get_64k_x_shard']}x a shard's 2 MB/s"),
        ("put-to-get latency", f"p50 {result['latency_p50_ms']} ms, p99 "
         f"{result['latency_p99_ms']} ms ({result['latency_records']} records)"),
        ("loopback TCP", f"{result['loopback_mib_s']} MiB/s"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
