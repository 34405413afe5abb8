"""One process per data directory: an exclusive ``flock`` on ``<dir>/.lock``.

Two brokers writing the same logs would interleave appends and corrupt them, so a node
takes the lock before it opens anything in the directory and holds it (an open file
descriptor) until the process ends; the kernel releases it on exit, kill -9 included, so
a stale lock file never blocks a restart. The file holds the pid of the holder, for the
message a second process gets.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

LOCK_FILE = ".lock"


class DirLockError(OSError):
    """The directory is locked by another process (message names it)."""


def lock_dir(directory: Path) -> int:
    """Lock ``directory`` (created if missing) for this process; returns the descriptor
    that holds the lock (close it to release). Raises DirLockError when another process
    holds it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = ""
        with contextlib.suppress(OSError, ValueError):
            holder = f" (pid {int(os.pread(fd, 32, 0).decode().strip())})"
        os.close(fd)
        raise DirLockError(f"{directory} is in use by another Strom process{holder}: "
                           f"only one process may use a data directory") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
