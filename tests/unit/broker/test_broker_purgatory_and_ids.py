"""Fetch purgatory wake-ups and producer-id allocation that survives restarts."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from broker.fetch_purgatory import FetchPurgatory
from broker.producer_ids import ProducerIdManager


async def test_append_wakes_only_watchers_of_that_partition() -> None:
    p = FetchPurgatory()
    a = p.watch([("t", 0), ("t", 1)])
    b = p.watch([("u", 0)])
    p.notify(("t", 1))
    assert a.done() and not b.done()
    p.unwatch([("t", 0), ("t", 1)], a)
    assert p.waiting() == 1
    p.close()
    assert b.done()
    assert p.watch([("x", 0)]).done()  # after close, watches complete at once


async def test_wait_times_out_without_notification() -> None:
    p = FetchPurgatory()
    fut = p.watch([("t", 0)])
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(fut), 0.05)
    assert not fut.done()
    p.unwatch([("t", 0)], fut)
    assert p.waiting() == 0


async def test_producer_ids_never_reused_across_restart(tmp_path: Path) -> None:
    first = ProducerIdManager(tmp_path, block_size=10)
    ids = [await first.allocate() for _ in range(15)]
    assert ids == list(range(15))
    second = ProducerIdManager(tmp_path, block_size=10)  # "restart"
    nxt = await second.allocate()
    assert nxt >= 20 and nxt not in ids
