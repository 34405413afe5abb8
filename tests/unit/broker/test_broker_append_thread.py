"""AppendThread: FIFO execution off the loop, results and exceptions delivered back."""

from __future__ import annotations

import asyncio
import threading

import pytest

from replication.append_thread import AppendThread


async def test_runs_in_order_off_the_loop_thread() -> None:
    worker = AppendThread()
    seen: list[tuple[int, str]] = []
    try:
        futures = [worker.submit(lambda i=i: seen.append((i, threading.current_thread().name))
                                 or i * 2) for i in range(50)]
        results = await asyncio.gather(*futures)
    finally:
        worker.close()
    assert results == [i * 2 for i in range(50)]
    assert [i for i, _ in seen] == list(range(50))
    assert {name for _, name in seen} == {"strom-append"}


async def test_exceptions_reach_the_awaiting_coroutine() -> None:
    worker = AppendThread()
    try:
        with pytest.raises(ZeroDivisionError):
            await worker.submit(lambda: 1 / 0)
        assert await worker.submit(lambda: "still alive") == "still alive"
    finally:
        worker.close()
    with pytest.raises(RuntimeError):
        worker.submit(lambda: None)
