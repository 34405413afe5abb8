"""Storage benchmark: PartitionLog appends vs. raw sequential os.write of the same bytes.

Run: ``python -m bench.storage [--mib N] [--rounds R] [--dir PATH]``

For two batch sizes (~1 MiB and ~16 KiB batches of 1 KiB records) it interleaves rounds
of (a) raw ``os.write`` of the batch bytes to a plain file and (b)
``PartitionLog.append_as_leader`` of the same batches (full validation: CRC-32C, header
parse, offset/epoch rewrite, index maintenance), each writing ``--mib`` MiB to the page
cache (no fsync in either, Kafka's default). Page-cache write speed swings widely
between runs, so the rounds alternate and the medians are reported, as ratios against
the raw baseline measured in the same run. It also measures sequential read-back through
``PartitionLog.read`` and crash recovery (a full CRC scan with index rebuild) per GiB.

A third baseline, "crc+raw", runs one CRC-32C pass and then the raw write: the floor for
an append that checks the CRC before writing (~80 us/MiB here). Appends of 256 KiB or more
check the CRC on a helper thread while the bytes are written, so they can beat it.

Prints a table, then one JSON line with: append_mib_s, raw_write_mib_s, append_ratio (1
MiB batches), append_mib_s_16k, raw_write_mib_s_16k, append_ratio_16k, read_mib_s,
recovery_s_per_gib, crc_write_mib_s[_16k], append_vs_crc_write[_16k].
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from crc32c import crc32c

from protocol.records import Record, build_batch
from storage.file_cache import FileCache
from storage.log_config import LogConfig
from storage.partition_files import CHECKPOINT_FILE
from storage.partition_log import PartitionLog

MIB = 1024 * 1024
RECORD_BYTES = 1024


def make_batches(batch_bytes: int, pool: int = 8) -> list[bytes]:
    """A pool of distinct batches of ~``batch_bytes`` made of 1 KiB random records."""
    per_batch = max(1, batch_bytes // (RECORD_BYTES + 12))
    out = []
    for i in range(pool):
        recs = [Record(-1, 1_700_000_000_000 + i, None, os.urandom(RECORD_BYTES))
                for _ in range(per_batch)]
        out.append(build_batch(recs))
    return out


def raw_round(path: Path, batches: list[bytes], count: int) -> float:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    n = len(batches)
    try:
        t0 = time.perf_counter()
        for i in range(count):
            os.write(fd, batches[i % n])
        elapsed = time.perf_counter() - t0
    finally:
        os.close(fd)
    os.unlink(path)
    return elapsed


def crc_write_round(path: Path, batches: list[bytes], count: int) -> float:
    """The floor any validating append pays: one CRC-32C pass, then the raw write."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    n = len(batches)
    views = [memoryview(b)[21:] for b in batches]
    try:
        t0 = time.perf_counter()
        for i in range(count):
            crc32c(views[i % n])
            os.write(fd, batches[i % n])
        elapsed = time.perf_counter() - t0
    finally:
        os.close(fd)
    os.unlink(path)
    return elapsed


def append_round(directory: Path, batches: list[bytes], count: int) -> tuple[float, PartitionLog]:
    log = PartitionLog.open(directory, LogConfig(), now_ms=0, file_cache=FileCache(64))
    n = len(batches)
    append = log.append_as_leader
    t0 = time.perf_counter()
    for i in range(count):
        append(batches[i % n], leader_epoch=1, now_ms=0)
    elapsed = time.perf_counter() - t0
    return elapsed, log


def read_back(log: PartitionLog) -> tuple[float, int]:
    t0 = time.perf_counter()
    off = log.log_start_offset
    total = 0
    end = log.log_end_offset
    while off < end:
        fetched = log.read(off, MIB)
        data = fetched.records
        total += len(data)
        # the next fetch offset is the end of the last batch: read its header only
        last = _last_next_offset(data)
        off = last
    return time.perf_counter() - t0, total


def _last_next_offset(data: bytes) -> int:
    pos = 0
    nxt = -1
    n = len(data)
    while pos + 12 <= n:
        base = int.from_bytes(data[pos : pos + 8], "big", signed=True)
        size = int.from_bytes(data[pos + 8 : pos + 12], "big") + 12
        last_delta = int.from_bytes(data[pos + 23 : pos + 27], "big")
        nxt = base + last_delta + 1
        pos += size
    return nxt


def recovery(directory: Path, log: PartitionLog) -> tuple[float, int]:
    """Abandon ``log`` as if the process died, drop the checkpoint, time a reopen."""
    size = log.size_in_bytes
    log.cache.close_all()
    (directory / CHECKPOINT_FILE).unlink(missing_ok=True)
    t0 = time.perf_counter()
    reopened = PartitionLog.open(directory, LogConfig(), now_ms=0, file_cache=FileCache(64))
    elapsed = time.perf_counter() - t0
    assert reopened.log_end_offset == log.log_end_offset, "recovery lost data"
    reopened.cache.close_all()
    return elapsed, size


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=256, help="MiB written per round")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--dir", type=Path, default=None, help="directory on the disk to test")
    args = ap.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="strom-bench-", dir=args.dir))
    results: dict[str, dict[str, list[float]]] = {}
    read_rates: list[float] = []
    recover_rates: list[float] = []
    try:
        for label, batch_bytes in (("1MiB", MIB), ("16KiB", 16 * 1024)):
            batches = make_batches(batch_bytes)
            size = len(batches[0])
            count = max(1, args.mib * MIB // size)
            volume = count * size / MIB
            raw_rates: list[float] = []
            app_rates: list[float] = []
            crc_rates: list[float] = []
            for r in range(args.rounds):
                kinds = ("raw", "append", "crc")
                order = kinds[r % 3 :] + kinds[: r % 3]  # rotate: no kind always goes first
                for kind in order:
                    if kind == "raw":
                        t = raw_round(base / "raw.bin", batches, count)
                        raw_rates.append(volume / t)
                        continue
                    if kind == "crc":
                        t = crc_write_round(base / "crc.bin", batches, count)
                        crc_rates.append(volume / t)
                        continue
                    d = base / f"bench-{label}-{r}"
                    t, log = append_round(d, batches, count)
                    app_rates.append(volume / t)
                    if label == "1MiB" and r < 3:
                        rt, n = read_back(log)
                        read_rates.append(n / MIB / rt)
                        ct, n = recovery(d, log)
                        recover_rates.append(ct / (n / (1024 * MIB)))
                    else:
                        log.cache.close_all()
                    shutil.rmtree(d, ignore_errors=True)
            results[label] = {"raw": raw_rates, "append": app_rates, "crc": crc_rates,
                              "batch_bytes": [float(size)], "volume": [volume]}
    finally:
        shutil.rmtree(base, ignore_errors=True)

    def med(xs: list[float]) -> float:
        return statistics.median(xs)

    out: dict[str, float] = {}
    rows = []
    for label, key in (("1MiB", ""), ("16KiB", "_16k")):
        raw = med(results[label]["raw"])
        app = med(results[label]["append"])
        # ratio of medians, plus the median of per-round ratios for the table
        ratios = [a / b for a, b in zip(results[label]["append"], results[label]["raw"],
                                        strict=True)]
        out[f"append_mib_s{key}"] = round(app, 1)
        out[f"raw_write_mib_s{key}"] = round(raw, 1)
        out[f"append_ratio{key}"] = round(app / raw, 3)
        crc = med(results[label]["crc"])
        out[f"crc_write_mib_s{key}"] = round(crc, 1)
        out[f"append_vs_crc_write{key}"] = round(app / crc, 3)
        rows.append((label, int(results[label]["batch_bytes"][0]), results[label]["volume"][0],
                     raw, app, app / raw, med(ratios), crc, app / crc))
    out["read_mib_s"] = round(med(read_rates), 1)
    out["recovery_s_per_gib"] = round(med(recover_rates), 3)

    print(f"{'batches':>8} {'batch B':>9} {'MiB/round':>9} {'raw MiB/s':>10} "
          f"{'append MiB/s':>12} {'ratio':>6} {'med/round':>9} {'crc+raw MiB/s':>13} "
          f"{'vs crc+raw':>10}")
    for label, bsz, vol, raw, app, ratio, rr, crc, vc in rows:
        print(f"{label:>8} {bsz:>9} {vol:>9.0f} {raw:>10.0f} {app:>12.0f} {ratio:>6.2f} "
              f"{rr:>9.2f} {crc:>13.0f} {vc:>10.2f}")
    print(f"read back (1 MiB fetches): {out['read_mib_s']:.0f} MiB/s; "
          f"recovery (CRC scan + index rebuild): {out['recovery_s_per_gib']:.2f} s/GiB; "
          f"rounds={args.rounds}, medians")
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
