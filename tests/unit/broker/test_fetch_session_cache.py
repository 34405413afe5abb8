"""FetchSessionCache: ids, LRU eviction only of sessions idle for eviction_ms, epochs, and
which partitions count as news."""

from __future__ import annotations

from collections import OrderedDict

from broker.fetch_session import FetchSessionCache, SessionPartition


def parts(*keys: tuple[str, int]) -> OrderedDict:
    return OrderedDict((k, SessionPartition(0, 1024)) for k in keys)


def test_a_full_cache_evicts_only_a_session_idle_long_enough() -> None:
    cache = FetchSessionCache(max_slots=2, eviction_ms=1000)
    a = cache.create(parts(("t", 0)), now_ms=0)
    b = cache.create(parts(("t", 1)), now_ms=100)
    assert a is not None and b is not None and a.session_id != b.session_id
    assert cache.create(parts(("t", 2)), now_ms=500) is None  # both in use: no session
    assert cache.get(a.session_id, now_ms=900) is a  # a used again: b is now the oldest
    c = cache.create(parts(("t", 2)), now_ms=1200)
    assert c is not None and len(cache) == 2
    assert cache.get(b.session_id, now_ms=1200) is None  # evicted
    assert cache.get(a.session_id, now_ms=1200) is a
    cache.remove(a.session_id)
    assert cache.get(a.session_id, now_ms=1300) is None


def test_epochs_advance_and_partitions_with_records_move_last() -> None:
    cache = FetchSessionCache()
    s = cache.create(parts(("t", 0), ("t", 1), ("u", 0)), now_ms=0)
    assert s is not None and s.next_epoch == 1
    s.served([("t", 0)], now_ms=5)
    assert s.next_epoch == 2 and list(s.partitions) == [("t", 1), ("u", 0), ("t", 0)]
    s.next_epoch = 0x7FFFFFFF
    s.served([], now_ms=6)
    assert s.next_epoch == 1  # wraps past the largest int32, never to 0 or -1


def test_news_is_records_errors_or_changed_offsets() -> None:
    p = SessionPartition(0, 1024)
    quiet = {"records": b"", "error_code": 0, "high_watermark": 5, "last_stable_offset": 5,
             "log_start_offset": 0}
    assert p.changed(quiet)  # never sent before
    assert not p.changed(quiet)
    assert p.changed({**quiet, "high_watermark": 6})
    assert p.changed({**quiet, "high_watermark": 6, "records": b"x"})
    assert p.changed({**quiet, "high_watermark": 6, "error_code": 1})
    assert p.changed({**quiet, "high_watermark": 6, "log_start_offset": 2})
    assert not p.changed({**quiet, "high_watermark": 6, "log_start_offset": 2})
