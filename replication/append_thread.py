"""One worker thread that runs blocking calls in submission order and completes asyncio
futures on the caller's loop.

A lean replacement for ``loop.run_in_executor(ThreadPoolExecutor(1), ...)`` on the produce
hot path: no concurrent.futures Future, work item or future chaining per call — a
``SimpleQueue`` put, and one ``call_soon_threadsafe`` back (profiles showed the executor
machinery at ~10 % of the event loop's own work when every 1 MiB request was handed off).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any


def _resolve(fut: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if fut.cancelled():
        return
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)


class AppendThread:
    """``await submit(fn)`` runs ``fn()`` on the thread; FIFO across all callers."""

    def __init__(self, name: str = "strom-append") -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._closed = False

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            loop, fut, fn = item
            try:
                result = fn()
            except BaseException as exc:  # delivered to the awaiting coroutine
                loop.call_soon_threadsafe(_resolve, fut, False, exc)
            else:
                loop.call_soon_threadsafe(_resolve, fut, True, result)
                del result
            # drop the call (and the batch it holds, up to 100 MiB) now, not when the
            # next append arrives
            del item, fn, fut, loop

    def submit(self, fn: Callable[[], Any]) -> asyncio.Future[Any]:
        if self._closed:
            raise RuntimeError("append thread is closed")
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._queue.put((loop, fut, fn))
        return fut

    def close(self) -> None:
        """Finish queued calls, then stop the thread."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()
