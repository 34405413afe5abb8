"""Producer ids this broker hands out, from blocks the active controller allocates
(AllocateProducerIds, KIP-730), so an id is never given to two producers of the cluster,
whichever brokers they asked, and never reused after a restart (the blocks are in the
metadata log).

``ProducerIdManager(fetch_block, floor=...)``:

- ``allocate()`` returns the next id of the current block. When 90% of the block is used
  the next block is requested in the background (as Kafka's RPCProducerIdManager does),
  so allocation rarely waits. With no id left it waits at most ``wait_s`` for a block,
  then raises ``ProducerIdsUnavailable`` (InitProducerId answers the retriable
  COORDINATOR_LOAD_IN_PROGRESS, Kafka's answer when its block is used up).
- ``fetch_block(timeout_s)`` is injected (``ClusterNode.allocate_producer_ids``): it asks
  the active controller, retrying NOT_CONTROLLER / connection errors within
  ``timeout_s``, and returns ``(start, length)`` or raises.
- ``floor``: versions before cluster-wide ids kept a per-data-dir counter in
  ``<data_dir>/__strom_producer_ids`` (one line ``next_block_start=<int>``; ids below it
  may have been handed out). ``legacy_floor`` reads it (it is never written any more);
  the manager never hands out an id below the floor: a block is trimmed to start at it,
  a block wholly below it is dropped and another one fetched. (A lone node's controller
  also moves the cluster's next producer id up to the floor before its first block, so
  this costs one block, not many.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path

FILE_NAME = "__strom_producer_ids"

#: how long ``allocate`` waits for a block when the current one is used up
WAIT_S = 5.0
#: how long a background (prefetch) request for the next block may take
PREFETCH_TIMEOUT_S = 30.0
#: a block is prefetched once this fraction of the current one is used (Kafka's 90%)
PREFETCH_FRACTION = 0.9

BlockFetcher = Callable[[float], Awaitable[tuple[int, int]]]


class ProducerIdsUnavailable(Exception):
    """No producer id block could be had in time (the message says why)."""


def legacy_floor(data_dir: Path) -> int:
    """``next_block_start`` of the pre-KIP-730 counter file in ``data_dir``, 0 without one.
    Raises ValueError naming the file when it is damaged."""
    path = Path(data_dir) / FILE_NAME
    try:
        text = path.read_text()
    except FileNotFoundError:
        return 0
    floor = 0
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "next_block_start":
            try:
                floor = max(floor, int(value.strip()))
            except ValueError:
                raise ValueError(f"{path}: next_block_start is not a number: "
                                 f"{value.strip()!r}") from None
    return floor


class ProducerIdManager:
    """Hands out the ids of blocks got from ``fetch_block`` (see the module doc); one per
    event loop, its state touched only on that loop."""

    def __init__(self, fetch_block: BlockFetcher, *, floor: int = 0,
                 wait_s: float = WAIT_S, prefetch_timeout_s: float = PREFETCH_TIMEOUT_S
                 ) -> None:
        self._fetch_block = fetch_block
        self.floor = floor
        self.wait_s = wait_s
        self.prefetch_timeout_s = prefetch_timeout_s
        self._next = 0
        self._end = 0  # current block: ids in [_next, _end) are this broker's to hand out
        self._prefetch_at = 0
        self._spare: tuple[int, int] | None = None  # the next block, already allocated
        self._task: asyncio.Task[None] | None = None
        self._error = ""

    async def allocate(self) -> int:
        """A producer id no producer of the cluster was given before. Raises
        ProducerIdsUnavailable when no block came within ``wait_s``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        while True:
            if self._next >= self._end and self._spare is not None:
                self._install(*self._spare)
                self._spare = None
            if self._next < self._end:
                pid = self._next
                self._next += 1
                if self._next >= self._prefetch_at:
                    self._request_block(self.prefetch_timeout_s)
                return pid
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ProducerIdsUnavailable(
                    f"no producer id block within {self.wait_s}s"
                    + (f": {self._error}" if self._error else ""))
            task = self._request_block(max(remaining, self.prefetch_timeout_s))
            assert task is not None  # no spare block here (it would have been installed)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), remaining)
            if self._spare is None and self._next >= self._end and task.done():
                await asyncio.sleep(min(0.05, max(deadline - loop.time(), 0)))

    def _install(self, start: int, length: int) -> None:
        self._next, self._end = start, start + length
        self._prefetch_at = start + max(int(length * PREFETCH_FRACTION), 1)

    def _request_block(self, timeout_s: float) -> asyncio.Task[None] | None:
        """The request for the next block under way, started unless one is; None when
        the next block is already here."""
        if self._spare is not None:
            return None
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._fetch(timeout_s))
        return self._task

    async def _fetch(self, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            try:
                start, length = await self._fetch_block(max(deadline - loop.time(), 0.1))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # recorded; the waiting allocate() reports it
                self._error = str(exc) or type(exc).__name__
                return
            end = start + length
            start = max(start, self.floor)
            if start < end:
                self._error = ""
                self._spare = (start, end - start)
                return
            # wholly below the ids this data directory handed out before: next block

    def close(self) -> None:
        """Cancel a block request under way (at shutdown)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
