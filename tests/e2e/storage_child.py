"""Child process for the SIGKILL crash test: append forever with flush.messages=1.

Usage: python -m tests.e2e.storage_child <partition dir>  (or :func:`run` in a forked
child, which is how the test starts it: it saves the interpreter start-up per kill).

Prints "ready <log_end_offset>" after opening (recovering) the log, then one line
"ack <first_offset> <last_offset>" per append, written only after the append returned
(with flush.messages=1 the batch is fsynced by then). The batch content is a pure
function of its base offset (:func:`batch_for`), so the parent can check every batch.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

from protocol.records import Record, build_batch
from storage.file_cache import FileCache
from storage.log_config import LogConfig
from storage.partition_log import PartitionLog

CONFIG = LogConfig(flush_messages=1, segment_bytes=64 * 1024, index_interval_bytes=1024)


def batch_for(base_offset: int) -> tuple[int, list[tuple[bytes, bytes]]]:
    """(record count, [(key, value)]) expected at ``base_offset``."""
    rng = random.Random(base_offset)
    n = rng.randint(1, 4)
    recs = []
    for i in range(n):
        size = rng.randint(10, 3000)
        recs.append((f"{base_offset}:{i}".encode(), rng.randbytes(size)))
    return n, recs


def run(directory: Path, out_fd: int) -> None:
    """Open the log, report "ready", then append and acknowledge until killed."""
    log = PartitionLog.open(directory, CONFIG, now_ms=0, file_cache=FileCache(16))
    os.write(out_fd, f"ready {log.log_end_offset}\n".encode())
    codec = 0
    while True:
        base = log.log_end_offset
        _, recs = batch_for(base)
        data = build_batch([Record(-1, base, k, v) for k, v in recs], compression=codec)
        codec = (codec + 1) % 5
        r = log.append_as_leader(data, leader_epoch=1, now_ms=base)
        os.write(out_fd, f"ack {r.first_offset} {r.last_offset}\n".encode())


if __name__ == "__main__":
    run(Path(sys.argv[1]), sys.stdout.fileno())
