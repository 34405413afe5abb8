"""One process per data directory: a second locker is refused with a message naming the
holder; the lock goes with the holder's descriptor (or process), never left stale."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from storage.dir_lock import DirLockError, lock_dir

HOLD = """
import sys, time
from pathlib import Path
from storage.dir_lock import lock_dir
lock_dir(Path(sys.argv[1]))
print("locked", flush=True)
time.sleep(60)
"""


def test_a_second_process_is_refused_until_the_holder_dies(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[2])
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with pytest.raises(DirLockError, match=f"another Strom process \\(pid {holder.pid}\\)"):
            lock_dir(tmp_path)
    finally:
        holder.kill()
        holder.wait(timeout=10)
    fd = lock_dir(tmp_path)  # the kernel released the dead holder's lock
    os.close(fd)


def test_closing_the_descriptor_releases_the_lock(tmp_path: Path) -> None:
    fd = lock_dir(tmp_path / "new")
    assert (tmp_path / "new" / ".lock").read_text() == f"{os.getpid()}\n"
    with pytest.raises(DirLockError):
        lock_dir(tmp_path / "new")
    os.close(fd)
    os.close(lock_dir(tmp_path / "new"))
