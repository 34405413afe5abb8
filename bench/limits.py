"""The machine's own limits, measured in the same run as a benchmark.

Every Strom benchmark pairs its figures with these two so results are ratios that survive a
noisy machine (page-cache write speed here swings between 0.5 and 6 GiB/s run to run):

- :func:`raw_write_mib_s`: sequential ``os.write`` of ``total_bytes`` in ``chunk_bytes``
  pieces to a fresh file in ``directory`` (the page cache, like the broker; no fsync unless
  asked), the file removed afterwards.
- :func:`loopback_mib_s`: one TCP connection on 127.0.0.1; a thread ``sendall``s
  ``total_bytes`` while this thread ``recv_into``s them; time until the last byte arrives.

``python -m bench.limits [--mib N] [--dir PATH]`` prints both and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import tempfile
import threading
import time
from pathlib import Path

MIB = 1024 * 1024


def raw_write_mib_s(
    directory: Path | str, total_bytes: int, *, chunk_bytes: int = MIB, fsync: bool = False
) -> float:
    """MiB/s of sequential ``os.write`` calls writing ``total_bytes`` into ``directory``."""
    chunk = os.urandom(chunk_bytes)  # incompressible, like record payloads
    view = memoryview(chunk)
    fd, path = tempfile.mkstemp(prefix="strom-limits-", suffix=".bin", dir=directory)
    try:
        written = 0
        start = time.perf_counter()
        while written < total_bytes:
            n = os.write(fd, view[: min(chunk_bytes, total_bytes - written)])
            written += n
        if fsync:
            os.fsync(fd)
        elapsed = time.perf_counter() - start
    finally:
        os.close(fd)
        os.unlink(path)
    return written / MIB / max(elapsed, 1e-9)


def loopback_mib_s(total_bytes: int, *, chunk_bytes: int = MIB) -> float:
    """MiB/s through one TCP connection over 127.0.0.1 (sender thread → this thread)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        sender = socket.create_connection(("127.0.0.1", port))
        receiver, _ = server.accept()
    payload = memoryview(os.urandom(chunk_bytes))
    errors: list[BaseException] = []

    def send() -> None:
        try:
            left = total_bytes
            while left > 0:
                n = min(chunk_bytes, left)
                sender.sendall(payload[:n])
                left -= n
        except BaseException as exc:  # reported below, never swallowed
            errors.append(exc)
        finally:
            sender.shutdown(socket.SHUT_WR)

    buffer = bytearray(chunk_bytes)
    received = 0
    with receiver, sender:
        receiver.settimeout(60)
        thread = threading.Thread(target=send, name="loopback-sender", daemon=True)
        start = time.perf_counter()
        thread.start()
        while received < total_bytes:
            n = receiver.recv_into(buffer)
            if n == 0:
                break
            received += n
        elapsed = time.perf_counter() - start
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    if received != total_bytes:
        raise RuntimeError(f"loopback received {received} of {total_bytes} bytes")
    return received / MIB / max(elapsed, 1e-9)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024, help="volume for each measurement")
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="directory for the write")
    args = parser.parse_args(argv)
    total = args.mib * MIB
    write = raw_write_mib_s(args.dir, total)
    loop = loopback_mib_s(total)
    print(f"raw sequential write : {write:10.1f} MiB/s  ({args.mib} MiB to {args.dir})")
    print(f"loopback TCP         : {loop:10.1f} MiB/s  ({args.mib} MiB over 127.0.0.1)")
    print(json.dumps({"raw_write_mib_s": round(write, 1), "loopback_mib_s": round(loop, 1)}))


if __name__ == "__main__":
    main()
