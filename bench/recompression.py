"""Recompression benchmark: leader appends of gzip batches kept as sent vs. rebuilt in lz4.

Run: ``python -m bench.recompression [--mib N] [--rounds R] [--batch-kib K] [--dir PATH]``

The same gzip batches (``--batch-kib`` KiB of 1 KiB JSON-like records each, compressible
like real payloads) go through ``PartitionLog.append_as_leader`` on a topic with
``compression.type=producer`` (stored as sent: the hot path, no record is decoded) and
``compression.type=lz4`` / ``zstd`` (every batch decompressed, its records decoded and
checked, recompressed, CRC recomputed: protocol/recompress.py). The machine's own floor,
measured in the same run, is the codec work alone: ``zlib`` decompress + ``lz4.frame``
compress of each batch's records section, with no record decoding and no disk.

Rates are MiB/s of *uncompressed* record data (the producer's logical bytes), medians of
interleaved rounds. Prints a table, then one JSON line with: producer_mib_s,
gzip_to_lz4_mib_s, gzip_to_zstd_mib_s, codec_floor_mib_s (gzip → lz4, codec only),
lz4_vs_producer, lz4_vs_codec_floor, batch_kib, stored_ratio_gzip, stored_ratio_lz4
(stored bytes / logical bytes).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from protocol import compression
from protocol.records import Record, build_batch, iter_batches, records_payload
from storage.file_cache import FileCache
from storage.log_config import LogConfig
from storage.partition_log import PartitionLog

MIB = 1024 * 1024
RECORD_BYTES = 1024
_WORDS = ("order", "customer", "amount", "currency", "EUR", "USD", "status", "shipped",
          "pending", "id", "sku", "quantity", "warehouse", "region", "eu-west", "us-east")


def _record_value(rng: random.Random) -> bytes:
    """~1 KiB of JSON-like text: repetitive keys, varying values (compresses ~4-6x)."""
    parts = []
    while sum(len(p) for p in parts) < RECORD_BYTES:
        parts.append(f'"{rng.choice(_WORDS)}":"{rng.choice(_WORDS)}-{rng.randrange(10**6)}",')
    return ("{" + "".join(parts))[:RECORD_BYTES].encode()


def make_batches(batch_bytes: int, pool: int = 8, seed: int = 7) -> tuple[list[bytes], int]:
    """A pool of gzip batches and the uncompressed record bytes each one carries."""
    rng = random.Random(seed)
    per_batch = max(1, batch_bytes // RECORD_BYTES)
    out = []
    for i in range(pool):
        recs = [Record(-1, 1_700_000_000_000 + i, b"key-%d" % j, _record_value(rng))
                for j in range(per_batch)]
        out.append(build_batch(recs, compression=compression.GZIP))
    return out, per_batch * RECORD_BYTES


def append_round(directory: Path, config: LogConfig, batches: list[bytes],
                 count: int) -> tuple[float, int]:
    """Seconds to append ``count`` batches, and the bytes the log then holds."""
    log = PartitionLog.open(directory, config, now_ms=0, file_cache=FileCache(64))
    n = len(batches)
    append = log.append_as_leader
    try:
        t0 = time.perf_counter()
        for i in range(count):
            append(batches[i % n], leader_epoch=1, now_ms=0)
        elapsed = time.perf_counter() - t0
        return elapsed, log.size_in_bytes
    finally:
        log.close(sync=False)
        shutil.rmtree(directory, ignore_errors=True)


def codec_floor_round(batches: list[bytes], count: int) -> float:
    """gzip decompress + lz4 compress of each records section: the codec work alone."""
    bodies = [memoryview(b)[61:] for b in batches]
    n = len(bodies)
    t0 = time.perf_counter()
    for i in range(count):
        compression.compress(compression.LZ4, compression.decompress(compression.GZIP,
                                                                      bodies[i % n]))
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=64, help="uncompressed MiB per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch-kib", type=int, default=256, help="uncompressed KiB per batch")
    ap.add_argument("--dir", type=Path, default=None, help="directory on the disk to test")
    args = ap.parse_args(argv)
    batches, logical = make_batches(args.batch_kib * 1024)
    for b in batches:  # sanity: the rebuilt records are what was sent
        [(_, h)] = list(iter_batches(b))
        assert len(records_payload(b)) > 0 and h.compression == compression.GZIP
    count = max(1, args.mib * MIB // logical)
    volume = count * logical / MIB
    configs = {
        "producer": LogConfig(compression_type="producer"),
        "gzip->lz4": LogConfig(compression_type="lz4"),
        "gzip->zstd": LogConfig(compression_type="zstd"),
    }
    rates: dict[str, list[float]] = {k: [] for k in (*configs, "codec floor")}
    stored: dict[str, int] = {}
    base = Path(tempfile.mkdtemp(prefix="strom-bench-recompress-", dir=args.dir))
    kinds = list(rates)
    try:
        for r in range(args.rounds):
            for kind in kinds[r % len(kinds):] + kinds[: r % len(kinds)]:  # rotate the order
                if kind == "codec floor":
                    rates[kind].append(volume / codec_floor_round(batches, count))
                    continue
                t, size = append_round(base / f"{kind.replace('>', '')}-{r}", configs[kind],
                                       batches, count)
                rates[kind].append(volume / t)
                stored[kind] = size
    finally:
        shutil.rmtree(base, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in rates.items()}
    out: dict[str, float] = {
        "producer_mib_s": round(med["producer"], 1),
        "gzip_to_lz4_mib_s": round(med["gzip->lz4"], 1),
        "gzip_to_zstd_mib_s": round(med["gzip->zstd"], 1),
        "codec_floor_mib_s": round(med["codec floor"], 1),
        "lz4_vs_producer": round(med["gzip->lz4"] / med["producer"], 4),
        "lz4_vs_codec_floor": round(med["gzip->lz4"] / med["codec floor"], 3),
        "batch_kib": float(args.batch_kib),
        "stored_ratio_gzip": round(stored["producer"] / (volume * MIB), 3),
        "stored_ratio_lz4": round(stored["gzip->lz4"] / (volume * MIB), 3),
    }
    print(f"{'topic compression.type':>24} {'MiB/s (logical)':>16} {'vs producer':>12} "
          f"{'vs codec floor':>15} {'stored/logical':>15}")
    for kind in kinds:
        ratio = stored.get(kind, 0) / (volume * MIB)
        shown = f"{ratio:>15.3f}" if kind in stored else f"{'-':>15}"
        print(f"{kind:>24} {med[kind]:>16.1f} {med[kind] / med['producer']:>12.4f} "
              f"{med[kind] / med['codec floor']:>15.3f} {shown}")
    print(f"{args.batch_kib} KiB batches of 1 KiB records, {volume:.0f} MiB per round, "
          f"rounds={args.rounds}, medians")
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
