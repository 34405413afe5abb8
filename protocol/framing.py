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
- The decoder never holds more than one partial frame plus a 4-byte partial size.

Two ways to drive it:

- ``feed(chunk)``: the caller owns the bytes (asyncio ``Protocol.data_received``);
- ``get_buffer()`` / ``buffer_updated(n)``: the decoder owns the receive buffer (asyncio
  ``BufferedProtocol``). While a large frame is incomplete, ``get_buffer`` hands out the
  unfilled tail of that frame itself, so the kernel copies payload bytes straight into
  place; otherwise it hands out a reusable scratch buffer, from which complete small
  frames are copied out (the scratch is overwritten by the next receive).
"""

from __future__ import annotations

DEFAULT_MAX_FRAME_BYTES = 100 * 1024 * 1024

Frame = bytes | bytearray | memoryview


class FrameError(ValueError):
    """The byte stream cannot be a sequence of valid frames (bad size)."""


class FrameDecoder:
    """Incremental splitter of size-prefixed frames.

    ``feed(chunk)`` returns the list of payloads completed by ``chunk`` (possibly empty).
    """

    __slots__ = ("max_frame_bytes", "_size_buf", "_frame", "_filled", "_broken",
                 "_scratch", "_direct")

    SCRATCH_BYTES = 256 * 1024

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        if max_frame_bytes < 0:
            raise ValueError("max_frame_bytes must be >= 0")
        self.max_frame_bytes = max_frame_bytes
        self._size_buf = bytearray()  # 0..3 bytes of a size prefix
        self._frame: bytearray | None = None  # partial payload being assembled
        self._filled = 0
        self._broken = False
        self._scratch: bytearray | None = None
        self._direct = False

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
            if self._filled < len(frame):
                return []
            self._frame = None
            self._filled = 0
            return [memoryview(frame).toreadonly()]
        assert self._scratch is not None
        return self._feed(memoryview(self._scratch)[:nbytes], copy_whole=True)

    def _feed(self, view: memoryview, *, copy_whole: bool) -> list[Frame]:
        end = len(view)
        pos = 0
        out: list[Frame] = []
        while pos < end:
            frame = self._frame
            if frame is not None:
                # continue a partial payload
                take = min(len(frame) - self._filled, end - pos)
                frame[self._filled : self._filled + take] = view[pos : pos + take]
                self._filled += take
                pos += take
                if self._filled == len(frame):
                    out.append(memoryview(frame).toreadonly())
                    self._frame = None
                    self._filled = 0
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
            if end - pos >= size:
                whole = view[pos : pos + size]
                out.append(bytes(whole) if copy_whole else whole)
                pos += size
            else:
                self._frame = bytearray(size)  # size > 0 here: size 0 took the branch above
                self._filled = 0
        return out


def frame(payload: bytes | bytearray | memoryview) -> bytes:
    """Prefix ``payload`` with its int32 size (used by tests and the client side)."""
    return len(payload).to_bytes(4, "big") + bytes(payload)
