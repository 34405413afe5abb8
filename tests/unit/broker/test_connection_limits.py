"""Connection quotas (max.connections, per IP with overrides, creation rate) and the
queued.max.request.bytes memory pool with the frame decoder, as pure logic."""

from __future__ import annotations

from broker.connection_quotas import ConnectionQuotas
from common.memory_pool import MemoryPool
from protocol.framing import FrameDecoder, frame


def test_per_ip_limit_with_overrides_and_release() -> None:
    q = ConnectionQuotas(per_ip=2, per_ip_overrides={"10.0.0.9": 3})
    assert [q.admit("10.0.0.1", 0).refused for _ in range(3)] == \
        [None, None, "max.connections.per.ip"]
    assert [q.admit("10.0.0.9", 0).refused for _ in range(4)] == \
        [None, None, None, "max.connections.per.ip"]
    q.release("10.0.0.1")
    assert q.admit("10.0.0.1", 0).refused is None
    assert q.total == 5


def test_max_connections_across_addresses() -> None:
    q = ConnectionQuotas(max_connections=2)
    assert q.admit("a", 0).refused is None and q.admit("b", 0).refused is None
    assert q.admit("c", 0).refused == "max.connections"
    q.release("a")
    assert q.admit("c", 0).refused is None


def test_creation_rate_spaces_connections() -> None:
    q = ConnectionQuotas(creation_rate=10)
    delays = [q.admit("a", 100.0).delay for _ in range(4)]
    assert delays == [0.0, 0.1, 0.2, 0.30000000000000004] or \
        [round(d, 6) for d in delays] == [0.0, 0.1, 0.2, 0.3]
    assert q.admit("a", 200.0).delay == 0.0  # a quiet second resets the spacing
    assert ConnectionQuotas(creation_rate=0).admit("a", 0).refused == \
        "max.connection.creation.rate"


def test_ip_connection_creation_rate_throttles_beyond_the_quota() -> None:
    """KIP-612: over 2 windows of 1 s a rate of 2/s admits 2 new connections in a burst;
    the third is throttled (not counted, not taking a slot) for Kafka's throttle time,
    bounded by one window; the default ip entity covers other addresses; removing the
    quota lifts it."""
    image = {(("ip", "127.0.0.1"),): {"connection_creation_rate": 2.0}}
    q = ConnectionQuotas(ip_quotas=lambda: image, window_num=2, window_ms=1000,
                         creation_rate=100)
    got = [q.admit("127.0.0.1", 10.0) for _ in range(4)]
    assert [a.throttle_ms for a in got] == [0, 0, 500, 500]  # (3 - 2) / 2 x 1000 ms
    assert [a.refused for a in got] == [None] * 4
    assert q.total == 2 and q.by_ip == {"127.0.0.1": 2}
    assert round(got[1].delay, 6) == 0.01  # the broker-wide rate still spaces them
    assert q.admit("127.0.0.1", 11.0).throttle_ms == 500  # 3 in 1 s: still over
    assert q.admit("127.0.0.1", 11.5).throttle_ms == 0  # 3 in 1.5 s: 2/s
    assert q.ip_sensors["127.0.0.1"].throttled == 3
    assert q.admit("10.0.0.1", 11.0).throttle_ms == 0  # no quota for it
    image = {**image, (("ip", None),): {"connection_creation_rate": 1.0}}
    assert [q.admit("10.0.0.1", 20.0).throttle_ms for _ in range(3)] == [0, 1000, 1000]
    image = {}
    assert [q.admit("127.0.0.1", 11.5).throttle_ms for _ in range(5)] == [0] * 5
    assert "127.0.0.1" not in q.ip_sensors


def test_pool_is_non_strict_like_kafkas() -> None:
    pool = MemoryPool(100)
    assert pool.try_reserve(150)  # room left: granted, even beyond the capacity
    assert not pool.try_reserve(1)
    pool.release(150)
    assert pool.available == 100 and pool.try_reserve(1)


def test_decoder_waits_for_the_pool_and_keeps_what_it_received() -> None:
    pool = MemoryPool(8)
    d = FrameDecoder(pool=pool)
    a, b, c = b"x" * 8, b"y" * 6, b"z" * 3
    assert d.feed(frame(a) + frame(b)[:5]) == [a]
    assert d.blocked  # a holds the whole pool: b's size (6) is refused
    assert pool.used == 8
    assert d.resume() == []  # still no room
    pool.release(8)  # a was handled
    assert d.resume() == [] and not d.blocked  # b reserved, 1 of its 6 bytes kept
    assert pool.used == 6
    assert d.feed(frame(b)[5:] + frame(c)) == [b, c]  # 6 < 8: c fits (non-strict)
    assert pool.used == 9
    assert d.feed(frame(a)) == [] and d.blocked


def test_decoder_reservation_of_a_partial_frame_is_returned_on_close() -> None:
    pool = MemoryPool(1000)
    d = FrameDecoder(pool=pool)
    assert d.feed(frame(b"q" * 500)[:100]) == []
    assert pool.used == 500
    assert d.release_partial() == 500
    assert d.release_partial() == 0


def test_shared_scratch_buffer() -> None:
    scratch = bytearray(FrameDecoder.SCRATCH_BYTES)
    one, two = FrameDecoder(scratch=scratch), FrameDecoder(scratch=scratch)
    buf = one.get_buffer()
    data = frame(b"hello") + frame(b"wor")[:4]
    buf[: len(data)] = data
    assert one.buffer_updated(len(data)) == [b"hello"]
    buf2 = two.get_buffer()  # the same scratch: one copied what it kept
    assert buf2.obj is scratch
    buf2[:7] = frame(b"abc")
    assert two.buffer_updated(7) == [b"abc"]
    rest = one.get_buffer()
    rest[:3] = b"wor"
    assert one.buffer_updated(3) == [b"wor"]
