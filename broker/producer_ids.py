"""Producer id allocation that never reuses an id, even across restarts.

Ids are handed out from blocks of ``BLOCK_SIZE``. Before the first id of a block is used,
the end of that block is persisted (``<data_dir>/__strom_producer_ids``: one line
``next_block_start=<int>``, written atomically: temp file, fsync, rename, fsync dir).
After a restart allocation resumes at the persisted value, so at most one block of ids is
skipped and none is reused. The file write runs in a worker thread (never on the loop).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

FILE_NAME = "__strom_producer_ids"
BLOCK_SIZE = 1000


class ProducerIdManager:
    def __init__(self, data_dir: Path, block_size: int = BLOCK_SIZE) -> None:
        self.path = Path(data_dir) / FILE_NAME
        self.block_size = block_size
        self._next = 0
        self._block_end = 0  # exclusive; ids in [_next, _block_end) are reserved on disk
        self._lock = asyncio.Lock()
        self._load()

    def _load(self) -> None:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return
        for line in text.splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "next_block_start":
                start = int(value.strip())
                self._next = self._block_end = start

    def _persist(self, next_block_start: int) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as f:
            f.write(f"next_block_start={next_block_start}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    async def allocate(self) -> int:
        """A fresh producer id (never handed out before by this data directory)."""
        async with self._lock:
            if self._next >= self._block_end:
                new_end = self._next + self.block_size
                await asyncio.get_running_loop().run_in_executor(None, self._persist, new_end)
                self._block_end = new_end
            pid = self._next
            self._next += 1
            return pid
