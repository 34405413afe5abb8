"""The 128-bit hash-key space and its split into shard ranges, as Kinesis does it.

A record's hash key is the MD5 of its partition key (UTF-8), read as an unsigned
big-endian 128-bit integer, or its ``ExplicitHashKey`` (a decimal string). ``n`` shards
made at once split the space uniformly: shard ``i`` covers
``[i * (2**128 // n), (i + 1) * (2**128 // n) - 1]``, the last one up to ``2**128 - 1``
(the same boundaries Kinesis gives a new stream).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

MAX_HASH_KEY = (1 << 128) - 1
_HASH_KEY = re.compile(r"0|[1-9]\d{0,38}")


def partition_key_hash(partition_key: str) -> int:
    return int.from_bytes(hashlib.md5(partition_key.encode("utf-8"),
                                      usedforsecurity=False).digest(), "big")


def parse_hash_key(text: str) -> int | None:
    """A decimal hash key in ``[0, 2**128 - 1]``, or None when it is not one."""
    if not _HASH_KEY.fullmatch(text):
        return None
    value = int(text)
    return value if value <= MAX_HASH_KEY else None


def uniform_ranges(count: int, start: int = 0, end: int = MAX_HASH_KEY
                   ) -> list[tuple[int, int]]:
    """``count`` adjacent ranges covering ``[start, end]`` (the last one takes the rest)."""
    if count < 1:
        raise ValueError("count must be at least 1")
    width = (end - start + 1) // count
    out = []
    for i in range(count):
        lo = start + i * width
        hi = end if i == count - 1 else lo + width - 1
        out.append((lo, hi))
    return out


def shard_for(hash_key: int, ranges: Sequence[tuple[int, tuple[int, int]]]) -> int | None:
    """The shard (first element of each ``(shard, (start, end))``) whose range holds
    ``hash_key``; None when no range does."""
    for shard, (lo, hi) in ranges:
        if lo <= hash_key <= hi:
            return shard
    return None
