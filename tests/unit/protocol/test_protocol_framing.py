"""FrameDecoder: splitting, size guard, and arbitrary bytes never crash it."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.framing import FrameDecoder, FrameError, frame


def _payloads(out: list) -> list[bytes]:
    return [bytes(f) for f in out]


def test_whole_frames_in_one_chunk() -> None:
    d = FrameDecoder()
    data = frame(b"abc") + frame(b"") + frame(b"x" * 1000)
    assert _payloads(d.feed(data)) == [b"abc", b"", b"x" * 1000]
    assert d.buffered_bytes == 0


def test_frame_split_byte_by_byte() -> None:
    d = FrameDecoder()
    data = frame(b"hello") + frame(b"world!")
    got: list = []
    for i in range(len(data)):
        got += d.feed(data[i : i + 1])
    assert _payloads(got) == [b"hello", b"world!"]


def test_partial_size_prefix_then_rest() -> None:
    d = FrameDecoder()
    data = frame(b"payload")
    assert d.feed(data[:2]) == []
    assert d.buffered_bytes == 2
    assert _payloads(d.feed(data[2:])) == [b"payload"]


def test_negative_size_rejected() -> None:
    d = FrameDecoder()
    with pytest.raises(FrameError, match="negative"):
        d.feed((-1).to_bytes(4, "big", signed=True))


def test_size_above_limit_rejected_before_buffering() -> None:
    d = FrameDecoder(max_frame_bytes=100)
    with pytest.raises(FrameError, match="socket.request.max.bytes"):
        d.feed((101).to_bytes(4, "big"))
    assert d.buffered_bytes == 0


def test_two_gib_size_rejected_by_default_limit() -> None:
    d = FrameDecoder()
    with pytest.raises(FrameError):
        d.feed(b"\x7f\xff\xff\xff")


def test_decoder_is_poisoned_after_error() -> None:
    d = FrameDecoder(max_frame_bytes=10)
    with pytest.raises(FrameError):
        d.feed((11).to_bytes(4, "big"))
    with pytest.raises(FrameError):
        d.feed(frame(b"ok"))


def test_bytearray_chunks_are_copied() -> None:
    d = FrameDecoder()
    chunk = bytearray(frame(b"abc"))
    out = d.feed(chunk)
    chunk[4:7] = b"zzz"
    assert _payloads(out) == [b"abc"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=20), st.integers(0, 200))
def test_arbitrary_bytes_never_crash(chunks: list[bytes], limit: int) -> None:
    d = FrameDecoder(max_frame_bytes=limit)
    try:
        for c in chunks:
            for f in d.feed(c):
                assert len(f) <= limit
    except FrameError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=10), st.data())
def test_any_split_yields_the_same_frames(payloads: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(frame(p) for p in payloads)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    d = FrameDecoder()
    got: list = []
    prev = 0
    for c in [*cuts, len(stream)]:
        got += d.feed(stream[prev:c])
        prev = c
    assert _payloads(got) == payloads


def test_frames_are_read_only_buffers() -> None:
    """kio's native readers refuse writable buffers: every frame must be read-only."""
    d = FrameDecoder()
    data = frame(b"x" * 100)
    out = d.feed(data[:50]) + d.feed(data[50:]) + d.feed(frame(b"whole"))
    assert len(out) == 2
    for f in out:
        assert memoryview(f).readonly


def _drive_buffered(d: FrameDecoder, stream: bytes, sizes: list[int]) -> list[bytes]:
    """Feed ``stream`` through get_buffer/buffer_updated, at most sizes[i] per receive."""
    out: list = []
    pos = 0
    i = 0
    while pos < len(stream):
        buf = d.get_buffer()
        n = min(len(buf), len(stream) - pos, max(1, sizes[i % len(sizes)]) if sizes else 1 << 30)
        buf[:n] = stream[pos : pos + n]
        pos += n
        i += 1
        out += d.buffer_updated(n)
    return [bytes(f) for f in out]


def test_buffered_mode_fills_large_frames_in_place() -> None:
    d = FrameDecoder()
    big = bytes(range(256)) * 4096  # 1 MiB
    stream = frame(b"small") + frame(big) + frame(b"tail")
    assert _drive_buffered(d, stream, [100_000]) == [b"small", big, b"tail"]
    assert d.buffered_bytes == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=600_000).map(lambda b: b[:3000] if len(b) % 5 else b),
                max_size=6),
       st.lists(st.integers(1, 300_000), min_size=1, max_size=8))
def test_buffered_mode_matches_feed(payloads: list[bytes], sizes: list[int]) -> None:
    stream = b"".join(frame(p) for p in payloads)
    assert _drive_buffered(FrameDecoder(), stream, sizes) == payloads


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000), st.lists(st.integers(1, 64), min_size=1, max_size=5))
def test_buffered_mode_garbage_never_crashes(junk: bytes, sizes: list[int]) -> None:
    d = FrameDecoder(max_frame_bytes=500)
    with contextlib.suppress(FrameError):
        _drive_buffered(d, junk, sizes)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_declared_size_is_not_allocated_up_front() -> None:
    """Memory follows received bytes: 100 MiB announcements with 10 bytes sent are small
    (a mapped frame's pages exist only once written), and so are 4 MiB ones."""
    before = _rss()
    decoders = [FrameDecoder() for _ in range(20)]
    for d in decoders:
        d.feed((100 * 1024 * 1024).to_bytes(4, "big") + b"x" * 10)
        d.get_buffer()
    mid = [FrameDecoder() for _ in range(20)]
    for d in mid:
        d.feed((4 * 1024 * 1024).to_bytes(4, "big") + b"x" * 10)
        assert d._frame is not None and len(d._frame) <= FrameDecoder.INITIAL_FRAME_BYTES
    assert _rss() - before < 30 * 1024 * 1024  # not 2 GiB + 80 MiB


def test_a_mapped_frame_is_assembled_in_both_modes() -> None:
    big = bytes(range(256)) * (40 * 1024 + 3)  # ~10 MiB: above MAPPED_FRAME_BYTES
    stream = frame(big) + frame(b"after")
    d = FrameDecoder()
    fed: list = []
    for i in range(0, len(stream), 1_000_003):
        fed += d.feed(stream[i : i + 1_000_003])
    assert [bytes(f) for f in fed] == [big, b"after"]
    assert _drive_buffered(FrameDecoder(), stream, [3_000_000, 5]) == [big, b"after"]


def test_large_frame_grows_in_both_modes() -> None:
    big = bytes(range(256)) * (5 * 4096 + 7)  # ~5 MiB, not a power of two
    stream = frame(big) + frame(b"after")
    fed: list = []
    d = FrameDecoder()
    for i in range(0, len(stream), 300_000):
        fed += d.feed(stream[i : i + 300_000])
    assert [bytes(f) for f in fed] == [big, b"after"]
    assert _drive_buffered(FrameDecoder(), stream, [1_000_000, 77]) == [big, b"after"]
