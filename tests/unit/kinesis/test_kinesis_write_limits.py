"""kinesis.throttle: per-shard token buckets with one second of burst."""

from __future__ import annotations

import pytest

from kinesis.throttle import ShardWriteLimits


def test_no_limit_admits_everything() -> None:
    limits = ShardWriteLimits()
    assert not limits.enforced
    assert all(limits.admit("s", 10 << 20, 0.0) for _ in range(10_000))


def test_records_per_second_burst_then_refill() -> None:
    limits = ShardWriteLimits(records_per_s=1000)
    assert sum(limits.admit("s", 1, 0.0) for _ in range(1500)) == 1000
    assert sum(limits.admit("other", 1, 0.0) for _ in range(1500)) == 1000  # per shard
    assert sum(limits.admit("s", 1, 0.25) for _ in range(1000)) == 250  # refilled 1/4 s
    assert sum(limits.admit("s", 1, 10.0) for _ in range(1500)) == 1000  # capped at 1 s


def test_bytes_per_second_counts_sizes() -> None:
    limits = ShardWriteLimits(bytes_per_s=1 << 20)
    assert sum(limits.admit("s", 1024, 0.0) for _ in range(2000)) == 1024
    assert not limits.admit("s", 1, 0.0)
    assert limits.admit("s", 1024, 1024 / (1 << 20))  # exactly one record's worth back
    # a record larger than a second's worth passes when the bucket is full, then owes
    assert limits.admit("big", 3 << 20, 0.0)
    assert not limits.admit("big", 1, 1.0)


def test_negative_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        ShardWriteLimits(records_per_s=-1)
