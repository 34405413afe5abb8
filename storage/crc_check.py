"""CRC-32C checks of large produce requests on a helper thread, overlapped with the write.

A leader append must check every batch's CRC before the batch counts as appended. For
big requests (~1 MiB) that check costs about as much as a third of the page-cache
write, and ``crc32c`` releases the GIL for large buffers. So the appending thread hands
the check to one long-lived helper thread, writes the bytes past the segment's end
meanwhile, and waits for the verdict before anything becomes visible: the segment's
size, indexes, the log end offset and producer state are updated only after a passing
check; a failing one cuts the file back to where it was (see LogSegment.append_iov).
Bytes past a segment's size are never read, and crash recovery re-checks every CRC past
the recovery point, so a failed or interrupted write leaves nothing behind.

Synchronous from the caller's view (``CrcCheck.result`` blocks); no asyncio. The thread
is a daemon started on first use (and again in a forked child).
"""

from __future__ import annotations

import os
import queue
import threading

from crc32c import crc32c

from protocol.records import ATTRIBUTES_POS, T_BATCH_LENGTH, T_CRC

#: requests at least this large get their CRCs checked on the helper thread
PARALLEL_CRC_BYTES = 256 * 1024


class CrcCheck:
    """A pending check of the batches of one request; :meth:`result` waits for it."""

    __slots__ = ("_done", "_error", "view", "batches")

    def __init__(self, view: memoryview, batches: list[tuple[int, tuple[int, ...]]]) -> None:
        self.view = view
        self.batches = batches
        self._done = threading.Event()
        self._error: str | None = None

    def run(self) -> None:
        try:
            for pos, t in self.batches:
                size = t[T_BATCH_LENGTH] + 12
                if crc32c(self.view[pos + ATTRIBUTES_POS : pos + size]) != t[T_CRC]:
                    self._error = (f"batch at position {pos} fails its CRC-32C check "
                                   f"(stored {t[T_CRC]:#010x})")
                    return
        except Exception as exc:  # noqa: BLE001 - reported to the appending thread
            self._error = f"CRC check failed: {exc!r}"
        finally:
            self.view = memoryview(b"")  # drop the reference to the request buffer
            self._done.set()

    def result(self) -> str | None:
        """None if every CRC matched, else what is wrong (blocks until known)."""
        self._done.wait()
        return self._error


class CrcChecker:
    """One helper thread running submitted :class:`CrcCheck` jobs in order."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[CrcCheck] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pid = -1

    def submit(self, view: memoryview, batches: list[tuple[int, tuple[int, ...]]]) -> CrcCheck:
        job = CrcCheck(view, batches)
        if self._pid != os.getpid():
            self._start()
        self._jobs.put(job)
        return job

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._jobs = queue.SimpleQueue()
            threading.Thread(target=self._loop, args=(self._jobs,), name="strom-crc",
                             daemon=True).start()
            self._pid = os.getpid()

    @staticmethod
    def _loop(jobs: queue.SimpleQueue[CrcCheck]) -> None:
        while True:
            jobs.get().run()


CRC_CHECKER = CrcChecker()
