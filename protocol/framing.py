"""Kafka frame splitting (sans-I/O).

Wire format: every request and response is a *frame*::

    size:int32 (big-endian, signed)  payload:size bytes

``FrameDecoder`` turns an arbitrary stream of byte chunks into complete payloads.
Rules:

- ``size`` is signed on the wire; a negative size, or one above ``max_frame_bytes``
  (Kafka's ``socket.request.max.bytes``, 100 MiB by default), raises ``FrameError``.
  After an error the decoder is poisoned: the connection must be closed.
- A payload that arrives whole inside one chunk is returned as a ``memoryview`` slice of
  that chunk (no copy; chunks are immutable ``bytes``). A payload spread over several
  chunks is assembled once into a pre-sized ``bytearray`` and returned as a read-only
  ``memoryview`` of it (kio's native readers refuse writable buffers).
- The decoder never holds more than one partial frame plus a 4-byte partial size, and
  memory follows the bytes actually received, not the size a peer *declares*: a frame
  buffer starts at ``INITIAL_FRAME_BYTES`` at most and doubles (up to the declared size) as
  data arrives; a frame above ``MAPPED_FRAME_BYTES`` gets an anonymous ``mmap`` of its
  declared size instead, whose pages the kernel provides only as bytes land in them (no
  zero-filling, no doubling copies that would stall the event loop for tens of ms on a
  100 MiB request, and unmapped at once when the frame is dropped). Either way a client
  announcing 100 MiB and sending nothing costs what it sent.

Two ways to drive it:

- ``feed(chunk)``: the caller owns the bytes (asyncio ``Protocol.data_received``);
- ``get_buffer()`` / ``buffer_updated(n)``: the decoder owns the receive buffer (asyncio
  ``BufferedProtocol``). While a large frame is incomplete, ``get_buffer`` hands out the
  unfilled tail of that frame itself, so the kernel copies payload bytes straight into
  place; otherwise it hands out a scratch buffer, from which complete small frames and
  partial ones are copied out before ``buffer_updated`` returns. The scratch may be shared
  by every decoder of one event loop (``scratch=``): a receive fills it and
  ``buffer_updated`` empties it before the loop reads another socket, so an idle
  connection holds no receive buffer at all.

Memory pool (Kafka's ``queued.max.request.bytes``): with ``pool=`` every frame's declared
size is reserved (``pool.try_reserve(size)``) as soon as its size prefix is read, before
its body is stored. A refused reservation *blocks* the decoder: ``blocked`` is True, the
bytes already received after that prefix are kept (at most one receive), and nothing more
should be read until ``resume()`` (called when the pool has room again) returns the frames
it completes. The holder of a frame releases ``len(frame)`` when done with it;
``release_partial()`` returns the reservation of a frame still incomplete (on close).
"""

from __future__ import annotations

import mmap
from typing import Protocol

DEFAULT_MAX_FRAME_BYTES = 100 * 1024 * 1024

Frame = bytes | bytearray | memoryview


class FrameError(ValueError):
    """The byte stream cannot be a sequence of valid frames (bad size)."""


class Pool(Protocol):
    """What the decoder needs of a memory pool (``common.memory_pool.MemoryPool``)."""

    def try_reserve(self, nbytes: int) -> bool: ...


class FrameDecoder:
    """Incremental splitter of size-prefixed frames.

    ``feed(chunk)`` returns the list of payloads completed by ``chunk`` (possibly empty).
    """

    __slots__ = ("max_frame_bytes", "_size_buf", "_frame", "_size", "_filled", "_broken",
                 "_scratch", "_direct", "_pool", "_blocked", "_pending", "_reserved")

    SCRATCH_BYTES = 256 * 1024
    INITIAL_FRAME_BYTES = 256 * 1024
    MAPPED_FRAME_BYTES = 8 * 1024 * 1024

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES, *,
                 scratch: bytearray | None = None, pool: Pool | None = None) -> None:
        if max_frame_bytes < 0:
            raise ValueError("max_frame_bytes must be >= 0")
        self.max_frame_bytes = max_frame_bytes
        self._size_buf = bytearray()  # 0..3 bytes of a size prefix
        self._frame: bytearray | None = None  # partial payload being assembled
        self._size = 0  # declared size of that payload (len(_frame) grows up to it)
        self._filled = 0
        self._broken = False
        self._scratch: bytearray | None = scratch
        self._direct = False
        self._pool = pool
        self._blocked = -1  # the declared size waiting for the pool (-1: not blocked)
        self._pending = b""  # bytes received after that size prefix
        self._reserved = 0  # reservation of the frame in _frame

    @property
    def blocked(self) -> bool:
        """A frame's size waits for room in the pool: read nothing until ``resume()``."""
        return self._blocked >= 0

    def resume(self) -> list[Frame]:
        """Retry the blocked reservation; return the frames the kept bytes complete."""
        if self._blocked < 0 or self._pool is None or not self._pool.try_reserve(self._blocked):
            return []
        size, self._blocked = self._blocked, -1
        pending, self._pending = self._pending, b""
        out: list[Frame] = []
        if size == 0 or len(pending) >= size:
            out.append(pending[:size])
            pending = pending[size:]
        else:
            self._start_frame(size)
            self._reserved = size
        return out + self._feed(memoryview(pending), copy_whole=False) if pending else out

    def release_partial(self) -> int:
        """The reservation held for an incomplete (or blocked-on) frame; forgets it."""
        held = self._reserved if self._frame is not None else 0
        self._reserved = 0
        return held

    @property
    def buffered_bytes(self) -> int:
        """Bytes held for an incomplete frame (size prefix + partial payload)."""
        return len(self._size_buf) + self._filled

    def _check_size(self, size: int) -> int:
        if size < 0:
            self._broken = True
            raise FrameError(f"negative frame size {size}")
        if size > self.max_frame_bytes:
            self._broken = True
            raise FrameError(
                f"frame size {size} exceeds socket.request.max.bytes={self.max_frame_bytes}"
            )
        return size

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[Frame]:
        """Consume ``chunk``; return every payload it completes, in order."""
        if self._broken:
            raise FrameError("decoder already failed; close the connection")
        if isinstance(chunk, bytearray):
            chunk = bytes(chunk)  # a bytearray may be reused by the caller
        return self._feed(memoryview(chunk), copy_whole=False)

    def get_buffer(self) -> memoryview:
        """A writable buffer for the next receive; report the bytes written with
        ``buffer_updated(n)`` before calling again."""
        if self._broken:
            raise FrameError("decoder already failed; close the connection")
        frame = self._frame
        if frame is not None:
            self._direct = True
            if self._filled == len(frame):
                self._grow(self._filled + 1)
                frame = self._frame
            return memoryview(frame)[self._filled :]
        self._direct = False
        if self._scratch is None:
            self._scratch = bytearray(self.SCRATCH_BYTES)
        return memoryview(self._scratch)

    def buffer_updated(self, nbytes: int) -> list[Frame]:
        """``nbytes`` were written into the last ``get_buffer()``; return completed frames."""
        if self._broken:
            raise FrameError("decoder already failed; close the connection")
        if self._direct:
            frame = self._frame
            assert frame is not None
            self._filled += nbytes
            if self._filled < self._size:
                return []
            self._frame = None
            self._filled = 0
            self._reserved = 0
            return [memoryview(frame).toreadonly()]
        assert self._scratch is not None
        if self._blocked >= 0:  # a receive raced the pause: keep the bytes
            self._pending += bytes(memoryview(self._scratch)[:nbytes])
            return []
        return self._feed(memoryview(self._scratch)[:nbytes], copy_whole=True)

    def _grow(self, needed: int) -> None:
        """Enlarge the partial frame buffer to hold ``needed`` bytes (doubling, capped at
        the declared size)."""
        frame = self._frame
        assert frame is not None
        target = min(self._size, max(needed, 2 * len(frame)))
        if target > len(frame):
            # a new buffer, not a resize: views handed out by get_buffer may still exist
            grown = bytearray(target)
            grown[: self._filled] = memoryview(frame)[: self._filled]
            self._frame = grown

    def _start_frame(self, size: int) -> None:
        self._frame = mmap.mmap(-1, size) if size > self.MAPPED_FRAME_BYTES \
            else bytearray(min(size, self.INITIAL_FRAME_BYTES))  # type: ignore[assignment]
        self._size = size
        self._filled = 0

    def _feed(self, view: memoryview, *, copy_whole: bool) -> list[Frame]:
        end = len(view)
        pos = 0
        out: list[Frame] = []
        while pos < end:
            frame = self._frame
            if frame is not None:
                # continue a partial payload
                take = min(self._size - self._filled, end - pos)
                if self._filled + take > len(frame):
                    self._grow(self._filled + take)
                    frame = self._frame
                memoryview(frame)[self._filled : self._filled + take] = view[pos : pos + take]
                self._filled += take
                pos += take
                if self._filled == self._size:
                    out.append(memoryview(frame).toreadonly())
                    self._frame = None
                    self._filled = 0
                    self._reserved = 0
                continue
            if self._size_buf:
                take = min(4 - len(self._size_buf), end - pos)
                self._size_buf += view[pos : pos + take]
                pos += take
                if len(self._size_buf) < 4:
                    break
                size = self._check_size(int.from_bytes(self._size_buf, "big", signed=True))
                self._size_buf.clear()
            elif end - pos >= 4:
                size = self._check_size(int.from_bytes(view[pos : pos + 4], "big", signed=True))
                pos += 4
            else:
                self._size_buf += view[pos:end]
                break
            if self._pool is not None and not self._pool.try_reserve(size):
                self._blocked = size
                self._pending = bytes(view[pos:end])
                break
            if end - pos >= size:
                whole = view[pos : pos + size]
                out.append(bytes(whole) if copy_whole else whole)
                pos += size
            else:
                self._start_frame(size)  # size > 0 here: size 0 took the branch above
                self._reserved = size if self._pool is not None else 0
        return out


def frame(payload: bytes | bytearray | memoryview) -> bytes:
    """Prefix ``payload`` with its int32 size (used by tests and the client side)."""
    return len(payload).to_bytes(4, "big") + bytes(payload)
